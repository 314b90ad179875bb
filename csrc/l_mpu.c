/*
 * core.mpu: Lua face of os_mpu (multipart state) and os_ckpt (append-only
 * checkpoints). Thin: argument checks and conversions only.
 *
 *   m = core.mpu.new{ size = n|nil, part_size = n, max_parts = n,
 *                     etag_md5 = false (SSE-KMS/SSE-C: never compare ETags with MD5s) }
 *   ck = core.mpu.checkpoint(path)  -> ck | nil, err (CheckpointInUse)
 *   core.mpu.is(v) -> boolean
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "l_compat.h"
#include "os_buf.h"
#include "os_ckpt.h"
#include "os_crc.h"
#include "os_mpu.h"

#define MPU_CLASS "objstore.mpu"
#define CKPT_CLASS "objstore.checkpoint"

static const char *const STATE_NAMES[] = {"pending", "in_flight", "done", "failed"};
static const char *const KIND_NAMES[] = {"", "upload", "download", "copy"};

static os_mpu *check_mpu(lua_State *L, const char *fname) {
  os_mpu *m = (os_mpu *)osl_checkself(L, MPU_CLASS, fname);
  if (m->parts == NULL) osl_misuse(L, fname, 0, "self", "the multipart state is closed");
  return m;
}

static int64_t check_int(lua_State *L, int idx, const char *fname, int arg, const char *name) {
  lua_Number n = osl_checknumber(L, idx, fname, arg, name);
  if (!(n >= -1 && n < 9.0e15) || n != floor(n))
    osl_misuse(L, fname, arg, name, "must be a whole number >= 0");
  return (int64_t)n;
}

static uint32_t check_part(lua_State *L, os_mpu *m, int idx, const char *fname) {
  int64_t n = check_int(L, idx, fname, idx - 1, "number");
  if (n < 1 || n > (int64_t)m->count)
    osl_misuse(L, fname, idx - 1, "number", "part %d is not in the plan (1..%d)", (int)n,
               (int)m->count);
  return (uint32_t)n;
}

static int64_t field_int(lua_State *L, int t, const char *field, const char *fname, int64_t dflt) {
  lua_getfield(L, t, field);
  int64_t v = dflt;
  if (!lua_isnil(L, -1)) v = check_int(L, lua_gettop(L), fname, 1, field);
  lua_pop(L, 1);
  return v;
}

/* core.mpu.new{ size, part_size, max_parts } */
static int l_mpu_new(lua_State *L) {
  const char *F = "core.mpu.new";
  osl_checktype(L, 1, LUA_TTABLE, F, 1, "opts");
  int64_t size = field_int(L, 1, "size", F, -1);
  int64_t part_size = field_int(L, 1, "part_size", F, 0);
  int64_t max_parts = field_int(L, 1, "max_parts", F, OS_MPU_MAX_PARTS);
  lua_getfield(L, 1, "etag_md5");
  int etag_not_md5 = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  os_mpu *m = (os_mpu *)osl_newuserdata(L, sizeof *m);
  memset(m, 0, sizeof *m);
  char err[256];
  if (max_parts < 1 || max_parts > OS_MPU_MAX_PARTS ||
      os_mpu_init(m, size, part_size, (uint32_t)max_parts, err, sizeof err) != 0) {
    if (max_parts < 1 || max_parts > OS_MPU_MAX_PARTS)
      snprintf(err, sizeof err, "max_parts must be 1..%d", OS_MPU_MAX_PARTS);
    return osl_push_error(L, "InvalidArgument", err, 0);
  }
  m->etag_not_md5 = etag_not_md5;
  luaL_getmetatable(L, MPU_CLASS);
  lua_setmetatable(L, -2);
  return 1;
}

static int l_mpu_gc(lua_State *L) {
  os_mpu *m = (os_mpu *)osl_checkself(L, MPU_CLASS, "core.mpu.__gc");
  os_mpu_free(m);
  return 0;
}

/* m:info() -> size|nil, part_size, count, bytes of state */
static int l_mpu_info(lua_State *L) {
  os_mpu *m = check_mpu(L, "core.mpu.info");
  if (m->size < 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, (lua_Number)m->size);
  lua_pushnumber(L, (lua_Number)m->part_size);
  lua_pushinteger(L, (lua_Integer)m->count);
  lua_pushnumber(L, (lua_Number)os_mpu_bytes(m));
  return 4;
}

