/*
 * Encodings used by signing and by request building: RFC 3986 percent
 * encoding with the S3/OSS rules, hex, base64, decimal, the two date formats
 * and UTF-8. The one implementation of each in the core; pure C (no Lua).
 */
#ifndef OBJSTORE_OS_ENCODE_H
#define OBJSTORE_OS_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "os_buf.h"

/* Percent-encodes every byte that is not RFC 3986 unreserved (A-Z a-z 0-9
 * - _ . ~), in uppercase hex.
 * With keep_slash, '/' is copied as is (object keys in paths). */
void os_uri_encode(os_buf *out, const char *s, size_t n, int keep_slash);

/* Decodes %XX sequences; a '%' not followed by two hex digits is kept.
 * '+' is left alone (RFC 3986, not form encoding). */
void os_uri_decode(os_buf *out, const char *s, size_t n);

/* Re-encodes already percent-encoded text canonically in one pass, as
 * os_uri_encode(os_uri_decode(s)) would: valid %XX are decoded and encoded
 * again, everything else encoded; with keep_slash a literal '/' stays (a
 * decoded %2F is data and stays encoded). */
void os_uri_normalize(os_buf *out, const char *s, size_t n, int keep_slash);
/* The path form: "/a%2fb c" -> "/a%2Fb%20c". */
static inline void os_uri_normalize_path(os_buf *out, const char *s, size_t n) {
  os_uri_normalize(out, s, n, 1);
}

/* Lowercase hex of n bytes into out, which holds 2n+1 bytes; NUL-terminates
 * and returns 2n. */
size_t os_hex_to(char *out, const unsigned char *p, size_t n);
/* Base64 (standard alphabet, padded) through OpenSSL's EVP_EncodeBlock into
 * out, which holds 4*((n+2)/3)+1 bytes; NUL-terminates and returns the length. */
size_t os_base64_to(char *out, const unsigned char *p, size_t n);
/* The same, appended to a buffer. */
void os_hex_encode(os_buf *out, const unsigned char *p, size_t n);
void os_base64_encode(os_buf *out, const unsigned char *p, size_t n);
/* Strict: length a multiple of 4, padding only at the end, no whitespace.
 * Returns 0 on malformed input. */
int os_base64_decode(os_buf *out, const char *s, size_t n);
/* Returns 0 on odd length or a non-hex digit. */
int os_hex_decode(os_buf *out, const char *s, size_t n);

/* Decimal digits of v into out (at least 21 bytes), NUL-terminated; returns the length. */
size_t os_dec_to(char *out, int64_t v);

/* Writes "YYYYMMDDTHHMMSSZ" (17 bytes incl. NUL). Returns 0 if t is out of range. */
int os_iso8601_basic(char out[17], int64_t t);
/* Writes "Sun, 06 Nov 1994 08:49:37 GMT" (30 bytes incl. NUL). */
int os_http_date(char out[30], int64_t t);

/* Decodes one UTF-8 sequence at p[0..avail): returns its length and sets *cp,
 * or returns 0 when it is malformed, truncated, overlong, a surrogate or
 * above U+10FFFF. avail must be at least 1. */
size_t os_utf8_decode(const unsigned char *p, size_t avail, unsigned *cp);
/* 1 if [s, s+n) is valid UTF-8 in that sense. */
int os_utf8_valid(const char *s, size_t n);

#endif
