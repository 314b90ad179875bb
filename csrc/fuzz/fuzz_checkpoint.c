/*
 * libFuzzer target: the checkpoint loader of os_ckpt.c. Properties (abort()
 * on a violation):
 *   - os_ckpt_parse never crashes on any bytes and never reports more
 *     records than fit in the input;
 *   - a prefix of an input never has more intact records than the input
 *     (a torn tail only ever loses records);
 *   - records applied to a multipart state through os_mpu_mark_done leave
 *     the state consistent: done count <= parts, bytes done <= size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../os_ckpt.h"
#include "../os_mpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int apply(void *arg, const os_ckpt_record *r) {
  os_mpu *m = arg;
  os_mpu_part *p = os_mpu_part_of(m, r->number);
  if (p == NULL || p->offset != r->offset || p->length != r->length) return 0;
  const char *code;
  char err[128];
  (void)os_mpu_mark_done(m, r->number, r->etag[0] ? r->etag : NULL,
                         (r->flags & OS_PART_HAS_MD5) ? r->md5 : NULL, &r->crc_nvme, &r->crc_ecma,
                         &code, err, sizeof err);
  if (r->flags & OS_PART_HAS_SUM)
    (void)os_mpu_set_sum(m, r->number, (os_sum_alg)r->sum_alg, r->sum,
                         os_mpu_sum_size((os_sum_alg)r->sum_alg), r->flags & OS_PART_SUM_VERIFIED,
                         err, sizeof err);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static os_ckpt_header h; /* large: not on the stack */
  int torn = 0;
  int n = os_ckpt_parse(data, size, &h, NULL, NULL, &torn);
  if (n < -1 || (n > 0 && (size_t)n * OS_CKPT_RECORD_SIZE > size)) abort();
  if (n >= 0) {
    size_t cut = size > 0 ? (size_t)data[size - 1] * 37 % size : 0;
    int m = os_ckpt_parse(data, cut, &h, NULL, NULL, &torn);
    if (m > n) abort();
    os_mpu st = {0};
    char err[128];
    if (os_mpu_init(&st, 64 * 1024, 1024, OS_MPU_MAX_PARTS, err, sizeof err) == 0) {
      (void)os_ckpt_parse(data, size, &h, apply, &st, &torn);
      if (os_mpu_count_done(&st) > st.count || os_mpu_bytes_done(&st) > st.size) abort();
      os_buf b = {0};
      (void)os_mpu_complete_body(&st, NULL, OS_SUM_NONE, &b, err, sizeof err);
      os_buf_free(&b);
      b = (os_buf){0};
      (void)os_mpu_complete_body(&st, NULL, OS_SUM_CRC32C, &b, err, sizeof err);
      os_buf_free(&b);
      os_mpu_free(&st);
    }
  }
  return 0;
}
