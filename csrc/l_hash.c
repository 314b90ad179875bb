/*
 * core.hash: streaming and one-shot MD5 / SHA-1 / SHA-256 and HMAC over them.
 *
 *   core.hash.new(alg [, hmac_key]) -> obj | nil, err
 *   obj:update(s) -> obj             obj:digest() -> raw bytes
 *   obj:hexdigest() -> hex           obj:base64digest() -> base64
 *   obj:copy() -> obj                obj:algorithm() -> name, is_hmac
 *   obj:close()                      (also __gc and, on 5.4, __close)
 *   core.hash.md5(s) / sha1(s) / sha256(s) -> raw bytes
 *   core.hash.hmac(alg, key, s) -> raw bytes
 *   core.hash.tohex(s), core.hash.tobase64(s) -> text form of any bytes
 *
 * The first digest call finishes the object: its OpenSSL context is freed at
 * once and the digest is kept, so digest/hexdigest/base64digest can all be
 * read afterwards, while update raises. OpenSSL failures (an algorithm that a
 * FIPS-only provider refuses, out of memory) return nil, err; misuse raises.
 */
#include <string.h>

#include <math.h>

#include "l_compat.h"
#include "os_hash.h"

#define HASH_CLASS "objstore.hash"

/* Zero is CLOSED so that a freshly zeroed, half-built object is inert. */
enum { ST_CLOSED = 0, ST_ACTIVE, ST_FINISHED };

typedef struct {
  os_hash h;
  int state;
  int is_hmac;
  size_t dlen;
  unsigned char digest[OS_HASH_MAX_SIZE];
} l_hash;

/* ---- argument checks ------------------------------------------------------ */

static const char *check_string(lua_State *L, int arg, const char *what, size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING) {
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "%s: string expected, got %s", what, luaL_typename(L, arg)));
  }
  return lua_tolstring(L, arg, len);
}

static os_hash_alg check_alg(lua_State *L, int arg) {
  os_hash_alg alg;
  const char *name = check_string(L, arg, "alg", NULL);
  if (os_hash_alg_from_name(name, &alg) != 0) {
    luaL_argerror(L, arg,
                  lua_pushfstring(
                      L, "alg: unknown hash algorithm '%s' (expected md5, sha1 or sha256)", name));
  }
  return alg;
}

static l_hash *check_hash(lua_State *L) {
  return (l_hash *)osl_checkudata(L, 1, HASH_CLASS);
}

static l_hash *check_open(lua_State *L, const char *method) {
  l_hash *o = check_hash(L);
  if (o->state == ST_CLOSED) luaL_error(L, "hash:%s(): the hash object is closed", method);
  return o;
}

/* Pushes nil and OpenSSL's reason; returns the count for `return`. */
static int push_failure(lua_State *L, const char *what) {
  char buf[256];
  os_hash_error(buf, sizeof buf);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, buf);
  return 2;
}

/* The zeroed userdata exists (with its metatable, so __gc runs) before any
 * OpenSSL allocation, so an error midway can leak nothing. */
static l_hash *push_new(lua_State *L) {
  l_hash *o = (l_hash *)osl_newuserdata(L, sizeof *o);
  memset(o, 0, sizeof *o);
  luaL_getmetatable(L, HASH_CLASS);
  lua_setmetatable(L, -2);
  return o;
}

/* ---- methods ------------------------------------------------------------- */

static int l_hash_update(lua_State *L) {
  l_hash *o = check_open(L, "update");
  size_t len;
  const char *s = check_string(L, 2, "data", &len);
  if (o->state == ST_FINISHED) {
    return luaL_error(L, "hash:update(): the hash is finished (digest already taken)");
  }
  if (os_hash_update(&o->h, s, len) != 0) {
    char buf[256];
    os_hash_error(buf, sizeof buf);
    return luaL_error(L, "hash:update(): %s", buf);
  }
  lua_settop(L, 1);
  return 1;
}

/* Finishes the hash if needed; raises only on misuse or OpenSSL failure. */
static l_hash *finished(lua_State *L, const char *method) {
  l_hash *o = check_open(L, method);
  if (o->state == ST_ACTIVE) {
    int rc = os_hash_final(&o->h, o->digest, &o->dlen);
    /* Nothing is left to do with the context either way. */
    os_hash_free(&o->h);
    o->state = rc == 0 ? ST_FINISHED : ST_CLOSED;
    if (rc != 0) {
      char buf[256];
      os_hash_error(buf, sizeof buf);
      luaL_error(L, "hash:%s(): %s", method, buf);
    }
  }
  return o;
}

