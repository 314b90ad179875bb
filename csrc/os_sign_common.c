/*
 * Pieces every signing algorithm shares: crypto over cached OpenSSL
 * contexts, the signing-key cache, header and query canonicalisation.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os_encode.h"
#include "os_sign_int.h"

static EVP_MD *md_sha256, *md_sha1;
static EVP_MAC *mac_hmac;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Fetching an algorithm is a locked lookup in OpenSSL 3; do it once. */
static void fetch_algorithms(void) {
  md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
  mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

int os_sign_fail(os_signer *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errbuf, sizeof s->errbuf, fmt, ap);
  va_end(ap);
  return 0;
}

int os_str_ieq(os_str a, const char *b) {
  size_t n = strlen(b);
  if (a.n != n) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
    if (x != y) return 0;
  }
  return 1;
}

int os_str_eq(os_str a, const char *b) {
  size_t n = strlen(b);
  return a.n == n && memcmp(a.p, b, n) == 0;
}

os_str os_str_c(const char *s) {
  os_str r = {s, strlen(s)};
  return r;
}

os_str os_buf_str(const os_buf *b) {
  os_str r = {b->data ? b->data : "", b->len};
  return r;
}

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

os_str os_str_trim(os_str s) {
  while (s.n > 0 && is_ws(s.p[0])) s.p++, s.n--;
  while (s.n > 0 && is_ws(s.p[s.n - 1])) s.n--;
  return s;
}

int os_signer_init(os_signer *s, os_sign_alg alg) {
  pthread_once(&fetch_once, fetch_algorithms);
  if (md_sha256 == NULL || md_sha1 == NULL || mac_hmac == NULL)
    return os_sign_fail(s, "OpenSSL has no SHA256/SHA1/HMAC");
  s->alg = alg;
  s->datetime_of = -1;
  s->md_ctx = EVP_MD_CTX_new();
  s->mac_sha256 = EVP_MAC_CTX_new(mac_hmac);
  s->mac_sha1 = EVP_MAC_CTX_new(mac_hmac);
  if (s->md_ctx == NULL || s->mac_sha256 == NULL || s->mac_sha1 == NULL)
    return os_sign_fail(s, "out of memory");
  /* The digest is set once here: naming it on every init would fetch it. */
  OSSL_PARAM p256[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                       OSSL_PARAM_construct_end()};
  OSSL_PARAM p1[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
                     OSSL_PARAM_construct_end()};
  if (!EVP_MAC_CTX_set_params(s->mac_sha256, p256) || !EVP_MAC_CTX_set_params(s->mac_sha1, p1))
    return os_sign_fail(s, "OpenSSL refused the HMAC digest");
  return 1;
}

