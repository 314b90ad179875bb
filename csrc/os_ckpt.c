/*
 * Append-only transfer checkpoints: see os_ckpt.h for the format.
 */
#include "os_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "os_crc.h"
#include "os_fs.h"

static const char MAGIC[12] = {'O', 'B', 'J', 'S', 'T', 'O', 'R', 'E', '-', 'C', 'P', '\n'};
static const char PART_MAGIC[4] = {'P', 'A', 'R', 'T'};
enum { REC_CRC_AT = OS_CKPT_RECORD_SIZE - 4, PREAMBLE = 12 + 4 + 4, MAX_HEADER = 1 << 16 };
/* The record's fields end at byte 131 (99 + 32 bytes of checksum). */
typedef char record_fits_[99 + OS_MPU_SUM_MAX <= REC_CRC_AT ? 1 : -1];

static uint32_t crc32c(const void *p, size_t n) {
  return (uint32_t)os_crc_update(OS_CRC32C, os_crc_start(OS_CRC32C), p, n);
}

static void put_u16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t get_u16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* ---- encoding ---------------------------------------------------------- */

static size_t put_str(unsigned char *p, const char *s, size_t cap) {
  size_t n = strnlen(s, cap - 1);
  put_u16(p, (uint16_t)n);
  memcpy(p + 2, s, n);
  return 2 + n;
}

/* The header image into out (MAX_HEADER bytes); returns its length. */
static size_t encode_header(const os_ckpt_header *h, unsigned char *out) {
  unsigned char *p = out + PREAMBLE;
  *p++ = (unsigned char)h->kind;
  put_u64(p, (uint64_t)h->file_size);
  put_u64(p + 8, (uint64_t)h->file_mtime);
  put_u64(p + 16, h->file_inode);
  put_u64(p + 24, (uint64_t)h->part_size);
  put_u64(p + 32, (uint64_t)h->object_size);
  put_u64(p + 40, (uint64_t)h->intent_time);
  p += 48;
  p += put_str(p, h->bucket, sizeof h->bucket);
  p += put_str(p, h->key, sizeof h->key);
  p += put_str(p, h->upload_id, sizeof h->upload_id);
  p += put_str(p, h->etag, sizeof h->etag);
  memcpy(out, MAGIC, 12);
  put_u32(out + 12, OS_CKPT_VERSION);
  put_u32(out + 16, (uint32_t)(p - out - PREAMBLE));
  put_u32(p, crc32c(out, (size_t)(p - out)));
  return (size_t)(p - out) + 4;
}

static void encode_record(const os_mpu *m, uint32_t n, unsigned char *r) {
  const os_mpu_part *part = &m->parts[n - 1];
  const os_mpu_sum *sum = os_mpu_sum_of(m, n);
  memset(r, 0, OS_CKPT_RECORD_SIZE);
  memcpy(r, PART_MAGIC, 4);
  put_u32(r + 4, n);
  put_u64(r + 8, (uint64_t)part->offset);
  put_u64(r + 16, (uint64_t)part->length);
  memcpy(r + 24, part->md5, 16);
  put_u64(r + 40, part->crc_nvme);
  put_u64(r + 48, part->crc_ecma);
  r[56] = part->flags;
  size_t elen = strnlen(part->etag, OS_MPU_ETAG_MAX - 1);
  r[57] = (unsigned char)elen;
  memcpy(r + 58, part->etag, elen);
  if (sum != NULL) {
    r[98] = sum->alg;
    memcpy(r + 99, sum->value, OS_MPU_SUM_MAX);
  }
  put_u32(r + REC_CRC_AT, crc32c(r, REC_CRC_AT));
}

/* ---- decoding ---------------------------------------------------------- */

static int get_str(const unsigned char **p, const unsigned char *end, char *out, size_t cap) {
  if (end - *p < 2) return -1;
  size_t n = get_u16(*p);
  if (n >= cap || (size_t)(end - *p - 2) < n) return -1;
  memcpy(out, *p + 2, n);
  out[n] = '\0';
  if (memchr(out, '\0', n) != NULL) return -1;
  *p += 2 + n;
  return 0;
}

/* Parses data; *good_end is where the intact part of the file ends.
 * Returns the record count, -1 (not a checkpoint), -2 (other version). */
