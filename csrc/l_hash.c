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
 *   core.hash.file(alg, path, offset, length) -> raw digest (blocks)
 *   core.hash.file_async(...), core.hash.ranges_async(...) -> job on a thread:
 *     job:done() -> boolean (never blocks), job:wait() -> results (joins)
 *
 * The first digest call finishes the object: its OpenSSL context is freed at
 * once and the digest is kept, so digest/hexdigest/base64digest can all be
 * read afterwards, while update raises. OpenSSL failures (an algorithm that a
 * FIPS-only provider refuses, out of memory) return nil, err with code
 * HashError, file errors nil, err with code LocalFileError; misuse raises
 * (osl_misuse). Methods are named "core.hash.<method>" in messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "l_compat.h"
#include "os_crc.h"
#include "os_encode.h"
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

/* A string (numbers are not taken) at stack index idx, shown as argument
 * #arg (name) of fname. */
static const char *check_string(lua_State *L, int idx, const char *fname, int arg, const char *name,
                                size_t *len) {
  if (lua_type(L, idx) != LUA_TSTRING)
    osl_misuse(L, fname, arg, name, "string expected, got %s", luaL_typename(L, idx));
  return lua_tolstring(L, idx, len);
}

/* The algorithm named at index idx, which is argument #idx of fname. */
static os_hash_alg check_alg(lua_State *L, int idx, const char *fname) {
  os_hash_alg alg;
  const char *name = check_string(L, idx, fname, idx, "alg", NULL);
  if (os_hash_alg_from_name(name, &alg) != 0) {
    osl_misuse(L, fname, idx, "alg", "unknown hash algorithm '%s' (expected md5, sha1 or sha256)",
               name);
  }
  return alg;
}

static l_hash *check_hash(lua_State *L, const char *fname) {
  return (l_hash *)osl_checkself(L, HASH_CLASS, fname);
}

static l_hash *check_open(lua_State *L, const char *fname) {
  l_hash *o = check_hash(L, fname);
  if (o->state == ST_CLOSED) osl_misuse(L, fname, 0, "self", "the hash object is closed");
  return o;
}

