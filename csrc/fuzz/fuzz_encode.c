/*
 * libFuzzer target: the encodings of os_encode.c. Properties (abort() on a
 * violation):
 *   - os_uri_decode(os_uri_encode(x)) == x, with and without keep_slash
 *     (for every byte string, so for every valid UTF-8 key in particular);
 *   - os_uri_encode writes only unreserved bytes, '/' (keep_slash) and %XX;
 *   - os_uri_normalize(s) == os_uri_encode(os_uri_decode(s)) (keep_slash
 *     only when s holds no encoded '/'), and normalising is idempotent;
 *   - hex and base64 round-trip; the strict decoders never crash;
 *   - os_utf8_valid agrees with stepping os_utf8_decode;
 *   - os_dec_to matches snprintf; the date formatters never crash.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../os_encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const os_buf *a, const char *p, size_t n) {
  if (a->oom) return;
  if (a->len != n || (n && memcmp(a->data, p, n) != 0)) abort();
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

static int is_uhex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void check_encoded(const os_buf *e, int keep_slash) {
  for (size_t i = 0; i < e->len; i++) {
    unsigned char c = (unsigned char)e->data[i];
    if (unreserved(c) || (keep_slash && c == '/')) continue;
    if (c != '%' || i + 2 >= e->len || !is_uhex((unsigned char)e->data[i + 1]) ||
        !is_uhex((unsigned char)e->data[i + 2]))
      abort();
    i += 2;
  }
}

static int has_encoded_slash(const char *s, size_t n) {
  for (size_t i = 0; i + 2 < n; i++) {
    if (s[i] == '%' && s[i + 1] == '2' && (s[i + 2] == 'f' || s[i + 2] == 'F')) return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  os_buf e = {0}, d = {0}, nrm = {0}, n2 = {0};

  for (int ks = 0; ks <= 1; ks++) {
    os_buf_reset(&e);
    os_buf_reset(&d);
    os_uri_encode(&e, s, size, ks);
    check_encoded(&e, ks);
    os_uri_decode(&d, e.data ? e.data : "", e.len);
    same(&d, s, size);

    /* normalize == encode(decode(s)) */
    os_buf_reset(&e);
    os_buf_reset(&d);
    os_buf_reset(&nrm);
    os_buf_reset(&n2);
    os_uri_decode(&d, s, size);
    if (d.len > size) abort(); /* decoding never grows */
    os_uri_encode(&e, d.data ? d.data : "", d.len, ks);
    os_uri_normalize(&nrm, s, size, ks);
    check_encoded(&nrm, ks);
    if (!ks || !has_encoded_slash(s, size)) same(&nrm, e.data, e.len);
    os_uri_normalize(&n2, nrm.data ? nrm.data : "", nrm.len, ks);
    same(&n2, nrm.data, nrm.len);
  }

  /* hex and base64 */
  os_buf_reset(&e);
  os_buf_reset(&d);
  os_hex_encode(&e, data, size);
  if (!e.oom && e.len != 2 * size) abort();
  if (!os_hex_decode(&d, e.data ? e.data : "", e.len) && !d.oom) abort();
  same(&d, s, size);
  os_buf_reset(&e);
  os_buf_reset(&d);
  os_base64_encode(&e, data, size);
  if (!e.oom && e.len != 4 * ((size + 2) / 3)) abort();
  if (!os_base64_decode(&d, e.data ? e.data : "", e.len) && !d.oom) abort();
  same(&d, s, size);
  os_buf_reset(&d);
  (void)os_base64_decode(&d, s, size);
  os_buf_reset(&d);
  (void)os_hex_decode(&d, s, size);

  /* UTF-8 */
  int valid = 1;
  for (size_t i = 0; i < size;) {
    unsigned cp;
    size_t k = os_utf8_decode(data + i, size - i, &cp);
    if (k == 0) {
      valid = 0;
      break;
    }
    if (k > size - i || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) abort();
    i += k;
  }
  if (valid != os_utf8_valid(s, size)) abort();

  /* numbers and dates */
  if (size >= 8) {
    int64_t v;
    memcpy(&v, data, 8);
    char dec[32], ref[32], iso[17], http[30];
    size_t dl = os_dec_to(dec, v);
    int rl = snprintf(ref, sizeof ref, "%" PRId64, v);
    if (rl < 0 || dl != (size_t)rl || strcmp(dec, ref) != 0) abort();
    (void)os_iso8601_basic(iso, v);
    (void)os_http_date(http, v);
  }

  os_buf_free(&e);
  os_buf_free(&d);
  os_buf_free(&nrm);
  os_buf_free(&n2);
  return 0;
}
