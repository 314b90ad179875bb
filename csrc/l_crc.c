/*
 * core.crc: CRC-32, CRC-32C, CRC-64/XZ ("crc64ecma", OSS) and CRC-64/NVME.
 *
 *   core.crc.new(kind [, init]) -> obj   init: previous CRC as an integer or
 *                                         unsigned decimal string (OSS append)
 *   obj:update(s) -> obj                  obj:length() -> bytes fed so far
 *   obj:value() -> int|nil, decimal       obj:decimal() -> "11051210869376104954"
 *   obj:hex() -> big-endian hex           obj:base64() -> S3 header form
 *   obj:bytes() -> big-endian raw         obj:kind() -> name
 *   obj:digest()/hexdigest()/base64digest()  same as bytes/hex/base64, so CRC
 *                                         and hash objects read alike
 *   obj:copy() -> obj                     obj:close() (also __gc, __close)
 *   core.crc.compute(kind, s [, init]) -> big-endian raw bytes
 *   core.crc.combine(kind, a, b, len_b) -> raw bytes of CRC(A||B), where a
 *                                         and b are raw big-endian CRCs
 *   core.crc.to_decimal(bytes) -> unsigned decimal of big-endian bytes
 *   core.crc.from_decimal(kind, s) -> raw bytes
 *   core.crc.implementation(kind) -> "pclmul" | "sse4.2" | "table"
 *   core.crc._compute_with(kind, impl, s) -> raw bytes | nil, err  (tests)
 *
 * Misuse raises in the one format (osl_misuse), methods named
 * "core.crc.<method>"; nothing else fails but _compute_with, whose engine
 * may be missing on the CPU (NotAvailable).
 *
 * A CRC never finishes: value() may be read at any point and update goes on.
 * 64-bit values cross the API as bytes or decimal strings because Lua 5.1
 * and LuaJIT have no 64-bit integers; value() gives an integer where one
 * exists (5.3+: the two's-complement bit pattern, as Java's long does).
 */
#include <stdio.h>
#include <string.h>

#include "l_compat.h"
#include "os_crc.h"
#include "os_encode.h"
#include "os_hash.h"

#define CRC_CLASS "objstore.crc"

typedef struct {
  os_crc_kind kind;
  int open; /* zeroed = closed */
  uint64_t crc;
  uint64_t length;
} l_crc;

/* ---- argument checks ------------------------------------------------------ */

/* A string (numbers are not taken) at stack index idx, shown as argument
 * #arg (name) of fname. */
static const char *check_string(lua_State *L, int idx, const char *fname, int arg, const char *name,
                                size_t *len) {
  if (lua_type(L, idx) != LUA_TSTRING)
    osl_misuse(L, fname, arg, name, "string expected, got %s", luaL_typename(L, idx));
  return lua_tolstring(L, idx, len);
}

/* The CRC named at index 1, argument #1 (kind) of every module function. */
static os_crc_kind check_kind(lua_State *L, const char *fname) {
  os_crc_kind kind;
  const char *name = check_string(L, 1, fname, 1, "kind", NULL);
  if (os_crc_kind_from_name(name, &kind) != 0) {
    osl_misuse(L, fname, 1, "kind",
               "unknown CRC '%s' (expected crc32, crc32c, crc64ecma or crc64nvme)", name);
  }
  return kind;
}

static unsigned width_of(os_crc_kind kind) {
  return os_crc_params_of(kind)->width;
}

/* A non-negative integral number (a byte count) at index idx (argument
 * #idx of fname); exact up to 2^53 on 5.1. */
static uint64_t check_count(lua_State *L, int idx, const char *fname, const char *name) {
#if LUA_VERSION_NUM >= 503
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  int ok = lua_type(L, idx) == LUA_TNUMBER && isint && v >= 0;
#else
  lua_Number n = lua_tonumber(L, idx);
  /* Range first: only then is the round trip through uint64_t defined. */
  int ok = lua_type(L, idx) == LUA_TNUMBER && n >= 0 && n <= 9007199254740992.0 &&
           (lua_Number)(uint64_t)n == n;
  uint64_t v = ok ? (uint64_t)n : 0;
#endif
  if (!ok) {
    osl_misuse(L, fname, idx, name, "non-negative integer expected, got %s",
               lua_type(L, idx) == LUA_TNUMBER ? "a non-integer or negative number"
                                               : luaL_typename(L, idx));
  }
  return (uint64_t)v;
}

