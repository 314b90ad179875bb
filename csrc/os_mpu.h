/*
 * The state of one multipart transfer (upload, download, copy): the plan
 * and, per part, its place, its state and what is known of its bytes (the
 * server's ETag, the MD5 and CRCs computed locally). One allocation holds
 * every part, so a 10,000-part transfer costs one block of under a megabyte,
 * not 10,000 Lua tables. Policy (which part next, retries, events) stays in
 * Lua; this only records and checks. Pure C (no Lua); not thread-safe (one
 * transfer is driven from one thread).
 *
 * Functions returning int give 0, or -1 with a message in err and a code
 * (an objstore error code such as "BadDigest") in *code.
 */
#ifndef OBJSTORE_OS_MPU_H
#define OBJSTORE_OS_MPU_H

#include <stddef.h>
#include <stdint.h>

#include "os_buf.h"

#define OS_MPU_MAX_PARTS 10000
/* Room for an ETag with its quotes and NUL: a quoted MD5 is 34 bytes; longer
 * (non-standard) ETags are refused rather than cut; 96 bytes a part (and 33
 * more once a flexible checksum is recorded: a block of its own, allocated
 * only then). */
#define OS_MPU_ETAG_MAX 40
/* The largest flexible checksum (SHA-256), raw bytes. */
#define OS_MPU_SUM_MAX 32

typedef enum { OS_PART_PENDING = 0, OS_PART_IN_FLIGHT, OS_PART_DONE, OS_PART_FAILED } os_part_state;

/* What a part record knows (flags). OS_PART_HAS_SUM: the flexible checksum
 * sent with the part (x-amz-checksum-<alg>); OS_PART_SUM_VERIFIED: the
 * server echoed it, so it checked the bytes against it. */
enum {
  OS_PART_HAS_MD5 = 1,
  OS_PART_HAS_NVME = 2,
  OS_PART_HAS_ECMA = 4,
  OS_PART_HAS_SUM = 8,
  OS_PART_SUM_VERIFIED = 16
};

/* S3's flexible checksum algorithms (0: none), in the order of
 * os_mpu_sum_names; the value sizes are fixed per algorithm. */
typedef enum {
  OS_SUM_NONE = 0,
  OS_SUM_CRC32,
  OS_SUM_CRC32C,
  OS_SUM_CRC64NVME,
  OS_SUM_SHA1,
  OS_SUM_SHA256,
  OS_SUM_COUNT
} os_sum_alg;

/* The algorithm named (lower case: "crc32", ..., "sha256"), or OS_SUM_NONE. */
os_sum_alg os_mpu_sum_alg(const char *name);
/* Its lower-case name, its name in XML (ChecksumCRC32 ...) and its size. */
const char *os_mpu_sum_name(os_sum_alg alg);
size_t os_mpu_sum_size(os_sum_alg alg);

typedef struct {
  int64_t offset, length;
  uint64_t crc_nvme, crc_ecma; /* CRC-64/NVME and CRC-64/ECMA of the part's bytes */
  unsigned char md5[16];
  char etag[OS_MPU_ETAG_MAX];
  uint8_t state, flags;
} os_mpu_part;

/* A part's flexible checksum (OS_PART_HAS_SUM), raw. */
typedef struct {
  unsigned char value[OS_MPU_SUM_MAX];
  uint8_t alg; /* os_sum_alg */
} os_mpu_sum;

typedef struct {
  int64_t size;      /* object size, or -1 while unknown (a stream) */
  int64_t part_size; /* size of every part but the last (streams: the first) */
  uint32_t count;    /* parts planned (known size) or added so far (stream) */
  uint32_t cap;      /* parts the allocation holds */
  uint32_t cursor;   /* where the search for the next pending part starts */
  int etag_not_md5;  /* SSE-KMS/SSE-C: part ETags are not MD5s, never compared */
  os_mpu_part *parts;
  os_mpu_sum *sums; /* cap entries, NULL until a checksum is recorded */
} os_mpu;

/* Plans size bytes in parts of part_size (size -1: unknown, parts come from
 * os_mpu_add up to max_parts). Zero-initialise m first. */
int os_mpu_init(os_mpu *m, int64_t size, int64_t part_size, uint32_t max_parts, char *err,
                size_t errlen);
