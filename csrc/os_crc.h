/*
 * Reflected CRCs of width 32 and 64 (CRC-32, CRC-32C, CRC-64/XZ a.k.a. the
 * ECMA form OSS uses, CRC-64/NVME), with streaming update and combine.
 *
 * Every value that crosses this API is the *finalised* CRC (after xorout), as
 * zlib's crc32() does: os_crc_update(k, os_crc_start(k), ...) begins a
 * message, and feeding a previous result back in continues it, so an OSS
 * append can resume from the object's x-oss-hash-crc64ecma. For all kinds
 * here init == xorout, so os_crc_start() is 0.
 *
 * Pure C (no Lua); thread-safe: tables and CPU dispatch are set up once, on
 * first use, behind pthread_once.
 */
#ifndef OBJSTORE_OS_CRC_H
#define OBJSTORE_OS_CRC_H

#include <stddef.h>
#include <stdint.h>

/* X-macro: kind, name, width, reflected polynomial, init, xorout, check value
 * (CRC of ASCII "123456789", RevEng catalogue). */
#define OS_CRC_KINDS(X)                                                                      \
  X(OS_CRC32, "crc32", 32, 0xEDB88320u, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xCBF43926u)               \
  X(OS_CRC32C, "crc32c", 32, 0x82F63B78u, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xE3069283u)             \
  X(OS_CRC64ECMA, "crc64ecma", 64, UINT64_C(0xC96C5795D7870F42), ~UINT64_C(0), ~UINT64_C(0), \
    UINT64_C(0x995DC9BBDF1939FA))                                                            \
  X(OS_CRC64NVME, "crc64nvme", 64, UINT64_C(0x9A6C9329AC4BC9B5), ~UINT64_C(0), ~UINT64_C(0), \
    UINT64_C(0xAE8B14860A799888))

typedef enum {
#define OS_CRC_ENUM_(kind, name, width, poly, init, xorout, check) kind,
  OS_CRC_KINDS(OS_CRC_ENUM_)
#undef OS_CRC_ENUM_
      OS_CRC_KIND_COUNT
} os_crc_kind;

/* Ways to compute a CRC. OS_CRC_IMPL_BEST picks the fastest available one. */
typedef enum {
  OS_CRC_IMPL_BEST = 0,
  OS_CRC_IMPL_TABLE,  /* portable slicing-by-8 */
  OS_CRC_IMPL_SSE42,  /* x86 crc32 instruction; CRC-32C only */
  OS_CRC_IMPL_PCLMUL, /* x86 carry-less multiply folding; any kind */
  OS_CRC_IMPL_COUNT
} os_crc_impl;

typedef struct {
  const char *name;
  unsigned width; /* 32 or 64 */
  uint64_t poly;  /* reflected */
  uint64_t init;
  uint64_t xorout;
  uint64_t check;
} os_crc_params;

/* Parameters of kind, or NULL when kind is out of range. */
const os_crc_params *os_crc_params_of(os_crc_kind kind);

/* Looks a kind up by its lower-case name ("crc32", "crc64ecma", ...).
 * Returns 0 and sets *kind, or -1 when the name is unknown. */
int os_crc_kind_from_name(const char *name, os_crc_kind *kind);

/* Finalised CRC of the empty message: the value to start from. */
uint64_t os_crc_start(os_crc_kind kind);

/* Continues the finalised CRC crc over buf[0..len) with the fastest code. */
uint64_t os_crc_update(os_crc_kind kind, uint64_t crc, const void *buf, size_t len);

/* Same with a chosen implementation, for tests and benchmarks. Returns 0 and
 * sets *out, or -1 when impl is not available for kind on this CPU. */
int os_crc_update_impl(os_crc_kind kind, os_crc_impl impl, uint64_t crc, const void *buf,
                       size_t len, uint64_t *out);

/* Whether impl can compute kind on this machine. */
int os_crc_impl_available(os_crc_kind kind, os_crc_impl impl);

/* The implementation os_crc_update uses for kind (never OS_CRC_IMPL_BEST). */
os_crc_impl os_crc_best_impl(os_crc_kind kind);

/* "best", "table", "sse4.2", "pclmul"; NULL when out of range. */
const char *os_crc_impl_name(os_crc_impl impl);

/* CRC of A||B from crc1 = CRC(A), crc2 = CRC(B) and len2 = |B| in bytes,
 * in O(log len2) without touching the data (zlib's crc32_combine, any width). */
uint64_t os_crc_combine(os_crc_kind kind, uint64_t crc1, uint64_t crc2, uint64_t len2);

/* Big-endian byte form (what S3 base64-encodes): writes width/8 bytes to out
 * and returns that count. */
size_t os_crc_to_bytes(os_crc_kind kind, uint64_t crc, unsigned char *out);

/* Inverse of os_crc_to_bytes: len must be exactly width/8. Returns 0 or -1. */
int os_crc_from_bytes(os_crc_kind kind, const unsigned char *in, size_t len, uint64_t *crc);

/* Unsigned decimal (the x-oss-hash-crc64ecma header form). out must hold 21
 * bytes; returns the string length. */
size_t os_crc_to_decimal(uint64_t value, char *out);

/* Parses an unsigned decimal of len bytes that must fit in width bits.
 * Returns 0 or -1 (empty, non-digit, or overflow). */
int os_crc_from_decimal(const char *s, size_t len, unsigned width, uint64_t *value);

#endif