/* m:add(length) -> number | nil (the part limit is reached) */
static int l_mpu_add(lua_State *L) {
  os_mpu *m = check_mpu(L, "core.mpu.add");
  uint32_t n = os_mpu_add(m, check_int(L, 2, "core.mpu.add", 1, "length"));
  if (n == 0) return 0;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* m:next() -> number, offset, length | nil: the next pending part, now in flight. */
static int l_mpu_next(lua_State *L) {
  os_mpu *m = check_mpu(L, "core.mpu.next");
  uint32_t n = os_mpu_next_pending(m);
  if (n == 0) return 0;
  const char *code;
  char err[128];
  os_mpu_set_state(m, n, OS_PART_IN_FLIGHT, &code, err, sizeof err);
  lua_pushinteger(L, (lua_Integer)n);
  lua_pushinteger(L, (lua_Integer)m->parts[n - 1].offset);
  lua_pushinteger(L, (lua_Integer)m->parts[n - 1].length);
  return 3;
}

static int set_state(lua_State *L, const char *fname, os_part_state st) {
  os_mpu *m = check_mpu(L, fname);
  uint32_t n = check_part(L, m, 2, fname);
  const char *code;
  char err[128];
  os_mpu_set_state(m, n, st, &code, err, sizeof err);
  return 0;
}
static int l_mpu_start(lua_State *L) {
  return set_state(L, "core.mpu.start", OS_PART_IN_FLIGHT);
}
static int l_mpu_failed(lua_State *L) {
  return set_state(L, "core.mpu.failed", OS_PART_FAILED);
}
static int l_mpu_reset(lua_State *L) {
  return set_state(L, "core.mpu.reset", OS_PART_PENDING);
}

/* A CRC argument: nil, or its 8 raw big-endian bytes. */
static int opt_crc(lua_State *L, int idx, const char *fname, const char *name, uint64_t *out) {
  if (lua_isnoneornil(L, idx)) return 0;
  size_t len;
  const char *s = osl_checklstring(L, idx, fname, idx - 1, name, &len);
  if (os_crc_from_bytes(OS_CRC64NVME, (const unsigned char *)s, len, out) != 0)
    osl_misuse(L, fname, idx - 1, name, "must be 8 raw bytes, got %d", (int)len);
  return 1;
}

/* m:done(n, etag|nil, md5|nil, crc64nvme|nil, crc64ecma|nil) -> true | nil, err */
static int l_mpu_done(lua_State *L) {
  const char *F = "core.mpu.done";
  os_mpu *m = check_mpu(L, F);
  uint32_t n = check_part(L, m, 2, F);
  const char *etag = lua_isnoneornil(L, 3) ? NULL : osl_checklstring(L, 3, F, 2, "etag", NULL);
  const unsigned char *md5 = NULL;
  if (!lua_isnoneornil(L, 4)) {
    size_t len;
    md5 = (const unsigned char *)osl_checklstring(L, 4, F, 3, "md5", &len);
    if (len != 16) osl_misuse(L, F, 3, "md5", "must be 16 raw bytes, got %d", (int)len);
  }
  uint64_t nvme, ecma;
  int has_nvme = opt_crc(L, 5, F, "crc64nvme", &nvme);
  int has_ecma = opt_crc(L, 6, F, "crc64ecma", &ecma);
  const char *code = "InternalError";
  char err[256];
  if (os_mpu_mark_done(m, n, etag, md5, has_nvme ? &nvme : NULL, has_ecma ? &ecma : NULL, &code,
                       err, sizeof err) != 0)
    return osl_push_error(L, code, err, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* m:digests(n, md5|nil, crc64nvme|nil, crc64ecma|nil): what the local bytes
 * of part n hash to, recorded ahead of sending. */
static int l_mpu_digests(lua_State *L) {
  const char *F = "core.mpu.digests";
  os_mpu *m = check_mpu(L, F);
  uint32_t n = check_part(L, m, 2, F);
  const unsigned char *md5 = NULL;
  if (!lua_isnoneornil(L, 3)) {
    size_t len;
    md5 = (const unsigned char *)osl_checklstring(L, 3, F, 2, "md5", &len);
    if (len != 16) osl_misuse(L, F, 2, "md5", "must be 16 raw bytes, got %d", (int)len);
  }
  uint64_t nvme, ecma;
  int has_nvme = opt_crc(L, 4, F, "crc64nvme", &nvme);
  int has_ecma = opt_crc(L, 5, F, "crc64ecma", &ecma);
  os_mpu_set_digests(m, n, md5, has_nvme ? &nvme : NULL, has_ecma ? &ecma : NULL);
  return 0;
}

static os_sum_alg check_sum_alg(lua_State *L, int idx, const char *fname, int arg) {
  const char *name = osl_checklstring(L, idx, fname, arg, "algorithm", NULL);
  os_sum_alg alg = os_mpu_sum_alg(name);
  if (alg == OS_SUM_NONE)
    osl_misuse(L, fname, arg, "algorithm",
               "must be 'crc32', 'crc32c', 'crc64nvme', 'sha1' or 'sha256'");
  return alg;
}

/* m:checksum(n, algorithm|nil, raw_value, verified): the flexible checksum
 * part n was sent with and whether the server verified it (nil clears). */
static int l_mpu_checksum(lua_State *L) {
  const char *F = "core.mpu.checksum";
  os_mpu *m = check_mpu(L, F);
  uint32_t n = check_part(L, m, 2, F);
  os_sum_alg alg = lua_isnoneornil(L, 3) ? OS_SUM_NONE : check_sum_alg(L, 3, F, 2);
  size_t len = 0;
  const char *v = alg == OS_SUM_NONE ? NULL : osl_checklstring(L, 4, F, 3, "value", &len);
  char err[128];
  if (os_mpu_set_sum(m, n, alg, (const unsigned char *)v, len, lua_toboolean(L, 5), err,
                     sizeof err) != 0)
    osl_misuse(L, F, 3, "value", "%s", err);
  return 0;
}

static void push_crc(lua_State *L, uint64_t crc) {
  unsigned char b[8];
  os_crc_to_bytes(OS_CRC64NVME, crc, b);
  lua_pushlstring(L, (const char *)b, 8);
}

/* m:part(n) -> { number, offset, length, state, etag, md5, crc64nvme, crc64ecma,
 *               checksum_algorithm, checksum (raw), checksum_verified } */
static int l_mpu_part(lua_State *L) {
  os_mpu *m = check_mpu(L, "core.mpu.part");
  uint32_t n = check_part(L, m, 2, "core.mpu.part");
  const os_mpu_part *p = &m->parts[n - 1];
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, "number");
  lua_pushinteger(L, (lua_Integer)p->offset);
  lua_setfield(L, -2, "offset");
  lua_pushinteger(L, (lua_Integer)p->length);
  lua_setfield(L, -2, "length");
  lua_pushstring(L, STATE_NAMES[p->state]);
  lua_setfield(L, -2, "state");
  if (p->state == OS_PART_DONE) {
    lua_pushstring(L, p->etag);
    lua_setfield(L, -2, "etag");
  }
  if (p->flags & OS_PART_HAS_MD5) {
    lua_pushlstring(L, (const char *)p->md5, 16);
    lua_setfield(L, -2, "md5");
  }
  if (p->flags & OS_PART_HAS_NVME) {
    push_crc(L, p->crc_nvme);
    lua_setfield(L, -2, "crc64nvme");
  }
  if (p->flags & OS_PART_HAS_ECMA) {
    push_crc(L, p->crc_ecma);
    lua_setfield(L, -2, "crc64ecma");
  }
  const os_mpu_sum *s = os_mpu_sum_of(m, n);
  if (s != NULL) {
    lua_pushstring(L, os_mpu_sum_name((os_sum_alg)s->alg));
    lua_setfield(L, -2, "checksum_algorithm");
    lua_pushlstring(L, (const char *)s->value, os_mpu_sum_size((os_sum_alg)s->alg));
    lua_setfield(L, -2, "checksum");
    lua_pushboolean(L, (p->flags & OS_PART_SUM_VERIFIED) != 0);
    lua_setfield(L, -2, "checksum_verified");
  }
  return 1;
}

/* m:count() -> parts, done; m:bytes_done() -> n */
static int l_mpu_count(lua_State *L) {
  os_mpu *m = check_mpu(L, "core.mpu.count");
  lua_pushinteger(L, (lua_Integer)m->count);
  lua_pushinteger(L, (lua_Integer)os_mpu_count_done(m));
  return 2;
}
static int l_mpu_bytes_done(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)os_mpu_bytes_done(check_mpu(L, "core.mpu.bytes_done")));
  return 1;
}

