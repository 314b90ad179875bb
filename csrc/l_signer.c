/*
 * core.signer: the Lua face of os_sign.c. A signer userdata owns an
 * os_signer (credentials, key cache, scratch buffers); each call reads the
 * request table into an os_sign_req of views into Lua strings that the
 * table keeps alive, signs, and pushes the results.
 *
 * Misuse (a wrong field, a closed signer) raises in the one format
 * (osl_misuse), methods named "core.signer.<method>" and the request table
 * counted as argument #1; a request that cannot be signed (no host, expiry
 * out of range, a missing region) returns nil, err with code SigningError.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "l_compat.h"
#include "os_encode.h"
#include "os_sign.h"

#define SIGNER_CLASS "objstore.signer"

typedef struct {
  os_signer s;
  os_kv *hdrs; /* request headers as views, grown on demand */
  size_t hdrs_cap;
  os_str *list; /* sub_resources / additional_headers views */
  size_t list_cap;
  int ready;
} l_signer;

static l_signer *check_signer(lua_State *L, const char *fname) {
  l_signer *ls = osl_checkself(L, SIGNER_CLASS, fname);
  if (!ls->ready) osl_misuse(L, fname, 0, "self", "the signer is closed");
  return ls;
}

/* Pushes nil and a SigningError with the signer's reason; returns 2. */
static int sign_failure(lua_State *L, const l_signer *ls) {
  return osl_push_error(L, "SigningError", ls->s.errbuf, 0);
}

static int signer_close(lua_State *L) {
  l_signer *ls = osl_checkself(L, SIGNER_CLASS, "core.signer.close");
  if (ls->ready) {
    os_signer_free(&ls->s);
    free(ls->hdrs);
    free(ls->list);
    ls->hdrs = NULL;
    ls->list = NULL;
    ls->ready = 0;
  }
  return 0;
}

/* Raises "objstore.<fname>: argument #1 (req.<field>): <problem>": every
 * request field check of sign, presign, details and friends. */
static int req_error(lua_State *L, const char *fname, const char *field, const char *fmt, ...)
    OSL_PRINTF(4, 5);

static int req_error(lua_State *L, const char *fname, const char *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *problem = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  const char *name = lua_pushfstring(L, "req.%s", field);
  return osl_misuse(L, fname, 1, name, "%s", problem);
}

static int opt_bool(lua_State *L, int idx, const char *fname, const char *field, int dflt) {
  lua_getfield(L, idx, field);
  int t = lua_type(L, -1), v = dflt;
  if (t == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    req_error(L, fname, field, "must be a boolean, got %s", lua_typename(L, t));
  lua_pop(L, 1);
  return v;
}

static void grow(lua_State *L, void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return;
  size_t n = *cap ? *cap : 16;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * elem);
  if (q == NULL) luaL_error(L, "out of memory");
  *p = q;
  *cap = n;
}

/* One header name or value (what: "name" or "value") at idx, from the list shown as argument
 * #arg (list) of fname: "req.headers" or "trailers". */
static os_str check_header_part(lua_State *L, int idx, const char *fname, int arg, const char *list,
                                const char *what) {
  os_str r;
  if (lua_type(L, idx) == LUA_TNUMBER) lua_tostring(L, idx); /* Content-Length = 5 */
  if (lua_type(L, idx) != LUA_TSTRING)
    osl_misuse(L, fname, arg, list, "%s must be a string, got %s", what, luaL_typename(L, idx));
  r.p = lua_tolstring(L, idx, &r.n);
  if (memchr(r.p, '\r', r.n) || memchr(r.p, '\0', r.n) ||
      (what[0] == 'n' && (memchr(r.p, '\n', r.n) || memchr(r.p, ':', r.n))))
    osl_misuse(L, fname, arg, list, "%s contains CR, LF, ':' or NUL", what);
  return r;
}

/* req.headers: an array of {name, value} pairs (keeps duplicates and
 * order) or a map name -> value. Numbers are converted in place, which is
 * allowed for values (not keys) during lua_next. */