static void os_entries_free(os_entries *l) {
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

/* Secrets are wiped, not just freed: freed heap pages end up in core dumps. */
static void wipe_buf(os_buf *b) {
  if (b->data) OPENSSL_cleanse(b->data, b->cap);
  os_buf_free(b);
}

int os_sign_datetime(os_signer *s, int64_t t, char out[17]) {
  /* Consecutive signatures mostly share their second: format it once. */
  if (t != s->datetime_of) {
    if (!os_iso8601_basic(s->datetime, t)) {
      s->datetime_of = -1;
      return os_sign_fail(s, "time must be epoch seconds between 1970 and 9999");
    }
    s->datetime_of = t;
  }
  memcpy(out, s->datetime, 17);
  return 1;
}

static void clear_keys(os_signer *s) {
  for (int i = 0; i < OS_SIGN_KEY_CACHE; i++) EVP_MAC_CTX_free(s->keys[i].mac);
  OPENSSL_cleanse(s->keys, sizeof s->keys);
}

void os_signer_free(os_signer *s) {
  wipe_buf(&s->secret_key);
  wipe_buf(&s->session_token);
  os_buf_free(&s->access_key);
  os_buf_free(&s->region);
  os_buf_free(&s->service);
  os_buf_free(&s->canon);
  os_buf_free(&s->sts);
  os_buf_free(&s->auth);
  os_buf_free(&s->url);
  os_buf_free(&s->work);
  os_buf_free(&s->sig);
  os_buf_free(&s->path);
  os_buf_free(&s->strings);
  os_entries_free(&s->hdrs);
  os_entries_free(&s->params);
  clear_keys(s);
  EVP_MD_CTX_free(s->md_ctx);
  EVP_MAC_CTX_free(s->mac_sha256);
  EVP_MAC_CTX_free(s->mac_sha1);
  s->md_ctx = s->mac_sha256 = s->mac_sha1 = NULL;
}

int os_signer_set_credentials(os_signer *s, const char *ak, size_t akn, const char *sk, size_t skn,
                              const char *token, size_t tokenn) {
  os_buf_reset(&s->access_key);
  wipe_buf(&s->secret_key);
  wipe_buf(&s->session_token);
  os_buf_add(&s->access_key, ak, akn);
  os_buf_add(&s->secret_key, sk, skn);
  if (token != NULL) os_buf_add(&s->session_token, token, tokenn);
  clear_keys(s);
  if (s->access_key.oom || s->secret_key.oom || s->session_token.oom)
    return os_sign_fail(s, "out of memory");
  return 1;
}

int os_sha256(os_signer *s, const void *p, size_t n, unsigned char out[OS_SHA256_LEN]) {
  EVP_MD_CTX *ctx = s->md_ctx;
  unsigned int len = 0;
  if (!EVP_DigestInit_ex(ctx, md_sha256, NULL) || !EVP_DigestUpdate(ctx, p, n) ||
      !EVP_DigestFinal_ex(ctx, out, &len))
    return os_sign_fail(s, "SHA-256 failed");
  return 1;
}

int os_hmac(os_signer *s, int sha1, const void *key, size_t keylen, const void *msg, size_t n,
            unsigned char *out) {
  EVP_MAC_CTX *ctx = sha1 ? s->mac_sha1 : s->mac_sha256;
  size_t len = 0;
  if (!EVP_MAC_init(ctx, key, keylen, NULL) || !EVP_MAC_update(ctx, msg, n) ||
      !EVP_MAC_final(ctx, out, &len, sha1 ? OS_SHA1_LEN : OS_SHA256_LEN))
    return os_sign_fail(s, "HMAC failed");
  return 1;
}

static int slot_matches(const os_sign_key_slot *k, const char *date8, os_str region,
                        os_str service) {
  return k->used && memcmp(k->date8, date8, 8) == 0 && k->region_len == region.n &&
         k->service_len == service.n && memcmp(k->region, region.p, region.n) == 0 &&
         memcmp(k->service, service.p, service.n) == 0;
}

int os_sign_keyed_hmac(os_signer *s, const char *prefix, const char *date8, os_str region,
                       os_str service, const char *terminator, const void *msg, size_t n,
                       unsigned char out[OS_SHA256_LEN]) {
  os_sign_key_slot *slot = NULL;
  if (region.n >= sizeof slot->region || service.n >= sizeof slot->service)
    return os_sign_fail(s, "region or service is longer than 63 bytes");
  for (int i = 0; i < OS_SIGN_KEY_CACHE && slot == NULL; i++)
    if (slot_matches(&s->keys[i], date8, region, service)) slot = &s->keys[i];
  if (slot == NULL) {
    unsigned char k[OS_SHA256_LEN];
    os_buf *seed = &s->work;
    os_buf_reset(seed);
    os_buf_adds(seed, prefix);
    os_buf_add(seed, s->secret_key.data, s->secret_key.len);
    if (seed->oom) return os_sign_fail(s, "out of memory");
    int ok = os_hmac(s, 0, seed->data, seed->len, date8, 8, k) &&
             os_hmac(s, 0, k, sizeof k, region.p, region.n, k) &&
             os_hmac(s, 0, k, sizeof k, service.p, service.n, k) &&
             os_hmac(s, 0, k, sizeof k, terminator, strlen(terminator), k);
    OPENSSL_cleanse(seed->data, seed->len);
    os_buf_reset(seed);
    if (!ok) return 0;
    slot = &s->keys[s->next_slot++ % OS_SIGN_KEY_CACHE];
    EVP_MAC_CTX_free(slot->mac);
    memset(slot, 0, sizeof *slot);
    slot->mac = EVP_MAC_CTX_dup(s->mac_sha256);
    if (slot->mac == NULL || !EVP_MAC_init(slot->mac, k, sizeof k, NULL)) {
      OPENSSL_cleanse(k, sizeof k);
      return os_sign_fail(s, "HMAC failed");
    }
    memcpy(slot->date8, date8, 8);
    memcpy(slot->region, region.p, region.n);
    slot->region_len = region.n;
    memcpy(slot->service, service.p, service.n);
    slot->service_len = service.n;
    OPENSSL_cleanse(k, sizeof k);
    slot->used = 1;
  } else if (!EVP_MAC_init(slot->mac, NULL, 0, NULL)) {
    /* NULL key: restart with the key already scheduled in this context. */
    return os_sign_fail(s, "HMAC failed");
  }
  size_t len = 0;
  if (!EVP_MAC_update(slot->mac, msg, n) || !EVP_MAC_final(slot->mac, out, &len, OS_SHA256_LEN))
    return os_sign_fail(s, "HMAC failed");
  return 1;
}

static os_entry *entries_add(os_signer *s, os_entries *l) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    os_entry *v = realloc(l->v, cap * sizeof *v);
    if (v == NULL) {
      os_sign_fail(s, "out of memory");
      return NULL;
    }
    l->v = v;
    l->cap = cap;
  }
  os_entry *e = &l->v[l->n];
  memset(e, 0, sizeof *e);
  e->seq = l->n++;
  return e;
}

