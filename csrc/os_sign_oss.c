/*
 * Alibaba Cloud OSS signatures: V1 (HMAC-SHA1, "OSS ak:sig", URL
 * Expires/OSSAccessKeyId/Signature) and V4 (OSS4-HMAC-SHA256 with
 * x-oss-additional-headers). Rules follow the OSS API reference and the
 * signers of Alibaba's Go and Python SDK v2.
 */
#include <string.h>

#include "os_encode.h"
#include "os_sign_int.h"

#define OSS4_ALG "OSS4-HMAC-SHA256"

/* Query parameters that V1 signs as sub-resources (sorted, for bsearch). */
static const char *const oss1_sub_resources[] = {
    "acl",
    "append",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "endTime",
    "img",
    "inventory",
    "inventoryId",
    "lifecycle",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "qos",
    "qosInfo",
    "referer",
    "regionList",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "requestPayment",
    "resourceGroup",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "startTime",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "transferAcceleration",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "vod",
    "website",
    "worm",
    "wormExtend",
    "wormId",
    "x-oss-ac-forward-allow",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-async-process",
    "x-oss-process",
    "x-oss-request-payer",
    "x-oss-traffic-limit",
};

static int oss1_is_sub_resource(const os_sign_req *r, const char *name, size_t n) {
  os_str k = {name, n};
  if (n >= 6 && memcmp(name, "x-oss-", 6) == 0) return 1;
  for (size_t i = 0; i < sizeof oss1_sub_resources / sizeof oss1_sub_resources[0]; i++)
    if (os_str_eq(k, oss1_sub_resources[i])) return 1;
  for (size_t i = 0; i < r->nsub_resources; i++)
    if (r->sub_resources[i].n == n && memcmp(r->sub_resources[i].p, name, n) == 0) return 1;
  return 0;
}

static int is_oss_header(const os_entry *e, void *ud) {
  (void)ud;
  return e->nlen >= 6 && memcmp(e->name, "x-oss-", 6) == 0;
}

/* "/bucket/key", "/bucket/" or "/"; raw key for V1, encoded for V4. */
static void add_resource_path(os_signer *s, const os_sign_req *r, os_buf *out, int encode) {
  if (r->bucket.n == 0) {
    os_buf_addc(out, '/');
    return;
  }
  int has_key = 0;
  os_str key = os_request_key(s, r, &has_key);
  os_buf_addc(out, '/');
  if (encode) {
    os_uri_encode(out, r->bucket.p, r->bucket.n, 0);
    os_buf_addc(out, '/');
    if (has_key) os_uri_encode(out, key.p, key.n, 1);
  } else {
    os_buf_add(out, r->bucket.p, r->bucket.n);
    os_buf_addc(out, '/');
    if (has_key) os_buf_add(out, key.p, key.n);
  }
}

static int validate_key(os_signer *s, const os_sign_req *r) {
  if (r->has_key && r->key.n > OS_SIGN_MAX_KEY)
    return os_sign_fail(s, "key is longer than %d bytes", OS_SIGN_MAX_KEY);
  return 1;
}