/* A CRC value given as a number or an unsigned decimal string (OSS form),
 * at index idx (argument #idx of fname). */
static uint64_t check_value(lua_State *L, int idx, os_crc_kind kind, const char *fname,
                            const char *name) {
  unsigned width = width_of(kind);
  uint64_t max = width == 64 ? ~UINT64_C(0) : (UINT64_C(1) << width) - 1;
  uint64_t v = 0;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (os_crc_from_decimal(s, len, width, &v) != 0) {
      osl_misuse(L, fname, idx, name, "not an unsigned decimal %s value: '%s'",
                 os_crc_params_of(kind)->name, s);
    }
    return v;
  }
  if (lua_type(L, idx) != LUA_TNUMBER) {
    osl_misuse(L, fname, idx, name, "integer or decimal string expected, got %s",
               luaL_typename(L, idx));
  }
#if LUA_VERSION_NUM >= 503
  {
    int isint = 0;
    lua_Integer i = lua_tointegerx(L, idx, &isint);
    /* 64-bit kinds take the bit pattern value() returns, negative or not. */
    if (isint && (width == 64 || (i >= 0 && (uint64_t)i <= max))) return (uint64_t)i;
  }
#else
  {
    lua_Number n = lua_tonumber(L, idx);
    if (n >= 0 && n <= 9007199254740992.0 && (lua_Number)(uint64_t)n == n && (uint64_t)n <= max) {
      return (uint64_t)n;
    }
  }
#endif
  osl_misuse(L, fname, idx, name, "not a %s value (use an integer in range or a decimal string)",
             os_crc_params_of(kind)->name);
  return 0;
}

/* Raw big-endian bytes of exactly the kind's width, at index idx. */
static uint64_t check_bytes(lua_State *L, int idx, os_crc_kind kind, const char *fname,
                            const char *name) {
  size_t len;
  uint64_t v = 0;
  const char *s = check_string(L, idx, fname, idx, name, &len);
  if (os_crc_from_bytes(kind, (const unsigned char *)s, len, &v) != 0) {
    osl_misuse(L, fname, idx, name, "%d raw big-endian bytes of %s expected, got %d bytes",
               (int)(width_of(kind) / 8), os_crc_params_of(kind)->name, (int)len);
  }
  return v;
}

static l_crc *check_crc(lua_State *L, const char *fname) {
  return (l_crc *)osl_checkself(L, CRC_CLASS, fname);
}

static l_crc *check_open(lua_State *L, const char *fname) {
  l_crc *o = check_crc(L, fname);
  if (!o->open) osl_misuse(L, fname, 0, "self", "the crc object is closed");
  return o;
}

/* ---- pushing values ------------------------------------------------------ */

static void push_bytes(lua_State *L, os_crc_kind kind, uint64_t crc) {
  unsigned char out[8];
  size_t n = os_crc_to_bytes(kind, crc, out);
  lua_pushlstring(L, (const char *)out, n);
}

static void push_decimal(lua_State *L, uint64_t v) {
  char out[21];
  size_t n = os_crc_to_decimal(v, out);
  lua_pushlstring(L, out, n);
}

static void push_count(lua_State *L, uint64_t n) {
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)n);
#else
  lua_pushnumber(L, (lua_Number)n);
#endif
}

static l_crc *push_new(lua_State *L, os_crc_kind kind, uint64_t crc) {
  l_crc *o = (l_crc *)osl_newuserdata(L, sizeof *o);
  memset(o, 0, sizeof *o);
  luaL_getmetatable(L, CRC_CLASS);
  lua_setmetatable(L, -2);
  o->kind = kind;
  o->crc = crc;
  o->open = 1;
  return o;
}

