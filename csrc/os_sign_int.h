/* Internals shared by the os_sign_*.c files; not part of the core's API. */
#ifndef OBJSTORE_OS_SIGN_INT_H
#define OBJSTORE_OS_SIGN_INT_H

#include <string.h>

#include "os_encode.h"
#include "os_sign.h"

#define OS_SHA256_LEN 32
#define OS_SHA1_LEN 20

int os_sign_fail(os_signer *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Inline so that strlen of a literal folds to a constant. */
static inline int os_str_eq(os_str a, const char *b) {
  size_t n = strlen(b);
  return a.n == n && memcmp(a.p, b, n) == 0;
}
static inline os_str os_str_c(const char *s) {
  os_str r = {s, strlen(s)};
  return r;
}
static inline os_str os_buf_str(const os_buf *b) {
  os_str r = {b->data ? b->data : "", b->len};
  return r;
}
os_str os_str_trim(os_str s);

/* Crypto through the cached contexts of os_hash.c kept in the signer. */
int os_sha256(os_signer *s, const void *p, size_t n, unsigned char out[OS_SHA256_LEN]);
/* oss1: HMAC-SHA1 of msg with the secret key. */
int os_sign_secret_sha1(os_signer *s, const void *msg, size_t n, unsigned char out[OS_SHA1_LEN]);

/* Date and credential scope of a V4-style signature (aws4, oss4). Its key
 * is derived AWS-style (kDate, kRegion, kService, kSigning) from
 * key_prefix+secret over date8, region, service and terminator. */
typedef struct {
  char datetime[17]; /* YYYYMMDDTHHMMSSZ */
  char date8[9];
  os_str region, service;
  const char *key_prefix, *terminator; /* "AWS4", "aws4_request" */
} os_scope;

/* Fills c for time t; region and service as given. */
int os_scope_init(os_signer *s, os_scope *c, int64_t t, os_str region, os_str service,
                  const char *key_prefix, const char *terminator);
/* Appends "date8/region/service/terminator"; the credential is
 * "access_key/" and the scope. */
void os_add_scope(os_buf *b, const os_scope *c);
void os_add_credential(os_signer *s, os_buf *b, const os_scope *c);
/* Appends "<alg>\n<datetime>\n<scope>\n", how every V4 string to sign starts. */
void os_add_sts_head(os_buf *b, const char *alg, const os_scope *c);
/* HMAC-SHA256 of msg with the scope's derived key, cached per (date,
 * region, service) with a context already keyed with it. */
int os_scope_hmac(os_signer *s, const os_scope *c, const void *msg, size_t n,
                  unsigned char out[OS_SHA256_LEN]);
/* The same, appended to out in hex: a V4 signature. */
int os_scope_sign(os_signer *s, const os_scope *c, const void *msg, size_t n, os_buf *out);
/* The V4 ending: SHA-256 of the canonical request in s->canon, the string
 * to sign in s->sts, its signature (hex) in s->sig, all three in out. */
int os_sign_v4_finish(os_signer *s, const os_scope *c, const char *alg, os_sign_result *out);

/* Appends name in lower case (ASCII). */
void os_add_lower(os_buf *b, os_str name);

/* Collects the request headers (plus a synthetic host when asked) into
 * sorted, lowercased, trimmed entries; duplicates merged with ','. With
 * fold, inner runs of whitespace become one space (SigV4); OSS only trims.
 * With a filter, only names for which it returns 1 are kept. */
typedef int (*os_header_filter)(const os_entry *e, void *ud);
int os_collect_headers(os_signer *s, const os_sign_req *r, int add_host, int fold,
                       os_header_filter filter, void *ud, os_entries *out);

/* Parses r->query into entries (not sorted): decoded, or with canonical,
 * in their canonical RFC 3986 encoding (decoded and encoded again). */
int os_parse_query(os_signer *s, os_str query, int canonical, os_entries *out);
/* Appends an extra entry to a parsed list: name and value as given, or
 * (os_entries_push_encoded) with the value percent-encoded, to join a
 * canonical list; the name is then one of the signer's own, unreserved
 * characters only, which are their own encoding. */
int os_entries_push(os_signer *s, os_entries *list, os_str name, os_str value, int has_value);
int os_entries_push_encoded(os_signer *s, os_entries *list, os_str name, os_str value);
/* Turns offsets into pointers once s->strings has stopped growing. */
void os_entries_fix(os_signer *s, os_entries *list);
/* Sorts a canonical (encoded) list by name, then value, after fixing its pointers. */
void os_entries_sort_encoded(os_signer *s, os_entries *list);
/* Sorts by name only, stable. */
void os_entries_sort_name(os_entries *list);

/* Looks up a header value (case-insensitive) in the request's headers. */
int os_find_header(const os_sign_req *r, const char *lname, os_str *value);

/* The object key (raw) from r->key, else from the decoded path. */
os_str os_request_key(os_signer *s, const os_sign_req *r, int *has_key);
/* The wire path: r->path, or one built from bucket/key. Appended to out. */
void os_request_path(const os_sign_req *r, os_buf *out);

/* Header values the signer adds are written to one buffer; views are made
 * at the end because the buffer may move while it grows. */
typedef struct {
  const char *name;
  size_t off, len;
} os_pending_add;
void os_pending_push(os_buf *b, os_pending_add *list, size_t *n, const char *name, os_str v);
/* Ends header mode: the Authorization value is what b holds from auth_off
 * on (list has room for it); makes the views of every added header.
 * Returns 1, or 0 when out of memory. */
int os_pending_finish(os_signer *s, os_buf *b, os_pending_add *list, size_t n, size_t auth_off,
                      os_sign_result *out);

/* Appends the canonical header block: "name:value\n" per entry. */
void os_add_canonical_headers(os_buf *out, const os_entries *h);

/* Presigned URLs: scheme://host and the encoded wire path (path when the
 * caller has it already, else built from the request); returns the offset
 * where the path starts. */
size_t os_add_url_prefix(os_signer *s, const os_sign_req *r, os_str path, os_buf *u);
void os_finish_urls(os_sign_result *out, os_buf *u, size_t path_off);

/* One table of entry points per algorithm. The request checks common to all
 * (expiry range) are made before; out is zeroed and s->strings reset. */
typedef struct {
  int (*header)(os_signer *s, const os_sign_req *r, os_sign_result *out);
  int (*query)(os_signer *s, const os_sign_req *r, os_sign_result *out);
  /* Signs policy (base64) into out (reset): region and service may be empty. */
  int (*policy)(os_signer *s, int64_t time, os_str region, os_str service, os_str policy,
                os_buf *out);
} os_sign_ops;

extern const os_sign_ops os_sign_aws4_ops, os_sign_oss1_ops, os_sign_oss4_ops;

#endif
