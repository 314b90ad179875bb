/*
 * libFuzzer target: the signer's canonicalisation. The input is a request
 * description, one field a line:
 *   METHOD \n PATH \n QUERY \n KEY \n TIME \n FLAGS \n  then "name: value" header lines
 * (TIME and FLAGS decimal; a KEY line that is not empty sets bucket "bkt" and
 * the key, used when PATH is empty). It is signed with aws4, oss1 and oss4, in
 * header and query mode, each twice: the second call must give the same
 * canonical request, string to sign, signature, authorization and URL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../os_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_HDRS (OS_SIGN_MAX_HEADERS + 8)

static os_str next_line(const char **p, const char *end) {
  os_str r = {*p, 0};
  const char *nl = memchr(*p, '\n', (size_t)(end - *p));
  r.n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
  *p = nl ? nl + 1 : end;
  return r;
}

/* Bounded decimal: at most 12 digits, so no overflow in the harness. */
static int64_t parse_int(os_str s) {
  int64_t v = 0;
  size_t i = 0;
  int neg = s.n > 0 && s.p[0] == '-';
  if (neg) i++;
  for (; i < s.n && i < 13 && s.p[i] >= '0' && s.p[i] <= '9'; i++) v = v * 10 + (s.p[i] - '0');
  return neg ? -v : v;
}

/* Everything a result shows, flattened into one buffer. */
static void snapshot(os_buf *b, const os_sign_result *r) {
  const os_str *f[] = {
      &r->canonical_request, &r->string_to_sign, &r->signature, &r->authorization, &r->url,
      &r->path_and_query};
  os_buf_reset(b);
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    os_buf_add(b, f[i]->p, f[i]->n);
    os_buf_addc(b, '\0');
  }
  for (size_t i = 0; i < r->nadd; i++) {
    os_buf_add(b, r->add[i].name.p, r->add[i].name.n);
    os_buf_addc(b, ':');
    os_buf_add(b, r->add[i].value.p, r->add[i].value.n);
    os_buf_addc(b, '\0');
  }
}

static void sign_all(os_sign_alg alg, const os_sign_req *req, os_buf *a, os_buf *b) {
  static const char ak[] = "AKIDEXAMPLE", sk[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  static const char tok[] = "session-token";
  os_signer s;
  memset(&s, 0, sizeof s);
  if (!os_signer_init(&s, alg)) abort();
  if (!os_signer_set_credentials(&s, ak, sizeof ak - 1, sk, sizeof sk - 1, tok, sizeof tok - 1))
    abort();
  const char *region = alg == OS_ALG_AWS4 ? "us-east-1" : "cn-hangzhou";
  const char *service = alg == OS_ALG_AWS4 ? "s3" : "oss";
  os_buf_adds(&s.region, region);
  os_buf_adds(&s.service, service);
  for (int query = 0; query <= 1; query++) {
    os_sign_result r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    int ok1 = query ? os_sign_query(&s, req, &r1) : os_sign_header(&s, req, &r1);
    if (ok1) snapshot(a, &r1);
    int ok2 = query ? os_sign_query(&s, req, &r2) : os_sign_header(&s, req, &r2);
    if (ok1 != ok2) abort();
    if (ok2) {
      snapshot(b, &r2);
      if (!a->oom && !b->oom && (a->len != b->len || memcmp(a->data, b->data, a->len) != 0))
        abort();
    } else if (s.errbuf[0] == '\0') {
      abort(); /* a refusal always says why */
    }
  }
  os_signer_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static os_kv hdrs[FUZZ_MAX_HDRS];
  const char *p = (const char *)data, *end = p + size;
  os_sign_req req;
  memset(&req, 0, sizeof req);
  req.method = next_line(&p, end);
  req.path = next_line(&p, end);
  req.query = next_line(&p, end);
  req.key = next_line(&p, end);
  if (req.key.n > 0) {
    req.has_key = 1;
    req.bucket.p = "bkt";
    req.bucket.n = 3;
  }
  req.host.p = "bkt.example.com";
  req.host.n = strlen(req.host.p);
  req.time = parse_int(next_line(&p, end));
  int64_t flags = parse_int(next_line(&p, end));
  req.flags = (unsigned)(flags & 0x3f);
  req.path_style = (int)((flags >> 6) & 1);
  req.expires = (flags >> 7) & 1 ? 0 : 3600;
  size_t n = 0;
  while (p < end && n < FUZZ_MAX_HDRS) {
    os_str line = next_line(&p, end);
    const char *colon = memchr(line.p, ':', line.n);
    hdrs[n].name.p = line.p;
    hdrs[n].name.n = colon ? (size_t)(colon - line.p) : line.n;
    hdrs[n].value.p = colon ? colon + 1 : line.p + line.n;
    hdrs[n].value.n = colon ? (size_t)(line.p + line.n - colon - 1) : 0;
    n++;
  }
  req.headers = hdrs;
  req.nheaders = n;

  os_buf a = {0}, b = {0};
  sign_all(OS_ALG_AWS4, &req, &a, &b);
  sign_all(OS_ALG_OSS1, &req, &a, &b);
  sign_all(OS_ALG_OSS4, &req, &a, &b);
  os_buf_free(&a);
  os_buf_free(&b);
  return 0;
}