/* m:crc("crc64nvme"|"crc64ecma", all) -> 8 raw bytes | nil: the done parts
 * combined (all = true: every part's recorded digest); nil when one lacks it. */
static int l_mpu_crc(lua_State *L) {
  os_mpu *m = check_mpu(L, "core.mpu.crc");
  const char *kind = osl_checklstring(L, 2, "core.mpu.crc", 1, "kind", NULL);
  int which = strcmp(kind, "crc64ecma") == 0 ? OS_PART_HAS_ECMA : OS_PART_HAS_NVME;
  if (which == OS_PART_HAS_NVME && strcmp(kind, "crc64nvme") != 0)
    osl_misuse(L, "core.mpu.crc", 1, "kind", "must be 'crc64nvme' or 'crc64ecma'");
  uint64_t crc;
  if (os_mpu_combined_crc(m, which, lua_toboolean(L, 3), &crc) != 0) return 0;
  push_crc(L, crc);
  return 1;
}

/* m:etag() -> "hex-N" | nil: the ETag the done parts' MD5s imply. */
static int l_mpu_etag(lua_State *L) {
  char out[64];
  if (os_mpu_multipart_etag(check_mpu(L, "core.mpu.etag"), out, sizeof out) != 0) return 0;
  lua_pushstring(L, out);
  return 1;
}