static int parse(const unsigned char *data, size_t len, os_ckpt_header *h,
                 int (*part)(void *, const os_ckpt_record *), void *arg, int *torn,
                 size_t *good_end) {
  *torn = 0;
  *good_end = 0;
  if (len < PREAMBLE || memcmp(data, MAGIC, 12) != 0) return -1;
  if (get_u32(data + 12) != OS_CKPT_VERSION) return -2;
  size_t hlen = get_u32(data + 16);
  if (hlen < 49 || hlen > MAX_HEADER || len - PREAMBLE < hlen + 4) return -1;
  const unsigned char *p = data + PREAMBLE, *end = p + hlen;
  if (get_u32(end) != crc32c(data, PREAMBLE + hlen)) return -1;
  memset(h, 0, sizeof *h);
  h->kind = *p++;
  h->file_size = (int64_t)get_u64(p);
  h->file_mtime = (int64_t)get_u64(p + 8);
  h->file_inode = get_u64(p + 16);
  h->part_size = (int64_t)get_u64(p + 24);
  h->object_size = (int64_t)get_u64(p + 32);
  h->intent_time = (int64_t)get_u64(p + 40);
  p += 48;
  if (h->kind < OS_CKPT_UPLOAD || h->kind >= OS_CKPT_KIND_COUNT) return -1;
  if (get_str(&p, end, h->bucket, sizeof h->bucket) != 0 ||
      get_str(&p, end, h->key, sizeof h->key) != 0 ||
      get_str(&p, end, h->upload_id, sizeof h->upload_id) != 0 ||
      get_str(&p, end, h->etag, sizeof h->etag) != 0 || p != end)
    return -1;
  size_t pos = PREAMBLE + hlen + 4;
  *good_end = pos;
  int count = 0;
  while (len - pos >= OS_CKPT_RECORD_SIZE) {
    const unsigned char *r = data + pos;
    if (memcmp(r, PART_MAGIC, 4) != 0 || get_u32(r + REC_CRC_AT) != crc32c(r, REC_CRC_AT)) break;
    os_ckpt_record rec;
    memset(&rec, 0, sizeof rec);
    rec.number = get_u32(r + 4);
    rec.offset = (int64_t)get_u64(r + 8);
    rec.length = (int64_t)get_u64(r + 16);
    memcpy(rec.md5, r + 24, 16);
    rec.crc_nvme = get_u64(r + 40);
    rec.crc_ecma = get_u64(r + 48);
    rec.flags = r[56];
    size_t elen = r[57];
    if (elen >= OS_MPU_ETAG_MAX || memchr(r + 58, '\0', elen) != NULL) break;
    memcpy(rec.etag, r + 58, elen);
    rec.etag[elen] = '\0';
    rec.sum_alg = r[98];
    memcpy(rec.sum, r + 99, OS_MPU_SUM_MAX);
    if ((rec.flags & OS_PART_HAS_SUM) &&
        (rec.sum_alg == OS_SUM_NONE || rec.sum_alg >= OS_SUM_COUNT))
      break;
    if (part != NULL && part(arg, &rec) != 0) break;
    count++;
    pos += OS_CKPT_RECORD_SIZE;
    *good_end = pos;
  }
  *torn = pos != len;
  return count;
}

int os_ckpt_parse(const unsigned char *data, size_t len, os_ckpt_header *h,
                  int (*part)(void *, const os_ckpt_record *), void *arg, int *torn) {
  size_t good_end;
  int n = parse(data, len, h, part, arg, torn, &good_end);
  return n < 0 ? -1 : n;
}

/* ---- files ------------------------------------------------------------- */

static int sys_err(char *err, size_t errlen, const char *what, const char *path) {
  snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
  return -1;
}

/* The pid holding a flock on the file (dev, ino), from /proc/locks; 0 when
 * it cannot be told. */
static long lock_holder(dev_t dev, ino_t ino) {
  FILE *f = fopen("/proc/locks", "re");
  if (f == NULL) return 0;
  char line[256];
  long found = 0;
  while (found == 0 && fgets(line, sizeof line, f) != NULL) {
    char type[16];
    long pid;
    unsigned maj, min;
    unsigned long long lino;
    const char *s = strchr(line, ':');
    if (s == NULL || strstr(line, "->") != NULL) continue; /* waiters */
    if (sscanf(s + 1, " %15s %*s %*s %ld %x:%x:%llu", type, &pid, &maj, &min, &lino) == 5 &&
        strcmp(type, "FLOCK") == 0 && maj == major(dev) && min == minor(dev) &&
        lino == (unsigned long long)ino)
      found = pid;
  }
  fclose(f);
  return found;
}

int os_ckpt_open(os_ckpt *c, const char *path, long *holder, char *err, size_t errlen) {
  *holder = 0;
  c->fd = -1;
  c->end = 0;
  c->appended_bytes = 0;
  c->path = strdup(path);
  if (c->path == NULL) {
    snprintf(err, errlen, "out of memory");
    return OS_CKPT_FAIL;
  }
  for (int tries = 0; tries < 8; tries++) {
    int created = 0;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      created = fd >= 0;
      if (fd < 0 && errno == EEXIST) continue;
    }
    if (fd < 0) break;
    struct stat st, now;
    if (fstat(fd, &st) != 0) {
      close(fd);
      break;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      close(fd);
      if (e == EWOULDBLOCK) {
        *holder = lock_holder(st.st_dev, st.st_ino);
        if (*holder != 0)
          snprintf(err, errlen, "checkpoint %s is in use by process %ld", path, *holder);
        else
          snprintf(err, errlen, "checkpoint %s is in use by another process", path);
        return OS_CKPT_IN_USE;
      }
      errno = e;
      break;
    }
    /* The file we locked may have been replaced (renamed over) meanwhile. */
    if (stat(path, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
      close(fd);
      continue;
    }
    if (created && os_fs_sync_dir(path, err, errlen) != 0) {
      close(fd);
      return OS_CKPT_FAIL;
    }
    c->fd = fd;
    c->end = st.st_size;
    return OS_CKPT_OK;
  }
  sys_err(err, errlen, "cannot open checkpoint", path);
  return OS_CKPT_FAIL;
}

