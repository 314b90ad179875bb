/*
 * Request signing: AWS Signature V4 (aws4), Alibaba OSS V1 (oss1) and
 * OSS V4 (oss4). Pure C, no Lua.
 *
 * Inputs are injected (time, credentials, region, service, payload hash,
 * expiry); the signer never reads the clock and never mutates the request:
 * it returns the headers or query parameters to add. The intermediate
 * strings (canonical request, string to sign) stay readable in the result
 * for diagnosis and tests.
 */
#ifndef OBJSTORE_OS_SIGN_H
#define OBJSTORE_OS_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "os_buf.h"
#include "os_hash.h"

typedef struct {
  const char *p;
  size_t n;
} os_str;

typedef struct {
  os_str name, value;
} os_kv;

/* Limits on anything built from caller input. */
#define OS_SIGN_MAX_FIELD (64u * 1024u) /* path, query, one header value */
#define OS_SIGN_MAX_HEADERS 256
#define OS_SIGN_MAX_KEY 1024       /* S3 and OSS object keys: 1024 bytes */
#define OS_SIGN_MAX_EXPIRES 604800 /* 7 days */

enum {
  OS_SIGN_NORMALIZE_PATH = 1 << 0, /* remove dot segments and empty segments */
  OS_SIGN_DOUBLE_ENCODE = 1 << 1,  /* encode the path as given (generic services) */
  OS_SIGN_CONTENT_SHA256 = 1 << 2, /* header mode: add x-amz-content-sha256 */
  OS_SIGN_TOKEN_UNSIGNED = 1 << 3, /* session token added after signing */
  OS_SIGN_QUERY_SHA256 = 1 << 4,   /* presign: X-Amz-Content-Sha256 in the query */
  OS_SIGN_NO_DATE_HEADER = 1 << 5, /* header mode: do not add a date header */
  OS_SIGN_ALL_HEADERS = 1 << 6,    /* aws4: sign every given header (a verifier
                                      reproducing a client's SignedHeaders) */
};

typedef struct {
  os_str method;
  os_str scheme; /* presign only; default "https" */
  os_str host;   /* used when no Host header is given */
  os_str path;   /* as on the request line (percent-encoded); empty means "/" */
  os_str query;  /* raw query string without '?', percent-encoded */
  os_str bucket; /* OSS: signing context; all: builds the path when path is empty */
  os_str key;    /* raw (unencoded) object key */
  int has_key;
  int path_style; /* with bucket/key and no path: "/bucket/key" instead of "/key" */
  const os_kv *headers;
  size_t nheaders;
  os_str payload_hash;         /* hex SHA-256, UNSIGNED-PAYLOAD, STREAMING-...; empty: derived */
  os_str region, service;      /* empty: the signer's */
  const os_str *sub_resources; /* oss1: extra signed sub-resource names */
  size_t nsub_resources;
  const os_str *additional_headers; /* oss4 */
  size_t nadditional_headers;
  int64_t time;    /* signing time, epoch seconds */
  int64_t expires; /* presign: lifetime in seconds */
  unsigned flags;
  int has_body; /* the binding saw req.body (hashed there) */
} os_sign_req;

typedef enum { OS_ALG_AWS4 = 0, OS_ALG_OSS1 = 1, OS_ALG_OSS4 = 2 } os_sign_alg;

#define OS_SIGN_MAX_ADD 6

/* What a signing call produced. Views point into the signer's buffers and
 * stay valid until its next call. */
typedef struct {
  os_str canonical_request; /* aws4/oss4; empty for oss1 */
  os_str string_to_sign;
  os_str signature; /* hex (aws4/oss4) or base64 (oss1) */
  os_str authorization;
  os_str url; /* presign: scheme://host/path?query (host omitted when unknown) */
  os_str path_and_query;
  os_kv add[OS_SIGN_MAX_ADD]; /* header mode: headers to add, in this order */
  size_t nadd;
} os_sign_result;

/* One header or query parameter after canonicalisation. Strings live in
 * the signer's string buffer; offsets are kept until it stops growing. */
typedef struct {
  const char *name;
  size_t nlen;
  const char *value;
  size_t vlen;
  size_t name_off, value_off;
  size_t seq;    /* input order, keeps sorting stable */
  int has_value; /* query: "k=" or "k=v" rather than a bare "k" */
} os_entry;

typedef struct {
  os_entry *v;
  size_t n, cap;
} os_entries;

#define OS_SIGN_KEY_CACHE 4

/* An HMAC context already keyed with a derived signing key, so a signature
 * on a cached date/region/service costs no key schedule. */
typedef struct {
  char date8[9];
  char region[64], service[64];
  size_t region_len, service_len;
  os_hash mac; /* HMAC-SHA256 keyed with the derived key */
  int used;
} os_sign_key_slot;

typedef struct os_signer os_signer;

struct os_signer {
  os_sign_alg alg;
  os_buf access_key, secret_key, session_token;
  os_buf region, service; /* defaults */
  unsigned flags;         /* default flags */
  os_sign_key_slot keys[OS_SIGN_KEY_CACHE];
  unsigned next_slot;
  /* Scratch reused across calls so a signature costs no allocation. */
  os_buf canon, sts, auth, url, work, sig, path;
  os_buf strings;
  os_entries hdrs, params;
  os_hash sha256;      /* SHA-256, restarted for each canonical request */
  os_hash secret_sha1; /* oss1: HMAC-SHA1 keyed with the secret, made on first use */
  char datetime[17];   /* last formatted signing time */
  int64_t datetime_of;
  char errbuf[256];
};

/* Initialises s (zeroed first by the caller). Returns 0 and sets s->errbuf on failure. */
int os_signer_init(os_signer *s, os_sign_alg alg);
void os_signer_free(os_signer *s);
/* Replaces the credentials; clears the signing-key cache. */
int os_signer_set_credentials(os_signer *s, const char *ak, size_t akn, const char *sk, size_t skn,
                              const char *token, size_t tokenn);

/* Header authentication. Returns 1, or 0 with a message in s->errbuf. */
int os_sign_header(os_signer *s, const os_sign_req *r, os_sign_result *out);
/* Query authentication (presigned URL). */
int os_sign_query(os_signer *s, const os_sign_req *r, os_sign_result *out);

/* AWS SigV4 streaming (aws-chunked) signatures, chained from prev_sig. */
int os_sign_aws4_chunk(os_signer *s, int64_t time, os_str region, os_str service, os_str prev_sig,
                       const unsigned char chunk_sha256[32], char out_sig[65]);
int os_sign_aws4_trailer(os_signer *s, int64_t time, os_str region, os_str service, os_str prev_sig,
                         const os_kv *trailers, size_t n, char out_sig[65]);
/* Browser POST policy: signs the base64 policy document. out gets hex (aws4,
 * oss4) or base64 (oss1). */
int os_sign_policy(os_signer *s, int64_t time, os_str region, os_str service, os_str policy_b64,
                   os_buf *out);

#endif
