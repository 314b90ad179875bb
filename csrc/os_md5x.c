/*
 * Multi-buffer MD5 on AVX2; see os_md5x.h. RFC 1321 with eight messages in
 * the eight 32-bit lanes of a register: lane i of every vector belongs to
 * message i. The message words of a block are loaded as eight rows of eight
 * words (one row per lane) and transposed, so word k of all lanes is one
 * vector. Inactive lanes read a zero block and get their old state back.
 */
#include "os_md5x.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define OS_MD5X_X86 1
#include <immintrin.h>
#else
#define OS_MD5X_X86 0
#endif

/* T[i] = floor(|sin(i + 1)| * 2^32), RFC 1321 section 3.4. */
static const uint32_t T[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint32_t IV[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

void os_md5x_init(os_md5x *m) {
  for (int j = 0; j < 4; j++)
    for (int i = 0; i < OS_MD5X_LANES; i++) m->h[j][i] = IV[j];
  memset(m->bytes, 0, sizeof m->bytes);
}

#if OS_MD5X_X86

#define TARGET __attribute__((target("avx2")))

static const unsigned char zero_block[64];

int os_md5x_available(void) {
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  return cached;
}

#define ROTL(x, s) _mm256_or_si256(_mm256_slli_epi32((x), (s)), _mm256_srli_epi32((x), 32 - (s)))
#define F(b, c, d) _mm256_xor_si256((d), _mm256_and_si256((b), _mm256_xor_si256((c), (d))))
#define G(b, c, d) _mm256_xor_si256((c), _mm256_and_si256((d), _mm256_xor_si256((b), (c))))
#define H(b, c, d) _mm256_xor_si256(_mm256_xor_si256((b), (c)), (d))
#define I(b, c, d) _mm256_xor_si256((c), _mm256_or_si256((b), _mm256_xor_si256((d), ones)))
/* a = b + ((a + f(b, c, d) + X[k] + T[i]) <<< s) */
#define STEP(f, a, b, c, d, k, i, s)                                                  \
  a = _mm256_add_epi32(                                                               \
      b, ROTL(_mm256_add_epi32(_mm256_add_epi32(a, f(b, c, d)),                       \
                               _mm256_add_epi32(w[k], _mm256_set1_epi32((int)T[i]))), \
              s))

/* Rows r[0..7] (row i: eight consecutive words of lane i) into columns:
 * out[k] holds word k of every lane. */
TARGET static inline void transpose8(const __m256i r[8], __m256i out[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int k = 0; k < 4; k++) {
    out[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
    out[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
  }
}

TARGET static void blocks_avx2(os_md5x *m, const unsigned char *const p[OS_MD5X_LANES],
                               size_t nblocks, unsigned mask) {
  const unsigned char *q[OS_MD5X_LANES];
  size_t stride[OS_MD5X_LANES];
  uint32_t keep[OS_MD5X_LANES];
  for (int i = 0; i < OS_MD5X_LANES; i++) {
    int on = (mask >> i) & 1;
    q[i] = on ? p[i] : zero_block;
    stride[i] = on ? 64 : 0;
    keep[i] = on ? 0xffffffffu : 0;
    if (on) m->bytes[i] += (uint64_t)nblocks * 64;
  }
  const __m256i ones = _mm256_set1_epi32(-1);
  const __m256i sel = _mm256_loadu_si256((const __m256i *)keep);
  const __m256i a0 = _mm256_loadu_si256((const __m256i *)m->h[0]);
  const __m256i b0 = _mm256_loadu_si256((const __m256i *)m->h[1]);
  const __m256i c0 = _mm256_loadu_si256((const __m256i *)m->h[2]);
  const __m256i d0 = _mm256_loadu_si256((const __m256i *)m->h[3]);
  __m256i a = a0, b = b0, c = c0, d = d0;
  for (size_t n = 0; n < nblocks; n++) {
    __m256i lo[8], hi[8], w[16];
    for (int i = 0; i < 8; i++) {
      const unsigned char *s = q[i] + n * stride[i];
      lo[i] = _mm256_loadu_si256((const __m256i *)s);
      hi[i] = _mm256_loadu_si256((const __m256i *)(s + 32));
    }
    transpose8(lo, w);
    transpose8(hi, w + 8);
    const __m256i sa = a, sb = b, sc = c, sd = d;
    STEP(F, a, b, c, d, 0, 0, 7);
    STEP(F, d, a, b, c, 1, 1, 12);
    STEP(F, c, d, a, b, 2, 2, 17);
    STEP(F, b, c, d, a, 3, 3, 22);
    STEP(F, a, b, c, d, 4, 4, 7);
    STEP(F, d, a, b, c, 5, 5, 12);
    STEP(F, c, d, a, b, 6, 6, 17);
    STEP(F, b, c, d, a, 7, 7, 22);
    STEP(F, a, b, c, d, 8, 8, 7);
    STEP(F, d, a, b, c, 9, 9, 12);
    STEP(F, c, d, a, b, 10, 10, 17);
    STEP(F, b, c, d, a, 11, 11, 22);
    STEP(F, a, b, c, d, 12, 12, 7);
    STEP(F, d, a, b, c, 13, 13, 12);
    STEP(F, c, d, a, b, 14, 14, 17);
    STEP(F, b, c, d, a, 15, 15, 22);
    STEP(G, a, b, c, d, 1, 16, 5);
    STEP(G, d, a, b, c, 6, 17, 9);
    STEP(G, c, d, a, b, 11, 18, 14);
    STEP(G, b, c, d, a, 0, 19, 20);
    STEP(G, a, b, c, d, 5, 20, 5);
    STEP(G, d, a, b, c, 10, 21, 9);
    STEP(G, c, d, a, b, 15, 22, 14);
    STEP(G, b, c, d, a, 4, 23, 20);
    STEP(G, a, b, c, d, 9, 24, 5);
    STEP(G, d, a, b, c, 14, 25, 9);
    STEP(G, c, d, a, b, 3, 26, 14);
    STEP(G, b, c, d, a, 8, 27, 20);
    STEP(G, a, b, c, d, 13, 28, 5);
    STEP(G, d, a, b, c, 2, 29, 9);
    STEP(G, c, d, a, b, 7, 30, 14);
    STEP(G, b, c, d, a, 12, 31, 20);
    STEP(H, a, b, c, d, 5, 32, 4);
    STEP(H, d, a, b, c, 8, 33, 11);
    STEP(H, c, d, a, b, 11, 34, 16);
    STEP(H, b, c, d, a, 14, 35, 23);
    STEP(H, a, b, c, d, 1, 36, 4);
    STEP(H, d, a, b, c, 4, 37, 11);
    STEP(H, c, d, a, b, 7, 38, 16);
    STEP(H, b, c, d, a, 10, 39, 23);
    STEP(H, a, b, c, d, 13, 40, 4);
    STEP(H, d, a, b, c, 0, 41, 11);
    STEP(H, c, d, a, b, 3, 42, 16);
    STEP(H, b, c, d, a, 6, 43, 23);
    STEP(H, a, b, c, d, 9, 44, 4);
    STEP(H, d, a, b, c, 12, 45, 11);
    STEP(H, c, d, a, b, 15, 46, 16);
    STEP(H, b, c, d, a, 2, 47, 23);
    STEP(I, a, b, c, d, 0, 48, 6);
    STEP(I, d, a, b, c, 7, 49, 10);
    STEP(I, c, d, a, b, 14, 50, 15);
    STEP(I, b, c, d, a, 5, 51, 21);
    STEP(I, a, b, c, d, 12, 52, 6);
    STEP(I, d, a, b, c, 3, 53, 10);
    STEP(I, c, d, a, b, 10, 54, 15);
    STEP(I, b, c, d, a, 1, 55, 21);
    STEP(I, a, b, c, d, 8, 56, 6);
    STEP(I, d, a, b, c, 15, 57, 10);
    STEP(I, c, d, a, b, 6, 58, 15);
    STEP(I, b, c, d, a, 13, 59, 21);
    STEP(I, a, b, c, d, 4, 60, 6);
    STEP(I, d, a, b, c, 11, 61, 10);
    STEP(I, c, d, a, b, 2, 62, 15);
    STEP(I, b, c, d, a, 9, 63, 21);
    a = _mm256_add_epi32(a, sa);
    b = _mm256_add_epi32(b, sb);
    c = _mm256_add_epi32(c, sc);
    d = _mm256_add_epi32(d, sd);
  }
  /* Lanes off the mask get their state back. */
  _mm256_storeu_si256((__m256i *)m->h[0], _mm256_blendv_epi8(a0, a, sel));
  _mm256_storeu_si256((__m256i *)m->h[1], _mm256_blendv_epi8(b0, b, sel));
  _mm256_storeu_si256((__m256i *)m->h[2], _mm256_blendv_epi8(c0, c, sel));
  _mm256_storeu_si256((__m256i *)m->h[3], _mm256_blendv_epi8(d0, d, sel));
}

void os_md5x_blocks(os_md5x *m, const unsigned char *const p[OS_MD5X_LANES], size_t nblocks,
                    unsigned mask) {
  if (nblocks > 0 && (mask & 0xffu) != 0) blocks_avx2(m, p, nblocks, mask & 0xffu);
}

#else /* no x86-64: callers hash one message at a time with OpenSSL */

int os_md5x_available(void) {
  return 0;
}

void os_md5x_blocks(os_md5x *m, const unsigned char *const p[OS_MD5X_LANES], size_t nblocks,
                    unsigned mask) {
  (void)m, (void)p, (void)nblocks, (void)mask;
}

#endif

void os_md5x_final(os_md5x *m, const unsigned char *const tail[OS_MD5X_LANES],
                   const size_t tail_len[OS_MD5X_LANES], unsigned mask,
                   unsigned char out[OS_MD5X_LANES][16]) {
  /* The padding: 0x80, zeros, the length in bits (64-bit little-endian)
   * ending a block; one block when 9 more bytes fit, else two. */
  unsigned char pad[OS_MD5X_LANES][128];
  const unsigned char *first[OS_MD5X_LANES], *second[OS_MD5X_LANES];
  unsigned two = 0;
  for (int i = 0; i < OS_MD5X_LANES; i++) {
    first[i] = second[i] = pad[i];
    if (!((mask >> i) & 1)) continue;
    size_t n = tail_len[i];
    uint64_t bits = (m->bytes[i] + n) * 8;
    size_t total = n + 9 <= 64 ? 64 : 128;
    memset(pad[i], 0, total);
    if (n > 0) memcpy(pad[i], tail[i], n);
    pad[i][n] = 0x80;
    for (int k = 0; k < 8; k++) pad[i][total - 8 + k] = (unsigned char)(bits >> (8 * k));
    if (total == 128) {
      two |= 1u << i;
      second[i] = pad[i] + 64;
    }
  }
  os_md5x_blocks(m, first, 1, mask);
  os_md5x_blocks(m, second, 1, two);
  for (int i = 0; i < OS_MD5X_LANES; i++) {
    if (!((mask >> i) & 1)) continue;
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 4; k++) out[i][4 * j + k] = (unsigned char)(m->h[j][i] >> (8 * k));
  }
}
