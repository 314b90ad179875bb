/*
 * Digests of many ranges of one file: the parts of a multipart upload,
 * hashed before CreateMultipartUpload (their CRCs give the whole-object CRC
 * stored in its metadata, their MD5s the Content-MD5 of each part). MD5 is
 * most of an upload's CPU time, so MD5 ranges go through the multi-buffer
 * engine eight at a time: each lane reads its range in CHUNK pieces, the
 * CRCs are taken while a piece is hot in the cache, and the lanes advance
 * together over the blocks they all have. See os_hash.h.
 */
#include "os_hash.h"

#include "os_crc.h"
#include "os_md5x.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A multiple of 64, so only a range's last piece leaves a partial block. */
enum { CHUNK = 256 * 1024 };

/* Reads want bytes at pos into buf; a short file is an error. */
static int read_fully(int fd, const char *path, unsigned char *buf, size_t want, long long pos,
                      char *err, size_t errlen) {
  size_t have = 0;
  while (have < want) {
    ssize_t got = pread(fd, buf + have, want - have, (off_t)(pos + (long long)have));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      snprintf(err, errlen, "%s: %s", path,
               got < 0 ? strerror(errno) : "file is shorter than expected");
      return -1;
    }
    have += (size_t)got;
  }
  return 0;
}

/* Up to eight ranges in the lanes of one os_md5x. */
static int md5_lanes(int fd, const char *path, os_hash_range *r, size_t n, unsigned crcs,
                     unsigned char *bufs, char *err, size_t errlen) {
  os_md5x m;
  os_md5x_init(&m);
  long long left[OS_MD5X_LANES], pos[OS_MD5X_LANES];
  unsigned live = 0;
  for (size_t i = 0; i < n; i++) {
    left[i] = r[i].length;
    pos[i] = r[i].offset;
    /* os_crc_update takes and gives finished values (os_crc.h). */
    r[i].crc[0] = os_crc_start(OS_CRC64NVME);
    r[i].crc[1] = os_crc_start(OS_CRC64ECMA);
    live |= 1u << i;
    (void)posix_fadvise(fd, (off_t)r[i].offset, (off_t)r[i].length, POSIX_FADV_SEQUENTIAL);
  }
  while (live != 0) {
    size_t got[OS_MD5X_LANES] = {0}, nb[OS_MD5X_LANES] = {0}, done[OS_MD5X_LANES] = {0};
    unsigned ending = 0;
    for (size_t i = 0; i < n; i++) {
      if (!((live >> i) & 1)) continue;
      unsigned char *buf = bufs + i * CHUNK;
      got[i] = left[i] < CHUNK ? (size_t)left[i] : (size_t)CHUNK;
      if (read_fully(fd, path, buf, got[i], pos[i], err, errlen) != 0) return -1;
      if (crcs & OS_HASH_CRC64NVME)
        r[i].crc[0] = os_crc_update(OS_CRC64NVME, r[i].crc[0], buf, got[i]);
      if (crcs & OS_HASH_CRC64ECMA)
        r[i].crc[1] = os_crc_update(OS_CRC64ECMA, r[i].crc[1], buf, got[i]);
      nb[i] = got[i] / 64;
      left[i] -= (long long)got[i];
      pos[i] += (long long)got[i];
      if (left[i] == 0) ending |= 1u << i;
    }
    /* Full pieces have the same block count; a last piece has fewer. */
    for (;;) {
      const unsigned char *p[OS_MD5X_LANES] = {0};
      size_t k = 0;
      unsigned mask = 0;
      for (size_t i = 0; i < n; i++) {
        if (!((live >> i) & 1) || nb[i] == done[i]) continue;
        size_t rest = nb[i] - done[i];
        if (mask == 0 || rest < k) k = rest;
        mask |= 1u << i;
        p[i] = bufs + i * CHUNK + done[i] * 64;
      }
      if (mask == 0) break;
      os_md5x_blocks(&m, p, k, mask);
      for (size_t i = 0; i < n; i++)
        if ((mask >> i) & 1) done[i] += k;
    }
    if (ending != 0) {
      const unsigned char *tail[OS_MD5X_LANES] = {0};
      size_t tail_len[OS_MD5X_LANES] = {0};
      unsigned char out[OS_MD5X_LANES][16];
      for (size_t i = 0; i < n; i++) {
        if (!((ending >> i) & 1)) continue;
        tail[i] = bufs + i * CHUNK + nb[i] * 64;
        tail_len[i] = got[i] - nb[i] * 64;
      }
      os_md5x_final(&m, tail, tail_len, ending, out);
      for (size_t i = 0; i < n; i++) {
        if (!((ending >> i) & 1)) continue;
        memcpy(r[i].out, out[i], 16);
        r[i].outlen = 16;
      }
      live &= ~ending;
    }
  }
  return 0;
}

int os_hash_ranges(os_hash_alg alg, const char *path, os_hash_range *r, size_t n, unsigned crcs,
                   int single, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (r[i].offset < 0 || r[i].length < 0) {
      snprintf(err, errlen, "offset and length must not be negative");
      return -1;
    }
  }
  if (alg != OS_HASH_MD5 || single || !os_md5x_available() || n < 2) {
    for (size_t i = 0; i < n; i++) {
      if (os_hash_file_crc(alg, path, r[i].offset, r[i].length, crcs, r[i].out, &r[i].outlen,
                           r[i].crc, err, errlen) != 0)
        return -1;
    }
    return 0;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  unsigned char *bufs = malloc((size_t)CHUNK * OS_MD5X_LANES);
  int rc = 0;
  if (bufs == NULL) {
    snprintf(err, errlen, "out of memory");
    rc = -1;
  }
  for (size_t i = 0; rc == 0 && i < n; i += OS_MD5X_LANES) {
    size_t lanes = n - i < OS_MD5X_LANES ? n - i : OS_MD5X_LANES;
    rc = md5_lanes(fd, path, r + i, lanes, crcs, bufs, err, errlen);
  }
  free(bufs);
  close(fd);
  return rc;
}