/* StringToSign = VERB\nContent-MD5\nContent-Type\n<date>\n<x-oss headers><resource> */
static int oss1_sign(os_signer *s, const os_sign_req *r, os_str date, const os_entries *q,
                     const os_entries *h) {
  os_buf *st = &s->sts;
  os_str md5 = {"", 0}, type = {"", 0};
  os_find_header(r, "content-md5", &md5);
  os_find_header(r, "content-type", &type);
  os_buf_reset(st);
  os_buf_add(st, r->method.p, r->method.n);
  os_buf_addc(st, '\n');
  os_buf_add(st, md5.p, md5.n);
  os_buf_addc(st, '\n');
  os_buf_add(st, type.p, type.n);
  os_buf_addc(st, '\n');
  os_buf_add(st, date.p, date.n);
  os_buf_addc(st, '\n');
  os_add_canonical_headers(st, h);
  add_resource_path(s, r, st, 0);
  char sep = '?';
  for (size_t i = 0; i < q->n; i++) {
    if (!oss1_is_sub_resource(r, q->v[i].name, q->v[i].nlen)) continue;
    os_buf_addc(st, sep);
    sep = '&';
    os_buf_add(st, q->v[i].name, q->v[i].nlen);
    if (q->v[i].vlen) {
      os_buf_addc(st, '=');
      os_buf_add(st, q->v[i].value, q->v[i].vlen);
    }
  }
  if (st->oom) return os_sign_fail(s, "out of memory");
  unsigned char mac[OS_SHA1_LEN];
  if (!os_sign_secret_sha1(s, st->data, st->len, mac)) return 0;
  os_buf_reset(&s->sig);
  os_base64_encode(&s->sig, mac, sizeof mac);
  if (s->sig.oom) return os_sign_fail(s, "out of memory");
  return 1;
}

/* Sub-resources sort by their decoded names, as the SDKs do. */
static void oss1_sort_params(os_entries *q) {
  os_entries_sort_name(q);
}

static int oss1_header(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  if (!validate_key(s, r)) return 0;
  os_str token = os_buf_str(&s->session_token), v, date;
  int add_token = token.n > 0 && !os_find_header(r, "x-oss-security-token", &v);
  char http_date[30];
  int add_date = 0;
  if (!os_find_header(r, "x-oss-date", &date) && !os_find_header(r, "date", &date)) {
    if (!os_http_date(http_date, r->time))
      return os_sign_fail(s, "time must be epoch seconds between 1970 and 9999");
    date = os_str_c(http_date);
    add_date = !(r->flags & OS_SIGN_NO_DATE_HEADER);
  }
  os_entries *h = &s->hdrs, *q = &s->params;
  if (!os_collect_headers(s, r, 0, 0, is_oss_header, NULL, h)) return 0;
  if (add_token && !os_entries_push(s, h, os_str_c("x-oss-security-token"), token, 1)) return 0;
  if (!os_parse_query(s, r->query, 0, q)) return 0;
  os_entries_fix(s, h);
  os_entries_fix(s, q);
  os_entries_sort_name(h);
  oss1_sort_params(q);
  if (!oss1_sign(s, r, date, q, h)) return 0;

  os_buf *a = &s->auth;
  os_buf_reset(a);
  os_pending_add adds[OS_SIGN_MAX_ADD];
  size_t nadd = 0;
  if (add_date) os_pending_push(a, adds, &nadd, "Date", date);
  if (add_token) os_pending_push(a, adds, &nadd, "x-oss-security-token", token);
  size_t off = a->len;
  os_buf_adds(a, "OSS ");
  os_buf_add(a, s->access_key.data, s->access_key.len);
  os_buf_addc(a, ':');
  os_buf_add(a, s->sig.data, s->sig.len);
  if (!os_pending_finish(s, a, adds, nadd, off, out)) return 0;
  out->string_to_sign = os_buf_str(&s->sts);
  out->signature = os_buf_str(&s->sig);
  return 1;
}

/* Appends the caller's query as given, then our parameters. */
static void add_query_start(os_buf *u, const os_sign_req *r) {
  os_buf_addc(u, '?');
  if (r->query.n) {
    os_buf_add(u, r->query.p, r->query.n);
    os_buf_addc(u, '&');
  }
}

