/*
 * AWS Signature Version 4: header and query (presigned) authentication,
 * aws-chunked streaming signatures and browser POST policies.
 * Reference: "Signature Version 4 signing process" and the S3 variants
 * ("Authenticating Requests: Using the Authorization Header", "Using Query
 * Parameters", "Transferring Payload in Multiple Chunks").
 */
#include <stdio.h>
#include <string.h>

#include "os_encode.h"
#include "os_sign_int.h"

#define AWS4_ALG "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
  char datetime[17];
  char date8[9];
  os_str region, service;
  unsigned flags;
} aws4_ctx;

static int aws4_begin(os_signer *s, const os_sign_req *r, aws4_ctx *c) {
  if (!os_sign_datetime(s, r->time, c->datetime)) return 0;
  memcpy(c->date8, c->datetime, 8);
  c->date8[8] = '\0';
  c->region = r->region.n ? r->region : os_buf_str(&s->region);
  c->service = r->service.n ? r->service : os_buf_str(&s->service);
  c->flags = r->flags;
  if (c->region.n == 0) return os_sign_fail(s, "region is required");
  if (c->service.n == 0) return os_sign_fail(s, "service is required");
  return 1;
}

/* Headers that proxies and HTTP stacks add or rewrite must not be signed,
 * and the ones this signer sets itself are replaced. */
static int aws4_header_filter(const os_entry *e, void *ud) {
  static const char *const skip[] = {"authorization", "user-agent", "x-amzn-trace-id",   "expect",
                                     "connection",    "keep-alive", "transfer-encoding", NULL};
  const int *replace_date = ud; /* header mode: our x-amz-date replaces the caller's */
  os_str n = {e->name, e->nlen};
  for (int i = 0; skip[i]; i++)
    if (os_str_eq(n, skip[i])) return 0;
  if (replace_date != NULL && *replace_date && os_str_eq(n, "x-amz-date")) return 0;
  return 1;
}

/* Removes "." and ".." segments and empty segments (RFC 3986 5.2.4 plus
 * the SigV4 rule that "//" collapses), keeping a trailing slash. */
static void remove_dot_segments(os_buf *out, const char *p, size_t n) {
  size_t base = out->len;
  os_buf_addc(out, '/');
  size_t i = 0;
  int trailing = n > 0 && p[n - 1] == '/';
  while (i < n) {
    while (i < n && p[i] == '/') i++;
    size_t j = i;
    while (j < n && p[j] != '/') j++;
    size_t len = j - i;
    if (len == 1 && p[i] == '.') {
      if (j == n) trailing = 1;
    } else if (len == 2 && p[i] == '.' && p[i + 1] == '.') {
      /* Drop the last written segment. */
      if (out->len > base + 1) {
        out->len--; /* the slash after it, if any */
        while (out->len > base + 1 && out->data[out->len - 1] != '/') out->len--;
      }
      if (j == n) trailing = 1;
    } else if (len > 0) {
      os_buf_add(out, p + i, len);
      os_buf_addc(out, '/');
    }
    i = j;
  }
  if (out->len > base + 1 && !trailing) out->len--;
}

static void aws4_canonical_uri(os_signer *s, const os_sign_req *r, unsigned flags, os_buf *out) {
  os_buf *wire = &s->path;
  os_buf_reset(wire);
  os_request_path(r, wire);
  const char *p = wire->data ? wire->data : "/";
  size_t n = wire->len;
  os_buf *norm = &s->sig;
  if (flags & OS_SIGN_NORMALIZE_PATH) {
    os_buf_reset(norm);
    remove_dot_segments(norm, p, n);
    p = norm->data;
    n = norm->len;
  }
  if (n == 0) {
    os_buf_addc(out, '/');
  } else if (flags & OS_SIGN_DOUBLE_ENCODE) {
    os_uri_encode(out, p, n, 1);
  } else {
    os_uri_normalize_path(out, p, n);
  }
}

static void add_entries_canonical_query(os_buf *out, const os_entries *q) {
  for (size_t i = 0; i < q->n; i++) {
    if (i) os_buf_addc(out, '&');
    os_buf_add(out, q->v[i].name, q->v[i].nlen);
    os_buf_addc(out, '=');
    os_buf_add(out, q->v[i].value, q->v[i].vlen);
  }
}

static void add_canonical_headers(os_buf *out, const os_entries *h) {
  for (size_t i = 0; i < h->n; i++) {
    os_buf_add(out, h->v[i].name, h->v[i].nlen);
    os_buf_addc(out, ':');
    os_buf_add(out, h->v[i].value, h->v[i].vlen);
    os_buf_addc(out, '\n');
  }
}

