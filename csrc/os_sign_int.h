/* Internals shared by the os_sign_*.c files; not part of the core's API. */
#ifndef OBJSTORE_OS_SIGN_INT_H
#define OBJSTORE_OS_SIGN_INT_H

#include "os_sign.h"

#define OS_SHA256_LEN 32
#define OS_SHA1_LEN 20

int os_sign_fail(os_signer *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "YYYYMMDDTHHMMSSZ" of t, cached per signer. */
int os_sign_datetime(os_signer *s, int64_t t, char out[17]);

int os_str_ieq(os_str a, const char *b);
int os_str_eq(os_str a, const char *b);
os_str os_str_c(const char *s);
os_str os_buf_str(const os_buf *b);
os_str os_str_trim(os_str s);

/* Crypto over OpenSSL EVP with contexts cached in the signer. */
int os_sha256(os_signer *s, const void *p, size_t n, unsigned char out[OS_SHA256_LEN]);
int os_hmac(os_signer *s, int sha1, const void *key, size_t keylen, const void *msg, size_t n,
            unsigned char *out);

/* AWS-style key derivation (kDate, kRegion, kService, kSigning) from
 * prefix+secret, cached per (date, region, service), then HMAC of msg with
 * the derived key. */
int os_sign_keyed_hmac(os_signer *s, const char *prefix, const char *date8, os_str region,
                       os_str service, const char *terminator, const void *msg, size_t n,
                       unsigned char out[OS_SHA256_LEN]);

/* Collects the request headers (plus a synthetic host when asked) into
 * sorted, lowercased, trimmed entries; duplicates merged with ','. With
 * fold, inner runs of whitespace become one space (SigV4); OSS only trims.
 * With a filter, only names for which it returns 1 are kept. */
typedef int (*os_header_filter)(const os_entry *e, void *ud);
int os_collect_headers(os_signer *s, const os_sign_req *r, int add_host, int fold,
                       os_header_filter filter, void *ud, os_entries *out);

/* Parses r->query into decoded entries (not sorted). */
int os_parse_query(os_signer *s, os_str query, os_entries *out);
/* Appends an extra entry (decoded name/value) to a parsed list. */
int os_entries_push(os_signer *s, os_entries *list, os_str name, os_str value, int has_value);
/* Turns offsets into pointers once s->strings has stopped growing. */
void os_entries_fix(os_signer *s, os_entries *list);
/* Sorts entries by the given comparison of (name, value). */
void os_entries_sort_encoded(os_signer *s, os_entries *list);
void os_entries_sort_name(os_entries *list);

/* Looks up a header value (case-insensitive) in the request's headers. */
int os_find_header(const os_sign_req *r, const char *lname, os_str *value);

/* The object key (raw) from r->key, else from the decoded path. */
os_str os_request_key(os_signer *s, const os_sign_req *r, int *has_key);
/* The wire path: r->path, or one built from bucket/key. Appended to out. */
void os_request_path(const os_sign_req *r, os_buf *out);
/* Host: Host header, else r->host. */
os_str os_request_host(const os_sign_req *r);

/* Header values the signer adds are written to one buffer; views are made
 * at the end because the buffer may move while it grows. */
typedef struct {
  const char *name;
  size_t off, len;
} os_pending_add;
void os_pending_push(os_buf *b, os_pending_add *list, size_t *n, const char *name, os_str v);
/* Records a value already written to the buffer at [off, off+len). */
void os_pending_span(os_pending_add *list, size_t *n, const char *name, size_t off, size_t len);
void os_pending_emit(os_buf *b, const os_pending_add *list, size_t n, os_sign_result *out);

/* Presigned URLs: scheme://host and the encoded wire path; returns the
 * offset where the path starts. */
size_t os_add_url_prefix(os_signer *s, const os_sign_req *r, os_buf *u);
void os_finish_urls(os_sign_result *out, os_buf *u, size_t path_off);

int os_sign_aws4_policy(os_signer *s, int64_t time, os_str region, os_str service, os_str policy,
                        os_buf *out);
int os_sign_aws4_header(os_signer *s, const os_sign_req *r, os_sign_result *out);
int os_sign_aws4_query(os_signer *s, const os_sign_req *r, os_sign_result *out);
int os_sign_oss1_header(os_signer *s, const os_sign_req *r, os_sign_result *out);
int os_sign_oss1_query(os_signer *s, const os_sign_req *r, os_sign_result *out);
int os_sign_oss4_header(os_signer *s, const os_sign_req *r, os_sign_result *out);
int os_sign_oss4_query(os_signer *s, const os_sign_req *r, os_sign_result *out);

#endif