static int oss1_query(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  if (!validate_key(s, r)) return 0;
  os_str token = os_buf_str(&s->session_token);
  char expires[24];
  os_dec_to(expires, r->time + r->expires);
  os_entries *h = &s->hdrs, *q = &s->params;
  if (!os_collect_headers(s, r, 0, 0, is_oss_header, NULL, h)) return 0;
  if (!os_parse_query(s, r->query, 0, q)) return 0;
  /* The token is a sub-resource of URL signatures (unlike header auth). */
  if (token.n && !os_entries_push(s, q, os_str_c("security-token"), token, 1)) return 0;
  os_entries_fix(s, h);
  os_entries_fix(s, q);
  os_entries_sort_name(h);
  oss1_sort_params(q);
  if (!oss1_sign(s, r, os_str_c(expires), q, h)) return 0;

  os_buf *u = &s->url;
  os_buf_reset(u);
  size_t path_off = os_add_url_prefix(s, r, (os_str){NULL, 0}, u);
  add_query_start(u, r);
  os_buf_adds(u, "OSSAccessKeyId=");
  os_uri_encode(u, s->access_key.data, s->access_key.len, 0);
  os_buf_adds(u, "&Expires=");
  os_buf_adds(u, expires);
  os_buf_adds(u, "&Signature=");
  os_uri_encode(u, s->sig.data, s->sig.len, 0);
  if (token.n) {
    os_buf_adds(u, "&security-token=");
    os_uri_encode(u, token.p, token.n, 0);
  }
  if (u->oom) return os_sign_fail(s, "out of memory");
  os_finish_urls(out, u, path_off);
  out->string_to_sign = os_buf_str(&s->sts);
  out->signature = os_buf_str(&s->sig);
  return 1;
}

/* ---- V4 ---- */

typedef struct {
  const os_sign_req *r;
} oss4_filter_ud;

static int oss4_default_signed(const char *name, size_t n) {
  os_str k = {name, n};
  return (n >= 6 && memcmp(name, "x-oss-", 6) == 0) || os_str_eq(k, "content-type") ||
         os_str_eq(k, "content-md5");
}

static int oss4_is_additional(const os_sign_req *r, const char *name, size_t n) {
  for (size_t i = 0; i < r->nadditional_headers; i++)
    if (r->additional_headers[i].n == n) {
      os_str a = r->additional_headers[i];
      size_t j = 0;
      for (; j < n; j++) {
        char c = a.p[j];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != name[j]) break;
      }
      if (j == n) return 1;
    }
  return 0;
}

static int oss4_header_filter(const os_entry *e, void *ud) {
  const oss4_filter_ud *f = ud;
  return oss4_default_signed(e->name, e->nlen) || oss4_is_additional(f->r, e->name, e->nlen);
}

/* The scope at time t; empty region and product (service) are the signer's. */
static int oss4_scope(os_signer *s, int64_t t, os_str region, os_str product, os_scope *c) {
  if (region.n == 0) region = os_buf_str(&s->region);
  if (product.n == 0) product = os_buf_str(&s->service);
  if (product.n == 0) product = os_str_c("oss");
  if (!os_scope_init(s, c, t, region, product, "aliyun_v4", "aliyun_v4_request")) return 0;
  if (region.n == 0) return os_sign_fail(s, "region is required for OSS V4");
  return 1;
}

static int oss4_begin(os_signer *s, const os_sign_req *r, os_scope *c) {
  return validate_key(s, r) && oss4_scope(s, r->time, r->region, r->service, c);
}

/* The additional-headers list: names signed only because the caller asked,
 * present on the request, lowercased, sorted, unique. Written to out. */
static void oss4_additional_list(const os_entries *h, os_buf *out) {
  /* h is sorted and merged, so walking it yields sorted unique names. */
  int first = 1;
  for (size_t i = 0; i < h->n; i++) {
    if (oss4_default_signed(h->v[i].name, h->v[i].nlen)) continue;
    if (!first) os_buf_addc(out, ';');
    first = 0;
    os_buf_add(out, h->v[i].name, h->v[i].nlen);
  }
}