static void read_headers(lua_State *L, const char *F, l_signer *ls, int idx, os_sign_req *r) {
  lua_getfield(L, idx, "headers");
  int t = lua_gettop(L);
  if (lua_isnil(L, t)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, t))
    osl_misuse(L, F, 1, "req.headers", "must be a table, got %s", luaL_typename(L, t));
  size_t n = 0, len = osl_rawlen(L, t);
  if (len > 0) {
    grow(L, (void **)&ls->hdrs, &ls->hdrs_cap, len, sizeof(os_kv));
    for (size_t i = 1; i <= len; i++) {
      lua_rawgeti(L, t, (int)i);
      if (!lua_istable(L, -1))
        req_error(L, F, "headers", "entry %d must be a {name, value} pair", (int)i);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      ls->hdrs[n].name = check_header_part(L, -2, F, 1, "req.headers", "name");
      ls->hdrs[n].value = check_header_part(L, -1, F, 1, "req.headers", "value");
      n++;
      lua_pop(L, 3);
    }
  } else {
    lua_pushnil(L);
    while (lua_next(L, t)) {
      grow(L, (void **)&ls->hdrs, &ls->hdrs_cap, n + 1, sizeof(os_kv));
      if (lua_type(L, -2) != LUA_TSTRING)
        req_error(L, F, "headers", "keys must be strings, got %s", luaL_typename(L, -2));
      ls->hdrs[n].name = check_header_part(L, -2, F, 1, "req.headers", "name");
      ls->hdrs[n].value = check_header_part(L, -1, F, 1, "req.headers", "value");
      n++;
      lua_pop(L, 1);
    }
  }
  r->headers = ls->hdrs;
  r->nheaders = n;
  lua_pop(L, 1);
}

