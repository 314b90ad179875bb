/*
 * core.buffer: a reusable byte buffer outside the Lua heap, for request
 * bodies read from a stream (upload_stream): filled straight from a FILE*,
 * hashed in place and handed to core.http as a body, so a part of a piped
 * upload never becomes a Lua string left to the collector.
 *
 *   core.buffer.new([capacity]) -> buf
 *   core.buffer.is(v) -> boolean
 *   buf:fill(fh, n) -> len, eof | nil, err   reads fh until buf holds n bytes
 *   buf:append(s [, limit]) -> consumed      appends s, at most up to limit bytes in all
 *   buf:len()  (also #buf on 5.2+)           buf:sub(i [, j]) -> string (as string.sub)
 *   buf:digest(alg) -> raw bytes             md5, sha1, sha256, crc32, crc32c, crc64ecma, crc64nvme
 *   buf:clear()  (keeps the allocation)      buf:free()  (releases it; also __gc)
 *
 * A buffer given to a request must not change until that request is done:
 * the transport reads its bytes in place while sending.
 */
#include <lualib.h>
#include <string.h>

#include "l_compat.h"
#include "os_buf.h"
#include "os_crc.h"
#include "os_hash.h"

#define BUFFER_CLASS "objstore.buffer"

typedef struct {
  os_buf b;
} l_buffer;

static l_buffer *check_buf(lua_State *L, const char *fname) {
  return (l_buffer *)osl_checkself(L, BUFFER_CLASS, fname);
}

const char *osl_buffer_data(lua_State *L, int idx, size_t *len) {
  l_buffer *o = (l_buffer *)osl_testudata(L, idx, BUFFER_CLASS);
  if (o == NULL) return NULL;
  *len = o->b.len;
  return o->b.data != NULL ? o->b.data : "";
}

static size_t check_size(lua_State *L, int idx, const char *fname, int arg, const char *name) {
  lua_Number n = osl_checknumber(L, idx, fname, arg, name);
  if (n < 0 || n != n || n > 5.0 * 1024 * 1024 * 1024 || n != (lua_Number)(size_t)n) {
    osl_misuse(L, fname, arg, name, "must be a whole number of bytes from 0 to 5 GiB");
  }
  return (size_t)n;
}

static int l_buffer_new(lua_State *L) {
  static const char F[] = "core.buffer.new";
  size_t cap = lua_isnoneornil(L, 1) ? 0 : check_size(L, 1, F, 1, "capacity");
  l_buffer *o = (l_buffer *)osl_newuserdata(L, sizeof *o);
  memset(o, 0, sizeof *o);
  luaL_getmetatable(L, BUFFER_CLASS);
  lua_setmetatable(L, -2);
  if (cap > 0 && !os_buf_reserve(&o->b, cap)) {
    return osl_push_error(L, "OutOfMemory", "core.buffer.new: cannot allocate the buffer", 0);
  }
  return 1;
}

static int l_buffer_is(lua_State *L) {
  lua_pushboolean(L, osl_testudata(L, 1, BUFFER_CLASS) != NULL);
  return 1;
}

/* The FILE* of the open Lua file handle at idx (every Lua version and
 * LuaJIT keep it as the userdata's first field). */
static FILE *check_file(lua_State *L, int idx, const char *fname) {
  void *u = osl_testudata(L, idx, LUA_FILEHANDLE);
  if (u == NULL)
    osl_misuse(L, fname, 1, "fh", "file handle expected, got %s", luaL_typename(L, idx));
#if LUA_VERSION_NUM >= 502
  luaL_Stream *st = (luaL_Stream *)u;
  if (st->closef == NULL || st->f == NULL) osl_misuse(L, fname, 1, "fh", "the file is closed");
  return st->f;
#else
  FILE *f = *(FILE **)u;
  if (f == NULL) osl_misuse(L, fname, 1, "fh", "the file is closed");
  return f;
#endif
}

static int l_buffer_fill(lua_State *L) {
  static const char F[] = "core.buffer.fill";
  l_buffer *o = check_buf(L, F);
  FILE *f = check_file(L, 2, F);
  size_t want = check_size(L, 3, F, 2, "n");
  int eof = 0;
  char err[160];
  if (os_buf_fill_file(&o->b, f, want, &eof, err, sizeof err) != 0) {
    return osl_push_error(L, "LocalFileError", err, 0);
  }
  lua_pushinteger(L, (lua_Integer)o->b.len);
  lua_pushboolean(L, eof);
  return 2;
}

