#include "os_encode.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char HEXU[] = "0123456789ABCDEF";

int os_uri_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

static void add_pct(os_buf *out, unsigned char c) {
  char e[3] = {'%', HEXU[c >> 4], HEXU[c & 15]};
  os_buf_add(out, e, 3);
}

void os_uri_encode(os_buf *out, const char *s, size_t n, int keep_slash) {
  if (!os_buf_reserve(out, n * 3)) return;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (os_uri_unreserved(c) || (keep_slash && c == '/'))
      out->data[out->len++] = (char)c;
    else
      add_pct(out, c);
  }
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
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int v = pct_at(s, n, i);
    if (v >= 0) {
      /* A decoded byte is data, so a decoded '/' stays encoded. */
      if (os_uri_unreserved((unsigned char)v))
        out->data[out->len++] = (char)v;
      else
        add_pct(out, (unsigned char)v);
      i += 2;
    } else if (c == '/' || os_uri_unreserved(c)) {
      out->data[out->len++] = (char)c;
    } else {
      add_pct(out, c);
    }
  }
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

int os_iso8601_basic(char out[17], int64_t t) {
  struct tm tm;
  if (!to_tm(t, &tm)) return 0;
  return strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 16;
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