/* m:complete_body(namespace|nil, algorithm|nil) -> xml | nil, err; with an
 * algorithm, every part's Checksum<ALG>. */
static int l_mpu_complete_body(lua_State *L) {
  const char *F = "core.mpu.complete_body";
  os_mpu *m = check_mpu(L, F);
  const char *ns = lua_isnoneornil(L, 2) ? NULL : osl_checklstring(L, 2, F, 1, "ns", NULL);
  os_sum_alg sum = lua_isnoneornil(L, 3) ? OS_SUM_NONE : check_sum_alg(L, 3, F, 2);
  os_buf b = {0};
  char err[128];
  if (os_mpu_complete_body(m, ns, sum, &b, err, sizeof err) != 0) {
    os_buf_free(&b);
    return osl_push_error(L, "InvalidArgument", err, 0);
  }
  lua_pushlstring(L, b.data, b.len);
  os_buf_free(&b);
  return 1;
}

/* m:reconcile(list_parts_parts) -> { numbers the server has that we did
 * not record (hash their local bytes and call done with the server ETag) } */
static int l_mpu_reconcile(lua_State *L) {
  const char *F = "core.mpu.reconcile";
  os_mpu *m = check_mpu(L, F);
  osl_checktype(L, 2, LUA_TTABLE, F, 1, "parts");
  unsigned char *seen = (unsigned char *)lua_newuserdata(L, m->count);
  memset(seen, 0, m->count);
  lua_newtable(L);
  int out = lua_gettop(L), k = 0;
  size_t len = osl_rawlen(L, 2);
  for (size_t i = 1; i <= len; i++) {
    lua_rawgeti(L, 2, (int)i);
    int t = lua_gettop(L);
    if (lua_type(L, t) == LUA_TTABLE) {
      lua_getfield(L, t, "part_number");
      lua_getfield(L, t, "size");
      lua_getfield(L, t, "etag");
      lua_Number pn = lua_tonumber(L, t + 1), sz = lua_tonumber(L, t + 2);
      const char *etag = lua_tostring(L, t + 3);
      if (pn >= 1 && pn <= m->count && pn == floor(pn)) {
        seen[(uint32_t)pn - 1] = 1;
        if (os_mpu_reconcile_part(m, (uint32_t)pn, (int64_t)sz, etag)) {
          lua_pushinteger(L, (lua_Integer)pn);
          lua_rawseti(L, out, ++k);
        }
      }
    }
    lua_settop(L, out);
  }
  os_mpu_reconcile_missing(m, seen);
  return 1;
}

/* ---- checkpoints --------------------------------------------------------- */

typedef struct {
  os_ckpt c;
  int open;
} l_ckpt;

