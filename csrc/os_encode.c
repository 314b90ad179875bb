#include "os_encode.h"

#include <openssl/evp.h>
#include <string.h>

static const char HEXU[] = "0123456789ABCDEF";

/* Per byte: 1 for RFC 3986 unreserved (A-Z a-z 0-9 - _ . ~), 2 for '/'.
 * A mask of 1 keeps unreserved bytes as they are, 3 keeps '/' too (paths). */
enum { KEEP_UNRESERVED = 1, KEEP_PATH = 3 };
#define U1(c) [c] = 1
#define U2(c) [c] = 2
static const unsigned char uri_table[256] = {
    U1('-'), U1('.'), U1('_'), U1('~'), U1('0'), U1('1'), U1('2'), U1('3'), U1('4'), U1('5'),
    U1('6'), U1('7'), U1('8'), U1('9'), U1('A'), U1('B'), U1('C'), U1('D'), U1('E'), U1('F'),
    U1('G'), U1('H'), U1('I'), U1('J'), U1('K'), U1('L'), U1('M'), U1('N'), U1('O'), U1('P'),
    U1('Q'), U1('R'), U1('S'), U1('T'), U1('U'), U1('V'), U1('W'), U1('X'), U1('Y'), U1('Z'),
    U1('a'), U1('b'), U1('c'), U1('d'), U1('e'), U1('f'), U1('g'), U1('h'), U1('i'), U1('j'),
    U1('k'), U1('l'), U1('m'), U1('n'), U1('o'), U1('p'), U1('q'), U1('r'), U1('s'), U1('t'),
    U1('u'), U1('v'), U1('w'), U1('x'), U1('y'), U1('z'), U2('/'),
};
#undef U1
#undef U2

/* Writers below keep the output position in a local: a store through a
 * char pointer may alias out->len, which would be reloaded every byte. */
static inline char *put_pct(char *o, unsigned char c) {
  o[0] = '%';
  o[1] = HEXU[c >> 4];
  o[2] = HEXU[c & 15];
  return o + 3;
}

void os_uri_encode(os_buf *out, const char *s, size_t n, int keep_slash) {
  const unsigned keep = keep_slash ? KEEP_PATH : KEEP_UNRESERVED;
  if (!os_buf_reserve(out, n * 3)) return;
  char *o = out->data + out->len;
  size_t i = 0;
  while (i < n) {
    /* Runs of bytes kept as they are are copied whole. */
    size_t j = i;
    while (j < n && (uri_table[(unsigned char)s[j]] & keep)) j++;
    memcpy(o, s + i, j - i);
    o += j - i;
    if (j < n) o = put_pct(o, (unsigned char)s[j++]);
    i = j;
  }
  out->len = (size_t)(o - out->data);
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Returns the decoded byte of a valid %XX at s[i], or -1. */
static int pct_at(const char *s, size_t n, size_t i) {
  if (s[i] != '%' || i + 2 >= n) return -1;
  int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

void os_uri_decode(os_buf *out, const char *s, size_t n) {
  if (!os_buf_reserve(out, n)) return;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    int v = s[i] == '%' ? pct_at(s, n, i) : -1;
    if (v >= 0) {
      *o++ = (char)v;
      i += 2;
    } else {
      *o++ = s[i];
    }
  }
  out->len = (size_t)(o - out->data);
}

void os_uri_normalize(os_buf *out, const char *s, size_t n, int keep_slash) {
  const unsigned keep = keep_slash ? KEEP_PATH : KEEP_UNRESERVED;
  if (!os_buf_reserve(out, n * 3)) return;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (uri_table[c] & keep) {
      *o++ = (char)c;
      continue;
    }
    int v = c == '%' ? pct_at(s, n, i) : -1;
    if (v >= 0) {
      /* A decoded byte is data, so a decoded '/' stays encoded. */
      c = (unsigned char)v;
      i += 2;
      if (uri_table[c] & KEEP_UNRESERVED) {
        *o++ = (char)c;
        continue;
      }
    }
    o = put_pct(o, c);
  }
  out->len = (size_t)(o - out->data);
}

/* The two digits of every byte: one load and one 2-byte store per byte
 * (signatures hex-encode two digests each). */
static const char HEX_PAIRS[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

size_t os_hex_to(char *out, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) memcpy(out + 2 * i, HEX_PAIRS + 2 * (size_t)p[i], 2);
  out[2 * n] = '\0';
  return 2 * n;
}

void os_hex_encode(os_buf *out, const unsigned char *p, size_t n) {
  /* os_buf_reserve keeps one byte beyond for the terminator. */
  if (!os_buf_reserve(out, 2 * n)) return;
  out->len += os_hex_to(out->data + out->len, p, n);
}

int os_hex_decode(os_buf *out, const char *s, size_t n) {
  if (n % 2 != 0) return 0;
  if (!os_buf_reserve(out, n / 2)) return 0;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n; i += 2) {
    int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
    if (hi < 0 || lo < 0) return 0;
    *o++ = (char)(hi * 16 + lo);
  }
  out->len = (size_t)(o - out->data);
  return 1;
}

