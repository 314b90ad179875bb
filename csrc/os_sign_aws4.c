/*
 * AWS Signature Version 4: header and query (presigned) authentication,
 * aws-chunked streaming signatures and browser POST policies.
 * Reference: "Signature Version 4 signing process" and the S3 variants
 * ("Authenticating Requests: Using the Authorization Header", "Using Query
 * Parameters", "Transferring Payload in Multiple Chunks").
 */
#include <string.h>

#include "os_encode.h"
#include "os_sign_int.h"

#define AWS4_ALG "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The scope at time t; empty region and service are the signer's. */
static int aws4_scope(os_signer *s, int64_t t, os_str region, os_str service, os_scope *c) {
  if (region.n == 0) region = os_buf_str(&s->region);
  if (service.n == 0) service = os_buf_str(&s->service);
  if (!os_scope_init(s, c, t, region, service, "AWS4", "aws4_request")) return 0;
  if (region.n == 0) return os_sign_fail(s, "region is required");
  if (service.n == 0) return os_sign_fail(s, "service is required");
  return 1;
}

/* Headers that proxies and HTTP stacks add or rewrite must not be signed,
 * and the ones this signer sets itself are replaced. */
static int aws4_header_filter(const os_entry *e, void *ud) {
#define S(lit) \
  { lit, sizeof lit - 1 }
  static const os_str skip[] = {S("authorization"),    S("user-agent"), S("x-amzn-trace-id"),
                                S("expect"),           S("connection"), S("keep-alive"),
                                S("transfer-encoding")};
#undef S
  const int *replace_date = ud; /* header mode: our x-amz-date replaces the caller's */
  os_str n = {e->name, e->nlen};
  for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
    if (n.n == skip[i].n && memcmp(n.p, skip[i].p, n.n) == 0) return 0;
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

/* Appends the canonical URI. Without NORMALIZE_PATH and DOUBLE_ENCODE it is
 * the wire path in its canonical encoding, which is also what a presigned
 * URL carries: then 1 is returned and the URL reuses it. */
static int aws4_canonical_uri(os_signer *s, const os_sign_req *r, unsigned flags, os_buf *out) {
  if (!(flags & (OS_SIGN_NORMALIZE_PATH | OS_SIGN_DOUBLE_ENCODE))) {
    if (r->path.n > 0)
      os_uri_normalize_path(out, r->path.p, r->path.n);
    else
      os_request_path(r, out); /* built from bucket and key: encoded canonically already */
    return 1;
  }
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
  return 0;
}

/* Starts the canonical request in cr: method and canonical URI, each on its
 * line. The URI's place goes to *uri_off and *uri_len (offsets: cr may still
 * move); returns aws4_canonical_uri's answer. */
static int aws4_canonical_start(os_signer *s, const os_sign_req *r, unsigned flags, os_buf *cr,
                                size_t *uri_off, size_t *uri_len) {
  os_buf_reset(cr);
  os_buf_add(cr, r->method.p, r->method.n);
  os_buf_addc(cr, '\n');
  *uri_off = cr->len;
  int is_path = aws4_canonical_uri(s, r, flags, cr);
  *uri_len = cr->len - *uri_off;
  os_buf_addc(cr, '\n');
  return is_path;
}

static void add_entries_canonical_query(os_buf *out, const os_entries *q) {
  for (size_t i = 0; i < q->n; i++) {
    if (i) os_buf_addc(out, '&');
    os_buf_add(out, q->v[i].name, q->v[i].nlen);
    os_buf_addc(out, '=');
    os_buf_add(out, q->v[i].value, q->v[i].vlen);
  }
}

static void add_signed_headers(os_buf *out, const os_entries *h) {
  for (size_t i = 0; i < h->n; i++) {
    if (i) os_buf_addc(out, ';');
    os_buf_add(out, h->v[i].name, h->v[i].nlen);
  }
}

/* A query parameter a presigned URL gets; encode: its value needs percent-encoding. */
typedef struct {
  const char *name;
  os_str value;
  int encode;
} aws4_param;

static os_str aws4_payload_hash(const os_sign_req *r, int presign, os_str service) {
  os_str v;
  if (r->payload_hash.n) return r->payload_hash;
  if (os_find_header(r, "x-amz-content-sha256", &v)) return v;
  if (presign && os_str_eq(service, "s3")) return os_str_c("UNSIGNED-PAYLOAD");
  return os_str_c(EMPTY_SHA256);
}

static int aws4_header(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  os_scope c;
  unsigned flags = r->flags;
  if (!aws4_scope(s, r->time, r->region, r->service, &c)) return 0;
  os_str token = os_buf_str(&s->session_token), v;
  int add_date = !(flags & OS_SIGN_NO_DATE_HEADER);
  int add_sha = (flags & OS_SIGN_CONTENT_SHA256) && !os_find_header(r, "x-amz-content-sha256", &v);
  int add_token = token.n > 0 && !os_find_header(r, "x-amz-security-token", &v);
  os_str payload = aws4_payload_hash(r, 0, c.service);

  os_entries *h = &s->hdrs;
  os_header_filter filter = (flags & OS_SIGN_ALL_HEADERS) ? NULL : aws4_header_filter;
  if (!os_collect_headers(s, r, 1, 1, filter, &add_date, h)) return 0;
  if (add_date && !os_entries_push(s, h, os_str_c("x-amz-date"), os_str_c(c.datetime), 1)) return 0;
  if (add_sha && !os_entries_push(s, h, os_str_c("x-amz-content-sha256"), payload, 1)) return 0;
  if (add_token && !(flags & OS_SIGN_TOKEN_UNSIGNED) &&
      !os_entries_push(s, h, os_str_c("x-amz-security-token"), token, 1))
    return 0;
  os_entries_fix(s, h);
  os_entries_sort_name(h);

  os_entries *q = &s->params;
  if (!os_parse_query(s, r->query, 1, q)) return 0;
  os_entries_sort_encoded(s, q);
  os_entries_fix(s, h); /* the string buffer may have moved */
  if (s->strings.oom) return os_sign_fail(s, "out of memory");

  os_buf *cr = &s->canon;
  size_t uri_off, uri_len;
  aws4_canonical_start(s, r, flags, cr, &uri_off, &uri_len);
  add_entries_canonical_query(cr, q);
  os_buf_addc(cr, '\n');
  os_add_canonical_headers(cr, h);
  os_buf_addc(cr, '\n');
  size_t signed_off = cr->len;
  add_signed_headers(cr, h);
  size_t signed_len = cr->len - signed_off;
  os_buf_addc(cr, '\n');
  os_buf_add(cr, payload.p, payload.n);
  if (!os_sign_v4_finish(s, &c, AWS4_ALG, out)) return 0;

  os_buf *a = &s->auth;
  os_buf_reset(a);
  os_pending_add adds[OS_SIGN_MAX_ADD];
  size_t nadd = 0;
  if (add_date) os_pending_push(a, adds, &nadd, "X-Amz-Date", os_str_c(c.datetime));
  if (add_sha) os_pending_push(a, adds, &nadd, "x-amz-content-sha256", payload);
  if (add_token) os_pending_push(a, adds, &nadd, "X-Amz-Security-Token", token);
  size_t auth_off = a->len;
  os_buf_adds(a, AWS4_ALG " Credential=");
  os_add_credential(s, a, &c);
  os_buf_adds(a, ", SignedHeaders=");
  os_buf_add(a, cr->data + signed_off, signed_len);
  os_buf_adds(a, ", Signature=");
  os_buf_add(a, s->sig.data, s->sig.len);
  return os_pending_finish(s, a, adds, nadd, auth_off, out);
}

static int aws4_query(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  os_scope c;
  unsigned flags = r->flags;
  if (!aws4_scope(s, r->time, r->region, r->service, &c)) return 0;
  os_str token = os_buf_str(&s->session_token);
  os_str payload = aws4_payload_hash(r, 1, c.service);

  os_entries *h = &s->hdrs;
  os_header_filter filter = (flags & OS_SIGN_ALL_HEADERS) ? NULL : aws4_header_filter;
  if (!os_collect_headers(s, r, 1, 1, filter, NULL, h)) return 0;

  /* Credential and SignedHeaders are built in s->work first. */
  os_buf *w = &s->work;
  os_buf_reset(w);
  os_add_credential(s, w, &c);
  size_t cred_len = w->len;
  add_signed_headers(w, h);
  char expires[24];
  os_str exp = {expires, os_dec_to(expires, r->expires)};
  if (w->oom) return os_sign_fail(s, "out of memory");
  os_str cred = {w->data, cred_len}, signed_headers = {w->data + cred_len, w->len - cred_len};

  /* The parameters the URL gets, in their sorted order. Names, algorithm,
   * date and expiry are unreserved characters only: their own encoding. */
  aws4_param ps[7];
  size_t np = 0;
  ps[np++] = (aws4_param){"X-Amz-Algorithm", os_str_c(AWS4_ALG), 0};
  if (flags & OS_SIGN_QUERY_SHA256) ps[np++] = (aws4_param){"X-Amz-Content-Sha256", payload, 1};
  ps[np++] = (aws4_param){"X-Amz-Credential", cred, 1};
  ps[np++] = (aws4_param){"X-Amz-Date", {c.datetime, 16}, 0};
  ps[np++] = (aws4_param){"X-Amz-Expires", exp, 0};
  if (token.n && !(flags & OS_SIGN_TOKEN_UNSIGNED))
    ps[np++] = (aws4_param){"X-Amz-Security-Token", token, 1};
  ps[np++] = (aws4_param){"X-Amz-SignedHeaders", signed_headers, 1};

  /* With a caller query, all go through one sorted list; without (the
   * common case) they are written as they are, already in order. */
  os_entries *q = &s->params;
  if (!os_parse_query(s, r->query, 1, q)) return 0;
  int merge = q->n > 0;
  if (merge) {
    for (size_t i = 0; i < np; i++) {
      os_str name = os_str_c(ps[i].name);
      if (!(ps[i].encode ? os_entries_push_encoded(s, q, name, ps[i].value)
                         : os_entries_push(s, q, name, ps[i].value, 1)))
        return 0;
    }
    os_entries_sort_encoded(s, q);
    os_entries_fix(s, h); /* the string buffer may have moved */
    if (s->strings.oom) return os_sign_fail(s, "out of memory");
  }

  os_buf *cr = &s->canon;
  size_t uri_off, uri_len;
  int uri_is_path = aws4_canonical_start(s, r, flags, cr, &uri_off, &uri_len);
  size_t query_off = cr->len;
  if (merge) {
    add_entries_canonical_query(cr, q);
  } else {
    for (size_t i = 0; i < np; i++) {
      if (i) os_buf_addc(cr, '&');
      os_buf_adds(cr, ps[i].name);
      os_buf_addc(cr, '=');
      if (ps[i].encode)
        os_uri_encode(cr, ps[i].value.p, ps[i].value.n, 0);
      else
        os_buf_add(cr, ps[i].value.p, ps[i].value.n);
    }
  }
  size_t query_len = cr->len - query_off;
  os_buf_addc(cr, '\n');
  os_add_canonical_headers(cr, h);
  os_buf_addc(cr, '\n');
  add_signed_headers(cr, h);
  os_buf_addc(cr, '\n');
  os_buf_add(cr, payload.p, payload.n);
  if (!os_sign_v4_finish(s, &c, AWS4_ALG, out)) return 0;

  os_buf *u = &s->url;
  os_buf_reset(u);
  os_str path = {NULL, 0};
  if (uri_is_path) path = (os_str){cr->data + uri_off, uri_len};
  size_t path_off = os_add_url_prefix(s, r, path, u);
  os_buf_addc(u, '?');
  os_buf_add(u, cr->data + query_off, query_len);
  if (token.n && (flags & OS_SIGN_TOKEN_UNSIGNED)) {
    os_buf_adds(u, "&X-Amz-Security-Token=");
    os_uri_encode(u, token.p, token.n, 0);
  }
  os_buf_adds(u, "&X-Amz-Signature=");
  os_buf_add(u, s->sig.data, s->sig.len);
  if (u->oom) return os_sign_fail(s, "out of memory");
  os_finish_urls(out, u, path_off);
  return 1;
}

/* Signs "<alg>\n<datetime>\n<scope>\n<prev>\n<tail>" with the derived key. */
static int aws4_chain(os_signer *s, const os_scope *c, const char *alg, os_str prev, os_str tail,
                      char out_sig[65]) {
  unsigned char mac[OS_SHA256_LEN];
  os_buf *sts = &s->sts;
  os_buf_reset(sts);
  os_add_sts_head(sts, alg, c);
  os_buf_add(sts, prev.p, prev.n);
  os_buf_addc(sts, '\n');
  os_buf_add(sts, tail.p, tail.n);
  if (sts->oom) return os_sign_fail(s, "out of memory");
  if (!os_scope_hmac(s, c, sts->data, sts->len, mac)) return 0;
  os_hex_to(out_sig, mac, sizeof mac);
  return 1;
}

int os_sign_aws4_chunk(os_signer *s, int64_t time, os_str region, os_str service, os_str prev_sig,
                       const unsigned char chunk_sha256[32], char out_sig[65]) {
  os_scope c;
  if (!aws4_scope(s, time, region, service, &c)) return 0;
  char tail[64 + 1 + 64 + 1];
  memcpy(tail, EMPTY_SHA256 "\n", 65);
  os_str t = {tail, 65 + os_hex_to(tail + 65, chunk_sha256, 32)};
  return aws4_chain(s, &c, AWS4_ALG "-PAYLOAD", prev_sig, t, out_sig);
}

int os_sign_aws4_trailer(os_signer *s, int64_t time, os_str region, os_str service, os_str prev_sig,
                         const os_kv *trailers, size_t n, char out_sig[65]) {
  os_scope c;
  if (!aws4_scope(s, time, region, service, &c)) return 0;
  os_buf *w = &s->canon;
  os_buf_reset(w);
  for (size_t i = 0; i < n; i++) {
    os_add_lower(w, trailers[i].name);
    os_buf_addc(w, ':');
    os_str v = os_str_trim(trailers[i].value);
    os_buf_add(w, v.p, v.n);
    os_buf_addc(w, '\n');
  }
  unsigned char h[OS_SHA256_LEN];
  if (w->oom) return os_sign_fail(s, "out of memory");
  if (!os_sha256(s, w->data ? w->data : "", w->len, h)) return 0;
  char hex[65];
  os_str t = {hex, os_hex_to(hex, h, sizeof h)};
  return aws4_chain(s, &c, AWS4_ALG "-TRAILER", prev_sig, t, out_sig);
}

static int aws4_policy(os_signer *s, int64_t time, os_str region, os_str service, os_str policy,
                       os_buf *out) {
  os_scope c;
  return aws4_scope(s, time, region, service, &c) && os_scope_sign(s, &c, policy.p, policy.n, out);
}

const os_sign_ops os_sign_aws4_ops = {aws4_header, aws4_query, aws4_policy};