static int oss4_finish(os_signer *s, const os_sign_req *r, const os_scope *c, const os_entries *q,
                       const os_entries *h, os_str additional, os_sign_result *out) {
  os_str payload;
  if (!os_find_header(r, "x-oss-content-sha256", &payload)) payload = os_str_c("UNSIGNED-PAYLOAD");
  os_buf *cr = &s->canon;
  os_buf_reset(cr);
  os_buf_add(cr, r->method.p, r->method.n);
  os_buf_addc(cr, '\n');
  add_resource_path(s, r, cr, 1);
  os_buf_addc(cr, '\n');
  for (size_t i = 0; i < q->n; i++) {
    if (i) os_buf_addc(cr, '&');
    os_buf_add(cr, q->v[i].name, q->v[i].nlen);
    if (q->v[i].vlen) {
      os_buf_addc(cr, '=');
      os_buf_add(cr, q->v[i].value, q->v[i].vlen);
    }
  }
  os_buf_addc(cr, '\n');
  os_add_canonical_headers(cr, h);
  os_buf_addc(cr, '\n');
  os_buf_add(cr, additional.p, additional.n);
  os_buf_addc(cr, '\n');
  os_buf_add(cr, payload.p, payload.n);
  return os_sign_v4_finish(s, c, OSS4_ALG, out);
}

static int oss4_header(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  os_scope c;
  if (!oss4_begin(s, r, &c)) return 0;
  os_str token = os_buf_str(&s->session_token), v;
  int add_sha = !os_find_header(r, "x-oss-content-sha256", &v);
  int add_token = token.n > 0 && !os_find_header(r, "x-oss-security-token", &v);
  oss4_filter_ud f = {r};
  os_entries *h = &s->hdrs, *q = &s->params;
  if (!os_collect_headers(s, r, 0, 0, oss4_header_filter, &f, h)) return 0;
  /* Our x-oss-date replaces any the caller set. */
  size_t k = 0;
  for (size_t i = 0; i < h->n; i++)
    if (!os_str_eq((os_str){h->v[i].name, h->v[i].nlen}, "x-oss-date")) h->v[k++] = h->v[i];
  h->n = k;
  if (!os_entries_push(s, h, os_str_c("x-oss-date"), os_str_c(c.datetime), 1)) return 0;
  if (add_sha &&
      !os_entries_push(s, h, os_str_c("x-oss-content-sha256"), os_str_c("UNSIGNED-PAYLOAD"), 1))
    return 0;
  if (add_token && !os_entries_push(s, h, os_str_c("x-oss-security-token"), token, 1)) return 0;
  if (!os_parse_query(s, r->query, 1, q)) return 0;
  os_entries_sort_encoded(s, q);
  os_entries_fix(s, h);
  os_entries_sort_name(h);
  if (s->strings.oom) return os_sign_fail(s, "out of memory");

  os_buf *a = &s->auth;
  os_buf_reset(a);
  os_pending_add adds[OS_SIGN_MAX_ADD];
  size_t nadd = 0;
  os_pending_push(a, adds, &nadd, "x-oss-date", os_str_c(c.datetime));
  if (add_sha)
    os_pending_push(a, adds, &nadd, "x-oss-content-sha256", os_str_c("UNSIGNED-PAYLOAD"));
  if (add_token) os_pending_push(a, adds, &nadd, "x-oss-security-token", token);
  size_t add_off = a->len;
  oss4_additional_list(h, a);
  size_t add_len = a->len - add_off;
  if (a->oom) return os_sign_fail(s, "out of memory");
  /* a is not touched by oss4_finish, so this view stays valid through it. */
  os_str additional = {a->data + add_off, add_len};
  if (!oss4_finish(s, r, &c, q, h, additional, out)) return 0;
  /* Reserve first: the list is copied from this same buffer. */
  if (!os_buf_reserve(a, 64 + s->access_key.len + 80 + add_len + 32 + s->sig.len))
    return os_sign_fail(s, "out of memory");
  size_t off = a->len;
  os_buf_adds(a, OSS4_ALG " Credential=");
  os_add_credential(s, a, &c);
  if (add_len) {
    os_buf_adds(a, ",AdditionalHeaders=");
    os_buf_add(a, a->data + add_off, add_len);
  }
  os_buf_adds(a, ",Signature=");
  os_buf_add(a, s->sig.data, s->sig.len);
  return os_pending_finish(s, a, adds, nadd, off, out);
}