static void read_list(lua_State *L, const char *F, int idx, const char *field, os_str *dst,
                      size_t *n) {
  lua_getfield(L, idx, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1))
    req_error(L, F, field, "must be an array of strings, got %s", luaL_typename(L, -1));
  size_t len = osl_rawlen(L, -1);
  for (size_t i = 1; i <= len; i++) {
    lua_rawgeti(L, -1, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      req_error(L, F, field, "entry %d must be a string, got %s", (int)i, luaL_typename(L, -1));
    dst[*n].p = lua_tolstring(L, -1, &dst[*n].n);
    (*n)++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Splits "scheme://host[:port]/path?query#frag" into views. */
static void parse_url(lua_State *L, const char *F, os_str url, os_sign_req *r) {
  const char *p = url.p, *e = url.p + url.n;
  const char *sep = NULL;
  for (const char *q = p; q + 2 < e; q++) {
    if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
      sep = q;
      break;
    }
    if (*q == '/' || *q == '?') break;
  }
  if (sep == NULL) req_error(L, F, "url", "must be an absolute URL (scheme://host/path)");
  r->scheme.p = p;
  r->scheme.n = (size_t)(sep - p);
  const char *h = sep + 3, *he = h;
  while (he < e && *he != '/' && *he != '?' && *he != '#') he++;
  if (he == h) req_error(L, F, "url", "has no host");
  r->host.p = h;
  r->host.n = (size_t)(he - h);
  const char *pe = he;
  while (pe < e && *pe != '?' && *pe != '#') pe++;
  r->path.p = he;
  r->path.n = (size_t)(pe - he);
  if (pe < e && *pe == '?') {
    const char *qe = pe + 1;
    while (qe < e && *qe != '#') qe++;
    r->query.p = pe + 1;
    r->query.n = (size_t)(qe - pe - 1);
  }
}

static void check_key(lua_State *L, const char *F, os_str key) {
  if (key.n > OS_SIGN_MAX_KEY) req_error(L, F, "key", "is longer than %d bytes", OS_SIGN_MAX_KEY);
  if (memchr(key.p, '\0', key.n)) req_error(L, F, "key", "contains a NUL byte");
  if (!os_utf8_valid(key.p, key.n)) req_error(L, F, "key", "is not valid UTF-8");
}

static const struct {
  const char *name;
  unsigned flag;
  int invert;
} request_flags[] = {
    {"normalize_path", OS_SIGN_NORMALIZE_PATH, 0},
    {"double_uri_encode", OS_SIGN_DOUBLE_ENCODE, 0},
    {"content_sha256_header", OS_SIGN_CONTENT_SHA256, 0},
    {"unsigned_session_token", OS_SIGN_TOKEN_UNSIGNED, 0},
    {"query_content_sha256", OS_SIGN_QUERY_SHA256, 0},
    {"add_date_header", OS_SIGN_NO_DATE_HEADER, 1},
    {"sign_all_headers", OS_SIGN_ALL_HEADERS, 0},
};

enum { F_HEADERS = 1, F_LISTS = 2, F_FLAGS = 4, F_BODY = 8 };

static os_str value_str(lua_State *L, const char *F, const char *field) {
  os_str r;
  if (lua_type(L, -1) != LUA_TSTRING)
    req_error(L, F, field, "must be a string, got %s", luaL_typename(L, -1));
  r.p = lua_tolstring(L, -1, &r.n);
  return r;
}

static int64_t value_int(lua_State *L, const char *F, const char *field) {
  if (lua_type(L, -1) != LUA_TNUMBER)
    req_error(L, F, field, "must be a number, got %s", luaL_typename(L, -1));
  lua_Number n = lua_tonumber(L, -1);
  if (!(n >= -9.0e15 && n <= 9.0e15) || n != (lua_Number)(int64_t)n)
    req_error(L, F, field, "must be a whole number of seconds");
  return (int64_t)n;
}

#define KEY_IS(lit) (klen == sizeof(lit) - 1 && memcmp(k, lit, sizeof(lit) - 1) == 0)

/* Reads the request table at idx in one pass over its fields (a lookup per
 * possible field would cost more than signing). Unknown fields are ignored,
 * so a client can hand over its whole request table. Raises on misuse. */
static void read_request(lua_State *L, const char *F, l_signer *ls, int idx, os_sign_req *r,
                         int presign) {
  osl_checktype(L, idx, LUA_TTABLE, F, 1, "req");
  memset(r, 0, sizeof *r);
  r->flags = ls->s.flags;
  os_str url = {NULL, 0}, addressing = {NULL, 0};
  int have_time = 0, have_expires = 0;
  unsigned seen = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      switch (k[0]) {
        case 'm':
          if (KEY_IS("method")) r->method = value_str(L, F, "method");
          break;
        case 'u':
          if (KEY_IS("url"))
            url = value_str(L, F, "url");
          else if (KEY_IS("unsigned_session_token"))
            seen |= F_FLAGS;
          break;
        case 'p':
          if (KEY_IS("path"))
            r->path = value_str(L, F, "path");
          else if (KEY_IS("payload_hash"))
            r->payload_hash = value_str(L, F, "payload_hash");
          break;
        case 'q':
          if (KEY_IS("query"))
            r->query = value_str(L, F, "query");
          else if (KEY_IS("query_content_sha256"))
            seen |= F_FLAGS;
          break;
        case 'h':
          if (KEY_IS("host"))
            r->host = value_str(L, F, "host");
          else if (KEY_IS("headers"))
            seen |= F_HEADERS;
          break;
        case 's':
          if (KEY_IS("scheme"))
            r->scheme = value_str(L, F, "scheme");
          else if (KEY_IS("service"))
            r->service = value_str(L, F, "service");
          else if (KEY_IS("sign_all_headers"))
            seen |= F_FLAGS;
          else if (KEY_IS("sub_resources"))
            seen |= F_LISTS;
          break;
        case 'b':
          if (KEY_IS("bucket"))
            r->bucket = value_str(L, F, "bucket");
          else if (KEY_IS("body"))
            seen |= F_BODY;
          break;
        case 'k':
          if (KEY_IS("key")) {
            r->key = value_str(L, F, "key");
            r->has_key = 1;
          }
          break;
        case 'a':
          if (KEY_IS("addressing"))
            addressing = value_str(L, F, "addressing");
          else if (KEY_IS("additional_headers"))
            seen |= F_LISTS;
          else if (KEY_IS("add_date_header"))
            seen |= F_FLAGS;
          break;
        case 'r':
          if (KEY_IS("region")) r->region = value_str(L, F, "region");
          break;
        case 't':
          if (KEY_IS("time")) {
            r->time = value_int(L, F, "time");
            have_time = 1;
          }
          break;
        case 'e':
          if (KEY_IS("expires")) {
            r->expires = value_int(L, F, "expires");
            have_expires = 1;
          }
          break;
        case 'n':
          if (KEY_IS("normalize_path")) seen |= F_FLAGS;
          break;
        case 'd':
          if (KEY_IS("double_uri_encode")) seen |= F_FLAGS;
          break;
        case 'c':
          if (KEY_IS("content_sha256_header")) seen |= F_FLAGS;
          break;
        default:
          break;
      }
    }
    lua_pop(L, 1);
  }
  if (r->method.n == 0) req_error(L, F, "method", "is required");
  if (url.n) {
    if (url.n > OS_SIGN_MAX_FIELD)
      req_error(L, F, "url", "is longer than %d bytes", OS_SIGN_MAX_FIELD);
    /* Explicit fields win over the parts of the URL. */
    os_sign_req parts;
    memset(&parts, 0, sizeof parts);
    parse_url(L, F, url, &parts);
    if (r->scheme.n == 0) r->scheme = parts.scheme;
    if (r->host.n == 0) r->host = parts.host;
    if (r->path.n == 0) r->path = parts.path;
    if (r->query.n == 0) r->query = parts.query;
  }
  /* The URL's parts are named after it: they came from req.url. */
  if (r->path.n > OS_SIGN_MAX_FIELD)
    req_error(L, F, "path", "is longer than %d bytes", OS_SIGN_MAX_FIELD);
  if (r->query.n > OS_SIGN_MAX_FIELD)
    req_error(L, F, "query", "is longer than %d bytes", OS_SIGN_MAX_FIELD);
  if (r->bucket.n > 255) req_error(L, F, "bucket", "is longer than 255 bytes");
  if (r->has_key) check_key(L, F, r->key);
  r->path_style = addressing.n == 4 && memcmp(addressing.p, "path", 4) == 0;
  if (!have_time) req_error(L, F, "time", "is required (epoch seconds)");
  if (presign && !have_expires) req_error(L, F, "expires", "is required to presign (seconds)");
  if (seen & F_HEADERS) read_headers(L, F, ls, idx, r);

  /* Per-request overrides of the signer's flags. */
  if (seen & F_FLAGS) {
    for (size_t i = 0; i < sizeof request_flags / sizeof request_flags[0]; i++) {
      int cur = (r->flags & request_flags[i].flag) != 0;
      if (request_flags[i].invert) cur = !cur;
      int want = opt_bool(L, idx, F, request_flags[i].name, cur);
      if (request_flags[i].invert) want = !want;
      r->flags = want ? (r->flags | request_flags[i].flag) : (r->flags & ~request_flags[i].flag);
    }
  }

  /* Lists share one view array: sub-resources first, then additional headers. */
  if (seen & F_LISTS) {
    size_t need = 0;
    lua_getfield(L, idx, "sub_resources");
    if (lua_istable(L, -1)) need += osl_rawlen(L, -1);
    lua_getfield(L, idx, "additional_headers");
    if (lua_istable(L, -1)) need += osl_rawlen(L, -1);
    lua_pop(L, 2);
    if (need) {
      grow(L, (void **)&ls->list, &ls->list_cap, need, sizeof(os_str));
      size_t n = 0;
      read_list(L, F, idx, "sub_resources", ls->list, &n);
      r->sub_resources = ls->list;
      r->nsub_resources = n;
      size_t m = 0;
      read_list(L, F, idx, "additional_headers", ls->list + n, &m);
      r->additional_headers = ls->list + n;
      r->nadditional_headers = m;
    }
  }
  r->has_body = (seen & F_BODY) != 0;
}