static void add_signed_headers(os_buf *out, const os_entries *h) {
  for (size_t i = 0; i < h->n; i++) {
    if (i) os_buf_addc(out, ';');
    os_buf_add(out, h->v[i].name, h->v[i].nlen);
  }
}

static void add_scope(os_buf *out, const aws4_ctx *c) {
  os_buf_add(out, c->date8, 8);
  os_buf_addc(out, '/');
  os_buf_add(out, c->region.p, c->region.n);
  os_buf_addc(out, '/');
  os_buf_add(out, c->service.p, c->service.n);
  os_buf_adds(out, "/aws4_request");
}

/* string to sign and signature from the canonical request in s->canon. */
static int aws4_finish(os_signer *s, const aws4_ctx *c, os_sign_result *out) {
  unsigned char h[OS_SHA256_LEN], mac[OS_SHA256_LEN];
  if (s->canon.oom) return os_sign_fail(s, "out of memory");
  if (!os_sha256(s, s->canon.data, s->canon.len, h)) return 0;
  os_buf *sts = &s->sts;
  os_buf_reset(sts);
  os_buf_adds(sts, AWS4_ALG "\n");
  os_buf_add(sts, c->datetime, 16);
  os_buf_addc(sts, '\n');
  add_scope(sts, c);
  os_buf_addc(sts, '\n');
  os_buf_addhex(sts, h, sizeof h);
  if (sts->oom) return os_sign_fail(s, "out of memory");
  if (!os_sign_keyed_hmac(s, "AWS4", c->date8, c->region, c->service, "aws4_request", sts->data,
                          sts->len, mac))
    return 0;
  os_buf_reset(&s->sig);
  os_buf_addhex(&s->sig, mac, sizeof mac);
  if (s->sig.oom) return os_sign_fail(s, "out of memory");
  out->canonical_request = os_buf_str(&s->canon);
  out->string_to_sign = os_buf_str(sts);
  out->signature = os_buf_str(&s->sig);
  return 1;
}

static os_str aws4_payload_hash(const os_sign_req *r, int presign, os_str service) {
  os_str v;
  if (r->payload_hash.n) return r->payload_hash;
  if (os_find_header(r, "x-amz-content-sha256", &v)) return v;
  if (presign && os_str_eq(service, "s3")) return os_str_c("UNSIGNED-PAYLOAD");
  return os_str_c(EMPTY_SHA256);
}

int os_sign_aws4_header(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  aws4_ctx c;
  if (!aws4_begin(s, r, &c)) return 0;
  os_str token = os_buf_str(&s->session_token), v;
  int add_date = !(c.flags & OS_SIGN_NO_DATE_HEADER);
  int add_sha =
      (c.flags & OS_SIGN_CONTENT_SHA256) && !os_find_header(r, "x-amz-content-sha256", &v);
  int add_token = token.n > 0 && !os_find_header(r, "x-amz-security-token", &v);
  os_str payload = aws4_payload_hash(r, 0, c.service);

  os_entries *h = &s->hdrs;
  if (!os_collect_headers(s, r, 1, 1, aws4_header_filter, &add_date, h)) return 0;
  if (add_date && !os_entries_push(s, h, os_str_c("x-amz-date"), os_str_c(c.datetime), 1)) return 0;
  if (add_sha && !os_entries_push(s, h, os_str_c("x-amz-content-sha256"), payload, 1)) return 0;
  if (add_token && !(c.flags & OS_SIGN_TOKEN_UNSIGNED) &&
      !os_entries_push(s, h, os_str_c("x-amz-security-token"), token, 1))
    return 0;
  os_entries_fix(s, h);
  os_entries_sort_name(h);

  os_entries *q = &s->params;
  if (!os_parse_query(s, r->query, q)) return 0;
  os_entries_sort_encoded(s, q);
  os_entries_fix(s, h); /* the string buffer may have moved */
  if (s->strings.oom) return os_sign_fail(s, "out of memory");

  os_buf *cr = &s->canon;
  os_buf_reset(cr);
  os_buf_add(cr, r->method.p, r->method.n);
  os_buf_addc(cr, '\n');
  aws4_canonical_uri(s, r, c.flags, cr);
  os_buf_addc(cr, '\n');
  add_entries_canonical_query(cr, q);
  os_buf_addc(cr, '\n');
  add_canonical_headers(cr, h);
  os_buf_addc(cr, '\n');
  size_t signed_off = cr->len;
  add_signed_headers(cr, h);
  size_t signed_len = cr->len - signed_off;
  os_buf_addc(cr, '\n');
  os_buf_add(cr, payload.p, payload.n);
  if (!aws4_finish(s, &c, out)) return 0;

  os_buf *a = &s->auth;
  os_buf_reset(a);
  os_pending_add adds[OS_SIGN_MAX_ADD];
  size_t nadd = 0;
  if (add_date) os_pending_push(a, adds, &nadd, "X-Amz-Date", os_str_c(c.datetime));
  if (add_sha) os_pending_push(a, adds, &nadd, "x-amz-content-sha256", payload);
  if (add_token) os_pending_push(a, adds, &nadd, "X-Amz-Security-Token", token);
  size_t auth_off = a->len;
  os_buf_adds(a, AWS4_ALG " Credential=");
  os_buf_add(a, s->access_key.data, s->access_key.len);
  os_buf_addc(a, '/');
  add_scope(a, &c);
  os_buf_adds(a, ", SignedHeaders=");
  os_buf_add(a, cr->data + signed_off, signed_len);
  os_buf_adds(a, ", Signature=");
  os_buf_add(a, s->sig.data, s->sig.len);
  os_pending_span(adds, &nadd, "Authorization", auth_off, a->len - auth_off);
  if (a->oom) return os_sign_fail(s, "out of memory");
  os_pending_emit(a, adds, nadd, out);
  out->authorization = out->add[nadd - 1].value;
  return 1;
}

