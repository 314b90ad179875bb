/*
 * Pieces every signing algorithm shares: crypto over the cached contexts of
 * os_hash.c, the signing-key cache, header and query canonicalisation.
 */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os_encode.h"
#include "os_sign_int.h"

int os_sign_fail(os_signer *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errbuf, sizeof s->errbuf, fmt, ap);
  va_end(ap);
  return 0;
}

/* A failed os_hash call: what failed and OpenSSL's reason. */
static int crypto_fail(os_signer *s, const char *what) {
  char why[160];
  os_hash_error(why, sizeof why);
  return os_sign_fail(s, "%s failed: %s", what, why);
}

/* Case-insensitive (ASCII) comparison with a literal or lowercase name. */
static inline int str_ieq(os_str a, const char *b) {
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

static inline int is_ws(char c) {
  /* One comparison for the common bytes, which are all above ' '. */
  return (unsigned char)c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r');
}

os_str os_str_trim(os_str s) {
  while (s.n > 0 && is_ws(s.p[0])) s.p++, s.n--;
  while (s.n > 0 && is_ws(s.p[s.n - 1])) s.n--;
  return s;
}

int os_signer_init(os_signer *s, os_sign_alg alg) {
  s->alg = alg;
  s->datetime_of = -1;
  if (os_hash_init(&s->sha256, OS_HASH_SHA256) != 0) return crypto_fail(s, "SHA-256 setup");
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

/* "YYYYMMDDTHHMMSSZ" of t, cached per signer. */
static int sign_datetime(os_signer *s, int64_t t, char out[17]) {
  /* Consecutive signatures mostly share their second: format it once; and
   * their day: then only the time of day is written. */
  if (t != s->datetime_of && s->datetime_of >= 0 && t >= 0 && t / 86400 == s->datetime_of / 86400) {
    int sec = (int)(t % 86400), f[3] = {sec / 3600, sec / 60 % 60, sec % 60};
    for (int i = 0; i < 3; i++) {
      s->datetime[9 + 2 * i] = (char)('0' + f[i] / 10);
      s->datetime[10 + 2 * i] = (char)('0' + f[i] % 10);
    }
    s->datetime_of = t;
  }
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

/* Drops every key made from the secret: the derived keys and oss1's. */
static void clear_keys(os_signer *s) {
  for (int i = 0; i < OS_SIGN_KEY_CACHE; i++) os_hash_free(&s->keys[i].mac);
  OPENSSL_cleanse(s->keys, sizeof s->keys);
  os_hash_free(&s->secret_sha1);
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
  os_hash_free(&s->sha256);
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
  size_t len;
  if (os_hash_once(&s->sha256, p, n, out, &len) != 0) return crypto_fail(s, "SHA-256");
  return 1;
}

int os_sign_secret_sha1(os_signer *s, const void *msg, size_t n, unsigned char out[OS_SHA1_LEN]) {
  size_t len;
  if (s->secret_sha1.mac == NULL &&
      os_hash_init_hmac(&s->secret_sha1, OS_HASH_SHA1, s->secret_key.data, s->secret_key.len) != 0)
    return crypto_fail(s, "HMAC-SHA1");
  if (os_hash_once(&s->secret_sha1, msg, n, out, &len) != 0) return crypto_fail(s, "HMAC-SHA1");
  return 1;
}

static int slot_matches(const os_sign_key_slot *k, const char *date8, os_str region,
                        os_str service) {
  return k->used && memcmp(k->date8, date8, 8) == 0 && k->region_len == region.n &&
         k->service_len == service.n && memcmp(k->region, region.p, region.n) == 0 &&
         memcmp(k->service, service.p, service.n) == 0;
}

static int keyed_hmac(os_signer *s, const char *prefix, const char *date8, os_str region,
                      os_str service, const char *terminator, const void *msg, size_t n,
                      unsigned char out[OS_SHA256_LEN]) {
  os_sign_key_slot *slot = NULL;
  size_t len;
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
    /* Each step's key is the previous step's digest (out may alias key). */
    int ok =
        os_hash_hmac(OS_HASH_SHA256, seed->data, seed->len, date8, 8, k, &len) == 0 &&
        os_hash_hmac(OS_HASH_SHA256, k, sizeof k, region.p, region.n, k, &len) == 0 &&
        os_hash_hmac(OS_HASH_SHA256, k, sizeof k, service.p, service.n, k, &len) == 0 &&
        os_hash_hmac(OS_HASH_SHA256, k, sizeof k, terminator, strlen(terminator), k, &len) == 0;
    OPENSSL_cleanse(seed->data, seed->len);
    os_buf_reset(seed);
    slot = &s->keys[s->next_slot++ % OS_SIGN_KEY_CACHE];
    os_hash_free(&slot->mac);
    memset(slot, 0, sizeof *slot);
    if (ok) ok = os_hash_init_hmac(&slot->mac, OS_HASH_SHA256, k, sizeof k) == 0;
    OPENSSL_cleanse(k, sizeof k);
    if (!ok) return crypto_fail(s, "signing key derivation");
    memcpy(slot->date8, date8, 8);
    memcpy(slot->region, region.p, region.n);
    slot->region_len = region.n;
    memcpy(slot->service, service.p, service.n);
    slot->service_len = service.n;
    slot->used = 1;
  }
  if (os_hash_once(&slot->mac, msg, n, out, &len) != 0) return crypto_fail(s, "HMAC-SHA256");
  return 1;
}

int os_scope_init(os_signer *s, os_scope *c, int64_t t, os_str region, os_str service,
                  const char *key_prefix, const char *terminator) {
  if (!sign_datetime(s, t, c->datetime)) return 0;
  memcpy(c->date8, c->datetime, 8);
  c->date8[8] = '\0';
  c->region = region;
  c->service = service;
  c->key_prefix = key_prefix;
  c->terminator = terminator;
  return 1;
}

void os_add_scope(os_buf *b, const os_scope *c) {
  os_buf_add(b, c->date8, 8);
  os_buf_addc(b, '/');
  os_buf_add(b, c->region.p, c->region.n);
  os_buf_addc(b, '/');
  os_buf_add(b, c->service.p, c->service.n);
  os_buf_addc(b, '/');
  os_buf_adds(b, c->terminator);
}

void os_add_credential(os_signer *s, os_buf *b, const os_scope *c) {
  os_buf_add(b, s->access_key.data, s->access_key.len);
  os_buf_addc(b, '/');
  os_add_scope(b, c);
}

void os_add_sts_head(os_buf *b, const char *alg, const os_scope *c) {
  os_buf_adds(b, alg);
  os_buf_addc(b, '\n');
  os_buf_add(b, c->datetime, 16);
  os_buf_addc(b, '\n');
  os_add_scope(b, c);
  os_buf_addc(b, '\n');
}

int os_scope_hmac(os_signer *s, const os_scope *c, const void *msg, size_t n,
                  unsigned char out[OS_SHA256_LEN]) {
  return keyed_hmac(s, c->key_prefix, c->date8, c->region, c->service, c->terminator, msg, n, out);
}

int os_scope_sign(os_signer *s, const os_scope *c, const void *msg, size_t n, os_buf *out) {
  unsigned char mac[OS_SHA256_LEN];
  if (!os_scope_hmac(s, c, msg, n, mac)) return 0;
  os_hex_encode(out, mac, sizeof mac);
  if (out->oom) return os_sign_fail(s, "out of memory");
  return 1;
}

int os_sign_v4_finish(os_signer *s, const os_scope *c, const char *alg, os_sign_result *out) {
  unsigned char h[OS_SHA256_LEN];
  os_buf *sts = &s->sts, *sig = &s->sig;
  if (s->canon.oom) return os_sign_fail(s, "out of memory");
  if (!os_sha256(s, s->canon.data, s->canon.len, h)) return 0;
  os_buf_reset(sts);
  os_add_sts_head(sts, alg, c);
  os_hex_encode(sts, h, sizeof h);
  if (sts->oom) return os_sign_fail(s, "out of memory");
  os_buf_reset(sig);
  if (!os_scope_sign(s, c, sts->data, sts->len, sig)) return 0;
  out->canonical_request = os_buf_str(&s->canon);
  out->string_to_sign = os_buf_str(sts);
  out->signature = os_buf_str(sig);
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
  e->nlen = e->vlen = 0;
  e->has_value = 0;
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

void os_add_lower(os_buf *b, os_str name) {
  if (!os_buf_reserve(b, name.n)) return;
  char *o = b->data + b->len;
  for (size_t j = 0; j < name.n; j++) {
    char c = name.p[j];
    o[j] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
  }
  b->len += name.n;
}

/* Appends a header value trimmed and, with fold, with inner runs of
 * whitespace as one space (SigV4 "Trimall"; OSS only trims). */
static void add_value(os_buf *b, os_str v, int fold) {
  v = os_str_trim(v);
  if (!os_buf_reserve(b, v.n)) return;
  char *o = b->data + b->len;
  if (!fold) {
    memcpy(o, v.p, v.n);
    b->len += v.n;
    return;
  }
  size_t i = 0;
  while (i < v.n) {
    /* A run without whitespace is copied whole; a run of whitespace inside
     * (the ends are trimmed) becomes one space. */
    size_t j = i;
    while (j < v.n && !is_ws(v.p[j])) j++;
    memcpy(o, v.p + i, j - i);
    o += j - i;
    if (j == v.n) break;
    *o++ = ' ';
    while (is_ws(v.p[j])) j++;
    i = j;
  }
  b->len = (size_t)(o - b->data);
}

static int cmp_name_seq(const os_entry *x, const os_entry *y) {
  size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
  int c = memcmp(x->name, y->name, n);
  if (c != 0) return c;
  if (x->nlen != y->nlen) return x->nlen < y->nlen ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_name_value(const os_entry *x, const os_entry *y) {
  size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
  int c = memcmp(x->name, y->name, n);
  if (c != 0) return c;
  if (x->nlen != y->nlen) return x->nlen < y->nlen ? -1 : 1;
  n = x->vlen < y->vlen ? x->vlen : y->vlen;
  c = memcmp(x->value, y->value, n);
  if (c != 0) return c;
  return x->vlen < y->vlen ? -1 : x->vlen > y->vlen;
}

static int qsort_name_seq(const void *a, const void *b) {
  return cmp_name_seq(a, b);
}

static int qsort_name_value(const void *a, const void *b) {
  return cmp_name_value(a, b);
}

/* Requests carry a handful of headers and parameters, where insertion sort
 * beats qsort's setup; stable, so duplicates keep their order. Inline, so
 * each use gets its comparison inlined too. */
static inline void sort_entries(os_entries *l, int (*cmp)(const os_entry *, const os_entry *),
                                int (*qcmp)(const void *, const void *)) {
  if (l->n > 32) {
    qsort(l->v, l->n, sizeof l->v[0], qcmp);
    return;
  }
  for (size_t i = 1; i < l->n; i++) {
    if (cmp(&l->v[i - 1], &l->v[i]) <= 0) continue; /* already in order: the common case */
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
  sort_entries(l, cmp_name_seq, qsort_name_seq);
}

void os_entries_sort_encoded(os_signer *s, os_entries *l) {
  os_entries_fix(s, l);
  sort_entries(l, cmp_name_value, qsort_name_value);
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
    if (str_ieq(name, "host")) have_host = 1;
    os_entry *e = entries_add(s, out);
    if (e == NULL) return 0;
    e->name_off = st->len;
    os_add_lower(st, name);
    e->nlen = name.n;
    if (filter != NULL) {
      /* Filtered on the lowercased name, before its value is copied. */
      if (st->oom) return os_sign_fail(s, "out of memory");
      e->name = st->data + e->name_off;
      if (!filter(e, ud)) {
        st->len = e->name_off;
        out->n--;
        continue;
      }
    }
    e->value_off = st->len;
    add_value(st, value, fold);
    e->vlen = st->len - e->value_off;
  }
  if (add_host && !have_host) {
    os_str host = r->host;
    if (host.n == 0)
      return os_sign_fail(s, "request has no host (give url, host or a Host header)");
    os_entry *e = entries_add(s, out);
    if (e == NULL) return 0;
    e->name_off = st->len;
    os_buf_add(st, "host", 4);
    e->nlen = 4;
    e->value_off = st->len;
    add_value(st, host, 1);
    e->vlen = st->len - e->value_off;
  }
  if (st->oom) return os_sign_fail(s, "out of memory");
  os_entries_fix(s, out);
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
      /* The buffer may have moved: later names are compared through these. */
      os_entries_fix(s, out);
    }
    i = j;
  }
  out->n = k;
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

int os_entries_push_encoded(os_signer *s, os_entries *l, os_str name, os_str value) {
  os_buf *st = &s->strings;
  os_entry *e = entries_add(s, l);
  if (e == NULL) return 0;
  e->name_off = st->len;
  os_buf_add(st, name.p, name.n);
  e->nlen = name.n;
  e->value_off = st->len;
  os_uri_encode(st, value.p, value.n, 0);
  e->vlen = st->len - e->value_off;
  e->has_value = 1;
  if (st->oom) return os_sign_fail(s, "out of memory");
  return 1;
}

int os_parse_query(os_signer *s, os_str q, int canonical, os_entries *out) {
  os_buf *st = &s->strings;
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
      e->name_off = st->len;
      if (canonical)
        os_uri_normalize(st, part, eq, 0);
      else
        os_uri_decode(st, part, eq);
      e->nlen = st->len - e->name_off;
      e->value_off = st->len;
      e->has_value = eq < n;
      if (eq < n) {
        if (canonical)
          os_uri_normalize(st, part + eq + 1, n - eq - 1, 0);
        else
          os_uri_decode(st, part + eq + 1, n - eq - 1);
      }
      e->vlen = st->len - e->value_off;
    }
    i = j + 1;
  }
  if (st->oom) return os_sign_fail(s, "out of memory");
  return 1;
}

int os_find_header(const os_sign_req *r, const char *lname, os_str *value) {
  for (size_t i = 0; i < r->nheaders; i++) {
    if (str_ieq(r->headers[i].name, lname)) {
      *value = os_str_trim(r->headers[i].value);
      return 1;
    }
  }
  return 0;
}

/* Host: Host header, else r->host. */
static os_str request_host(const os_sign_req *r) {
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

int os_pending_finish(os_signer *s, os_buf *b, os_pending_add *list, size_t n, size_t auth_off,
                      os_sign_result *out) {
  list[n].name = "Authorization";
  list[n].off = auth_off;
  list[n].len = b->len - auth_off;
  n++;
  if (b->oom) return os_sign_fail(s, "out of memory");
  for (size_t i = 0; i < n; i++) {
    out->add[i].name = os_str_c(list[i].name);
    out->add[i].value.p = b->data + list[i].off;
    out->add[i].value.n = list[i].len;
  }
  out->nadd = n;
  out->authorization = out->add[n - 1].value;
  return 1;
}

void os_add_canonical_headers(os_buf *out, const os_entries *h) {
  for (size_t i = 0; i < h->n; i++) {
    os_buf_add(out, h->v[i].name, h->v[i].nlen);
    os_buf_addc(out, ':');
    os_buf_add(out, h->v[i].value, h->v[i].vlen);
    os_buf_addc(out, '\n');
  }
}

/* Appends scheme://host (when the host is known) and the wire path,
 * canonically encoded (given, or built here); returns where the path starts. */
size_t os_add_url_prefix(os_signer *s, const os_sign_req *r, os_str path, os_buf *u) {
  os_str host = request_host(r);
  if (host.n) {
    if (r->scheme.n)
      os_buf_add(u, r->scheme.p, r->scheme.n);
    else
      os_buf_adds(u, "https");
    os_buf_adds(u, "://");
    os_buf_add(u, host.p, host.n);
  }
  size_t path_off = u->len;
  if (path.n) {
    os_buf_add(u, path.p, path.n);
    return path_off;
  }
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

static const os_sign_ops *const algorithms[] = {
    [OS_ALG_AWS4] = &os_sign_aws4_ops,
    [OS_ALG_OSS1] = &os_sign_oss1_ops,
    [OS_ALG_OSS4] = &os_sign_oss4_ops,
};

static const os_sign_ops *ops_of(os_signer *s) {
  if ((unsigned)s->alg >= sizeof algorithms / sizeof algorithms[0]) {
    os_sign_fail(s, "unknown algorithm");
    return NULL;
  }
  return algorithms[s->alg];
}

int os_sign_header(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  const os_sign_ops *ops = ops_of(s);
  memset(out, 0, sizeof *out);
  os_buf_reset(&s->strings);
  return ops != NULL && ops->header(s, r, out);
}

int os_sign_query(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  const os_sign_ops *ops = ops_of(s);
  memset(out, 0, sizeof *out);
  os_buf_reset(&s->strings);
  if (ops == NULL) return 0;
  if (r->expires <= 0 || r->expires > OS_SIGN_MAX_EXPIRES)
    return os_sign_fail(s, "expires must be between 1 and %d seconds (7 days), got %lld",
                        OS_SIGN_MAX_EXPIRES, (long long)r->expires);
  return ops->query(s, r, out);
}

int os_sign_policy(os_signer *s, int64_t time, os_str region, os_str service, os_str policy_b64,
                   os_buf *out) {
  const os_sign_ops *ops = ops_of(s);
  os_buf_reset(out);
  return ops != NULL && ops->policy(s, time, region, service, policy_b64, out);
}