/* Hashes req.body into hex when no payload hash was given (aws4). Returns
 * 0 when OpenSSL fails (a runtime failure), 1 otherwise; raises on misuse. */
static int hash_body(lua_State *L, const char *F, int idx, os_sign_req *r, char hex[65]) {
  if (r->payload_hash.n || !r->has_body) return 1;
  lua_getfield(L, idx, "body");
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *b = lua_tolstring(L, -1, &n);
    unsigned char h[OS_HASH_MAX_SIZE];
    size_t len = 0;
    if (os_hash_oneshot(OS_HASH_SHA256, b, n, h, &len) != 0) return 0;
    r->payload_hash.p = hex;
    r->payload_hash.n = os_hex_to(hex, h, len);
  } else if (!lua_isnil(L, -1)) {
    req_error(L, F, "body", "must be a string, got %s (give payload_hash for streamed bodies)",
              luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return 1;
}

static void push_str(lua_State *L, os_str s) {
  lua_pushlstring(L, s.p ? s.p : "", s.n);
}

/* Signs in the given mode; raises on misuse, returns 0 with nil and a
 * SigningError pushed on a runtime failure. */
static int do_sign(lua_State *L, const char *F, l_signer *ls, int presign, os_sign_result *res) {
  os_sign_req r;
  char hex[65];
  read_request(L, F, ls, 2, &r, presign);
  if (ls->s.alg == OS_ALG_AWS4 && !hash_body(L, F, 2, &r, hex)) {
    osl_push_error(L, "SigningError", "SHA-256 of req.body failed (OpenSSL)", 0);
    return 0;
  }
  int ok = presign ? os_sign_query(&ls->s, &r, res) : os_sign_header(&ls->s, &r, res);
  if (!ok) {
    sign_failure(L, ls);
    return 0;
  }
  return 1;
}

static void push_added_headers(lua_State *L, const os_sign_result *res) {
  lua_createtable(L, 0, (int)res->nadd);
  for (size_t i = 0; i < res->nadd; i++) {
    push_str(L, res->add[i].name);
    push_str(L, res->add[i].value);
    lua_rawset(L, -3);
  }
}

/* s:sign(req) -> {header = value, ...} | nil, err */
static int signer_sign(lua_State *L) {
  static const char F[] = "core.signer.sign";
  l_signer *ls = check_signer(L, F);
  os_sign_result res;
  if (!do_sign(L, F, ls, 0, &res)) return 2;
  push_added_headers(L, &res);
  return 1;
}

/* s:presign(req) -> url (path?query when the host is unknown) | nil, err.
 * One string: a second result would cost a second allocation per URL. */
static int signer_presign(lua_State *L) {
  static const char F[] = "core.signer.presign";
  l_signer *ls = check_signer(L, F);
  os_sign_result res;
  if (!do_sign(L, F, ls, 1, &res)) return 2;
  push_str(L, res.url);
  return 1;
}

/* The optional mode at index 3 (argument #2): "header" (default) or "query". */
static int mode_is_query(lua_State *L, const char *F) {
  if (lua_isnoneornil(L, 3)) return 0;
  const char *mode = osl_checklstring(L, 3, F, 2, "mode", NULL);
  if (strcmp(mode, "header") == 0) return 0;
  if (strcmp(mode, "query") == 0) return 1;
  return osl_misuse(L, F, 2, "mode", "must be 'header' or 'query', got '%s'", mode);
}

/* s:details(req [, mode]) -> table with every intermediate string. */
static int signer_details(lua_State *L) {
  static const char F[] = "core.signer.details";
  l_signer *ls = check_signer(L, F);
  int presign = mode_is_query(L, F);
  os_sign_result res;
  if (!do_sign(L, F, ls, presign, &res)) return 2;
  lua_createtable(L, 0, 8);
  push_str(L, res.canonical_request);
  lua_setfield(L, -2, "canonical_request");
  push_str(L, res.string_to_sign);
  lua_setfield(L, -2, "string_to_sign");
  push_str(L, res.signature);
  lua_setfield(L, -2, "signature");
  if (presign) {
    push_str(L, res.url);
    lua_setfield(L, -2, "url");
    push_str(L, res.path_and_query);
    lua_setfield(L, -2, "path_and_query");
  } else {
    push_str(L, res.authorization);
    lua_setfield(L, -2, "authorization");
    push_added_headers(L, &res);
    lua_setfield(L, -2, "headers");
  }
  return 1;
}

static int signer_canonical_request(lua_State *L) {
  static const char F[] = "core.signer.canonical_request";
  l_signer *ls = check_signer(L, F);
  os_sign_result res;
  if (!do_sign(L, F, ls, mode_is_query(L, F), &res)) return 2;
  push_str(L, res.canonical_request);
  return 1;
}

static int signer_string_to_sign(lua_State *L) {
  static const char F[] = "core.signer.string_to_sign";
  l_signer *ls = check_signer(L, F);
  os_sign_result res;
  if (!do_sign(L, F, ls, mode_is_query(L, F), &res)) return 2;
  push_str(L, res.string_to_sign);
  return 1;
}

/* opts.<field> of the optional options table at idx (a method's argument
 * #idx-1); "" when absent. */
static os_str field_or_empty(lua_State *L, const char *F, int idx, const char *field) {
  os_str r = {"", 0};
  if (lua_istable(L, idx)) {
    const char *p = osl_optfield_string(L, idx, field, F, idx - 1, "opts", &r.n);
    if (p) r.p = p;
  } else if (!lua_isnoneornil(L, idx)) {
    osl_misuse(L, F, idx - 1, "opts", "table expected, got %s", luaL_typename(L, idx));
  }
  return r;
}

/* Epoch seconds at idx, a method's argument #idx-1 (time). */
static int64_t check_time_arg(lua_State *L, const char *F, int idx) {
  lua_Number t = osl_checknumber(L, idx, F, idx - 1, "time");
  if (!(t >= 0 && t <= 253402300799.0))
    osl_misuse(L, F, idx - 1, "time", "must be epoch seconds from 0 to 253402300799");
  return (int64_t)t;
}

/* s:chunk_signature(time, prev_sig, chunk_data [, {region=, service=}]) */
static int signer_chunk_signature(lua_State *L) {
  static const char F[] = "core.signer.chunk_signature";
  l_signer *ls = check_signer(L, F);
  if (ls->s.alg != OS_ALG_AWS4)
    return osl_misuse(L, F, 0, "self", "chunk signatures exist only for aws4 signers");
  int64_t t = check_time_arg(L, F, 2);
  os_str prev;
  prev.p = osl_checklstring(L, 3, F, 2, "prev_sig", &prev.n);
  size_t n;
  const char *data = osl_checklstring(L, 4, F, 3, "chunk_data", &n);
  unsigned char h[OS_HASH_MAX_SIZE];
  size_t len = 0;
  if (os_hash_oneshot(OS_HASH_SHA256, data, n, h, &len) != 0)
    return osl_push_error(L, "SigningError", "SHA-256 of chunk_data failed (OpenSSL)", 0);
  char sig[65];
  if (!os_sign_aws4_chunk(&ls->s, t, field_or_empty(L, F, 5, "region"),
                          field_or_empty(L, F, 5, "service"), prev, h, sig))
    return sign_failure(L, ls);
  lua_pushlstring(L, sig, 64);
  return 1;
}

/* s:trailer_signature(time, prev_sig, {{name, value}, ...} [, opts]) */
static int signer_trailer_signature(lua_State *L) {
  static const char F[] = "core.signer.trailer_signature";
  l_signer *ls = check_signer(L, F);
  if (ls->s.alg != OS_ALG_AWS4)
    return osl_misuse(L, F, 0, "self", "trailer signatures exist only for aws4 signers");
  int64_t t = check_time_arg(L, F, 2);
  os_str prev;
  prev.p = osl_checklstring(L, 3, F, 2, "prev_sig", &prev.n);
  osl_checktype(L, 4, LUA_TTABLE, F, 3, "trailers");
  size_t n = osl_rawlen(L, 4);
  grow(L, (void **)&ls->hdrs, &ls->hdrs_cap, n ? n : 1, sizeof(os_kv));
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 4, (int)i + 1);
    if (!lua_istable(L, -1)) {
      osl_misuse(L, F, 3, "trailers", "entry %d must be a {name, value} pair, got %s", (int)i + 1,
                 luaL_typename(L, -1));
    }
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    ls->hdrs[i].name = check_header_part(L, -2, F, 3, "trailers", "name");
    ls->hdrs[i].value = check_header_part(L, -1, F, 3, "trailers", "value");
    lua_pop(L, 3);
  }
  char sig[65];
  if (!os_sign_aws4_trailer(&ls->s, t, field_or_empty(L, F, 5, "region"),
                            field_or_empty(L, F, 5, "service"), prev, ls->hdrs, n, sig))
    return sign_failure(L, ls);
  lua_pushlstring(L, sig, 64);
  return 1;
}