static l_ckpt *check_ckpt(lua_State *L, const char *fname) {
  l_ckpt *k = (l_ckpt *)osl_checkself(L, CKPT_CLASS, fname);
  if (!k->open) osl_misuse(L, fname, 0, "self", "the checkpoint is closed");
  return k;
}

static int l_ckpt_gc(lua_State *L) {
  l_ckpt *k = (l_ckpt *)osl_checkself(L, CKPT_CLASS, "core.mpu.__gc");
  if (k->open) os_ckpt_close(&k->c);
  k->open = 0;
  return 0;
}

/* core.mpu.checkpoint(path) -> ck | nil, err */
static int l_ckpt_open(lua_State *L) {
  const char *path = osl_checklstring(L, 1, "core.mpu.checkpoint", 1, "path", NULL);
  l_ckpt *k = (l_ckpt *)osl_newuserdata(L, sizeof *k);
  memset(k, 0, sizeof *k);
  char err[512];
  long holder = 0;
  int rc = os_ckpt_open(&k->c, path, &holder, err, sizeof err);
  if (rc != OS_CKPT_OK) {
    os_ckpt_close(&k->c);
    osl_push_error(L, rc == OS_CKPT_IN_USE ? "CheckpointInUse" : "LocalFileError", err, 0);
    if (holder) {
      lua_pushnumber(L, (lua_Number)holder);
      lua_setfield(L, -2, "pid");
    }
    return 2;
  }
  k->open = 1;
  luaL_getmetatable(L, CKPT_CLASS);
  lua_setmetatable(L, -2);
  return 1;
}

static void copy_field(lua_State *L, int t, const char *field, char *out, size_t cap,
                       const char *fname) {
  size_t len = 0;
  const char *s = osl_optfield_string(L, t, field, fname, 1, "header", &len);
  if (s == NULL) s = "";
  if (len >= cap || strlen(s) != len)
    osl_misuse(L, fname, 1, field, "must be under %d bytes, without NUL", (int)cap);
  memcpy(out, s, len + 1);
}

static int kind_of(lua_State *L, int t, const char *fname) {
  const char *kind = osl_optfield_string(L, t, "kind", fname, 1, "header", NULL);
  for (int i = 1; kind && i < OS_CKPT_KIND_COUNT; i++)
    if (strcmp(kind, KIND_NAMES[i]) == 0) return i;
  return osl_misuse(L, fname, 1, "header.kind", "must be 'upload', 'download' or 'copy'");
}

/* Reads a header table (kind, bucket, key, upload_id, etag, file_size,
 * file_mtime, file_inode, part_size, object_size, intent_time). */
static void check_header(lua_State *L, int t, os_ckpt_header *h, const char *fname) {
  osl_checktype(L, t, LUA_TTABLE, fname, 1, "header");
  memset(h, 0, sizeof *h);
  h->kind = kind_of(L, t, fname);
  copy_field(L, t, "bucket", h->bucket, sizeof h->bucket, fname);
  copy_field(L, t, "key", h->key, sizeof h->key, fname);
  copy_field(L, t, "upload_id", h->upload_id, sizeof h->upload_id, fname);
  copy_field(L, t, "etag", h->etag, sizeof h->etag, fname);
  h->file_size = field_int(L, t, "file_size", fname, 0);
  h->file_mtime = field_int(L, t, "file_mtime", fname, 0);
  h->file_inode = (uint64_t)field_int(L, t, "file_inode", fname, 0);
  h->part_size = field_int(L, t, "part_size", fname, 0);
  h->object_size = field_int(L, t, "object_size", fname, 0);
  h->intent_time = field_int(L, t, "intent_time", fname, 0);
}

static void push_header(lua_State *L, const os_ckpt_header *h) {
  lua_createtable(L, 0, 11);
  lua_pushstring(L, KIND_NAMES[h->kind]);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, h->bucket);
  lua_setfield(L, -2, "bucket");
  lua_pushstring(L, h->key);
  lua_setfield(L, -2, "key");
  if (h->upload_id[0]) {
    lua_pushstring(L, h->upload_id);
    lua_setfield(L, -2, "upload_id");
  }
  lua_pushstring(L, h->etag);
  lua_setfield(L, -2, "etag");
