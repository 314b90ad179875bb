/*
 * Streaming MD5, SHA-1, SHA-256 and HMAC over them, on OpenSSL 3 libcrypto.
 * No crypto is implemented here: this only caches the fetched algorithms and
 * gives the bindings one small struct API. Pure C (no Lua); thread-safe.
 *
 * Every function returning int returns 0 on success and -1 on failure; after
 * a failure os_hash_error() describes it (OpenSSL's error queue).
 */
#ifndef OBJSTORE_OS_HASH_H
#define OBJSTORE_OS_HASH_H

#include <stddef.h>

/* X-macro: algorithm, name, OpenSSL name, digest size, block size. */
#define OS_HASH_ALGS(X)                   \
  X(OS_HASH_MD5, "md5", "MD5", 16, 64)    \
  X(OS_HASH_SHA1, "sha1", "SHA1", 20, 64) \
  X(OS_HASH_SHA256, "sha256", "SHA2-256", 32, 64)

typedef enum {
#define OS_HASH_ENUM_(alg, name, ossl, size, block) alg,
  OS_HASH_ALGS(OS_HASH_ENUM_)
#undef OS_HASH_ENUM_
      OS_HASH_ALG_COUNT
} os_hash_alg;

/* Largest digest of any algorithm above. */
#define OS_HASH_MAX_SIZE 32

/* OpenSSL contexts, opaque here so that users need no OpenSSL headers. */
struct evp_md_ctx_st;
struct evp_mac_ctx_st;

/* One running hash or HMAC. Zero-initialise before os_hash_init*; after
 * os_hash_free every pointer is NULL again, so freeing twice is harmless. */
typedef struct {
  os_hash_alg alg;
  struct evp_md_ctx_st *md;   /* plain hash */
  struct evp_mac_ctx_st *mac; /* HMAC */
} os_hash;

/* Looks an algorithm up by lower-case name ("md5", "sha1", "sha256"). */
int os_hash_alg_from_name(const char *name, os_hash_alg *alg);
const char *os_hash_alg_name(os_hash_alg alg);

int os_hash_init(os_hash *h, os_hash_alg alg);
int os_hash_init_hmac(os_hash *h, os_hash_alg alg, const void *key, size_t keylen);
int os_hash_update(os_hash *h, const void *data, size_t len);
/* Writes the digest (out holds OS_HASH_MAX_SIZE bytes) and its size. The
 * context stays allocated until os_hash_free; only os_hash_once may use it
 * again. */
int os_hash_final(os_hash *h, unsigned char *out, size_t *outlen);
/* Restarts an initialised h (same algorithm; an HMAC keeps its key, already
 * scheduled, so no re-keying), hashes data and writes the digest: a one-shot
 * on a cached context, for callers that hash many short strings. */
int os_hash_once(os_hash *h, const void *data, size_t len, unsigned char *out, size_t *outlen);
/* dst must be zeroed or freed; on failure it is left freed. */
int os_hash_copy(os_hash *dst, const os_hash *src);
void os_hash_free(os_hash *h);

/* One-shot helpers; out holds OS_HASH_MAX_SIZE bytes. */
int os_hash_oneshot(os_hash_alg alg, const void *data, size_t len, unsigned char *out,
                    size_t *outlen);
int os_hash_hmac(os_hash_alg alg, const void *key, size_t keylen, const void *data, size_t len,
                 unsigned char *out, size_t *outlen);

/* Digest of the bytes [offset, offset+length) of a file, read with pread in
 * 1 MiB blocks (never the whole range in memory). Returns 0, or -1 with a
 * message in err (a short read is an error: the file shrank). */
int os_hash_file(os_hash_alg alg, const char *path, long long offset, long long length,
                 unsigned char *out, size_t *outlen, char *err, size_t errlen);

/* CRCs os_hash_file_crc can compute in the same pass (a bit mask). */
enum { OS_HASH_CRC64NVME = 1, OS_HASH_CRC64ECMA = 2 };

/* os_hash_file that also computes the CRCs in crcs over the same blocks:
 * crc[0] CRC-64/NVME, crc[1] CRC-64/ECMA (finalised values). */
int os_hash_file_crc(os_hash_alg alg, const char *path, long long offset, long long length,
                     unsigned crcs, unsigned char *out, size_t *outlen, unsigned long long crc[2],
                     char *err, size_t errlen);

/* One range of a file and what os_hash_ranges computed for it. */
typedef struct {
  long long offset, length;
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t outlen;
  unsigned long long crc[2]; /* as os_hash_file_crc's crc */
} os_hash_range;

/* The digest (and the CRCs in crcs) of each of n ranges of one file. MD5
 * ranges go eight at a time through the multi-buffer engine (os_md5x.h)
 * when the CPU has it and `single` is 0; otherwise one after another with
 * os_hash_file_crc. Returns 0, or -1 with a message in err. */
int os_hash_ranges(os_hash_alg alg, const char *path, os_hash_range *r, size_t n, unsigned crcs,
                   int single, char *err, size_t errlen);

/* os_hash_file on a thread of its own, so a digest of the next part can be
 * computed while the current parts are on the wire. Zero-initialise, then
 * start; done says, without blocking, whether the thread has finished (so
 * a caller that must not block, an nginx worker, can poll it and wait only
 * then); wait joins the thread (and may be called once); free releases what
 * start took (waiting first if needed). */
typedef struct {
  int started, joined;
  int finished; /* OS_HASH_JOB_*: set last by the thread, atomically */
  os_hash_alg alg;
  char *path;
  long long offset, length;
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t outlen;
  unsigned crcs;             /* OS_HASH_CRC64* wanted alongside the digest */
  unsigned long long crc[2]; /* their values */
  int rc;
  char err[256];
  void *thread; /* pthread_t, boxed to keep pthread.h out of this header */
  /* A job of os_hash_ranges instead (os_hash_job_start_ranges): */
  os_hash_range *ranges; /* owned by the job, results in place */
  size_t nranges;
  int single;
} os_hash_job;

int os_hash_job_start(os_hash_job *j, os_hash_alg alg, const char *path, long long offset,
                      long long length);
/* os_hash_ranges on a thread: the job takes ownership of r (malloc'd), even
 * when it fails to start. Set j->crcs and j->single first. */
int os_hash_job_start_ranges(os_hash_job *j, os_hash_alg alg, const char *path, os_hash_range *r,
                             size_t n);
enum { OS_HASH_JOB_RUNNING = 0, OS_HASH_JOB_FINISHED = 1, OS_HASH_JOB_ABANDONED = 2 };

/* A zeroed job on the heap (NULL: out of memory), for
 * os_hash_job_release. */
os_hash_job *os_hash_job_new(void);
/* Frees a job of os_hash_job_new without ever blocking: a job whose thread
 * still runs is abandoned to it (detached; the thread frees the job when it
 * ends), any other is freed at once. j is not to be used afterwards. */
void os_hash_job_release(os_hash_job *j);
/* 1 when the thread has finished (or was joined, or never started): wait
 * then returns at once. Never blocks. */
int os_hash_job_done(const os_hash_job *j);
int os_hash_job_wait(os_hash_job *j);
void os_hash_job_free(os_hash_job *j);

/* Describes (and clears) the most recent OpenSSL failure in buf. */
void os_hash_error(char *buf, size_t size);

#endif