/* s:policy_signature(policy_base64, time [, {region=, service=}]) */
static int signer_policy_signature(lua_State *L) {
  static const char F[] = "core.signer.policy_signature";
  l_signer *ls = check_signer(L, F);
  os_str policy;
  policy.p = osl_checklstring(L, 2, F, 1, "policy", &policy.n);
  int64_t t = lua_isnoneornil(L, 3) ? 0 : check_time_arg(L, F, 3);
  if (ls->s.alg != OS_ALG_OSS1 && lua_isnoneornil(L, 3))
    return osl_misuse(L, F, 2, "time", "is required for aws4/oss4 policies");
  if (!os_sign_policy(&ls->s, t, field_or_empty(L, F, 4, "region"),
                      field_or_empty(L, F, 4, "service"), policy, &ls->s.work))
    return sign_failure(L, ls);
  lua_pushlstring(L, ls->s.work.data, ls->s.work.len);
  os_buf_reset(&ls->s.work);
  return 1;
}

static int has_ctl(const char *p, size_t n) {
  return memchr(p, '\0', n) != NULL || memchr(p, '\r', n) != NULL || memchr(p, '\n', n) != NULL;
}

/* s:set_credentials(access_key, secret_key [, session_token]) -> true | nil, err
 * (SigningError: out of memory). The secret never appears in a message. */
