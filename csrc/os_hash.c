/*
 * Hashes and HMAC on OpenSSL 3 EVP; see os_hash.h.
 *
 * OpenSSL 3 looks algorithms up in a locked provider store on every implicit
 * fetch (EVP_sha256() and friends, or a digest name in HMAC parameters), so
 * each EVP_MD is fetched once per process, and HMAC contexts are duplicated
 * from a per-algorithm template that already names its digest: measured
 * ~0.76 us per small HMAC against ~1.0 us with parameters and ~1.5 us with
 * HMAC(). HMAC_CTX is deprecated in 3.0, EVP_MAC is not. Callers that hash
 * many short strings keep a context and restart it (os_hash_once): an HMAC
 * restarted keeps its key schedule, ~0.28 us for a 133-byte string to sign.
 */
#include "os_hash.h"

#include "os_crc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
  const char *name;
  const char *ossl;
} algs[OS_HASH_ALG_COUNT] = {
#define OS_HASH_ROW_(alg, name, ossl, size, block) {name, ossl},
    OS_HASH_ALGS(OS_HASH_ROW_)
#undef OS_HASH_ROW_
};

/* Filled once by setup(); read-only afterwards, so threads share them. NULL
 * entries (e.g. MD5 under a FIPS-only provider) make init fail cleanly. */
static EVP_MD *mds[OS_HASH_ALG_COUNT];
static EVP_MAC_CTX *hmac_templates[OS_HASH_ALG_COUNT];
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

/* Registered by setup() after OpenSSL's own atexit handler, so it runs first
 * at exit, and at dlclose when Lua unloads the module (otherwise the
 * templates are lost with the statics: valgrind, make valgrind). */
static void teardown(void) {
  for (int i = 0; i < OS_HASH_ALG_COUNT; i++) {
    EVP_MAC_CTX_free(hmac_templates[i]);
    hmac_templates[i] = NULL;
    EVP_MD_free(mds[i]);
    mds[i] = NULL;
  }
}

static void setup(void) {
  EVP_MAC *hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
  for (int i = 0; i < OS_HASH_ALG_COUNT; i++) {
    mds[i] = EVP_MD_fetch(NULL, algs[i].ossl, NULL);
    if (hmac != NULL && mds[i] != NULL) {
      OSSL_PARAM params[2];
      EVP_MAC_CTX *t = EVP_MAC_CTX_new(hmac);
      /* The parameter API takes a non-const char * it does not modify. */
      params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                   (char *)(uintptr_t)algs[i].ossl, 0);
      params[1] = OSSL_PARAM_construct_end();
      if (t != NULL && !EVP_MAC_CTX_set_params(t, params)) {
        EVP_MAC_CTX_free(t);
        t = NULL;
      }
      hmac_templates[i] = t;
    }
  }
  /* The templates keep their own reference to the MAC implementation. */
  EVP_MAC_free(hmac);
  atexit(teardown);
}

static int ready(os_hash_alg alg) {
  pthread_once(&setup_once, setup);
  if ((unsigned)alg >= OS_HASH_ALG_COUNT) return 0;
  if (mds[alg] == NULL) {
    ERR_raise_data(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM, "%s is not available", algs[alg].ossl);
    return 0;
  }
  return 1;
}

int os_hash_alg_from_name(const char *name, os_hash_alg *alg) {
  for (int i = 0; i < OS_HASH_ALG_COUNT; i++) {
    if (strcmp(name, algs[i].name) == 0) {
      *alg = (os_hash_alg)i;
      return 0;
    }
  }
  return -1;
}

const char *os_hash_alg_name(os_hash_alg alg) {
  return (unsigned)alg < OS_HASH_ALG_COUNT ? algs[alg].name : NULL;
}

int os_hash_init(os_hash *h, os_hash_alg alg) {
  os_hash_free(h);
  if (!ready(alg)) return -1;
  h->alg = alg;
  h->md = EVP_MD_CTX_new();
  if (h->md == NULL || !EVP_DigestInit_ex2(h->md, mds[alg], NULL)) {
    os_hash_free(h);
    return -1;
  }
  return 0;
}

int os_hash_init_hmac(os_hash *h, os_hash_alg alg, const void *key, size_t keylen) {
  os_hash_free(h);
  if (!ready(alg)) return -1;
  if (hmac_templates[alg] == NULL) {
    ERR_raise_data(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM, "HMAC-%s is not available",
                   algs[alg].ossl);
    return -1;
  }
  h->alg = alg;
  h->mac = EVP_MAC_CTX_dup(hmac_templates[alg]);
  /* An empty key is valid HMAC; OpenSSL wants a non-NULL pointer for it. */
  if (h->mac == NULL || !EVP_MAC_init(h->mac, key != NULL ? key : (const void *)"", keylen, NULL)) {
    os_hash_free(h);
    return -1;
  }
  return 0;
}