static int l_buffer_append(lua_State *L) {
  static const char F[] = "core.buffer.append";
  l_buffer *o = check_buf(L, F);
  size_t len;
  const char *s = osl_checklstring(L, 2, F, 1, "s", &len);
  size_t n = len;
  if (!lua_isnoneornil(L, 3)) {
    size_t limit = check_size(L, 3, F, 2, "limit");
    size_t room = limit > o->b.len ? limit - o->b.len : 0;
    if (n > room) n = room;
  }
  os_buf_add(&o->b, s, n);
  if (o->b.oom) {
    os_buf_reset(&o->b);
    return osl_push_error(L, "OutOfMemory", "core.buffer.append: cannot grow the buffer", 0);
  }
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int l_buffer_len(lua_State *L) {
  l_buffer *o = check_buf(L, "core.buffer.len");
  lua_pushinteger(L, (lua_Integer)o->b.len);
  return 1;
}

/* buf:sub(i [, j]) with string.sub's rules for positions. */
static int l_buffer_sub(lua_State *L) {
  static const char F[] = "core.buffer.sub";
  l_buffer *o = check_buf(L, F);
  lua_Number len = (lua_Number)o->b.len;
  lua_Number i = osl_checknumber(L, 2, F, 1, "i");
  lua_Number j = lua_isnoneornil(L, 3) ? -1 : osl_checknumber(L, 3, F, 2, "j");
  if (i < 0) i = len + i + 1;
  if (j < 0) j = len + j + 1;
  if (i < 1) i = 1;
  if (j > len) j = len;
  if (i > j) {
    lua_pushliteral(L, "");
  } else {
    lua_pushlstring(L, o->b.data + (size_t)i - 1, (size_t)(j - i + 1));
  }
  return 1;
}

static int l_buffer_digest(lua_State *L) {
  static const char F[] = "core.buffer.digest";
  l_buffer *o = check_buf(L, F);
  const char *name = osl_checklstring(L, 2, F, 1, "alg", NULL);
  const char *data = o->b.data != NULL ? o->b.data : "";
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t n;
  os_hash_alg alg;
  os_crc_kind kind;
  if (os_hash_alg_from_name(name, &alg) == 0) {
    if (os_hash_oneshot(alg, data, o->b.len, out, &n) != 0) {
      char buf[200];
      os_hash_error(buf, sizeof buf);
      return osl_push_error(L, "HashError", buf, 0);
    }
  } else if (os_crc_kind_from_name(name, &kind) == 0) {
    n = os_crc_to_bytes(kind, os_crc_update(kind, os_crc_start(kind), data, o->b.len), out);
  } else {
    return osl_misuse(
        L, F, 1, "alg",
        "unknown algorithm '%s' (md5, sha1, sha256, crc32, crc32c, crc64ecma, crc64nvme)", name);
  }
  lua_pushlstring(L, (const char *)out, n);
  return 1;
}

static int l_buffer_clear(lua_State *L) {
  os_buf_reset(&check_buf(L, "core.buffer.clear")->b);
  return 0;
}

static int l_buffer_free(lua_State *L) {
  os_buf_free(&check_buf(L, "core.buffer.free")->b);
  return 0;
}

static int l_buffer_gc(lua_State *L) {
  l_buffer *o = (l_buffer *)osl_testudata(L, 1, BUFFER_CLASS);
  if (o != NULL) os_buf_free(&o->b);
  return 0;
}

static int l_buffer_tostring(lua_State *L) {
  l_buffer *o = check_buf(L, "core.buffer.__tostring");
  lua_pushfstring(L, "objstore.buffer (%d bytes): %p", (int)o->b.len, (void *)o);
  return 1;
}

int osl_open_buffer(lua_State *L) {
  static const luaL_Reg methods[] = {{"fill", l_buffer_fill},
                                     {"append", l_buffer_append},
                                     {"len", l_buffer_len},
                                     {"__len", l_buffer_len},
                                     {"sub", l_buffer_sub},
                                     {"digest", l_buffer_digest},
                                     {"clear", l_buffer_clear},
                                     {"free", l_buffer_free},
                                     {"__gc", l_buffer_gc},
                                     {"__tostring", l_buffer_tostring},
                                     {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"new", l_buffer_new}, {"is", l_buffer_is}, {NULL, NULL}};
  osl_newclass(L, BUFFER_CLASS, methods);
  osl_newlib(L, funcs);
  return 1;
}