void os_ckpt_close(os_ckpt *c) {
  if (c->fd >= 0) close(c->fd); /* releases the lock */
  c->fd = -1;
  free(c->path);
  c->path = NULL;
}

int os_ckpt_load(os_ckpt *c, os_ckpt_header *h, int (*part)(void *, const os_ckpt_record *),
                 void *arg, int *torn, char *err, size_t errlen) {
  *torn = 0;
  struct stat st;
  if (fstat(c->fd, &st) != 0) return sys_err(err, errlen, "cannot stat", c->path);
  if (st.st_size == 0) return OS_CKPT_EMPTY;
  if (st.st_size >
      (off_t)PREAMBLE + MAX_HEADER + 4 + (off_t)(OS_MPU_MAX_PARTS + 1) * 2 * OS_CKPT_RECORD_SIZE) {
    snprintf(err, errlen, "%lld bytes is too large for a checkpoint", (long long)st.st_size);
    return OS_CKPT_FOREIGN;
  }
  size_t len = (size_t)st.st_size;
  unsigned char *data = malloc(len);
  if (data == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t got = 0;
  while (got < len) {
    ssize_t r = pread(c->fd, data + got, len - got, (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  size_t good_end = 0;
  int n = parse(data, got, h, part, arg, torn, &good_end);
  free(data);
  if (n == -2) {
    snprintf(err, errlen, "it has another format version (this one reads %d)", OS_CKPT_VERSION);
    return OS_CKPT_FOREIGN;
  }
  if (n < 0) {
    snprintf(err, errlen, "it is not an objstore checkpoint (or its header is damaged)");
    return OS_CKPT_FOREIGN;
  }
  if (*torn) {
    /* Cut the damaged tail so the next record lands on a record boundary. */
    if (ftruncate(c->fd, (off_t)good_end) != 0 || fdatasync(c->fd) != 0)
      return sys_err(err, errlen, "cannot truncate", c->path);
  }
  c->end = (int64_t)good_end;
  return OS_CKPT_LOADED;
}

int os_ckpt_reset(os_ckpt *c, const os_ckpt_header *h, char *err, size_t errlen) {
  unsigned char *img = malloc(PREAMBLE + MAX_HEADER + 4);
  size_t plen = strlen(c->path);
  size_t cap = plen + 6 + OS_FS_RANDOM_HEX + 1;
  char *tmp = malloc(cap), *prefix = malloc(plen + 6);
  int fd = -1, rc = -1;
  if (img == NULL || tmp == NULL || prefix == NULL) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  size_t n = encode_header(h, img);
  memcpy(prefix, c->path, plen);
  memcpy(prefix + plen, ".new-", 6);
  /* Exclusive, under a random name: a file or link planted beside the
   * checkpoint is never opened or truncated. */
  fd = os_fs_create_temp(prefix, 0600, tmp, cap, err, errlen);
  if (fd < 0) goto done;
  /* Locked before it takes the name, so the lock never lapses. */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 || os_fs_write_all(fd, img, n, 0) != 0 || fsync(fd) != 0) {
    sys_err(err, errlen, "cannot write", tmp);
    goto done;
  }
  if (rename(tmp, c->path) != 0) {
    sys_err(err, errlen, "cannot rename over", c->path);
    goto done;
  }
  if (os_fs_sync_dir(c->path, err, errlen) != 0) goto done;
  close(c->fd);
  c->fd = fd;
  fd = -1;
  c->end = (int64_t)n;
  c->appended_bytes += n;
  rc = 0;
done:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  free(img);
  free(tmp);
  free(prefix);
  return rc;
}

int os_ckpt_append(os_ckpt *c, const os_mpu *m, uint32_t n, char *err, size_t errlen) {
  if (n < 1 || n > m->count || m->parts[n - 1].state != OS_PART_DONE) {
    snprintf(err, errlen, "part %u is not done", n);
    return -1;
  }
  unsigned char r[OS_CKPT_RECORD_SIZE];
  encode_record(m, n, r);
  if (os_fs_write_all(c->fd, r, sizeof r, (off_t)c->end) != 0 || fdatasync(c->fd) != 0)
    return sys_err(err, errlen, "cannot append to", c->path);
  c->end += OS_CKPT_RECORD_SIZE;
  c->appended_bytes += OS_CKPT_RECORD_SIZE;
  return 0;
}

int os_ckpt_remove(os_ckpt *c, char *err, size_t errlen) {
  int rc = 0;
  if (unlink(c->path) != 0 && errno != ENOENT) {
    rc = sys_err(err, errlen, "cannot remove", c->path);
  } else {
    rc = os_fs_sync_dir(c->path, err, errlen);
  }
  os_ckpt_close(c);
  return rc;
}