/* Pushes nil and a HashError with OpenSSL's reason; returns the count. */
static int push_failure(lua_State *L, const char *fname) {
  char buf[256], msg[320];
  os_hash_error(buf, sizeof buf);
  snprintf(msg, sizeof msg, "%s: %s", fname, buf);
  return osl_push_error(L, "HashError", msg, 0);
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

/* obj:update(s) -> obj | nil, err (HashError) */
static int l_hash_update(lua_State *L) {
  static const char F[] = "core.hash.update";
  l_hash *o = check_open(L, F);
  size_t len;
  const char *s = check_string(L, 2, F, 1, "data", &len);
  if (o->state == ST_FINISHED)
    return osl_misuse(L, F, 0, "self", "the hash is finished (digest already taken)");
  if (os_hash_update(&o->h, s, len) != 0) return push_failure(L, F);
  lua_settop(L, 1);
  return 1;
}

/* Finishes the hash if needed: the object, or NULL after pushing nil and a
 * HashError (the object is closed then). Raises only on misuse. */
static l_hash *finished(lua_State *L, const char *fname) {
  l_hash *o = check_open(L, fname);
  if (o->state == ST_ACTIVE) {
    int rc = os_hash_final(&o->h, o->digest, &o->dlen);
    if (rc != 0) {
      push_failure(L, fname); /* reads OpenSSL's error queue before the free */
      os_hash_free(&o->h);
      o->state = ST_CLOSED;
      return NULL;
    }
    /* Nothing is left to do with the context either way. */
    os_hash_free(&o->h);
    o->state = ST_FINISHED;
  }
  return o;
}

static int l_hash_digest(lua_State *L) {
  l_hash *o = finished(L, "core.hash.digest");
  if (o == NULL) return 2;
  lua_pushlstring(L, (const char *)o->digest, o->dlen);
  return 1;
}

static int l_hash_hexdigest(lua_State *L) {
  l_hash *o = finished(L, "core.hash.hexdigest");
  if (o == NULL) return 2;
  char out[2 * OS_HASH_MAX_SIZE + 1];
  size_t n = os_hex_to(out, o->digest, o->dlen);
  lua_pushlstring(L, out, n);
  return 1;
}

static int l_hash_base64digest(lua_State *L) {
  l_hash *o = finished(L, "core.hash.base64digest");
  if (o == NULL) return 2;
  char out[4 * ((OS_HASH_MAX_SIZE + 2) / 3) + 1];
  size_t n = os_base64_to(out, o->digest, o->dlen);
  lua_pushlstring(L, out, n);
  return 1;
}

static int l_hash_copy(lua_State *L) {
  l_hash *o = check_open(L, "core.hash.copy");
  l_hash *c = push_new(L);
  if (o->state == ST_ACTIVE && os_hash_copy(&c->h, &o->h) != 0)
    return push_failure(L, "core.hash.copy");
  c->state = o->state;
  c->is_hmac = o->is_hmac;
  c->dlen = o->dlen;
  memcpy(c->digest, o->digest, sizeof c->digest);
  return 1;
}

static int l_hash_algorithm(lua_State *L) {
  l_hash *o = check_open(L, "core.hash.algorithm");
  lua_pushstring(L, os_hash_alg_name(o->h.alg));
  lua_pushboolean(L, o->is_hmac);
  return 2;
}

/* Idempotent: installed as close, __gc and __close. */
static int l_hash_close(lua_State *L) {
  l_hash *o = check_hash(L, "core.hash.close");
  os_hash_free(&o->h);
  o->state = ST_CLOSED;
  return 0;
}

static int l_hash_tostring(lua_State *L) {
  l_hash *o = check_hash(L, "core.hash.__tostring");
  static const char *const states[] = {"closed", "active", "finished"};
  lua_pushfstring(L, "%s (%s%s, %s): %p", HASH_CLASS, o->is_hmac ? "hmac-" : "",
                  os_hash_alg_name(o->h.alg), states[o->state], (void *)o);
  return 1;
}

/* ---- module functions ---------------------------------------------------- */

static int l_hash_new(lua_State *L) {
  static const char F[] = "core.hash.new";
  os_hash_alg alg = check_alg(L, 1, F);
  size_t keylen = 0;
  const char *key = NULL;
  l_hash *o;
  int rc;
  if (!lua_isnoneornil(L, 2)) key = check_string(L, 2, F, 2, "hmac_key", &keylen);
  o = push_new(L);
  o->h.alg = alg;
  o->is_hmac = key != NULL;
  rc = key != NULL ? os_hash_init_hmac(&o->h, alg, key, keylen) : os_hash_init(&o->h, alg);
  if (rc != 0) return push_failure(L, F);
  o->state = ST_ACTIVE;
  return 1;
}

static int oneshot(lua_State *L, os_hash_alg alg, const char *fname) {
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t n = 0, len;
  const char *s = check_string(L, 1, fname, 1, "data", &len);
  if (os_hash_oneshot(alg, s, len, out, &n) != 0) return push_failure(L, fname);
  lua_pushlstring(L, (const char *)out, n);
  return 1;
}

static int l_hash_md5(lua_State *L) {
  return oneshot(L, OS_HASH_MD5, "core.hash.md5");
}

static int l_hash_sha1(lua_State *L) {
  return oneshot(L, OS_HASH_SHA1, "core.hash.sha1");
}

static int l_hash_sha256(lua_State *L) {
  return oneshot(L, OS_HASH_SHA256, "core.hash.sha256");
}

static int l_hash_hmac(lua_State *L) {
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t n = 0, keylen, len;
  static const char F[] = "core.hash.hmac";
  os_hash_alg alg = check_alg(L, 1, F);
  const char *key = check_string(L, 2, F, 2, "key", &keylen);
  const char *s = check_string(L, 3, F, 3, "data", &len);
  if (os_hash_hmac(alg, key, keylen, s, len, out, &n) != 0) return push_failure(L, F);
  lua_pushlstring(L, (const char *)out, n);
  return 1;
}

/* Arguments of core.hash.file and file_async: alg, path, offset, length. */
typedef struct {
  os_hash_alg alg;
  const char *path;
  long long offset, length;
} file_args;

/* A whole number of bytes in [0, 9e15) at stack index idx, reported as
 * argument #argn. */
static long long check_bytes_of(lua_State *L, int idx, int argn, const char *fname,
                                const char *name) {
  if (lua_type(L, idx) != LUA_TNUMBER) {
    osl_misuse(L, fname, argn, name, "must be a whole number >= 0, got %s", luaL_typename(L, idx));
  }
  lua_Number n = lua_tonumber(L, idx);
  if (!(n >= 0 && n < 9.0e15) || n != floor(n)) {
    char got[32];
    snprintf(got, sizeof got, "%.14g", (double)n); /* "-1", where %f gives "-1.0" on 5.3+ */
    osl_misuse(L, fname, argn, name, "must be a whole number >= 0, got %s", got);
  }
  return (long long)n;
}

static long long check_bytes(lua_State *L, int idx, const char *fname, const char *name) {
  return check_bytes_of(L, idx, idx, fname, name);
}

static void check_file_args(lua_State *L, const char *fname, file_args *a) {
  a->alg = check_alg(L, 1, fname);
  a->path = check_string(L, 2, fname, 2, "path", NULL);
  a->offset = lua_isnoneornil(L, 3) ? 0 : check_bytes(L, 3, fname, "offset");
  a->length = check_bytes(L, 4, fname, "length");
}

/* core.hash.file(alg, path, offset, length) -> raw digest | nil, err: the
 * digest of a file range, read in C (multipart parts never pass through Lua). */
static int l_hash_file(lua_State *L) {
  file_args a;
  check_file_args(L, "core.hash.file", &a);
  unsigned char out[OS_HASH_MAX_SIZE];
  size_t outlen = 0;
  char err[256];
  if (os_hash_file(a.alg, a.path, a.offset, a.length, out, &outlen, err, sizeof err) != 0)
    return osl_push_error(L, "LocalFileError", err, 0);
  lua_pushlstring(L, (const char *)out, outlen);
  return 1;
}

#define HASH_JOB_CLASS "objstore.hash.job"

/* The userdata holds the job by pointer: a job collected while its thread
 * still runs is left to that thread (os_hash_job_release), so a collection
 * never waits for a hash (inside nginx, a request's light thread killed
 * mid-wait leaves its jobs to the collector). */
typedef struct {
  os_hash_job *j;
} l_job;

static os_hash_job *check_job(lua_State *L, const char *fname) {
  l_job *b = (l_job *)osl_checkself(L, HASH_JOB_CLASS, fname);
  if (b->j == NULL) osl_misuse(L, fname, 0, "self", "the hashing job is released");
  return b->j;
}

static int l_job_gc(lua_State *L) {
  l_job *b = (l_job *)osl_checkself(L, HASH_JOB_CLASS, "core.hash.__gc");
  os_hash_job_release(b->j);
  b->j = NULL;
  return 0;
}

/* A ranges job's results: three lists, digests then each CRC's raw bytes
 * (nil for a CRC not asked for). */
static int push_ranges(lua_State *L, const os_hash_job *j) {
  lua_createtable(L, (int)j->nranges, 0);
  for (size_t i = 0; i < j->nranges; i++) {
    lua_pushlstring(L, (const char *)j->ranges[i].out, j->ranges[i].outlen);
    lua_rawseti(L, -2, (int)i + 1);
  }
  for (int k = 0; k < 2; k++) {
    if (!(j->crcs & (1u << k))) {
      lua_pushnil(L);
      continue;
    }
    lua_createtable(L, (int)j->nranges, 0);
    for (size_t i = 0; i < j->nranges; i++) {
      unsigned char b[8];
      os_crc_to_bytes(k == 0 ? OS_CRC64NVME : OS_CRC64ECMA, j->ranges[i].crc[k], b);
      lua_pushlstring(L, (const char *)b, 8);
      lua_rawseti(L, -2, (int)i + 1);
    }
  }
  return 3;
}

/* job:wait() -> raw digest | nil, err (blocks until the thread is done). */
static int l_job_wait(lua_State *L) {
  os_hash_job *j = check_job(L, "core.hash.wait");
  if (os_hash_job_wait(j) != 0) return osl_push_error(L, "LocalFileError", j->err, 0);
  if (j->ranges != NULL) return push_ranges(L, j);
  lua_pushlstring(L, (const char *)j->out, j->outlen);
  for (int i = 0; i < 2; i++) {
    unsigned char b[8];
    if (j->crcs & (1u << i)) {
      os_crc_to_bytes(i == 0 ? OS_CRC64NVME : OS_CRC64ECMA, j->crc[i], b);
      lua_pushlstring(L, (const char *)b, 8);
    } else {
      lua_pushnil(L);
    }
  }
  return 3;
}

/* job:done() -> boolean, without blocking: true when the thread has
 * finished, so wait() returns at once. A caller that must not block (an
 * nginx request) polls it between yields, then calls wait(). */
static int l_job_done(lua_State *L) {
  os_hash_job *j = check_job(L, "core.hash.done");
  lua_pushboolean(L, os_hash_job_done(j));
  return 1;
}

/* core.hash.file_async(alg, path, offset, length, crcs) -> job: the digest
 * of a file range computed on a thread; job:wait() gives it, then the raw
 * CRC-64/NVME and CRC-64/ECMA when crcs (a list of those names) asks for
 * them in the same pass. */
/* The CRCs named by the list at idx (nil: none), as OS_HASH_CRC64* bits. */
static unsigned check_crcs(lua_State *L, int idx, const char *fname) {
  unsigned crcs = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  osl_checktype(L, idx, LUA_TTABLE, fname, idx, "crcs");
  for (int i = 1; i <= (int)osl_rawlen(L, idx); i++) {
    lua_rawgeti(L, idx, i);
    const char *name = lua_tostring(L, -1);
    if (name != NULL && strcmp(name, "crc64nvme") == 0)
      crcs |= OS_HASH_CRC64NVME;
    else if (name != NULL && strcmp(name, "crc64ecma") == 0)
      crcs |= OS_HASH_CRC64ECMA;
    else
      osl_misuse(L, fname, idx, "crcs", "may hold 'crc64nvme' and 'crc64ecma'");
    lua_pop(L, 1);
  }
  return crcs;
}

/* A job userdata with its __gc set, then the zeroed job it owns (NULL when
 * out of memory: the caller returns nil, err); whatever start allocates is
 * freed by __gc. */
static os_hash_job *new_job(lua_State *L) {
  l_job *b = (l_job *)osl_newuserdata(L, sizeof *b);
  b->j = NULL;
  luaL_getmetatable(L, HASH_JOB_CLASS);
  lua_setmetatable(L, -2);
  b->j = os_hash_job_new();
  return b->j;
}

/* A job that did not start: no memory, or no thread (EAGAIN: a limit that may pass). */
static int push_start_failure(lua_State *L, const os_hash_job *j) {
  int oom = j->path == NULL || j->thread == NULL;
  return osl_push_error(L, oom ? "OutOfMemory" : "ThreadError", j->err, !oom);
}

static int l_hash_file_async(lua_State *L) {
  file_args a;
  check_file_args(L, "core.hash.file_async", &a);
  unsigned crcs = check_crcs(L, 5, "core.hash.file_async");
  os_hash_job *j = new_job(L);
  if (j == NULL) return osl_push_error(L, "OutOfMemory", "out of memory", 0);
  j->crcs = crcs;
  if (os_hash_job_start(j, a.alg, a.path, a.offset, a.length) != 0) return push_start_failure(L, j);
  return 1;
}

/* core.hash.ranges_async(alg, path, ranges, crcs, single) -> job: the digests
 * of several ranges ({ {offset, length}, ... }) of one file on a thread;
 * job:wait() gives the list of digests, then the lists of raw CRC-64/NVME
 * and CRC-64/ECMA values asked for in crcs (nil otherwise). MD5 ranges are
 * hashed eight at a time by the multi-buffer engine when the CPU has it;
 * `single` (a boolean) hashes them one at a time with OpenSSL instead. */
static int l_hash_ranges_async(lua_State *L) {
  static const char F[] = "core.hash.ranges_async";
  os_hash_alg alg = check_alg(L, 1, F);
  const char *path = check_string(L, 2, F, 2, "path", NULL);
  osl_checktype(L, 3, LUA_TTABLE, F, 3, "ranges");
  unsigned crcs = check_crcs(L, 4, F);
  int single = 0;
  if (!lua_isnoneornil(L, 5)) {
    osl_checktype(L, 5, LUA_TBOOLEAN, F, 5, "single");
    single = lua_toboolean(L, 5);
  }
  size_t n = osl_rawlen(L, 3);
  if (n == 0 || n > 100000) osl_misuse(L, F, 3, "ranges", "must hold 1 to 100000 ranges");
  os_hash_job *j = new_job(L);
  if (j == NULL) return osl_push_error(L, "OutOfMemory", "out of memory", 0);
  j->crcs = crcs;
  j->single = single;
  /* Owned by the job from here, so a raise below frees it in __gc. */
  j->ranges = calloc(n, sizeof *j->ranges);
  if (j->ranges == NULL) return osl_push_error(L, "OutOfMemory", "out of memory", 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 3, (int)i + 1);
    if (lua_type(L, -1) != LUA_TTABLE)
      osl_misuse(L, F, 3, "ranges", "must hold {offset, length} pairs");
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    int top = lua_gettop(L);
    j->ranges[i].offset = check_bytes_of(L, top - 1, 3, F, "ranges[i][1] (offset)");
    j->ranges[i].length = check_bytes_of(L, top, 3, F, "ranges[i][2] (length)");
    lua_pop(L, 3);
  }
  if (os_hash_job_start_ranges(j, alg, path, j->ranges, n) != 0) return push_start_failure(L, j);
  return 1;
}

