/*
 * core.fs: the files objstore creates beside the user's (os_fs.c).
 *   core.fs.create(path [, mode]) -> true | nil, err
 *       exclusive, never through a link; err.errno is "EEXIST", "ELOOP", ...
 *   core.fs.temp(prefix [, mode]) -> path | nil, err
 *       "<prefix><16 random hex digits>", created as core.fs.create
 *   core.fs.open_existing(path [, size]) -> true | nil, err
 *       a regular file, not a link; resized to size when given
 *   core.fs.write_atomic(path, data [, mode]) -> true | nil, err
 *       temporary file, fsync, rename over path, fsync of the directory
 *   core.fs.realpath(path) -> absolute path | nil, err
 *       every link, "." and ".." resolved (realpath(3))
 *   core.fs.mkdir(path [, mode]) -> true | nil, err
 *       one directory, mode set exactly (0777 by default); an existing one is fine
 * mode defaults to 0666 (the umask applies), as a file a person saves.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "l_compat.h"
#include "os_fs.h"

static int push_fs_error(lua_State *L, const char *msg, int e) {
  osl_push_error(L, "LocalFileError", msg, 0);
  const char *name = e == EEXIST    ? "EEXIST"
                     : e == ELOOP   ? "ELOOP"
                     : e == ENOENT  ? "ENOENT"
                     : e == EACCES  ? "EACCES"
                     : e == ENOSPC  ? "ENOSPC"
                     : e == ENOTDIR ? "ENOTDIR"
                     : e == EISDIR  ? "EISDIR"
                     : e == EROFS   ? "EROFS"
                                    : NULL;
  if (name != NULL) {
    lua_pushstring(L, name);
    lua_setfield(L, -2, "errno");
  }
  return 2;
}

static int opt_mode(lua_State *L, int idx, const char *F, int arg) {
  if (lua_isnoneornil(L, idx)) return 0666;
  lua_Number m = osl_checknumber(L, idx, F, arg, "mode");
  if (!(m >= 0 && m <= 07777) || m != (lua_Number)(int)m)
    return osl_misuse(L, F, arg, "mode", "must be an integer from 0 to 0x0fff (octal 07777)");
  return (int)m;
}

static int l_create(lua_State *L) {
  static const char F[] = "core.fs.create";
  const char *path = osl_checklstring(L, 1, F, 1, "path", NULL);
  int mode = opt_mode(L, 2, F, 2);
  char err[512];
  int fd = os_fs_create(path, mode, err, sizeof err);
  if (fd < 0) return push_fs_error(L, err, errno);
  close(fd);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_temp(lua_State *L) {
  static const char F[] = "core.fs.temp";
  size_t plen;
  const char *prefix = osl_checklstring(L, 1, F, 1, "prefix", &plen);
  int mode = opt_mode(L, 2, F, 2);
  if (plen == 0 || plen > 4000) return osl_misuse(L, F, 1, "prefix", "must be 1 to 4000 bytes");
  char out[4096 + OS_FS_RANDOM_HEX];
  char err[512];
  int fd = os_fs_create_temp(prefix, mode, out, sizeof out, err, sizeof err);
  if (fd < 0) return push_fs_error(L, err, errno);
  close(fd);
  lua_pushstring(L, out);
  return 1;
}

static int l_open_existing(lua_State *L) {
  static const char F[] = "core.fs.open_existing";
  const char *path = osl_checklstring(L, 1, F, 1, "path", NULL);
  int64_t size = -1;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number n = osl_checknumber(L, 2, F, 2, "size");
    if (!(n >= 0 && n <= 9007199254740992.0) || n != (lua_Number)(int64_t)n)
      return osl_misuse(L, F, 2, "size", "must be a whole number of bytes >= 0");
    size = (int64_t)n;
  }
  char err[512];
  int fd = os_fs_open_existing(path, size, err, sizeof err);
  if (fd < 0) return push_fs_error(L, err, errno);
  close(fd);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_write_atomic(lua_State *L) {
  static const char F[] = "core.fs.write_atomic";
  const char *path = osl_checklstring(L, 1, F, 1, "path", NULL);
  size_t len;
  const char *data = osl_checklstring(L, 2, F, 2, "data", &len);
  int mode = opt_mode(L, 3, F, 3);
  char err[512];
  if (os_fs_write_atomic(path, data, len, mode, err, sizeof err) != 0)
    return push_fs_error(L, err, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_realpath(lua_State *L) {
  static const char F[] = "core.fs.realpath";
  const char *path = osl_checklstring(L, 1, F, 1, "path", NULL);
  char out[PATH_MAX];
  char err[512];
  if (os_fs_realpath(path, out, sizeof out, err, sizeof err) != 0)
    return push_fs_error(L, err, errno);
  lua_pushstring(L, out);
  return 1;
}

static int l_mkdir(lua_State *L) {
  static const char F[] = "core.fs.mkdir";
  const char *path = osl_checklstring(L, 1, F, 1, "path", NULL);
  int mode = lua_isnoneornil(L, 2) ? 0777 : opt_mode(L, 2, F, 2);
  char err[512];
  if (os_fs_mkdir(path, mode, err, sizeof err) != 0) return push_fs_error(L, err, errno);
  lua_pushboolean(L, 1);
  return 1;
}

int osl_open_fs(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"create", l_create},
      {"temp", l_temp},
      {"open_existing", l_open_existing},
      {"write_atomic", l_write_atomic},
      {"realpath", l_realpath},
      {"mkdir", l_mkdir},
      {NULL, NULL},
  };
  osl_newlib(L, funcs);
  return 1;
}