static int signer_set_credentials(lua_State *L) {
  static const char F[] = "core.signer.set_credentials";
  l_signer *ls = check_signer(L, F);
  size_t akn, skn, tn = 0;
  const char *ak = osl_checklstring(L, 2, F, 1, "access_key", &akn);
  const char *sk = osl_checklstring(L, 3, F, 2, "secret_key", &skn);
  const char *tok =
      lua_isnoneornil(L, 4) ? NULL : osl_checklstring(L, 4, F, 3, "session_token", &tn);
  if (akn == 0) return osl_misuse(L, F, 1, "access_key", "must not be empty");
  if (skn == 0) return osl_misuse(L, F, 2, "secret_key", "must not be empty");
  /* As signer.new refuses them: a NUL would cut the key short in C and CR
   * or LF would end a header line. The value itself is never shown. */
  if (has_ctl(ak, akn)) return osl_misuse(L, F, 1, "access_key", "contains NUL, CR or LF");
  if (has_ctl(sk, skn)) return osl_misuse(L, F, 2, "secret_key", "contains NUL, CR or LF");
  if (tok && has_ctl(tok, tn))
    return osl_misuse(L, F, 3, "session_token", "contains NUL, CR or LF");
  if (!os_signer_set_credentials(&ls->s, ak, akn, sk, skn, tok, tn)) return sign_failure(L, ls);
  lua_pushboolean(L, 1);
  return 1;
}