#define NUM_(f)                          \
  lua_pushinteger(L, (lua_Integer)h->f); \
  lua_setfield(L, -2, #f)
  NUM_(file_size);
  NUM_(file_mtime);
  NUM_(file_inode);
  NUM_(part_size);
  NUM_(object_size);
  NUM_(intent_time);
#undef NUM_
}

/* Whether a loaded header describes the same transfer as the expected one
 * (everything but the upload id and the intent time). */
static const char *mismatch(const os_ckpt_header *a, const os_ckpt_header *b) {
  if (a->kind != b->kind) return "another kind of transfer";
  if (strcmp(a->bucket, b->bucket) != 0 || strcmp(a->key, b->key) != 0) return "another object";
  /* A copy's "file" is its source object: size, last-modified, name and
   * version (file_inode), ETag. */
  int copy = a->kind == OS_CKPT_COPY;
  if (a->file_size != b->file_size || a->file_mtime != b->file_mtime ||
      a->file_inode != b->file_inode)
    return copy ? "another source object (or the source changed)"
                : "another file (or the file changed)";
  if (a->part_size != b->part_size || a->object_size != b->object_size)
    return "another part layout";
  if (strcmp(a->etag, b->etag) != 0)
    return copy ? "another source object (or the source changed)" : "another object version";
  return NULL;
}

typedef struct {
  os_mpu *m;
  int bad;
} load_arg;

static int load_part(void *arg, const os_ckpt_record *r) {
  load_arg *a = arg;
  os_mpu_part *p = os_mpu_part_of(a->m, r->number);
  if (p == NULL || p->offset != r->offset || p->length != r->length) {
    a->bad = 1;
    return -1;
  }
  const char *code;
  char err[128];
  if (os_mpu_mark_done(a->m, r->number, r->etag[0] ? r->etag : NULL,
                       (r->flags & OS_PART_HAS_MD5) ? r->md5 : NULL,
                       (r->flags & OS_PART_HAS_NVME) ? &r->crc_nvme : NULL,
                       (r->flags & OS_PART_HAS_ECMA) ? &r->crc_ecma : NULL, &code, err,
                       sizeof err) != 0)
    return -1;
  if (!(r->flags & OS_PART_HAS_SUM)) return 0;
  os_sum_alg alg = (os_sum_alg)r->sum_alg;
  return os_mpu_set_sum(a->m, r->number, alg, r->sum, os_mpu_sum_size(alg),
                        (r->flags & OS_PART_SUM_VERIFIED) != 0, err, sizeof err);
}

/* ck:load(m, expected_header) -> status, header|reason, torn[, other_header]
 * status: "resume" (records applied to m), "empty", "other" (a checkpoint
 * of another transfer: reason, false, and its header, so the caller can
 * abort the upload it names), "foreign" (unreadable: reason). */
static int l_ckpt_load(lua_State *L) {
  const char *F = "core.mpu.load";
  l_ckpt *k = check_ckpt(L, F);
  os_mpu *m = (os_mpu *)osl_testudata(L, 2, MPU_CLASS);
  if (m == NULL || m->parts == NULL) osl_misuse(L, F, 1, "mpu", "must be a multipart state");
  os_ckpt_header *want = (os_ckpt_header *)lua_newuserdata(L, 2 * sizeof *want);
  os_ckpt_header *got = want + 1;
  check_header(L, 3, want, F);
  char err[256];
  int torn = 0, torn_again = 0;
  /* Header first (cutting a torn tail), records only when it matches. */
  int rc = os_ckpt_load(&k->c, got, NULL, NULL, &torn, err, sizeof err);
  if (rc < 0) return osl_push_error(L, "LocalFileError", err, 0);
  if (rc == OS_CKPT_EMPTY) {
    lua_pushliteral(L, "empty");
    return 1;
  }
  if (rc == OS_CKPT_FOREIGN) {
    lua_pushliteral(L, "foreign");
    lua_pushstring(L, err);
    return 2;
  }
  const char *why = mismatch(got, want);
  if (why != NULL) {
    lua_pushliteral(L, "other");
    lua_pushstring(L, why);
    lua_pushboolean(L, 0);
    push_header(L, got);
    return 4;
  }
  load_arg a = {m, 0};
  rc = os_ckpt_load(&k->c, got, load_part, &a, &torn_again, err, sizeof err);
  if (rc < 0) return osl_push_error(L, "LocalFileError", err, 0);
  lua_pushliteral(L, "resume");
  push_header(L, got);
  lua_pushboolean(L, torn || torn_again || a.bad);
  return 3;
}