int os_hash_update(os_hash *h, const void *data, size_t len) {
  if (len == 0) return 0;
  if (h->md != NULL) return EVP_DigestUpdate(h->md, data, len) ? 0 : -1;
  if (h->mac != NULL) return EVP_MAC_update(h->mac, data, len) ? 0 : -1;
  return -1;
}

int os_hash_final(os_hash *h, unsigned char *out, size_t *outlen) {
  if (h->md != NULL) {
    unsigned int n = 0;
    if (!EVP_DigestFinal_ex(h->md, out, &n)) return -1;
    *outlen = n;
    return 0;
  }
  if (h->mac != NULL) return EVP_MAC_final(h->mac, out, outlen, OS_HASH_MAX_SIZE) ? 0 : -1;
  return -1;
}

int os_hash_once(os_hash *h, const void *data, size_t len, unsigned char *out, size_t *outlen) {
  if (h->md != NULL) {
    /* A NULL type restarts with the digest the context already holds. */
    if (!EVP_DigestInit_ex2(h->md, NULL, NULL)) return -1;
  } else if (h->mac != NULL) {
    /* A NULL key restarts with the key schedule the context already holds. */
    if (!EVP_MAC_init(h->mac, NULL, 0, NULL)) return -1;
  } else {
    return -1;
  }
  if (os_hash_update(h, data, len) != 0) return -1;
  return os_hash_final(h, out, outlen);
}

int os_hash_copy(os_hash *dst, const os_hash *src) {
  os_hash_free(dst);
  dst->alg = src->alg;
  if (src->md != NULL) {
    dst->md = EVP_MD_CTX_new();
    if (dst->md == NULL || !EVP_MD_CTX_copy_ex(dst->md, src->md)) goto fail;
  } else if (src->mac != NULL) {
    dst->mac = EVP_MAC_CTX_dup(src->mac);
    if (dst->mac == NULL) goto fail;
  } else {
    return -1;
  }
  return 0;
fail:
  os_hash_free(dst);
  return -1;
}

void os_hash_free(os_hash *h) {
  if (h->md != NULL) EVP_MD_CTX_free(h->md);
  if (h->mac != NULL) EVP_MAC_CTX_free(h->mac);
  h->md = NULL;
  h->mac = NULL;
}

int os_hash_oneshot(os_hash_alg alg, const void *data, size_t len, unsigned char *out,
                    size_t *outlen) {
  unsigned int n = 0;
  if (!ready(alg)) return -1;
  if (!EVP_Digest(data, len, out, &n, mds[alg], NULL)) return -1;
  *outlen = n;
  return 0;
}

int os_hash_hmac(os_hash_alg alg, const void *key, size_t keylen, const void *data, size_t len,
                 unsigned char *out, size_t *outlen) {
  os_hash h = {0};
  int rc = os_hash_init_hmac(&h, alg, key, keylen);
  if (rc == 0) rc = os_hash_update(&h, data, len);
  if (rc == 0) rc = os_hash_final(&h, out, outlen);
  os_hash_free(&h);
  return rc;
}

void os_hash_error(char *buf, size_t size) {
  unsigned long e = ERR_get_error();
  if (size == 0) return;
  if (e == 0) {
    snprintf(buf, size, "OpenSSL failure (no detail)");
  } else {
    ERR_error_string_n(e, buf, size);
  }
  ERR_clear_error();
}

int os_hash_file(os_hash_alg alg, const char *path, long long offset, long long length,
                 unsigned char *out, size_t *outlen, char *err, size_t errlen) {
  unsigned long long crc[2];
  return os_hash_file_crc(alg, path, offset, length, 0, out, outlen, crc, err, errlen);
}