static int l_hash_digest(lua_State *L) {
  l_hash *o = finished(L, "digest");
  lua_pushlstring(L, (const char *)o->digest, o->dlen);
  return 1;
}

static int l_hash_hexdigest(lua_State *L) {
  l_hash *o = finished(L, "hexdigest");
  char out[2 * OS_HASH_MAX_SIZE + 1];
  size_t n = os_hash_hex(out, o->digest, o->dlen);
  lua_pushlstring(L, out, n);
  return 1;
}

static int l_hash_base64digest(lua_State *L) {
  l_hash *o = finished(L, "base64digest");
  char out[4 * ((OS_HASH_MAX_SIZE + 2) / 3) + 1];
  size_t n = os_hash_base64(out, o->digest, o->dlen);
  lua_pushlstring(L, out, n);
  return 1;
}

static int l_hash_copy(lua_State *L) {
  l_hash *o = check_open(L, "copy");
  l_hash *c = push_new(L);
  if (o->state == ST_ACTIVE && os_hash_copy(&c->h, &o->h) != 0)
    return push_failure(L, "hash:copy()");
  c->state = o->state;
  c->is_hmac = o->is_hmac;
  c->dlen = o->dlen;
  memcpy(c->digest, o->digest, sizeof c->digest);
  return 1;
}

static int l_hash_algorithm(lua_State *L) {
  l_hash *o = check_open(L, "algorithm");
  lua_pushstring(L, os_hash_alg_name(o->h.alg));
  lua_pushboolean(L, o->is_hmac);
  return 2;
}

/* Idempotent: installed as close, __gc and __close. */
static int l_hash_close(lua_State *L) {
  l_hash *o = check_hash(L);
  os_hash_free(&o->h);
  o->state = ST_CLOSED;
  return 0;
}

static int l_hash_tostring(lua_State *L) {
  l_hash *o = check_hash(L);
  static const char *const states[] = {"closed", "active", "finished"};
  lua_pushfstring(L, "%s (%s%s, %s): %p", HASH_CLASS, o->is_hmac ? "hmac-" : "",
                  os_hash_alg_name(o->h.alg), states[o->state], (void *)o);
  return 1;
}

/* ---- module functions ---------------------------------------------------- */

static int l_hash_new(lua_State *L) {
  os_hash_alg alg = check_alg(L, 1);
  size_t keylen = 0;
  const char *key = NULL;
  l_hash *o;
  int rc;
  if (!lua_isnoneornil(L, 2)) key = check_string(L, 2, "hmac_key", &keylen);
  o = push_new(L);
  o->h.alg = alg;
  o->is_hmac = key != NULL;
  rc = key != NULL ? os_hash_init_hmac(&o->h, alg, key, keylen) : os_hash_init(&o->h, alg);
  if (rc != 0) return push_failure(L, "hash.new()");
  o->state = ST_ACTIVE;
  return 1;
}

static int oneshot(lua_State *L, os_hash_alg alg, const char *fname) {
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t n = 0, len;
  const char *s = check_string(L, 1, "data", &len);
  if (os_hash_oneshot(alg, s, len, out, &n) != 0) return push_failure(L, fname);
  lua_pushlstring(L, (const char *)out, n);
  return 1;
}

static int l_hash_md5(lua_State *L) {
  return oneshot(L, OS_HASH_MD5, "hash.md5()");
}

static int l_hash_sha1(lua_State *L) {
  return oneshot(L, OS_HASH_SHA1, "hash.sha1()");
}

static int l_hash_sha256(lua_State *L) {
  return oneshot(L, OS_HASH_SHA256, "hash.sha256()");
}

static int l_hash_hmac(lua_State *L) {
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t n = 0, keylen, len;
  os_hash_alg alg = check_alg(L, 1);
  const char *key = check_string(L, 2, "key", &keylen);
  const char *s = check_string(L, 3, "data", &len);
  if (os_hash_hmac(alg, key, keylen, s, len, out, &n) != 0) return push_failure(L, "hash.hmac()");
  lua_pushlstring(L, (const char *)out, n);
  return 1;
}

/* Text forms of arbitrary bytes, built in a luaL_Buffer so that a long input
 * cannot leak scratch memory if the push raises. */
/* Arguments of core.hash.file and file_async: alg, path, offset, length. */
typedef struct {
  os_hash_alg alg;
  const char *path;
  long long offset, length;
} file_args;

