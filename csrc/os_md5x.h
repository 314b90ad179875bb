/*
 * MD5 of up to eight independent messages at once (multi-buffer MD5).
 *
 * One MD5 stream is a chain of dependent 32-bit operations: OpenSSL's
 * assembly runs it at about 5 cycles a byte and no single-stream code can
 * do much better. The parts of a multipart upload are independent messages
 * of (mostly) the same length, so their MD5s can advance in lock step, one
 * message per 32-bit lane of an AVX2 register: the same instruction count
 * per block hashes eight blocks. This engine is only the block function
 * over lanes plus the padding; os_hash_ranges (os_hash.h) drives it over
 * file ranges. Without AVX2 (or off x86-64) os_md5x_available() is 0 and
 * callers use OpenSSL one message at a time.
 */
#ifndef OS_MD5X_H
#define OS_MD5X_H

#include <stddef.h>
#include <stdint.h>

#define OS_MD5X_LANES 8

typedef struct {
  uint32_t h[4][OS_MD5X_LANES];  /* A, B, C, D of each lane */
  uint64_t bytes[OS_MD5X_LANES]; /* message length so far, for the padding */
} os_md5x;

/* 1 when the CPU runs the multi-lane engine (checked once). */
int os_md5x_available(void);

void os_md5x_init(os_md5x *m);

/* Runs nblocks 64-byte blocks of each lane whose bit is set in mask, lane i
 * reading p[i] (nblocks * 64 bytes); other lanes keep their state and their
 * p[i] is not read. Only when os_md5x_available(). */
void os_md5x_blocks(os_md5x *m, const unsigned char *const p[OS_MD5X_LANES], size_t nblocks,
                    unsigned mask);

/* Ends the lanes in mask: lane i's last tail_len[i] (< 64) bytes are
 * tail[i]; writes the 16-byte digest of lane i to out[i]. */
void os_md5x_final(os_md5x *m, const unsigned char *const tail[OS_MD5X_LANES],
                   const size_t tail_len[OS_MD5X_LANES], unsigned mask,
                   unsigned char out[OS_MD5X_LANES][16]);

#endif