int os_sign_aws4_query(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  aws4_ctx c;
  if (!aws4_begin(s, r, &c)) return 0;
  os_str token = os_buf_str(&s->session_token);
  os_str payload = aws4_payload_hash(r, 1, c.service);

  os_entries *h = &s->hdrs;
  if (!os_collect_headers(s, r, 1, 1, aws4_header_filter, NULL, h)) return 0;

  /* Credential and SignedHeaders are built in s->work first. */
  os_buf *w = &s->work;
  os_buf_reset(w);
  os_buf_add(w, s->access_key.data, s->access_key.len);
  os_buf_addc(w, '/');
  add_scope(w, &c);
  size_t cred_len = w->len;
  add_signed_headers(w, h);
  char expires[24];
  snprintf(expires, sizeof expires, "%lld", (long long)r->expires);
  if (w->oom) return os_sign_fail(s, "out of memory");
  os_str cred = {w->data, cred_len}, signed_headers = {w->data + cred_len, w->len - cred_len};

  os_entries *q = &s->params;
  if (!os_parse_query(s, r->query, q)) return 0;
  int ok = os_entries_push(s, q, os_str_c("X-Amz-Algorithm"), os_str_c(AWS4_ALG), 1) &&
           os_entries_push(s, q, os_str_c("X-Amz-Credential"), cred, 1) &&
           os_entries_push(s, q, os_str_c("X-Amz-Date"), os_str_c(c.datetime), 1) &&
           os_entries_push(s, q, os_str_c("X-Amz-Expires"), os_str_c(expires), 1) &&
           os_entries_push(s, q, os_str_c("X-Amz-SignedHeaders"), signed_headers, 1);
  if (ok && token.n && !(c.flags & OS_SIGN_TOKEN_UNSIGNED))
    ok = os_entries_push(s, q, os_str_c("X-Amz-Security-Token"), token, 1);
  if (ok && (c.flags & OS_SIGN_QUERY_SHA256))
    ok = os_entries_push(s, q, os_str_c("X-Amz-Content-Sha256"), payload, 1);
  if (!ok) return 0;
  os_entries_sort_encoded(s, q);
  os_entries_fix(s, h); /* the string buffer may have moved */
  if (s->strings.oom) return os_sign_fail(s, "out of memory");

  os_buf *cr = &s->canon;
  os_buf_reset(cr);
  os_buf_add(cr, r->method.p, r->method.n);
  os_buf_addc(cr, '\n');
  aws4_canonical_uri(s, r, c.flags, cr);
  os_buf_addc(cr, '\n');
  size_t query_off = cr->len;
  add_entries_canonical_query(cr, q);
  size_t query_len = cr->len - query_off;
  os_buf_addc(cr, '\n');
  add_canonical_headers(cr, h);
  os_buf_addc(cr, '\n');
  add_signed_headers(cr, h);
  os_buf_addc(cr, '\n');
  os_buf_add(cr, payload.p, payload.n);
  if (!aws4_finish(s, &c, out)) return 0;

  os_buf *u = &s->url;
  os_buf_reset(u);
  size_t path_off = os_add_url_prefix(s, r, u);
  os_buf_addc(u, '?');
  os_buf_add(u, cr->data + query_off, query_len);
  if (token.n && (c.flags & OS_SIGN_TOKEN_UNSIGNED)) {
    os_buf_adds(u, "&X-Amz-Security-Token=");
    os_uri_encode(u, token.p, token.n, 0);
  }
  os_buf_adds(u, "&X-Amz-Signature=");
  os_buf_add(u, s->sig.data, s->sig.len);
  if (u->oom) return os_sign_fail(s, "out of memory");
  os_finish_urls(out, u, path_off);
  return 1;
}

