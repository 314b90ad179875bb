/* core.encode: hex, base64, RFC 3986 encoding, HTTP and ISO 8601 dates.
 * Misuse raises (osl_misuse); hex_decode and base64_decode return nil, err
 * (code InvalidEncoding) for text that does not decode. */
#include <stdlib.h>

#include "l_compat.h"
#include "os_encode.h"

/* Runs an encoder into a buffer owned by a userdata on the stack, so a
 * raising lua_pushlstring cannot leak it. */
typedef struct {
  os_buf b;
} scratch;

static int scratch_gc(lua_State *L) {
  scratch *s = lua_touserdata(L, 1);
  os_buf_free(&s->b);
  return 0;
}

static os_buf *push_scratch(lua_State *L) {
  scratch *s = osl_newuserdata(L, sizeof *s);
  s->b.data = NULL;
  s->b.len = s->b.cap = 0;
  s->b.oom = 0;
  if (luaL_newmetatable(L, "objstore.scratch")) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return &s->b;
}

static int push_result(lua_State *L, os_buf *b) {
  if (b->oom) return luaL_error(L, "out of memory");
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  return 1;
}

static int l_uri_encode(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.uri_encode", 1, "s", &n);
  int keep_slash = lua_toboolean(L, 2);
  os_buf *b = push_scratch(L);
  os_uri_encode(b, s, n, keep_slash);
  return push_result(L, b);
}

static int l_uri_decode(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.uri_decode", 1, "s", &n);
  os_buf *b = push_scratch(L);
  os_uri_decode(b, s, n);
  return push_result(L, b);
}

static int l_normalize_path(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.normalize_path", 1, "s", &n);
  os_buf *b = push_scratch(L);
  os_uri_normalize_path(b, s, n);
  return push_result(L, b);
}

static int l_hex_encode(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.hex_encode", 1, "s", &n);
  os_buf *b = push_scratch(L);
  os_hex_encode(b, (const unsigned char *)s, n);
  return push_result(L, b);
}

static int l_hex_decode(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.hex_decode", 1, "s", &n);
  os_buf *b = push_scratch(L);
  if (!os_hex_decode(b, s, n)) return osl_push_error(L, "InvalidEncoding", "invalid hex string", 0);
  return push_result(L, b);
}

static int l_base64_encode(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.base64_encode", 1, "s", &n);
  os_buf *b = push_scratch(L);
  os_base64_encode(b, (const unsigned char *)s, n);
  return push_result(L, b);
}

static int l_base64_decode(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.base64_decode", 1, "s", &n);
  os_buf *b = push_scratch(L);
  if (!os_base64_decode(b, s, n))
    return osl_push_error(L, "InvalidEncoding", "invalid base64 string", 0);
  return push_result(L, b);
}

#define TIME_RANGE "must be epoch seconds from 0 to 253402300799 (9999-12-31)"

static int64_t check_time(lua_State *L, const char *fname) {
  lua_Number t = osl_checknumber(L, 1, fname, 1, "time");
  if (!(t >= 0 && t <= 253402300799.0)) osl_misuse(L, fname, 1, "time", TIME_RANGE);
  return (int64_t)t;
}

static int l_iso8601(lua_State *L) {
  static const char F[] = "core.encode.iso8601";
  char out[17];
  if (!os_iso8601_basic(out, check_time(L, F))) return osl_misuse(L, F, 1, "time", TIME_RANGE);
  lua_pushstring(L, out);
  return 1;
}

static int l_http_date(lua_State *L) {
  static const char F[] = "core.encode.http_date";
  char out[30];
  if (!os_http_date(out, check_time(L, F))) return osl_misuse(L, F, 1, "time", TIME_RANGE);
  lua_pushstring(L, out);
  return 1;
}

static int l_utf8_valid(lua_State *L) {
  size_t n;
  const char *s = osl_checklstring(L, 1, "core.encode.utf8_valid", 1, "s", &n);
  lua_pushboolean(L, os_utf8_valid(s, n));
  return 1;
}

int osl_open_encode(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"uri_encode", l_uri_encode},
      {"uri_decode", l_uri_decode},
      {"normalize_path", l_normalize_path},
      {"hex_encode", l_hex_encode},
      {"hex_decode", l_hex_decode},
      {"base64_encode", l_base64_encode},
      {"base64_decode", l_base64_decode},
      {"iso8601", l_iso8601},
      {"http_date", l_http_date},
      {"utf8_valid", l_utf8_valid},
      {NULL, NULL},
  };
  osl_newlib(L, funcs);
  return 1;
}
