/*
 * Encodings used by signing and by request building: RFC 3986 percent
 * encoding with the S3/OSS rules, hex, base64, and the two date formats.
 */
#ifndef OBJSTORE_OS_ENCODE_H
#define OBJSTORE_OS_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "os_buf.h"

/* RFC 3986 unreserved: A-Z a-z 0-9 - _ . ~ (a table: this is per byte). */
extern const unsigned char os_uri_unreserved_table[256];
static inline int os_uri_unreserved(unsigned char c) {
  return os_uri_unreserved_table[c];
}

/* Percent-encodes every byte that is not unreserved (uppercase hex).
 * With keep_slash, '/' is copied as is (object keys in paths). */
void os_uri_encode(os_buf *out, const char *s, size_t n, int keep_slash);

/* Decodes %XX sequences; a '%' not followed by two hex digits is kept.
 * '+' is left alone (RFC 3986, not form encoding). */
void os_uri_decode(os_buf *out, const char *s, size_t n);

/* Re-encodes an already percent-encoded path canonically: valid %XX are
 * decoded and encoded again, literal '/' kept, everything else encoded.
 * "/a%2fb c" -> "/a%2Fb%20c". */
void os_uri_normalize_path(os_buf *out, const char *s, size_t n);

/* Base64 (standard alphabet, padded). */
void os_base64_encode(os_buf *out, const unsigned char *p, size_t n);
/* Returns 0 on malformed input. */
int os_base64_decode(os_buf *out, const char *s, size_t n);
void os_hex_encode(os_buf *out, const unsigned char *p, size_t n);
/* Returns 0 on odd length or a non-hex digit. */
int os_hex_decode(os_buf *out, const char *s, size_t n);

/* Writes "YYYYMMDDTHHMMSSZ" (17 bytes incl. NUL). Returns 0 if t is out of range. */
int os_iso8601_basic(char out[17], int64_t t);
/* Writes "Sun, 06 Nov 1994 08:49:37 GMT" (30 bytes incl. NUL). */
int os_http_date(char out[30], int64_t t);

/* 1 if [s, s+n) is valid UTF-8 without overlongs/surrogates. */
int os_utf8_valid(const char *s, size_t n);

#endif
