/*
 * Multipart transfer state: see os_mpu.h.
 */
#include "os_mpu.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlwriter.h>

#include "os_crc.h"
#include "os_encode.h"
#include "os_hash.h"

static const struct {
  const char *name, *xml;
  size_t size;
} SUMS[OS_SUM_COUNT] = {
    {"", "", 0},
    {"crc32", "ChecksumCRC32", 4},
    {"crc32c", "ChecksumCRC32C", 4},
    {"crc64nvme", "ChecksumCRC64NVME", 8},
    {"sha1", "ChecksumSHA1", 20},
    {"sha256", "ChecksumSHA256", 32},
};

os_sum_alg os_mpu_sum_alg(const char *name) {
  for (int i = 1; name != NULL && i < OS_SUM_COUNT; i++)
    if (strcmp(name, SUMS[i].name) == 0) return (os_sum_alg)i;
  return OS_SUM_NONE;
}

const char *os_mpu_sum_name(os_sum_alg alg) {
  return alg > OS_SUM_NONE && alg < OS_SUM_COUNT ? SUMS[alg].name : NULL;
}

size_t os_mpu_sum_size(os_sum_alg alg) {
  return alg > OS_SUM_NONE && alg < OS_SUM_COUNT ? SUMS[alg].size : 0;
}

int os_mpu_init(os_mpu *m, int64_t size, int64_t part_size, uint32_t max_parts, char *err,
                size_t errlen) {
  if (part_size <= 0 || max_parts == 0 || max_parts > OS_MPU_MAX_PARTS || size < -1) {
    snprintf(err, errlen, "part size must be > 0 and the part limit 1..%d", OS_MPU_MAX_PARTS);
    return -1;
  }
  uint32_t count = 0, cap = max_parts;
  if (size >= 0) {
    int64_t n = size == 0 ? 1 : (size + part_size - 1) / part_size;
    if (n > (int64_t)max_parts) {
      snprintf(err, errlen,
               "%" PRId64 " bytes in parts of %" PRId64 " need %" PRId64 " parts (the limit is %u)",
               size, part_size, n, max_parts);
      return -1;
    }
    count = cap = (uint32_t)n;
  }
  m->parts = calloc(cap, sizeof *m->parts);
  if (m->parts == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  m->size = size;
  m->part_size = part_size;
  m->count = count;
  m->cap = cap;
  m->cursor = 0;
  for (uint32_t i = 0; i < count; i++) {
    int64_t off = (int64_t)i * part_size;
    m->parts[i].offset = off;
    m->parts[i].length = size - off < part_size ? size - off : part_size;
  }
  return 0;
}

void os_mpu_free(os_mpu *m) {
  free(m->parts);
  free(m->sums);
  m->parts = NULL;
  m->sums = NULL;
  m->count = m->cap = 0;
}

uint32_t os_mpu_add(os_mpu *m, int64_t length) {
  if (m->size >= 0 || m->count >= m->cap || length < 0) return 0;
  os_mpu_part *p = &m->parts[m->count];
  p->offset = m->count == 0 ? 0 : m->parts[m->count - 1].offset + m->parts[m->count - 1].length;
  p->length = length;
  return ++m->count;
}

os_mpu_part *os_mpu_part_of(os_mpu *m, uint32_t n) {
  return n >= 1 && n <= m->count ? &m->parts[n - 1] : NULL;
}

uint32_t os_mpu_next_pending(os_mpu *m) {
  /* Parts before the cursor are all in flight or done, so the common case
   * (parts taken in order) is O(1); a failed part moves the cursor back. */
  for (uint32_t i = m->cursor; i < m->count; i++) {
    uint8_t st = m->parts[i].state;
    if (st == OS_PART_PENDING || st == OS_PART_FAILED) {
      m->cursor = i;
      return i + 1;
    }
  }
  m->cursor = m->count;
  return 0;
}

static int bad_part(uint32_t n, const os_mpu *m, const char **code, char *err, size_t errlen) {
  *code = "InvalidArgument";
  snprintf(err, errlen, "part %u is not in the plan (1..%u)", n, m->count);
  return -1;
}

int os_mpu_set_state(os_mpu *m, uint32_t n, os_part_state st, const char **code, char *err,
                     size_t errlen) {
  os_mpu_part *p = os_mpu_part_of(m, n);
  if (p == NULL) return bad_part(n, m, code, err, errlen);
  p->state = (uint8_t)st;
  if (st == OS_PART_PENDING || st == OS_PART_FAILED) {
    /* The digests stay: they describe the local bytes, not the attempt. */
    p->etag[0] = '\0';
    if (n - 1 < m->cursor) m->cursor = n - 1;
  }
  return 0;
}

/* The 32 hex digits of an ETag that is a plain MD5 ("abc…" or "\"abc…\""),
 * or NULL for any other form. */
static const char *md5_hex_of(const char *etag) {
  size_t len = strlen(etag);
  const char *s = etag;
  if (len == 34 && s[0] == '"' && s[33] == '"') {
    s++;
    len -= 2;
  }
  if (len != 32) return NULL;
  for (size_t i = 0; i < 32; i++)
    if (!isxdigit((unsigned char)s[i])) return NULL;
  return s;
}

int os_mpu_etag_is_md5(const char *etag, const unsigned char *md5) {
  const char *hex = md5_hex_of(etag);
  if (hex == NULL) return 0;
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    if (tolower((unsigned char)hex[2 * i]) != digits[md5[i] >> 4] ||
        tolower((unsigned char)hex[2 * i + 1]) != digits[md5[i] & 15])
      return 0;
  }
  return 1;
}

