#include "os_encode.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char HEXU[] = "0123456789ABCDEF";

#define U1(c) [c] = 1
const unsigned char os_uri_unreserved_table[256] = {
    U1('-'), U1('.'), U1('_'), U1('~'), U1('0'), U1('1'), U1('2'), U1('3'), U1('4'), U1('5'),
    U1('6'), U1('7'), U1('8'), U1('9'), U1('A'), U1('B'), U1('C'), U1('D'), U1('E'), U1('F'),
    U1('G'), U1('H'), U1('I'), U1('J'), U1('K'), U1('L'), U1('M'), U1('N'), U1('O'), U1('P'),
    U1('Q'), U1('R'), U1('S'), U1('T'), U1('U'), U1('V'), U1('W'), U1('X'), U1('Y'), U1('Z'),
    U1('a'), U1('b'), U1('c'), U1('d'), U1('e'), U1('f'), U1('g'), U1('h'), U1('i'), U1('j'),
    U1('k'), U1('l'), U1('m'), U1('n'), U1('o'), U1('p'), U1('q'), U1('r'), U1('s'), U1('t'),
    U1('u'), U1('v'), U1('w'), U1('x'), U1('y'), U1('z'),
};
#undef U1

/* Writers below keep the output position in a local: a store through a
 * char pointer may alias out->len, which would be reloaded every byte. */
static inline char *put_pct(char *o, unsigned char c) {
  o[0] = '%';
  o[1] = HEXU[c >> 4];
  o[2] = HEXU[c & 15];
  return o + 3;
}

void os_uri_encode(os_buf *out, const char *s, size_t n, int keep_slash) {
  if (!os_buf_reserve(out, n * 3)) return;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (os_uri_unreserved(c) || (keep_slash && c == '/'))
      *o++ = (char)c;
    else
      o = put_pct(o, c);
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
  for (size_t i = 0; i < n; i++) {
    int v = pct_at(s, n, i);
    if (v >= 0) {
      out->data[out->len++] = (char)v;
      i += 2;
    } else {
      out->data[out->len++] = s[i];
    }
  }
}

void os_uri_normalize_path(os_buf *out, const char *s, size_t n) {
  if (!os_buf_reserve(out, n * 3)) return;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int v = pct_at(s, n, i);
    if (v >= 0) {
      /* A decoded byte is data, so a decoded '/' stays encoded. */
      if (os_uri_unreserved((unsigned char)v))
        *o++ = (char)v;
      else
        o = put_pct(o, (unsigned char)v);
      i += 2;
    } else if (c == '/' || os_uri_unreserved(c)) {
      *o++ = (char)c;
    } else {
      o = put_pct(o, c);
    }
  }
  out->len = (size_t)(o - out->data);
}

void os_base64_encode(os_buf *out, const unsigned char *p, size_t n) {
  size_t need = 4 * ((n + 2) / 3);
  if (!os_buf_reserve(out, need + 1)) return;
  /* EVP_EncodeBlock takes an int length; chunk on 3-byte boundaries. */
  while (n > 0) {
    size_t chunk = n > 3 * (1u << 28) ? 3 * (1u << 28) : n;
    int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, p, (int)chunk);
    out->len += (size_t)w;
    p += chunk;
    n -= chunk;
  }
}

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int os_base64_decode(os_buf *out, const char *s, size_t n) {
  /* Strict: length a multiple of 4, padding only at the end. EVP_DecodeBlock
   * would accept whitespace and not report the padding, so decode here. */
  if (n % 4 != 0) return 0;
  if (!os_buf_reserve(out, n / 4 * 3)) return 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int j = 0; j < 4; j++) {
      unsigned char c = (unsigned char)s[i + (size_t)j];
      if (c == '=' && i + 4 == n && j >= 2) {
        v[j] = 0;
        pad++;
      } else {
        if (pad) return 0;
        v[j] = b64val(c);
        if (v[j] < 0) return 0;
      }
    }
    unsigned long w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                      ((unsigned long)v[2] << 6) | (unsigned long)v[3];
    out->data[out->len++] = (char)(w >> 16);
    if (pad < 2) out->data[out->len++] = (char)((w >> 8) & 255);
    if (pad < 1) out->data[out->len++] = (char)(w & 255);
  }
  return 1;
}

void os_hex_encode(os_buf *out, const unsigned char *p, size_t n) {
  os_buf_addhex(out, p, n);
}

int os_hex_decode(os_buf *out, const char *s, size_t n) {
  if (n % 2 != 0) return 0;
  if (!os_buf_reserve(out, n / 2)) return 0;
  for (size_t i = 0; i < n; i += 2) {
    int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out->data[out->len++] = (char)(hi * 16 + lo);
  }
  return 1;
}

static int to_tm(int64_t t, struct tm *tm) {
  /* Years 1970..9999 keep every format fixed-width. */
  if (t < 0 || t > 253402300799LL) return 0;
  time_t tt = (time_t)t;
  return gmtime_r(&tt, tm) != NULL;
}

static void put2(char *o, int v) {
  o[0] = (char)('0' + v / 10);
  o[1] = (char)('0' + v % 10);
}

int os_iso8601_basic(char out[17], int64_t t) {
  struct tm tm;
  if (!to_tm(t, &tm)) return 0;
  /* By hand: strftime costs more than the rest of a presign's formatting. */
  int y = tm.tm_year + 1900;
  put2(out, y / 100);
  put2(out + 2, y % 100);
  put2(out + 4, tm.tm_mon + 1);
  put2(out + 6, tm.tm_mday);
  out[8] = 'T';
  put2(out + 9, tm.tm_hour);
  put2(out + 11, tm.tm_min);
  put2(out + 13, tm.tm_sec);
  out[15] = 'Z';
  out[16] = '\0';
  return 1;
}

int os_http_date(char out[30], int64_t t) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm;
  if (!to_tm(t, &tm)) return 0;
  /* Not strftime: %a/%b follow the locale, HTTP dates must not. */
  int w = snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                   months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return w == 29;
}

int os_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e = p + n;
  while (p < e) {
    unsigned char c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t len;
    unsigned long cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if ((size_t)(e - p) < len) return 0;
    for (size_t i = 1; i < len; i++) {
      if ((p[i] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    p += len;
  }
  return 1;
}