/* ck:reset(header) -> true | nil, err: a fresh checkpoint with no parts. */
static int l_ckpt_reset(lua_State *L) {
  const char *F = "core.mpu.reset";
  l_ckpt *k = check_ckpt(L, F);
  os_ckpt_header *h = (os_ckpt_header *)lua_newuserdata(L, sizeof *h);
  check_header(L, 2, h, F);
  char err[512];
  if (os_ckpt_reset(&k->c, h, err, sizeof err) != 0)
    return osl_push_error(L, "LocalFileError", err, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* ck:append(m, n) -> true | nil, err */
static int l_ckpt_append(lua_State *L) {
  const char *F = "core.mpu.append";
  l_ckpt *k = check_ckpt(L, F);
  os_mpu *m = (os_mpu *)osl_testudata(L, 2, MPU_CLASS);
  if (m == NULL || m->parts == NULL) osl_misuse(L, F, 1, "mpu", "must be a multipart state");
  uint32_t n = check_part(L, m, 3, F);
  char err[512];
  if (os_ckpt_append(&k->c, m, n, err, sizeof err) != 0)
    return osl_push_error(L, "LocalFileError", err, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* ck:bytes_written() -> bytes written through this handle */
static int l_ckpt_bytes(lua_State *L) {
  lua_pushnumber(L, (lua_Number)check_ckpt(L, "core.mpu.bytes_written")->c.appended_bytes);
  return 1;
}

/* ck:remove() -> true | nil, err; ck:close() releases the lock. */
static int l_ckpt_remove(lua_State *L) {
  l_ckpt *k = check_ckpt(L, "core.mpu.remove");
  char err[512];
  k->open = 0;
  if (os_ckpt_remove(&k->c, err, sizeof err) != 0)
    return osl_push_error(L, "LocalFileError", err, 0);
  lua_pushboolean(L, 1);
  return 1;
}
static int l_ckpt_close(lua_State *L) {
  return l_ckpt_gc(L);
}

/* core.mpu.is(v) -> whether v is a multipart state (open or closed) */
static int l_mpu_is(lua_State *L) {
  lua_pushboolean(L, osl_testudata(L, 1, MPU_CLASS) != NULL);
  return 1;
}

int osl_open_mpu(lua_State *L) {
  static const luaL_Reg mpu_methods[] = {{"info", l_mpu_info},
                                         {"add", l_mpu_add},
                                         {"next", l_mpu_next},
                                         {"start", l_mpu_start},
                                         {"failed", l_mpu_failed},
                                         {"reset", l_mpu_reset},
                                         {"done", l_mpu_done},
                                         {"digests", l_mpu_digests},
                                         {"checksum", l_mpu_checksum},
                                         {"part", l_mpu_part},
                                         {"count", l_mpu_count},
                                         {"bytes_done", l_mpu_bytes_done},
                                         {"crc", l_mpu_crc},
                                         {"etag", l_mpu_etag},
                                         {"complete_body", l_mpu_complete_body},
                                         {"reconcile", l_mpu_reconcile},
                                         {"__gc", l_mpu_gc},
                                         {NULL, NULL}};
  static const luaL_Reg ckpt_methods[] = {
      {"load", l_ckpt_load},     {"reset", l_ckpt_reset},
      {"append", l_ckpt_append}, {"remove", l_ckpt_remove},
      {"close", l_ckpt_close},   {"bytes_written", l_ckpt_bytes},
      {"__gc", l_ckpt_gc},       {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"new", l_mpu_new}, {"is", l_mpu_is}, {"checkpoint", l_ckpt_open}, {NULL, NULL}};
  osl_newclass(L, MPU_CLASS, mpu_methods);
  osl_newclass(L, CKPT_CLASS, ckpt_methods);
  osl_newlib(L, fns);
  lua_pushinteger(L, OS_CKPT_RECORD_SIZE);
  lua_setfield(L, -2, "RECORD_SIZE");
  lua_pushinteger(L, OS_MPU_MAX_PARTS);
  lua_setfield(L, -2, "MAX_PARTS");
  return 1;
}
