/*
 * Checkpoints of resumable transfers: an append-only file, so recording a
 * finished part costs one small write, not a rewrite of everything.
 *
 *   header:  "OBJSTORE-CP\n" (12 bytes), u32 format version, u32 header
 *            length L, then L bytes: u8 kind, i64 file size, i64 file mtime,
 *            u64 file inode, i64 part size, i64 object size, i64 intent time
 *            (unix seconds), then bucket, key, upload id, object ETag (each
 *            u16 length + bytes), then u32 CRC-32C of everything before it.
 *   records: OS_CKPT_RECORD_SIZE bytes each: u32 magic "PART", u32 part
 *            number, i64 offset, i64 length, 16-byte MD5, u64 CRC-64/NVME,
 *            u64 CRC-64/ECMA, u8 flags, u8 ETag length, 40 bytes of ETag,
 *            u8 flexible checksum algorithm (os_sum_alg, 0: none), 32 bytes
 *            of its raw value (zero-padded; flags say whether the server
 *            verified it), padding, u32 CRC-32C of the record's first bytes.
 *
 * Version 3 added the flexible checksum (records grew from 112 bytes); a
 * version 2 file is reported as another format and the transfer starts
 * clean.
 *
 * Integers are little-endian. No secret is ever written (ids, sizes, ETags
 * and checksums only). Every write is followed by fsync of the file; the
 * directory is fsync'd when the file is created, replaced or removed. A torn
 * or corrupt last record (a crash mid-append) is dropped on load, and the
 * file is cut back to its last good record before anything is appended.
 *
 * While a transfer runs, the file is locked with flock(LOCK_EX); a second
 * process fails at once (os_ckpt_open gives OS_CKPT_IN_USE and the holder's
 * pid when /proc/locks names it).
 *
 * Pure C (no Lua). Functions returning int give 0, or -1 with err set.
 */
#ifndef OBJSTORE_OS_CKPT_H
#define OBJSTORE_OS_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "os_mpu.h"

#define OS_CKPT_VERSION 3
#define OS_CKPT_RECORD_SIZE 144
#define OS_CKPT_STR_MAX 2048

typedef enum {
  OS_CKPT_UPLOAD = 1,
  OS_CKPT_DOWNLOAD,
  OS_CKPT_COPY,
  OS_CKPT_KIND_COUNT
} os_ckpt_kind;

typedef struct {
  int kind;
  int64_t file_size, file_mtime;
  uint64_t file_inode;
  int64_t part_size, object_size, intent_time;
  char bucket[OS_CKPT_STR_MAX], key[OS_CKPT_STR_MAX], upload_id[OS_CKPT_STR_MAX];
  char etag[OS_MPU_ETAG_MAX * 2];
} os_ckpt_header;

typedef struct {
  int fd;
  char *path;
  int64_t end;             /* where the next record goes */
  uint64_t appended_bytes; /* written through this handle (header included) */
} os_ckpt;

/* Outcome of os_ckpt_open. */
enum { OS_CKPT_OK = 0, OS_CKPT_FAIL = -1, OS_CKPT_IN_USE = -2 };

/* Opens (creating if absent) and locks path. On OS_CKPT_IN_USE, *holder is
 * the pid holding the lock (0 when unknown). */
int os_ckpt_open(os_ckpt *c, const char *path, long *holder, char *err, size_t errlen);
void os_ckpt_close(os_ckpt *c);

/* Load results. */
enum { OS_CKPT_LOADED = 0, OS_CKPT_EMPTY = 1, OS_CKPT_FOREIGN = 2 };

/* Reads the header into h and calls part(arg, record) for every intact
 * record. Returns OS_CKPT_LOADED, OS_CKPT_EMPTY (new file) or
 * OS_CKPT_FOREIGN (not a checkpoint of this format: err says why), or -1 on
 * an I/O error. *torn is set when a damaged last record was dropped. */
typedef struct {
  uint32_t number;
  int64_t offset, length;
  unsigned char md5[16];
  uint64_t crc_nvme, crc_ecma;
  uint8_t flags, sum_alg;
  char etag[OS_MPU_ETAG_MAX];
  unsigned char sum[OS_MPU_SUM_MAX];
} os_ckpt_record;
int os_ckpt_load(os_ckpt *c, os_ckpt_header *h, int (*part)(void *, const os_ckpt_record *),
                 void *arg, int *torn, char *err, size_t errlen);

/* Replaces the whole file with a header and no records (a new file renamed
 * over the old one, which stays locked by us throughout). */
int os_ckpt_reset(os_ckpt *c, const os_ckpt_header *h, char *err, size_t errlen);

/* Appends the record of part n of m (which must be done) and fsyncs. */
int os_ckpt_append(os_ckpt *c, const os_mpu *m, uint32_t n, char *err, size_t errlen);

/* Unlinks the file (and fsyncs its directory), then closes. */
int os_ckpt_remove(os_ckpt *c, char *err, size_t errlen);

/* Parses a whole checkpoint image (for the fuzzer and tools): same checks as
 * os_ckpt_load. Returns the count of intact records, or -1 when the header
 * is not valid. */
int os_ckpt_parse(const unsigned char *data, size_t len, os_ckpt_header *h,
                  int (*part)(void *, const os_ckpt_record *), void *arg, int *torn);

#endif