/* ---- methods ------------------------------------------------------------- */

static int l_crc_update(lua_State *L) {
  static const char F[] = "core.crc.update";
  l_crc *o = check_open(L, F);
  size_t len;
  const char *s = check_string(L, 2, F, 1, "data", &len);
  o->crc = os_crc_update(o->kind, o->crc, s, len);
  o->length += len;
  lua_settop(L, 1);
  return 1;
}

static int l_crc_value(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.value");
  if (width_of(o->kind) <= 32) {
    push_count(L, o->crc);
  } else {
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)o->crc);
#else
    lua_pushnil(L); /* a double would silently round most 64-bit values */
#endif
  }
  push_decimal(L, o->crc);
  return 2;
}

static int l_crc_decimal(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.decimal");
  push_decimal(L, o->crc);
  return 1;
}

static int l_crc_bytes(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.bytes");
  push_bytes(L, o->kind, o->crc);
  return 1;
}

static int l_crc_hex(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.hex");
  unsigned char raw[8];
  char out[17];
  size_t n = os_crc_to_bytes(o->kind, o->crc, raw);
  lua_pushlstring(L, out, os_hex_to(out, raw, n));
  return 1;
}

static int l_crc_base64(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.base64");
  unsigned char raw[8];
  char out[13];
  size_t n = os_crc_to_bytes(o->kind, o->crc, raw);
  lua_pushlstring(L, out, os_base64_to(out, raw, n));
  return 1;
}

static int l_crc_length(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.length");
  push_count(L, o->length);
  return 1;
}

static int l_crc_kind(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.kind");
  lua_pushstring(L, os_crc_params_of(o->kind)->name);
  return 1;
}

static int l_crc_copy(lua_State *L) {
  l_crc *o = check_open(L, "core.crc.copy");
  l_crc *c = push_new(L, o->kind, o->crc);
  c->length = o->length;
  return 1;
}

/* Idempotent: installed as close, __gc and __close. Nothing is allocated,
 * but closing still makes later use an error, as for every other type. */
static int l_crc_close(lua_State *L) {
  l_crc *o = check_crc(L, "core.crc.close");
  o->open = 0;
  return 0;
}

static int l_crc_tostring(lua_State *L) {
  l_crc *o = check_crc(L, "core.crc.__tostring");
  char dec[21];
  os_crc_to_decimal(o->crc, dec);
  lua_pushfstring(L, "%s (%s, %s): %s", CRC_CLASS, os_crc_params_of(o->kind)->name,
                  o->open ? "open" : "closed", dec);
  return 1;
}

/* ---- module functions ---------------------------------------------------- */

static int l_crc_new(lua_State *L) {
  static const char F[] = "core.crc.new";
  os_crc_kind kind = check_kind(L, F);
  uint64_t init = os_crc_start(kind);
  if (!lua_isnoneornil(L, 2)) init = check_value(L, 2, kind, F, "init");
  push_new(L, kind, init);
  return 1;
}

static int l_crc_compute(lua_State *L) {
  static const char F[] = "core.crc.compute";
  os_crc_kind kind = check_kind(L, F);
  size_t len;
  const char *s = check_string(L, 2, F, 2, "data", &len);
  uint64_t init = os_crc_start(kind);
  if (!lua_isnoneornil(L, 3)) init = check_value(L, 3, kind, F, "init");
  push_bytes(L, kind, os_crc_update(kind, init, s, len));
  return 1;
}

static int l_crc_combine(lua_State *L) {
  static const char F[] = "core.crc.combine";
  os_crc_kind kind = check_kind(L, F);
  uint64_t a = check_bytes(L, 2, kind, F, "crc_a");
  uint64_t b = check_bytes(L, 3, kind, F, "crc_b");
  uint64_t len_b = check_count(L, 4, F, "len_b");
  push_bytes(L, kind, os_crc_combine(kind, a, b, len_b));
  return 1;
}