static int signer_tostring(lua_State *L) {
  l_signer *ls = osl_checkself(L, SIGNER_CLASS, "core.signer.__tostring");
  static const char *const names[] = {"aws4", "oss1", "oss4"};
  /* Never the secret: only what identifies the signer. */
  if (!ls->ready)
    lua_pushliteral(L, "objstore.signer (closed)");
  else
    lua_pushfstring(L, "objstore.signer (%s, %s)", names[ls->s.alg],
                    ls->s.access_key.len ? os_buf_cstr(&ls->s.access_key) : "no key");
  return 1;
}

/* core.signer.new(algorithm [, flags, region, service]) -> signer | nil, err.
 * Credentials are set by the Lua layer, which validates the options first. */
static int signer_new(lua_State *L) {
  static const char F[] = "core.signer.new";
  static const char *const algs[] = {"aws4", "oss1", "oss4", NULL};
  const char *name = osl_checklstring(L, 1, F, 1, "algorithm", NULL);
  int alg = 0;
  while (algs[alg] != NULL && strcmp(algs[alg], name) != 0) alg++;
  if (algs[alg] == NULL)
    osl_misuse(L, F, 1, "algorithm", "unknown algorithm '%s' (aws4, oss1 or oss4)", name);
  lua_Number flags = 0;
  if (!lua_isnoneornil(L, 2)) {
    flags = osl_checknumber(L, 2, F, 2, "flags");
    if (!(flags >= 0 && flags <= 4294967295.0) || flags != (lua_Number)(unsigned)flags)
      osl_misuse(L, F, 2, "flags", "must be a sum of core.signer flag constants");
  }
  size_t rn = 0, sn = 0;
  const char *region = lua_isnoneornil(L, 3) ? "" : osl_checklstring(L, 3, F, 3, "region", &rn);
  const char *service = lua_isnoneornil(L, 4) ? "" : osl_checklstring(L, 4, F, 4, "service", &sn);
  /* Zeroed userdata first: a failure below leaves nothing to free but it. */
  l_signer *ls = osl_newuserdata(L, sizeof *ls);
  memset(ls, 0, sizeof *ls);
  luaL_getmetatable(L, SIGNER_CLASS);
  lua_setmetatable(L, -2);
  ls->ready = 1;
  if (!os_signer_init(&ls->s, (os_sign_alg)alg)) return sign_failure(L, ls);
  ls->s.flags = (unsigned)flags;
  os_buf_add(&ls->s.region, region, rn);
  os_buf_add(&ls->s.service, service, sn);
  return 1;
}