static int aws4_ctx_at(os_signer *s, int64_t time, os_str region, os_str service, aws4_ctx *c) {
  os_sign_req r;
  memset(&r, 0, sizeof r);
  r.time = time;
  r.region = region;
  r.service = service;
  return aws4_begin(s, &r, c);
}

/* Signs "<alg>\n<datetime>\n<scope>\n<prev>\n<tail>" with the derived key. */
static int aws4_chain(os_signer *s, const aws4_ctx *c, const char *alg, os_str prev, os_str tail,
                      char out_sig[65]) {
  unsigned char mac[OS_SHA256_LEN];
  os_buf *sts = &s->sts;
  os_buf_reset(sts);
  os_buf_adds(sts, alg);
  os_buf_addc(sts, '\n');
  os_buf_add(sts, c->datetime, 16);
  os_buf_addc(sts, '\n');
  add_scope(sts, c);
  os_buf_addc(sts, '\n');
  os_buf_add(sts, prev.p, prev.n);
  os_buf_addc(sts, '\n');
  os_buf_add(sts, tail.p, tail.n);
  if (sts->oom) return os_sign_fail(s, "out of memory");
  if (!os_sign_keyed_hmac(s, "AWS4", c->date8, c->region, c->service, "aws4_request", sts->data,
                          sts->len, mac))
    return 0;
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < OS_SHA256_LEN; i++) {
    out_sig[2 * i] = digits[mac[i] >> 4];
    out_sig[2 * i + 1] = digits[mac[i] & 15];
  }
  out_sig[64] = '\0';
  return 1;
}

int os_sign_aws4_chunk(os_signer *s, int64_t time, os_str region, os_str service, os_str prev_sig,
                       const unsigned char chunk_sha256[32], char out_sig[65]) {
  aws4_ctx c;
  if (!aws4_ctx_at(s, time, region, service, &c)) return 0;
  char tail[64 + 1 + 64 + 1];
  static const char digits[] = "0123456789abcdef";
  memcpy(tail, EMPTY_SHA256 "\n", 65);
  for (int i = 0; i < 32; i++) {
    tail[65 + 2 * i] = digits[chunk_sha256[i] >> 4];
    tail[65 + 2 * i + 1] = digits[chunk_sha256[i] & 15];
  }
  os_str t = {tail, 129};
  return aws4_chain(s, &c, AWS4_ALG "-PAYLOAD", prev_sig, t, out_sig);
}

int os_sign_aws4_trailer(os_signer *s, int64_t time, os_str region, os_str service, os_str prev_sig,
                         const os_kv *trailers, size_t n, char out_sig[65]) {
  aws4_ctx c;
  if (!aws4_ctx_at(s, time, region, service, &c)) return 0;
  os_buf *w = &s->canon;
  os_buf_reset(w);
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < trailers[i].name.n; j++) {
      char ch = trailers[i].name.p[j];
      os_buf_addc(w, (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch);
    }
    os_buf_addc(w, ':');
    os_str v = os_str_trim(trailers[i].value);
    os_buf_add(w, v.p, v.n);
    os_buf_addc(w, '\n');
  }
  unsigned char h[OS_SHA256_LEN];
  if (w->oom) return os_sign_fail(s, "out of memory");
  if (!os_sha256(s, w->data ? w->data : "", w->len, h)) return 0;
  char hex[65];
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[h[i] >> 4];
    hex[2 * i + 1] = digits[h[i] & 15];
  }
  os_str t = {hex, 64};
  return aws4_chain(s, &c, AWS4_ALG "-TRAILER", prev_sig, t, out_sig);
}

int os_sign_aws4_policy(os_signer *s, int64_t time, os_str region, os_str service, os_str policy,
                        os_buf *out) {
  aws4_ctx c;
  unsigned char mac[OS_SHA256_LEN];
  if (!aws4_ctx_at(s, time, region, service, &c)) return 0;
  if (!os_sign_keyed_hmac(s, "AWS4", c.date8, c.region, c.service, "aws4_request", policy.p,
                          policy.n, mac))
    return 0;
  os_buf_addhex(out, mac, sizeof mac);
  return 1;
}