static int l_crc_to_decimal(lua_State *L) {
  size_t len;
  uint64_t v = 0;
  static const char F[] = "core.crc.to_decimal";
  const unsigned char *s = (const unsigned char *)check_string(L, 1, F, 1, "bytes", &len);
  if (len != 4 && len != 8)
    osl_misuse(L, F, 1, "bytes", "4 or 8 raw big-endian bytes expected, got %d bytes", (int)len);
  for (size_t i = 0; i < len; i++) v = (v << 8) | s[i];
  push_decimal(L, v);
  return 1;
}

static int l_crc_from_decimal(lua_State *L) {
  static const char F[] = "core.crc.from_decimal";
  os_crc_kind kind = check_kind(L, F);
  size_t len;
  uint64_t v = 0;
  const char *s = check_string(L, 2, F, 2, "decimal", &len);
  if (os_crc_from_decimal(s, len, width_of(kind), &v) != 0) {
    osl_misuse(L, F, 2, "decimal", "not an unsigned decimal %s value: '%s'",
               os_crc_params_of(kind)->name, s);
  }
  push_bytes(L, kind, v);
  return 1;
}

static int l_crc_implementation(lua_State *L) {
  os_crc_kind kind = check_kind(L, "core.crc.implementation");
  lua_pushstring(L, os_crc_impl_name(os_crc_best_impl(kind)));
  return 1;
}

/* Test hook: the same computation with a named engine, so specs can prove
 * the hardware paths agree with the portable tables. */
static int l_crc_compute_with(lua_State *L) {
  static const char F[] = "core.crc._compute_with";
  os_crc_kind kind = check_kind(L, F);
  const char *impl_name = check_string(L, 2, F, 2, "impl", NULL);
  size_t len;
  const char *s = check_string(L, 3, F, 3, "data", &len);
  os_crc_impl impl = OS_CRC_IMPL_COUNT;
  uint64_t out = 0;
  for (int i = 0; i < OS_CRC_IMPL_COUNT; i++) {
    if (strcmp(impl_name, os_crc_impl_name((os_crc_impl)i)) == 0) impl = (os_crc_impl)i;
  }
  if (impl == OS_CRC_IMPL_COUNT) {
    osl_misuse(L, F, 2, "impl",
               "unknown implementation '%s' (expected best, table, sse4.2 or pclmul)", impl_name);
  }
  if (os_crc_update_impl(kind, impl, os_crc_start(kind), s, len, &out) != 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s is not available for %s on this CPU", impl_name,
             os_crc_params_of(kind)->name);
    return osl_push_error(L, "NotAvailable", msg, 0);
  }
  push_bytes(L, kind, out);
  return 1;
}

static const luaL_Reg crc_methods[] = {
    {"update", l_crc_update},
    {"value", l_crc_value},
    {"decimal", l_crc_decimal},
    {"bytes", l_crc_bytes},
    {"hex", l_crc_hex},
    {"base64", l_crc_base64},
    {"digest", l_crc_bytes},
    {"hexdigest", l_crc_hex},
    {"base64digest", l_crc_base64},
    {"length", l_crc_length},
    {"kind", l_crc_kind},
    {"copy", l_crc_copy},
    {"close", l_crc_close},
    {"__gc", l_crc_close},
#if LUA_VERSION_NUM >= 504
    {"__close", l_crc_close},
#endif
    {"__tostring", l_crc_tostring},
    {NULL, NULL},
};

static const luaL_Reg crc_functions[] = {
    {"new", l_crc_new},
    {"compute", l_crc_compute},
    {"combine", l_crc_combine},
    {"to_decimal", l_crc_to_decimal},
    {"from_decimal", l_crc_from_decimal},
    {"implementation", l_crc_implementation},
    {"_compute_with", l_crc_compute_with},
    {NULL, NULL},
};

int osl_open_crc(lua_State *L) {
  osl_newclass(L, CRC_CLASS, crc_methods);
  osl_newlib(L, crc_functions);
  return 1;
}
