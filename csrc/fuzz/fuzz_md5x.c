/*
 * libFuzzer target: the multi-buffer MD5 of os_md5x.c against OpenSSL.
 * The input is cut into up to eight messages (lengths from its first
 * bytes); the lanes are driven the way os_hash_ranges drives them (rounds
 * of the blocks all active lanes have, lanes ending at different blocks,
 * a lane mask from the input) and each digest must equal EVP_Digest's.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../os_md5x.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!os_md5x_available() || size < 9) return 0;
  unsigned mask = data[0];
  const uint8_t *rest = data + 9;
  size_t left = size - 9;
  const unsigned char *msg[OS_MD5X_LANES];
  size_t len[OS_MD5X_LANES];
  for (int i = 0; i < OS_MD5X_LANES; i++) {
    /* lane i takes data[1 + i] * 8 bytes (or what is left) of the rest */
    size_t want = (size_t)data[1 + i] * 8;
    len[i] = want < left ? want : left;
    msg[i] = rest;
    rest += len[i];
    left -= len[i];
  }
  os_md5x m;
  os_md5x_init(&m);
  size_t done[OS_MD5X_LANES] = {0};
  for (;;) {
    const unsigned char *p[OS_MD5X_LANES] = {0};
    size_t k = 0;
    unsigned on = 0;
    for (int i = 0; i < OS_MD5X_LANES; i++) {
      size_t blocks = (len[i] - done[i]) / 64;
      if (!((mask >> i) & 1) || blocks == 0) continue;
      if (on == 0 || blocks < k) k = blocks;
      on |= 1u << i;
      p[i] = msg[i] + done[i];
    }
    if (on == 0) break;
    os_md5x_blocks(&m, p, k, on);
    for (int i = 0; i < OS_MD5X_LANES; i++)
      if ((on >> i) & 1) done[i] += k * 64;
  }
  const unsigned char *tail[OS_MD5X_LANES];
  size_t tail_len[OS_MD5X_LANES];
  unsigned char out[OS_MD5X_LANES][16];
  for (int i = 0; i < OS_MD5X_LANES; i++) {
    tail[i] = msg[i] + done[i];
    tail_len[i] = len[i] - done[i];
  }
  os_md5x_final(&m, tail, tail_len, mask, out);
  for (int i = 0; i < OS_MD5X_LANES; i++) {
    if (!((mask >> i) & 1)) continue;
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(msg[i], len[i], want, &n, EVP_md5(), NULL)) abort();
    if (n != 16 || memcmp(want, out[i], 16) != 0) abort();
  }
  return 0;
}