int os_mpu_mark_done(os_mpu *m, uint32_t n, const char *etag, const unsigned char *md5,
                     const uint64_t *nvme, const uint64_t *ecma, const char **code, char *err,
                     size_t errlen) {
  os_mpu_part *p = os_mpu_part_of(m, n);
  if (p == NULL) return bad_part(n, m, code, err, errlen);
  if (md5 == NULL && (p->flags & OS_PART_HAS_MD5)) md5 = p->md5;
  char quoted[40];
  if (etag == NULL) {
    if (md5 == NULL) {
      *code = "MalformedResponse";
      snprintf(err, errlen, "no ETag for part %u", n);
      return -1;
    }
    static const char digits[] = "0123456789abcdef";
    quoted[0] = '"';
    for (int i = 0; i < 16; i++) {
      quoted[1 + 2 * i] = digits[md5[i] >> 4];
      quoted[2 + 2 * i] = digits[md5[i] & 15];
    }
    quoted[33] = '"';
    quoted[34] = '\0';
    etag = quoted;
  }
  size_t elen = strlen(etag);
  if (elen >= OS_MPU_ETAG_MAX) {
    *code = "MalformedResponse";
    snprintf(err, errlen, "ETag of part %u is %zu bytes (at most %d kept)", n, elen,
             OS_MPU_ETAG_MAX - 1);
    return -1;
  }
  if (!m->etag_not_md5 && md5 != NULL && md5_hex_of(etag) != NULL &&
      !os_mpu_etag_is_md5(etag, md5)) {
    *code = "BadDigest";
    snprintf(err, errlen, "part %u ETag %s is not the MD5 of its bytes", n, etag);
    return -1;
  }
  memmove(p->etag, etag, elen + 1);
  os_mpu_set_digests(m, n, md5, nvme, ecma);
  p->state = OS_PART_DONE;
  return 0;
}

void os_mpu_set_digests(os_mpu *m, uint32_t n, const unsigned char *md5, const uint64_t *nvme,
                        const uint64_t *ecma) {
  os_mpu_part *p = os_mpu_part_of(m, n);
  if (p == NULL) return;
  if (md5 != NULL) {
    memmove(p->md5, md5, 16);
    p->flags |= OS_PART_HAS_MD5;
  }
  if (nvme != NULL) {
    p->crc_nvme = *nvme;
    p->flags |= OS_PART_HAS_NVME;
  }
  if (ecma != NULL) {
    p->crc_ecma = *ecma;
    p->flags |= OS_PART_HAS_ECMA;
  }
}