void os_entries_fix(os_signer *s, os_entries *l) {
  const char *base = s->strings.data;
  for (size_t i = 0; i < l->n; i++) {
    l->v[i].name = base + l->v[i].name_off;
    l->v[i].value = base + l->v[i].value_off;
  }
}

/* Appends a header value with runs of whitespace folded to one space
 * (SigV4 "Trimall"; OSS trims only the ends, which this also does). */
static void add_folded(os_buf *b, os_str v) {
  v = os_str_trim(v);
  int in_ws = 0;
  for (size_t i = 0; i < v.n; i++) {
    if (is_ws(v.p[i])) {
      in_ws = 1;
      continue;
    }
    if (in_ws) os_buf_addc(b, ' ');
    in_ws = 0;
    os_buf_addc(b, v.p[i]);
  }
}

static int cmp_name_seq(const void *a, const void *b) {
  const os_entry *x = a, *y = b;
  size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
  int c = memcmp(x->name, y->name, n);
  if (c != 0) return c;
  if (x->nlen != y->nlen) return x->nlen < y->nlen ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Insertion sort: requests carry a handful of headers and parameters, where
 * it beats qsort's setup; stable, so duplicates keep their order. */
static void sort_entries(os_entries *l, int (*cmp)(const void *, const void *)) {
  for (size_t i = 1; i < l->n; i++) {
    os_entry e = l->v[i];
    size_t j = i;
    while (j > 0 && cmp(&l->v[j - 1], &e) > 0) {
      l->v[j] = l->v[j - 1];
      j--;
    }
    l->v[j] = e;
  }
}

void os_entries_sort_name(os_entries *l) {
  if (l->n > 32)
    qsort(l->v, l->n, sizeof l->v[0], cmp_name_seq);
  else
    sort_entries(l, cmp_name_seq);
}

int os_collect_headers(os_signer *s, const os_sign_req *r, int add_host, int fold,
                       os_header_filter filter, void *ud, os_entries *out) {
  os_buf *st = &s->strings;
  out->n = 0;
  if (r->nheaders > OS_SIGN_MAX_HEADERS)
    return os_sign_fail(s, "too many headers (%zu, at most %d)", r->nheaders, OS_SIGN_MAX_HEADERS);
  int have_host = 0;
  for (size_t i = 0; i < r->nheaders; i++) {
    os_str name = r->headers[i].name, value = r->headers[i].value;
    if (value.n > OS_SIGN_MAX_FIELD)
      return os_sign_fail(s, "header '%.*s' is longer than %u bytes",
                          (int)(name.n > 64 ? 64 : name.n), name.p, OS_SIGN_MAX_FIELD);
    os_entry *e = entries_add(s, out);
    if (e == NULL) return 0;
    e->name_off = st->len;
    for (size_t j = 0; j < name.n; j++) {
      char c = name.p[j];
      os_buf_addc(st, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
    }
    e->nlen = name.n;
    e->value_off = st->len;
    if (fold) {
      add_folded(st, value);
    } else {
      os_str t = os_str_trim(value);
      os_buf_add(st, t.p, t.n);
    }
    e->vlen = st->len - e->value_off;
    if (os_str_ieq(name, "host")) have_host = 1;
  }
  if (add_host && !have_host) {
    os_str host = r->host;
    if (host.n == 0)
      return os_sign_fail(s, "request has no host (give url, host or a Host header)");
    os_entry *e = entries_add(s, out);
    if (e == NULL) return 0;
    e->name_off = st->len;
    os_buf_adds(st, "host");
    e->nlen = 4;
    e->value_off = st->len;
    add_folded(st, host);
    e->vlen = st->len - e->value_off;
  }
  if (st->oom) return os_sign_fail(s, "out of memory");
  os_entries_fix(s, out);
  if (filter != NULL) {
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++)
      if (filter(&out->v[i], ud)) out->v[k++] = out->v[i];
    out->n = k;
  }
  os_entries_sort_name(out);
  /* Merge duplicates in input order: "a:1", "a:2" -> "a:1,2". The merged
   * value is rebuilt in the string buffer, which may move: offsets first. */
  size_t k = 0;
  for (size_t i = 0; i < out->n; k++) {
    size_t j = i + 1;
    while (j < out->n && out->v[j].nlen == out->v[i].nlen &&
           memcmp(out->v[j].name, out->v[i].name, out->v[i].nlen) == 0)
      j++;
    out->v[k] = out->v[i];
    if (j > i + 1) {
      size_t total = j - i;
      for (size_t m = i; m < j; m++) total += out->v[m].vlen;
      /* Reserve first: the copies read from the buffer they append to. */
      if (!os_buf_reserve(st, total)) return os_sign_fail(s, "out of memory");
      size_t off = st->len;
      for (size_t m = i; m < j; m++) {
        if (m > i) os_buf_addc(st, ',');
        os_buf_add(st, st->data + out->v[m].value_off, out->v[m].vlen);
      }
      out->v[k].value_off = off;
      out->v[k].vlen = st->len - off;
      if (st->oom) return os_sign_fail(s, "out of memory");
    }
    i = j;
  }
  out->n = k;
  os_entries_fix(s, out);
  return 1;
}

int os_entries_push(os_signer *s, os_entries *l, os_str name, os_str value, int has_value) {
  os_entry *e = entries_add(s, l);
  if (e == NULL) return 0;
  e->name_off = s->strings.len;
  os_buf_add(&s->strings, name.p, name.n);
  e->nlen = name.n;
  e->value_off = s->strings.len;
  os_buf_add(&s->strings, value.p, value.n);
  e->vlen = value.n;
  e->has_value = has_value;
  if (s->strings.oom) return os_sign_fail(s, "out of memory");
  return 1;
}

int os_parse_query(os_signer *s, os_str q, os_entries *out) {
  out->n = 0;
  if (q.n > OS_SIGN_MAX_FIELD)
    return os_sign_fail(s, "query is longer than %u bytes", OS_SIGN_MAX_FIELD);
  size_t i = 0;
  while (i < q.n) {
    size_t j = i;
    while (j < q.n && q.p[j] != '&') j++;
    if (j > i) {
      const char *part = q.p + i;
      size_t n = j - i, eq = 0;
      while (eq < n && part[eq] != '=') eq++;
      os_entry *e = entries_add(s, out);
      if (e == NULL) return 0;
      e->name_off = s->strings.len;
      os_uri_decode(&s->strings, part, eq);
      e->nlen = s->strings.len - e->name_off;
      e->value_off = s->strings.len;
      e->has_value = eq < n;
      if (eq < n) os_uri_decode(&s->strings, part + eq + 1, n - eq - 1);
      e->vlen = s->strings.len - e->value_off;
    }
    i = j + 1;
  }
  if (s->strings.oom) return os_sign_fail(s, "out of memory");
  return 1;
}

/* Sorting by the encoded forms: the names and values are replaced by their
 * RFC 3986 encodings, which is also what the canonical query prints. */
static int cmp_name_value(const void *a, const void *b) {
  const os_entry *x = a, *y = b;
  size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
  int c = memcmp(x->name, y->name, n);
  if (c != 0) return c;
  if (x->nlen != y->nlen) return x->nlen < y->nlen ? -1 : 1;
  n = x->vlen < y->vlen ? x->vlen : y->vlen;
  c = memcmp(x->value, y->value, n);
  if (c != 0) return c;
  return x->vlen < y->vlen ? -1 : x->vlen > y->vlen;
}

void os_entries_sort_encoded(os_signer *s, os_entries *l) {
  os_buf *st = &s->strings;
  for (size_t i = 0; i < l->n; i++) {
    os_entry *e = &l->v[i];
    /* Reserve first: the encoder reads from the buffer it appends to. */
    if (!os_buf_reserve(st, 3 * (e->nlen + e->vlen))) return;
    size_t off = st->len;
    os_uri_encode(st, st->data + e->name_off, e->nlen, 0);
    e->nlen = st->len - off;
    e->name_off = off;
    off = st->len;
    os_uri_encode(st, st->data + e->value_off, e->vlen, 0);
    e->vlen = st->len - off;
    e->value_off = off;
  }
  os_entries_fix(s, l);
  if (l->n > 32)
    qsort(l->v, l->n, sizeof l->v[0], cmp_name_value);
  else
    sort_entries(l, cmp_name_value);
}

int os_find_header(const os_sign_req *r, const char *lname, os_str *value) {
  for (size_t i = 0; i < r->nheaders; i++) {
    if (os_str_ieq(r->headers[i].name, lname)) {
      *value = os_str_trim(r->headers[i].value);
      return 1;
    }
  }
  return 0;
}

os_str os_request_host(const os_sign_req *r) {
  os_str h;
  if (os_find_header(r, "host", &h)) return h;
  return r->host;
}

void os_request_path(const os_sign_req *r, os_buf *out) {
  if (r->path.n > 0) {
    os_buf_add(out, r->path.p, r->path.n);
    return;
  }
  os_buf_addc(out, '/');
  if (r->path_style && r->bucket.n > 0) {
    os_uri_encode(out, r->bucket.p, r->bucket.n, 0);
    os_buf_addc(out, '/');
  }
  if (r->has_key) os_uri_encode(out, r->key.p, r->key.n, 1);
}

os_str os_request_key(os_signer *s, const os_sign_req *r, int *has_key) {
  if (r->has_key) {
    *has_key = 1;
    return r->key;
  }
  /* No explicit key: take it from the wire path, minus a path-style bucket. */
  os_str p = r->path;
  if (p.n > 0 && p.p[0] == '/') p.p++, p.n--;
  if (r->path_style && r->bucket.n > 0) {
    size_t i = 0;
    while (i < p.n && p.p[i] != '/') i++;
    p.p += i < p.n ? i + 1 : i;
    p.n -= i < p.n ? i + 1 : i;
  }
  os_buf *w = &s->work;
  os_buf_reset(w);
  os_uri_decode(w, p.p, p.n);
  *has_key = w->len > 0;
  return os_buf_str(w);
}

/* Header values the signer adds are written to s->auth; views are made at
 * the end because the buffer may move while it grows. */
void os_pending_push(os_buf *b, os_pending_add *list, size_t *n, const char *name, os_str v) {
  list[*n].name = name;
  list[*n].off = b->len;
  os_buf_add(b, v.p, v.n);
  list[*n].len = v.n;
  (*n)++;
}

void os_pending_span(os_pending_add *list, size_t *n, const char *name, size_t off, size_t len) {
  list[*n].name = name;
  list[*n].off = off;
  list[*n].len = len;
  (*n)++;
}

void os_pending_emit(os_buf *b, const os_pending_add *list, size_t n, os_sign_result *out) {
  for (size_t i = 0; i < n; i++) {
    out->add[i].name = os_str_c(list[i].name);
    out->add[i].value.p = b->data + list[i].off;
    out->add[i].value.n = list[i].len;
  }
  out->nadd = n;
}

/* Appends scheme://host (when the host is known) and the wire path,
 * canonically encoded; returns where the path starts. */
size_t os_add_url_prefix(os_signer *s, const os_sign_req *r, os_buf *u) {
  os_str host = os_request_host(r);
  if (host.n) {
    if (r->scheme.n)
      os_buf_add(u, r->scheme.p, r->scheme.n);
    else
      os_buf_adds(u, "https");
    os_buf_adds(u, "://");
    os_buf_add(u, host.p, host.n);
  }
  size_t path_off = u->len;
  os_buf *wire = &s->path;
  os_buf_reset(wire);
  os_request_path(r, wire);
  os_uri_normalize_path(u, wire->data ? wire->data : "/", wire->len ? wire->len : 1);
  return path_off;
}

void os_finish_urls(os_sign_result *out, os_buf *u, size_t path_off) {
  out->url.p = u->data;
  out->url.n = u->len;
  out->path_and_query.p = u->data + path_off;
  out->path_and_query.n = u->len - path_off;
}

int os_sign_header(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  memset(out, 0, sizeof *out);
  os_buf_reset(&s->strings);
  switch (s->alg) {
    case OS_ALG_AWS4:
      return os_sign_aws4_header(s, r, out);
    case OS_ALG_OSS1:
      return os_sign_oss1_header(s, r, out);
    case OS_ALG_OSS4:
      return os_sign_oss4_header(s, r, out);
  }
  return os_sign_fail(s, "unknown algorithm");
}

int os_sign_query(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  memset(out, 0, sizeof *out);
  os_buf_reset(&s->strings);
  if (r->expires <= 0 || r->expires > OS_SIGN_MAX_EXPIRES)
    return os_sign_fail(s, "expires must be between 1 and %d seconds (7 days), got %lld",
                        OS_SIGN_MAX_EXPIRES, (long long)r->expires);
  switch (s->alg) {
    case OS_ALG_AWS4:
      return os_sign_aws4_query(s, r, out);
    case OS_ALG_OSS1:
      return os_sign_oss1_query(s, r, out);
    case OS_ALG_OSS4:
      return os_sign_oss4_query(s, r, out);
  }
  return os_sign_fail(s, "unknown algorithm");
}
