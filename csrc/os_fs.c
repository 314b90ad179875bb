/*
 * Exclusive, link-refusing file creation and durable rewrites: see os_fs.h.
 */
#include "os_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int sys_err(char *err, size_t errlen, const char *what, const char *path) {
  int e = errno;
  snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
  errno = e;
  return -1;
}

int os_fs_create(const char *path, int mode, char *err, size_t errlen) {
  int fd;
  do {
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return sys_err(err, errlen, "cannot create", path);
  return fd;
}

/* Random bytes for names: not a secret, only unpredictable to whoever
 * might plant a file or link under the name beforehand. */
static int random_hex(char *out, size_t n) {
  unsigned char b[OS_FS_RANDOM_HEX / 2];
  static const char hex[] = "0123456789abcdef";
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t r = getrandom(b + got, sizeof b - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  for (size_t i = 0; i < sizeof b && 2 * i + 1 < n; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  return 0;
}

int os_fs_create_temp(const char *prefix, int mode, char *out, size_t outlen, char *err,
                      size_t errlen) {
  size_t plen = strlen(prefix);
  if (outlen < plen + OS_FS_RANDOM_HEX + 1) {
    snprintf(err, errlen, "temporary name too long");
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(out, prefix, plen);
  for (int tries = 0; tries < 32; tries++) {
    if (random_hex(out + plen, OS_FS_RANDOM_HEX) != 0)
      return sys_err(err, errlen, "no random bytes for", prefix);
    out[plen + OS_FS_RANDOM_HEX] = '\0';
    int fd = os_fs_create(out, mode, err, errlen);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  snprintf(err, errlen, "cannot create a temporary file %s*: every name tried exists", prefix);
  errno = EEXIST;
  return -1;
}

int os_fs_open_existing(const char *path, int64_t size, char *err, size_t errlen) {
  int fd;
  do {
    fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return sys_err(err, errlen, "cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    sys_err(err, errlen, "cannot stat", path);
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", path);
    close(fd);
    errno = EINVAL;
    return -1;
  }
  if (size >= 0 && ftruncate(fd, (off_t)size) != 0) {
    sys_err(err, errlen, "cannot set the size of", path);
    close(fd);
    return -1;
  }
  return fd;
}

int os_fs_sync_dir(const char *path, char *err, size_t errlen) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (slash == NULL) {
    strcpy(dir, ".");
  } else if ((size_t)(slash - path) >= sizeof dir) {
    snprintf(err, errlen, "path too long");
    return -1;
  } else {
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_err(err, errlen, "cannot open directory", dir);
  int rc = fsync(fd);
  if (rc != 0 && errno == EINVAL) rc = 0; /* some filesystems cannot sync directories */
  close(fd);
  return rc == 0 ? 0 : sys_err(err, errlen, "cannot fsync directory", dir);
}

int os_fs_write_all(int fd, const void *p, size_t n, int64_t at) {
  const char *s = p;
  while (n > 0) {
    ssize_t w = pwrite(fd, s, n, (off_t)at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return -1;
    }
    s += w;
    n -= (size_t)w;
    at += w;
  }
  return 0;
}

int os_fs_write_atomic(const char *path, const void *data, size_t len, int mode, char *err,
                       size_t errlen) {
  size_t plen = strlen(path);
  size_t cap = plen + 6 + OS_FS_RANDOM_HEX + 1;
  char *tmp = malloc(cap);
  char *prefix = malloc(plen + 6);
  int rc = -1, fd = -1;
  if (tmp == NULL || prefix == NULL) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  memcpy(prefix, path, plen);
  memcpy(prefix + plen, ".tmp-", 6);
  fd = os_fs_create_temp(prefix, mode, tmp, cap, err, errlen);
  if (fd < 0) goto done;
  if (os_fs_write_all(fd, data, len, 0) != 0 || fsync(fd) != 0) {
    sys_err(err, errlen, "cannot write", tmp);
  } else if (rename(tmp, path) != 0) {
    sys_err(err, errlen, "cannot rename over", path);
  } else {
    rc = os_fs_sync_dir(path, err, errlen);
  }
  close(fd);
  if (rc != 0) unlink(tmp);
done:
  free(tmp);
  free(prefix);
  return rc;
}

int os_fs_realpath(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  char buf[PATH_MAX];
  if (realpath(path, buf) == NULL) return sys_err(err, errlen, "cannot resolve", path);
  size_t n = strlen(buf);
  if (n + 1 > outlen) {
    errno = ENAMETOOLONG;
    return sys_err(err, errlen, "cannot resolve", path);
  }
  memcpy(out, buf, n + 1);
  return 0;
}

int os_fs_mkdir(const char *path, int mode, char *err, size_t errlen) {
  struct stat st;
  if (mkdir(path, (mode_t)mode) != 0) {
    int e = errno;
    if (e == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    errno = e;
    return sys_err(err, errlen, "cannot create directory", path);
  }
  if (chmod(path, (mode_t)mode) != 0) return sys_err(err, errlen, "cannot set the mode of", path);
  return 0;
}