/* EVP_EncodeBlock and EVP_DecodeBlock take int lengths: longer input goes
 * through in chunks of whole 3-byte groups (4-character quads). */
#define B64_CHUNK (3u * (1u << 28))

size_t os_base64_to(char *out, const unsigned char *p, size_t n) {
  size_t o = 0;
  out[0] = '\0';
  while (n > 0) {
    size_t chunk = n > B64_CHUNK ? B64_CHUNK : n;
    o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p, (int)chunk);
    p += chunk;
    n -= chunk;
  }
  return o;
}

void os_base64_encode(os_buf *out, const unsigned char *p, size_t n) {
  if (!os_buf_reserve(out, 4 * ((n + 2) / 3))) return;
  out->len += os_base64_to(out->data + out->len, p, n);
}

static int is_b64(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

int os_base64_decode(os_buf *out, const char *s, size_t n) {
  /* EVP_DecodeBlock would skip whitespace and count padding as data bytes:
   * check the strict form first, then take the padding off its length. */
  if (n % 4 != 0) return 0;
  size_t pad = n > 0 && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
  for (size_t i = 0; i < n - pad; i++)
    if (!is_b64((unsigned char)s[i])) return 0;
  if (!os_buf_reserve(out, n / 4 * 3)) return 0;
  const size_t quads = B64_CHUNK / 3 * 4;
  while (n > 0) {
    size_t chunk = n > quads ? quads : n;
    int w = EVP_DecodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)s,
                            (int)chunk);
    if (w < 0) return 0;
    out->len += (size_t)w;
    s += chunk;
    n -= chunk;
  }
  out->len -= pad;
  return 1;
}

size_t os_dec_to(char *out, int64_t v) {
  char tmp[20];
  size_t n = 0, o = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) out[o++] = '-';
  while (n > 0) out[o++] = tmp[--n];
  out[o] = '\0';
  return o;
}

/* Broken-down UTC time by arithmetic (the days-to-civil algorithm of Howard
 * Hinnant's date library): gmtime_r costs more than a presign's formatting. */
typedef struct {
  int year, mon, mday, hour, min, sec, wday; /* mon 1..12, wday 0 = Sunday */
} utc_time;

static int to_utc(int64_t t, utc_time *u) {
  /* Years 1970..9999 keep every format fixed-width. */
  if (t < 0 || t > 253402300799LL) return 0;
  int64_t days = t / 86400, secs = t % 86400;
  u->hour = (int)(secs / 3600);
  u->min = (int)(secs / 60 % 60);
  u->sec = (int)(secs % 60);
  u->wday = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
  int64_t z = days + 719468;       /* days since 0000-03-01 */
  int64_t era = z / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  u->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
  u->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
  u->year = (int)(yoe + era * 400 + (u->mon <= 2));
  return 1;
}

static void put2(char *o, int v) {
  o[0] = (char)('0' + v / 10);
  o[1] = (char)('0' + v % 10);
}

int os_iso8601_basic(char out[17], int64_t t) {
  utc_time u;
  if (!to_utc(t, &u)) return 0;
  put2(out, u.year / 100);
  put2(out + 2, u.year % 100);
  put2(out + 4, u.mon);
  put2(out + 6, u.mday);
  out[8] = 'T';
  put2(out + 9, u.hour);
  put2(out + 11, u.min);
  put2(out + 13, u.sec);
  out[15] = 'Z';
  out[16] = '\0';
  return 1;
}

int os_http_date(char out[30], int64_t t) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  utc_time u;
  if (!to_utc(t, &u)) return 0;
  /* Not strftime: %a/%b follow the locale, HTTP dates must not. */
  memcpy(out, days + 3 * u.wday, 3);
  memcpy(out + 3, ", ", 2);
  put2(out + 5, u.mday);
  out[7] = ' ';
  memcpy(out + 8, months + 3 * (u.mon - 1), 3);
  out[11] = ' ';
  put2(out + 12, u.year / 100);
  put2(out + 14, u.year % 100);
  out[16] = ' ';
  put2(out + 17, u.hour);
  out[19] = ':';
  put2(out + 20, u.min);
  out[22] = ':';
  put2(out + 23, u.sec);
  memcpy(out + 25, " GMT", 5);
  return 1;
}

size_t os_utf8_decode(const unsigned char *p, size_t avail, unsigned *cp) {
  unsigned c = p[0], v, min;
  size_t len;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    v = c & 0x1F;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    v = c & 0x0F;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    v = c & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (avail < len) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (p[k] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

int os_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e = p + n;
  while (p < e) {
    unsigned cp;
    if (*p < 0x80) {
      p++;
      continue;
    }
    size_t len = os_utf8_decode(p, (size_t)(e - p), &cp);
    if (len == 0) return 0;
    p += len;
  }
  return 1;
}