static void check_file_args(lua_State *L, file_args *a) {
  const char *name = luaL_checkstring(L, 1);
  if (os_hash_alg_from_name(name, &a->alg) != 0) luaL_argerror(L, 1, "unknown hash algorithm");
  a->path = luaL_checkstring(L, 2);
  lua_Number off = luaL_optnumber(L, 3, 0), len = luaL_checknumber(L, 4);
  if (!(off >= 0 && off < 9.0e15) || off != floor(off))
    luaL_argerror(L, 3, "offset: whole number >= 0");
  if (!(len >= 0 && len < 9.0e15) || len != floor(len))
    luaL_argerror(L, 4, "length: whole number >= 0");
  a->offset = (long long)off;
  a->length = (long long)len;
}

/* core.hash.file(alg, path, offset, length) -> raw digest | nil, err: the
 * digest of a file range, read in C (multipart parts never pass through Lua). */
static int l_hash_file(lua_State *L) {
  file_args a;
  check_file_args(L, &a);
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t outlen = 0;
  char err[256];
  if (os_hash_file(a.alg, a.path, a.offset, a.length, out, &outlen, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, (const char *)out, outlen);
  return 1;
}

#define HASH_JOB_CLASS "objstore.hash.job"

static int l_job_gc(lua_State *L) {
  os_hash_job *j = (os_hash_job *)osl_checkudata(L, 1, HASH_JOB_CLASS);
  os_hash_job_free(j);
  return 0;
}

/* job:wait() -> raw digest | nil, err (blocks until the thread is done). */
static int l_job_wait(lua_State *L) {
  os_hash_job *j = (os_hash_job *)osl_checkudata(L, 1, HASH_JOB_CLASS);
  if (os_hash_job_wait(j) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, j->err);
    return 2;
  }
  lua_pushlstring(L, (const char *)j->out, j->outlen);
  return 1;
}

/* core.hash.file_async(alg, path, offset, length) -> job: the digest of a
 * file range computed on a thread; job:wait() gives it. */
static int l_hash_file_async(lua_State *L) {
  file_args a;
  check_file_args(L, &a);
  /* Zeroed userdata with its __gc first: start's allocations are then always freed. */
  os_hash_job *j = (os_hash_job *)osl_newuserdata(L, sizeof *j);
  memset(j, 0, sizeof *j);
  luaL_getmetatable(L, HASH_JOB_CLASS);
  lua_setmetatable(L, -2);
  if (os_hash_job_start(j, a.alg, a.path, a.offset, a.length) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, j->err);
    return 2;
  }
  return 1;
}

static int l_hash_tohex(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)check_string(L, 1, "bytes", &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (len > 0) {
    char chunk[2 * 48 + 1];
    size_t n = len < 48 ? len : 48;
    luaL_addlstring(&b, chunk, os_hash_hex(chunk, s, n));
    s += n;
    len -= n;
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_hash_tobase64(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)check_string(L, 1, "bytes", &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (len > 0) {
    char chunk[64 + 1];
    size_t n = len < 48 ? len : 48; /* whole 3-byte groups except at the end */
    luaL_addlstring(&b, chunk, os_hash_base64(chunk, s, n));
    s += n;
    len -= n;
  }
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg hash_methods[] = {
    {"update", l_hash_update},       {"digest", l_hash_digest},
    {"hexdigest", l_hash_hexdigest}, {"base64digest", l_hash_base64digest},
    {"copy", l_hash_copy},           {"algorithm", l_hash_algorithm},
    {"close", l_hash_close},         {"__gc", l_hash_close},
#if LUA_VERSION_NUM >= 504
    {"__close", l_hash_close},
#endif
    {"__tostring", l_hash_tostring}, {NULL, NULL},
};

static const luaL_Reg hash_functions[] = {
    {"new", l_hash_new},
    {"md5", l_hash_md5},
    {"sha1", l_hash_sha1},
    {"sha256", l_hash_sha256},
    {"hmac", l_hash_hmac},
    {"file", l_hash_file},
    {"file_async", l_hash_file_async},
    {"tohex", l_hash_tohex},
    {"tobase64", l_hash_tobase64},
    {NULL, NULL},
};

int osl_open_hash(lua_State *L) {
  static const luaL_Reg job_methods[] = {{"wait", l_job_wait}, {"__gc", l_job_gc}, {NULL, NULL}};
  osl_newclass(L, HASH_CLASS, hash_methods);
  osl_newclass(L, HASH_JOB_CLASS, job_methods);
  osl_newlib(L, hash_functions);
  return 1;
}