int osl_open_signer(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"sign", signer_sign},
      {"presign", signer_presign},
      {"details", signer_details},
      {"canonical_request", signer_canonical_request},
      {"string_to_sign", signer_string_to_sign},
      {"chunk_signature", signer_chunk_signature},
      {"trailer_signature", signer_trailer_signature},
      {"policy_signature", signer_policy_signature},
      {"set_credentials", signer_set_credentials},
      {"close", signer_close},
      {"__gc", signer_close},
      {"__close", signer_close},
      {"__tostring", signer_tostring},
      {NULL, NULL},
  };
  static const luaL_Reg funcs[] = {{"new", signer_new}, {NULL, NULL}};
  osl_newclass(L, SIGNER_CLASS, methods);
  /* The names of the headers sign() returns, kept alive in the class's
   * metatable: each call then finds them interned instead of allocating
   * them again after every garbage collection. */
  luaL_getmetatable(L, SIGNER_CLASS);
  static const char *const added[] = {
      "Authorization",        "X-Amz-Date",           "x-amz-content-sha256",
      "X-Amz-Security-Token", "x-oss-date",           "Date",
      "x-oss-content-sha256", "x-oss-security-token", "UNSIGNED-PAYLOAD"};
  lua_createtable(L, (int)(sizeof added / sizeof added[0]), 0);
  for (int i = 0; i < (int)(sizeof added / sizeof added[0]); i++) {
    lua_pushstring(L, added[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "__header_names");
  lua_pop(L, 1);
  osl_newlib(L, funcs);
  static const struct {
    const char *name;
    unsigned v;
  } consts[] = {
      {"NORMALIZE_PATH", OS_SIGN_NORMALIZE_PATH}, {"DOUBLE_ENCODE", OS_SIGN_DOUBLE_ENCODE},
      {"CONTENT_SHA256", OS_SIGN_CONTENT_SHA256}, {"TOKEN_UNSIGNED", OS_SIGN_TOKEN_UNSIGNED},
      {"QUERY_SHA256", OS_SIGN_QUERY_SHA256},     {"NO_DATE_HEADER", OS_SIGN_NO_DATE_HEADER},
      {"ALL_HEADERS", OS_SIGN_ALL_HEADERS},
  };
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    lua_pushinteger(L, (lua_Integer)consts[i].v);
    lua_setfield(L, -2, consts[i].name);
  }
  return 1;
}