int os_mpu_set_sum(os_mpu *m, uint32_t n, os_sum_alg alg, const unsigned char *value, size_t len,
                   int verified, char *err, size_t errlen) {
  os_mpu_part *p = os_mpu_part_of(m, n);
  if (p == NULL) {
    snprintf(err, errlen, "part %u is not in the plan (1..%u)", n, m->count);
    return -1;
  }
  p->flags &= (uint8_t) ~(OS_PART_HAS_SUM | OS_PART_SUM_VERIFIED);
  if (alg == OS_SUM_NONE) return 0;
  if (alg >= OS_SUM_COUNT || len != SUMS[alg].size) {
    snprintf(err, errlen, "a %s checksum is %zu bytes, got %zu",
             alg < OS_SUM_COUNT ? SUMS[alg].name : "?", alg < OS_SUM_COUNT ? SUMS[alg].size : 0,
             len);
    return -1;
  }
  if (m->sums == NULL && (m->sums = calloc(m->cap, sizeof *m->sums)) == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  os_mpu_sum *s = &m->sums[n - 1];
  memset(s->value, 0, sizeof s->value);
  memcpy(s->value, value, len);
  s->alg = (uint8_t)alg;
  p->flags |= (uint8_t)(OS_PART_HAS_SUM | (verified ? OS_PART_SUM_VERIFIED : 0));
  return 0;
}

const os_mpu_sum *os_mpu_sum_of(const os_mpu *m, uint32_t n) {
  if (n < 1 || n > m->count || m->sums == NULL || !(m->parts[n - 1].flags & OS_PART_HAS_SUM))
    return NULL;
  return &m->sums[n - 1];
}

size_t os_mpu_bytes(const os_mpu *m) {
  return sizeof *m + (size_t)m->cap * sizeof *m->parts +
         (m->sums != NULL ? (size_t)m->cap * sizeof *m->sums : 0);
}

uint32_t os_mpu_count_done(const os_mpu *m) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < m->count; i++) n += m->parts[i].state == OS_PART_DONE;
  return n;
}

int64_t os_mpu_bytes_done(const os_mpu *m) {
  int64_t n = 0;
  for (uint32_t i = 0; i < m->count; i++)
    if (m->parts[i].state == OS_PART_DONE) n += m->parts[i].length;
  return n;
}

int os_mpu_combined_crc(const os_mpu *m, int which, int all, uint64_t *out) {
  os_crc_kind kind = which == OS_PART_HAS_ECMA ? OS_CRC64ECMA : OS_CRC64NVME;
  uint64_t crc = os_crc_start(kind);
  for (uint32_t i = 0; i < m->count; i++) {
    const os_mpu_part *p = &m->parts[i];
    if (!all && p->state != OS_PART_DONE) continue;
    if (!(p->flags & which)) return -1;
    crc = os_crc_combine(kind, crc, which == OS_PART_HAS_ECMA ? p->crc_ecma : p->crc_nvme,
                         (uint64_t)p->length);
  }
  *out = crc;
  return 0;
}