/* Text forms of arbitrary bytes, built in a luaL_Buffer so that a long input
 * cannot leak scratch memory if the push raises. */
static int l_hash_tohex(lua_State *L) {
  size_t len;
  const unsigned char *s =
      (const unsigned char *)check_string(L, 1, "core.hash.tohex", 1, "bytes", &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (len > 0) {
    char chunk[2 * 48 + 1];
    size_t n = len < 48 ? len : 48;
    luaL_addlstring(&b, chunk, os_hex_to(chunk, s, n));
    s += n;
    len -= n;
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_hash_tobase64(lua_State *L) {
  size_t len;
  const unsigned char *s =
      (const unsigned char *)check_string(L, 1, "core.hash.tobase64", 1, "bytes", &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (len > 0) {
    char chunk[64 + 1];
    size_t n = len < 48 ? len : 48; /* whole 3-byte groups except at the end */
    luaL_addlstring(&b, chunk, os_base64_to(chunk, s, n));
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
    {"ranges_async", l_hash_ranges_async},
    {"tohex", l_hash_tohex},
    {"tobase64", l_hash_tobase64},
    {NULL, NULL},
};

int osl_open_hash(lua_State *L) {
  static const luaL_Reg job_methods[] = {
      {"wait", l_job_wait}, {"done", l_job_done}, {"__gc", l_job_gc}, {NULL, NULL}};
  osl_newclass(L, HASH_CLASS, hash_methods);
  osl_newclass(L, HASH_JOB_CLASS, job_methods);
  osl_newlib(L, hash_functions);
  return 1;
}
