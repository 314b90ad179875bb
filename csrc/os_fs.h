/*
 * Files that objstore creates beside the user's: temporary downloads,
 * checkpoints, sync state. Every one is created exclusively and never
 * through a symbolic link (O_CREAT | O_EXCL | O_NOFOLLOW), under a name
 * with random bytes in it, so a planted file or link is never opened,
 * written or truncated; and whole-file rewrites are durable (temporary
 * file, fsync, rename, fsync of the directory).
 */
#ifndef OBJSTORE_OS_FS_H
#define OBJSTORE_OS_FS_H

#include <stddef.h>
#include <stdint.h>

/* Length of the random part os_fs_create_temp appends (hex digits). */
#define OS_FS_RANDOM_HEX 16

/* Creates path exclusively (O_CREAT|O_EXCL|O_NOFOLLOW, O_RDWR), mode before
 * the umask. Returns the open descriptor, or -1 with err filled and errno
 * kept (EEXIST: something, a link included, already has that name). */
int os_fs_create(const char *path, int mode, char *err, size_t errlen);

/* Creates "<prefix><16 random hex digits>" exclusively, as os_fs_create,
 * trying new names while one exists. out (outlen >= strlen(prefix) + 17)
 * receives the name. Returns the descriptor or -1 with err filled. */
int os_fs_create_temp(const char *prefix, int mode, char *out, size_t outlen, char *err,
                      size_t errlen);

/* Opens an existing regular file for writing without following a link in
 * its last component; with size >= 0 truncates or extends it to size.
 * Returns the descriptor or -1 with err filled. */
int os_fs_open_existing(const char *path, int64_t size, char *err, size_t errlen);

/* fsync of the directory holding path, so a create, rename or unlink lasts. */
int os_fs_sync_dir(const char *path, char *err, size_t errlen);

/* Writes all n bytes at offset at (EINTR and short writes handled). */
int os_fs_write_all(int fd, const void *p, size_t n, int64_t at);

/* Replaces path with data durably: an exclusive temporary file beside it,
 * fsync, rename over path, fsync of the directory. A crash leaves the old
 * file or the new one; the temporary file is removed on failure. */
int os_fs_write_atomic(const char *path, const void *data, size_t len, int mode, char *err,
                       size_t errlen);

/* The absolute path of path with every link, "." and ".." resolved
 * (realpath(3)); out must hold PATH_MAX bytes. Returns 0, or -1 with err
 * filled and errno kept. */
int os_fs_realpath(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* Creates directory path with mode (before the umask, then set exactly, so
 * a 0700 state directory is 0700 whatever the umask). An existing
 * directory is not an error (its mode is left alone). Returns 0 or -1. */
int os_fs_mkdir(const char *path, int mode, char *err, size_t errlen);

#endif