int os_mpu_multipart_etag(const os_mpu *m, char *out, size_t outlen) {
  os_hash h = {0};
  unsigned char d[OS_HASH_MAX_SIZE];
  size_t dlen = 0;
  int rc = -1;
  if (m->count == 0 || os_hash_init(&h, OS_HASH_MD5) != 0) goto done;
  for (uint32_t i = 0; i < m->count; i++) {
    const os_mpu_part *p = &m->parts[i];
    if (p->state != OS_PART_DONE || !(p->flags & OS_PART_HAS_MD5)) goto done;
    if (os_hash_update(&h, p->md5, 16) != 0) goto done;
  }
  if (os_hash_final(&h, d, &dlen) != 0) goto done;
  char hex[33];
  for (size_t i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
  if ((size_t)snprintf(out, outlen, "%s-%u", hex, m->count) >= outlen) goto done;
  rc = 0;
done:
  os_hash_free(&h);
  return rc;
}

/* Writes <Checksum<ALG>>base64</…> of a part's checksum s. */
static int write_sum(xmlTextWriterPtr w, const os_mpu_sum *s) {
  char b64[64]; /* base64 of OS_MPU_SUM_MAX bytes: 44 + NUL */
  os_base64_to(b64, s->value, SUMS[s->alg].size);
  return xmlTextWriterWriteElement(w, (const xmlChar *)SUMS[s->alg].xml, (const xmlChar *)b64) >= 0;
}

int os_mpu_complete_body(const os_mpu *m, const char *ns, os_sum_alg sum, os_buf *out, char *err,
                         size_t errlen) {
  if (sum >= OS_SUM_COUNT) {
    snprintf(err, errlen, "unknown checksum algorithm");
    return -1;
  }
  for (uint32_t i = 0; i < m->count; i++) {
    const os_mpu_part *p = &m->parts[i];
    if (p->state != OS_PART_DONE) {
      snprintf(err, errlen, "part %u is not done", i + 1);
      return -1;
    }
    const os_mpu_sum *s = os_mpu_sum_of(m, i + 1);
    if (sum != OS_SUM_NONE && (s == NULL || s->alg != sum)) {
      snprintf(err, errlen, "part %u has no %s checksum", i + 1, SUMS[sum].name);
      return -1;
    }
  }
  xmlBufferPtr xb = xmlBufferCreate();
  xmlTextWriterPtr w = xb ? xmlNewTextWriterMemory(xb, 0) : NULL;
  int ok = w != NULL;
  ok = ok && xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) >= 0;
  ok = ok && xmlTextWriterStartElement(w, BAD_CAST "CompleteMultipartUpload") >= 0;
  if (ok && ns != NULL)
    ok = xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", (const xmlChar *)ns) >= 0;
  for (uint32_t i = 0; ok && i < m->count; i++) {
    ok = xmlTextWriterStartElement(w, BAD_CAST "Part") >= 0 &&
         xmlTextWriterWriteFormatElement(w, BAD_CAST "PartNumber", "%u", i + 1) >= 0 &&
         xmlTextWriterWriteElement(w, BAD_CAST "ETag", (const xmlChar *)m->parts[i].etag) >= 0 &&
         (sum == OS_SUM_NONE || write_sum(w, os_mpu_sum_of(m, i + 1))) &&
         xmlTextWriterEndElement(w) >= 0;
  }
  ok = ok && xmlTextWriterEndDocument(w) >= 0;
  if (w != NULL) xmlFreeTextWriter(w); /* flushes into xb */
  if (ok) {
    os_buf_add(out, xmlBufferContent(xb), (size_t)xmlBufferLength(xb));
    ok = !out->oom;
  }
  if (xb != NULL) xmlBufferFree(xb);
  if (!ok) snprintf(err, errlen, "cannot write the CompleteMultipartUpload body");
  return ok ? 0 : -1;
}

int os_mpu_reconcile_part(os_mpu *m, uint32_t n, int64_t size, const char *etag) {
  os_mpu_part *p = os_mpu_part_of(m, n);
  if (p == NULL) return 0;
  if (size != p->length || etag == NULL) {
    if (p->state == OS_PART_DONE) p->state = OS_PART_PENDING;
    if (n - 1 < m->cursor) m->cursor = n - 1;
    return 0;
  }
  if (p->state == OS_PART_DONE) {
    if (strcmp(p->etag, etag) == 0) return 0;
    /* Same bytes, other quoting or case (OSS answers upper-case hex). */
    if ((p->flags & OS_PART_HAS_MD5) && os_mpu_etag_is_md5(etag, p->md5)) return 0;
    p->state = OS_PART_PENDING;
    if (n - 1 < m->cursor) m->cursor = n - 1;
  }
  return 1;
}

void os_mpu_reconcile_missing(os_mpu *m, const unsigned char *seen) {
  for (uint32_t i = 0; i < m->count; i++) {
    if (!seen[i] && m->parts[i].state == OS_PART_DONE) {
      m->parts[i].state = OS_PART_PENDING;
      if (i < m->cursor) m->cursor = i;
    }
  }
}