void os_mpu_free(os_mpu *m);

/* Stream: appends a part of length bytes after the last; returns its number
 * (1-based) or 0 when the part limit is reached. */
uint32_t os_mpu_add(os_mpu *m, int64_t length);

/* Part n (1-based) or NULL when out of range. */
os_mpu_part *os_mpu_part_of(os_mpu *m, uint32_t n);

/* The lowest-numbered pending or failed part, or 0 when there is none. */
uint32_t os_mpu_next_pending(os_mpu *m);
int os_mpu_set_state(os_mpu *m, uint32_t n, os_part_state st, const char **code, char *err,
                     size_t errlen);

/* Marks part n done. etag may be NULL (then the quoted hex MD5 stands in);
 * md5/nvme/ecma may be NULL when not computed. An ETag that is a plain MD5
 * (32 hex digits, quoted or not) must equal md5, case-insensitively, or the
 * part is refused with BadDigest (unless m->etag_not_md5: SSE-KMS and SSE-C
 * ETags look like MD5s but are not); other ETags (copies) prove nothing and
 * are kept. */
int os_mpu_mark_done(os_mpu *m, uint32_t n, const char *etag, const unsigned char *md5,
                     const uint64_t *nvme, const uint64_t *ecma, const char **code, char *err,
                     size_t errlen);

/* Records the digests of part n's local bytes without changing its state
 * (computed ahead of sending); NULL leaves one as it was. os_mpu_mark_done
 * with md5 NULL then checks the ETag against the recorded MD5. */
void os_mpu_set_digests(os_mpu *m, uint32_t n, const unsigned char *md5, const uint64_t *nvme,
                        const uint64_t *ecma);

/* Records the flexible checksum of part n (value: os_mpu_sum_size(alg)
 * raw bytes) and whether the server verified it; alg OS_SUM_NONE clears it. */
int os_mpu_set_sum(os_mpu *m, uint32_t n, os_sum_alg alg, const unsigned char *value, size_t len,
                   int verified, char *err, size_t errlen);
/* Part n's flexible checksum, or NULL when it has none. */
const os_mpu_sum *os_mpu_sum_of(const os_mpu *m, uint32_t n);
/* Bytes the state holds (parts and checksums). */
size_t os_mpu_bytes(const os_mpu *m);

uint32_t os_mpu_count_done(const os_mpu *m);
int64_t os_mpu_bytes_done(const os_mpu *m);

/* CRC (OS_PART_HAS_NVME or OS_PART_HAS_ECMA) of the done parts (all: of
 * every part, from the recorded digests) in order, combined; -1 when one of
 * those parts lacks it. */
int os_mpu_combined_crc(const os_mpu *m, int which, int all, uint64_t *out);

/* The object ETag the parts imply: MD5 of the part MD5s, "-N", unquoted hex
 * (lower case) into out (at least 48 bytes). -1 when a part is not done or
 * lacks its MD5. */
int os_mpu_multipart_etag(const os_mpu *m, char *out, size_t outlen);

/* The CompleteMultipartUpload XML of every part (all must be done), written
 * with libxml2's xmlTextWriter; ns is the namespace or NULL. With sum (not
 * OS_SUM_NONE) every part carries its Checksum<ALG> (base64), and every part
 * must have a checksum of that algorithm. */
int os_mpu_complete_body(const os_mpu *m, const char *ns, os_sum_alg sum, os_buf *out, char *err,
                         size_t errlen);

/* Reconciles with one part of a ListParts answer: a done part the server
 * holds with the same size and ETag stays done; a done part the server
 * lacks or holds differently goes back to pending. Returns 1 when the
 * server has a part we did not record and whose size matches (the caller
 * then hashes its local bytes and calls os_mpu_mark_done with the server's
 * ETag, which checks it), else 0. */
int os_mpu_reconcile_part(os_mpu *m, uint32_t n, int64_t size, const char *etag);

/* After reconciling every listed part: done parts the server did not list
 * (seen[n-1] == 0) go back to pending. seen has m->count bytes. */
void os_mpu_reconcile_missing(os_mpu *m, const unsigned char *seen);

/* Whether etag (quoted or not) is the hex of md5, ignoring case. */
int os_mpu_etag_is_md5(const char *etag, const unsigned char *md5);

#endif