int os_hash_file_crc(os_hash_alg alg, const char *path, long long offset, long long length,
                     unsigned crcs, unsigned char *out, size_t *outlen, unsigned long long crc[2],
                     char *err, size_t errlen) {
  enum { BLOCK = 1 << 20 };
  if (offset < 0 || length < 0) {
    snprintf(err, errlen, "offset and length must not be negative");
    return -1;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  unsigned char *buf = malloc(BLOCK);
  os_hash h;
  memset(&h, 0, sizeof h);
  int rc = -1;
  if (buf == NULL) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  if (os_hash_init(&h, alg) != 0) {
    os_hash_error(err, errlen);
    goto done;
  }
  /* Sequential reads ahead help the page cache on a cold file. */
  (void)posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_SEQUENTIAL);
  long long left = length, pos = offset;
  crc[0] = os_crc_start(OS_CRC64NVME);
  crc[1] = os_crc_start(OS_CRC64ECMA);
  while (left > 0) {
    size_t want = left < BLOCK ? (size_t)left : (size_t)BLOCK;
    ssize_t got = pread(fd, buf, want, (off_t)pos);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      snprintf(err, errlen, "%s: %s", path,
               got < 0 ? strerror(errno) : "file is shorter than expected");
      goto done;
    }
    if (os_hash_update(&h, buf, (size_t)got) != 0) {
      os_hash_error(err, errlen);
      goto done;
    }
    /* While the block is hot in the cache. */
    if (crcs & OS_HASH_CRC64NVME) crc[0] = os_crc_update(OS_CRC64NVME, crc[0], buf, (size_t)got);
    if (crcs & OS_HASH_CRC64ECMA) crc[1] = os_crc_update(OS_CRC64ECMA, crc[1], buf, (size_t)got);
    left -= got;
    pos += got;
  }
  if (os_hash_final(&h, out, outlen) != 0) {
    os_hash_error(err, errlen);
    goto done;
  }
  rc = 0;
done:
  os_hash_free(&h);
  free(buf);
  close(fd);
  return rc;
}

static void *hash_job_main(void *arg) {
  os_hash_job *j = arg;
  if (j->ranges != NULL) {
    j->rc = os_hash_ranges(j->alg, j->path, j->ranges, j->nranges, j->crcs, j->single, j->err,
                           sizeof j->err);
  } else {
    j->rc = os_hash_file_crc(j->alg, j->path, j->offset, j->length, j->crcs, j->out, &j->outlen,
                             j->crc, j->err, sizeof j->err);
  }
  /* Everything above is published with the flag (release; done acquires).
   * A job its owner abandoned (os_hash_job_release while running) is
   * nobody's but this thread's now: it frees it. */
  int running = OS_HASH_JOB_RUNNING;
  if (!__atomic_compare_exchange_n(&j->finished, &running, OS_HASH_JOB_FINISHED, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    free(j->path);
    free(j->thread);
    free(j->ranges);
    free(j);
  }
  return NULL;
}

int os_hash_job_start_ranges(os_hash_job *j, os_hash_alg alg, const char *path, os_hash_range *r,
                             size_t n) {
  j->ranges = r;
  j->nranges = n;
  return os_hash_job_start(j, alg, path, 0, 0);
}

int os_hash_job_start(os_hash_job *j, os_hash_alg alg, const char *path, long long offset,
                      long long length) {
  size_t n = strlen(path);
  j->path = malloc(n + 1);
  j->thread = malloc(sizeof(pthread_t));
  if (j->path == NULL || j->thread == NULL) {
    snprintf(j->err, sizeof j->err, "out of memory");
    return -1;
  }
  memcpy(j->path, path, n + 1);
  j->alg = alg;
  j->offset = offset;
  j->length = length;
  j->rc = -1;
  if (pthread_create((pthread_t *)j->thread, NULL, hash_job_main, j) != 0) {
    snprintf(j->err, sizeof j->err, "cannot start a hashing thread");
    return -1;
  }
  j->started = 1;
  return 0;
}

int os_hash_job_done(const os_hash_job *j) {
  if (!j->started || j->joined) return 1;
  return __atomic_load_n(&j->finished, __ATOMIC_ACQUIRE) != OS_HASH_JOB_RUNNING;
}

os_hash_job *os_hash_job_new(void) {
  return calloc(1, sizeof(os_hash_job));
}

void os_hash_job_release(os_hash_job *j) {
  if (j == NULL) return;
  if (j->started && !j->joined) {
    /* Read before the exchange: once abandoned, j may be freed at once. */
    pthread_t t = *(pthread_t *)j->thread;
    int running = OS_HASH_JOB_RUNNING;
    if (__atomic_compare_exchange_n(&j->finished, &running, OS_HASH_JOB_ABANDONED, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      pthread_detach(t);
      return;
    }
  }
  os_hash_job_free(j); /* finished (or never started): the join returns at once */
  free(j);
}

int os_hash_job_wait(os_hash_job *j) {
  if (!j->started) return -1;
  if (!j->joined) {
    pthread_join(*(pthread_t *)j->thread, NULL);
    j->joined = 1;
  }
  return j->rc;
}

void os_hash_job_free(os_hash_job *j) {
  if (j->started && !j->joined) os_hash_job_wait(j);
  free(j->path);
  free(j->thread);
  free(j->ranges);
  j->path = NULL;
  j->thread = NULL;
  j->ranges = NULL;
}