static int oss4_query(os_signer *s, const os_sign_req *r, os_sign_result *out) {
  os_scope c;
  if (!oss4_begin(s, r, &c)) return 0;
  os_str token = os_buf_str(&s->session_token);
  oss4_filter_ud f = {r};
  os_entries *h = &s->hdrs, *q = &s->params;
  if (!os_collect_headers(s, r, 0, 0, oss4_header_filter, &f, h)) return 0;

  os_buf *w = &s->auth; /* credential and additional list, referenced by q */
  os_buf_reset(w);
  os_add_credential(s, w, &c);
  size_t cred_len = w->len;
  oss4_additional_list(h, w);
  char expires[24];
  os_str exp = {expires, os_dec_to(expires, r->expires)};
  if (w->oom) return os_sign_fail(s, "out of memory");
  os_str cred = {w->data, cred_len}, additional = {w->data + cred_len, w->len - cred_len};

  if (!os_parse_query(s, r->query, 1, q)) return 0;
  /* Names, algorithm, date and expiry are unreserved only: their own encoding. */
  int ok = os_entries_push(s, q, os_str_c("x-oss-signature-version"), os_str_c(OSS4_ALG), 1) &&
           os_entries_push(s, q, os_str_c("x-oss-date"), os_str_c(c.datetime), 1) &&
           os_entries_push(s, q, os_str_c("x-oss-expires"), exp, 1) &&
           os_entries_push_encoded(s, q, os_str_c("x-oss-credential"), cred);
  if (ok && additional.n)
    ok = os_entries_push_encoded(s, q, os_str_c("x-oss-additional-headers"), additional);
  if (ok && token.n) ok = os_entries_push_encoded(s, q, os_str_c("x-oss-security-token"), token);
  if (!ok) return 0;
  os_entries_sort_encoded(s, q);
  os_entries_fix(s, h);
  if (s->strings.oom) return os_sign_fail(s, "out of memory");
  if (!oss4_finish(s, r, &c, q, h, additional, out)) return 0;

  os_buf *u = &s->url;
  os_buf_reset(u);
  size_t path_off = os_add_url_prefix(s, r, (os_str){NULL, 0}, u);
  os_buf_addc(u, '?');
  for (size_t i = 0; i < q->n; i++) {
    if (i) os_buf_addc(u, '&');
    os_buf_add(u, q->v[i].name, q->v[i].nlen);
    if (q->v[i].has_value || q->v[i].vlen) {
      os_buf_addc(u, '=');
      os_buf_add(u, q->v[i].value, q->v[i].vlen);
    }
  }
  os_buf_adds(u, "&x-oss-signature=");
  os_buf_add(u, s->sig.data, s->sig.len);
  if (u->oom) return os_sign_fail(s, "out of memory");
  os_finish_urls(out, u, path_off);
  return 1;
}

static int oss1_policy(os_signer *s, int64_t time, os_str region, os_str service, os_str policy,
                       os_buf *out) {
  unsigned char mac[OS_SHA1_LEN];
  (void)time;
  (void)region;
  (void)service; /* V1 policies name neither date nor scope */
  if (!os_sign_secret_sha1(s, policy.p, policy.n, mac)) return 0;
  os_base64_encode(out, mac, sizeof mac);
  return 1;
}

static int oss4_policy(os_signer *s, int64_t time, os_str region, os_str service, os_str policy,
                       os_buf *out) {
  os_scope c;
  return oss4_scope(s, time, region, service, &c) && os_scope_sign(s, &c, policy.p, policy.n, out);
}

const os_sign_ops os_sign_oss1_ops = {oss1_header, oss1_query, oss1_policy};
const os_sign_ops os_sign_oss4_ops = {oss4_header, oss4_query, oss4_policy};
