/*
 * core.signer: the Lua face of os_sign.c. A signer userdata owns an
 * os_signer (credentials, key cache, scratch buffers); each call reads the
 * request table into an os_sign_req of views into Lua strings that the
 * table keeps alive, signs, and pushes the results.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
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

static l_signer *check_signer(lua_State *L) {
  l_signer *ls = osl_checkudata(L, 1, SIGNER_CLASS);
  if (!ls->ready) luaL_error(L, "attempt to use a closed signer");
  return ls;
}

static int signer_close(lua_State *L) {
  l_signer *ls = osl_checkudata(L, 1, SIGNER_CLASS);
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

static int opt_bool(lua_State *L, int idx, const char *field, int dflt) {
  lua_getfield(L, idx, field);
  int t = lua_type(L, -1), v = dflt;
  if (t == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "req.%s must be a boolean, got %s", field, lua_typename(L, t));
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

static os_str check_header_part(lua_State *L, int idx, const char *what) {
  os_str r;
  if (lua_type(L, idx) == LUA_TNUMBER) lua_tostring(L, idx); /* Content-Length = 5 */
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "req.headers: %s must be a string, got %s", what, luaL_typename(L, idx));
  r.p = lua_tolstring(L, idx, &r.n);
  if (memchr(r.p, '\r', r.n) || memchr(r.p, '\0', r.n) ||
      (strcmp(what, "name") == 0 && (memchr(r.p, '\n', r.n) || memchr(r.p, ':', r.n))))
    luaL_error(L, "req.headers: %s contains CR, LF, ':' or NUL", what);
  return r;
}

/* req.headers: an array of {name, value} pairs (keeps duplicates and
 * order) or a map name -> value. Numbers are converted in place, which is
 * allowed for values (not keys) during lua_next. */
static void read_headers(lua_State *L, l_signer *ls, int idx, os_sign_req *r) {
  lua_getfield(L, idx, "headers");
  int t = lua_gettop(L);
  if (lua_isnil(L, t)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, t)) luaL_error(L, "req.headers must be a table, got %s", luaL_typename(L, t));
  size_t n = 0, len = osl_rawlen(L, t);
  if (len > 0) {
    grow(L, (void **)&ls->hdrs, &ls->hdrs_cap, len, sizeof(os_kv));
    for (size_t i = 1; i <= len; i++) {
      lua_rawgeti(L, t, (int)i);
      if (!lua_istable(L, -1))
        luaL_error(L, "req.headers[%d] must be a {name, value} pair", (int)i);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      ls->hdrs[n].name = check_header_part(L, -2, "name");
      ls->hdrs[n].value = check_header_part(L, -1, "value");
      n++;
      lua_pop(L, 3);
    }
  } else {
    lua_pushnil(L);
    while (lua_next(L, t)) {
      grow(L, (void **)&ls->hdrs, &ls->hdrs_cap, n + 1, sizeof(os_kv));
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "req.headers keys must be strings");
      ls->hdrs[n].name = check_header_part(L, -2, "name");
      ls->hdrs[n].value = check_header_part(L, -1, "value");
      n++;
      lua_pop(L, 1);
    }
  }
  r->headers = ls->hdrs;
  r->nheaders = n;
  lua_pop(L, 1);
}

static void read_list(lua_State *L, int idx, const char *field, os_str *dst, size_t *n) {
  lua_getfield(L, idx, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "req.%s must be an array of strings", field);
  size_t len = osl_rawlen(L, -1);
  for (size_t i = 1; i <= len; i++) {
    lua_rawgeti(L, -1, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "req.%s[%d] must be a string", field, (int)i);
    dst[*n].p = lua_tolstring(L, -1, &dst[*n].n);
    (*n)++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Splits "scheme://host[:port]/path?query#frag" into views. */
static void parse_url(lua_State *L, os_str url, os_sign_req *r) {
  const char *p = url.p, *e = url.p + url.n;
  const char *sep = NULL;
  for (const char *q = p; q + 2 < e; q++) {
    if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
      sep = q;
      break;
    }
    if (*q == '/' || *q == '?') break;
  }
  if (sep == NULL) luaL_error(L, "req.url must be an absolute URL (scheme://host/path)");
  r->scheme.p = p;
  r->scheme.n = (size_t)(sep - p);
  const char *h = sep + 3, *he = h;
  while (he < e && *he != '/' && *he != '?' && *he != '#') he++;
  if (he == h) luaL_error(L, "req.url has no host");
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

static void check_key(lua_State *L, os_str key) {
  if (key.n > OS_SIGN_MAX_KEY) luaL_error(L, "req.key is longer than %d bytes", OS_SIGN_MAX_KEY);
  if (memchr(key.p, '\0', key.n)) luaL_error(L, "req.key contains a NUL byte");
  if (!os_utf8_valid(key.p, key.n)) luaL_error(L, "req.key is not valid UTF-8");
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
};

enum { F_HEADERS = 1, F_LISTS = 2, F_FLAGS = 4, F_BODY = 8 };

static os_str value_str(lua_State *L, const char *field) {
  os_str r;
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "req.%s must be a string, got %s", field, luaL_typename(L, -1));
  r.p = lua_tolstring(L, -1, &r.n);
  return r;
}

static int64_t value_int(lua_State *L, const char *field) {
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "req.%s must be a number, got %s", field, luaL_typename(L, -1));
  lua_Number n = lua_tonumber(L, -1);
  if (!(n >= -9.0e15 && n <= 9.0e15) || n != (lua_Number)(int64_t)n)
    luaL_error(L, "req.%s must be a whole number of seconds", field);
  return (int64_t)n;
}

#define KEY_IS(lit) (klen == sizeof(lit) - 1 && memcmp(k, lit, sizeof(lit) - 1) == 0)

/* Reads the request table at idx in one pass over its fields (a lookup per
 * possible field would cost more than signing). Unknown fields are ignored,
 * so a client can hand over its whole request table. Raises on misuse. */
static void read_request(lua_State *L, l_signer *ls, int idx, os_sign_req *r, int presign) {
  luaL_checktype(L, idx, LUA_TTABLE);
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
          if (KEY_IS("method")) r->method = value_str(L, "method");
          break;
        case 'u':
          if (KEY_IS("url"))
            url = value_str(L, "url");
          else if (KEY_IS("unsigned_session_token"))
            seen |= F_FLAGS;
          break;
        case 'p':
          if (KEY_IS("path"))
            r->path = value_str(L, "path");
          else if (KEY_IS("payload_hash"))
            r->payload_hash = value_str(L, "payload_hash");
          break;
        case 'q':
          if (KEY_IS("query"))
            r->query = value_str(L, "query");
          else if (KEY_IS("query_content_sha256"))
            seen |= F_FLAGS;
          break;
        case 'h':
          if (KEY_IS("host"))
            r->host = value_str(L, "host");
          else if (KEY_IS("headers"))
            seen |= F_HEADERS;
          break;
        case 's':
          if (KEY_IS("scheme"))
            r->scheme = value_str(L, "scheme");
          else if (KEY_IS("service"))
            r->service = value_str(L, "service");
          else if (KEY_IS("sub_resources"))
            seen |= F_LISTS;
          break;
        case 'b':
          if (KEY_IS("bucket"))
            r->bucket = value_str(L, "bucket");
          else if (KEY_IS("body"))
            seen |= F_BODY;
          break;
        case 'k':
          if (KEY_IS("key")) {
            r->key = value_str(L, "key");
            r->has_key = 1;
          }
          break;
        case 'a':
          if (KEY_IS("addressing"))
            addressing = value_str(L, "addressing");
          else if (KEY_IS("additional_headers"))
            seen |= F_LISTS;
          else if (KEY_IS("add_date_header"))
            seen |= F_FLAGS;
          break;
        case 'r':
          if (KEY_IS("region")) r->region = value_str(L, "region");
          break;
        case 't':
          if (KEY_IS("time")) {
            r->time = value_int(L, "time");
            have_time = 1;
          }
          break;
        case 'e':
          if (KEY_IS("expires")) {
            r->expires = value_int(L, "expires");
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
  if (r->method.n == 0) luaL_error(L, "req.method is required");
  if (url.n) {
    if (url.n > OS_SIGN_MAX_FIELD) luaL_error(L, "req.url is too long");
    /* Explicit fields win over the parts of the URL. */
    os_sign_req parts;
    memset(&parts, 0, sizeof parts);
    parse_url(L, url, &parts);
    if (r->scheme.n == 0) r->scheme = parts.scheme;
    if (r->host.n == 0) r->host = parts.host;
    if (r->path.n == 0) r->path = parts.path;
    if (r->query.n == 0) r->query = parts.query;
  }
  if (r->path.n > OS_SIGN_MAX_FIELD || r->query.n > OS_SIGN_MAX_FIELD)
    luaL_error(L, "req.path or req.query is longer than %d bytes", OS_SIGN_MAX_FIELD);
  if (r->bucket.n > 255) luaL_error(L, "req.bucket is longer than 255 bytes");
  if (r->has_key) check_key(L, r->key);
  r->path_style = addressing.n == 4 && memcmp(addressing.p, "path", 4) == 0;
  if (!have_time) luaL_error(L, "req.time (epoch seconds) is required");
  if (presign && !have_expires) luaL_error(L, "req.expires (seconds) is required to presign");
  if (seen & F_HEADERS) read_headers(L, ls, idx, r);

  /* Per-request overrides of the signer's flags. */
  if (seen & F_FLAGS) {
    for (size_t i = 0; i < sizeof request_flags / sizeof request_flags[0]; i++) {
      int cur = (r->flags & request_flags[i].flag) != 0;
      if (request_flags[i].invert) cur = !cur;
      int want = opt_bool(L, idx, request_flags[i].name, cur);
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
      read_list(L, idx, "sub_resources", ls->list, &n);
      r->sub_resources = ls->list;
      r->nsub_resources = n;
      size_t m = 0;
      read_list(L, idx, "additional_headers", ls->list + n, &m);
      r->additional_headers = ls->list + n;
      r->nadditional_headers = m;
    }
  }
  r->has_body = (seen & F_BODY) != 0;
}

/* Hashes req.body into hex when no payload hash was given (aws4). */
static void hash_body(lua_State *L, int idx, os_sign_req *r, char hex[65]) {
  if (r->payload_hash.n || !r->has_body) return;
  lua_getfield(L, idx, "body");
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *b = lua_tolstring(L, -1, &n);
    unsigned char h[32];
    unsigned int len = 0;
    EVP_Digest(b, n, h, &len, EVP_sha256(), NULL);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
      hex[2 * i] = digits[h[i] >> 4];
      hex[2 * i + 1] = digits[h[i] & 15];
    }
    hex[64] = '\0';
    r->payload_hash.p = hex;
    r->payload_hash.n = 64;
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "req.body must be a string (give payload_hash for streamed bodies)");
  }
  lua_pop(L, 1);
}

static void push_str(lua_State *L, os_str s) {
  lua_pushlstring(L, s.p ? s.p : "", s.n);
}

/* Signs in the given mode; raises on misuse, returns 0 with the message
 * pushed on a runtime failure. */
static int do_sign(lua_State *L, l_signer *ls, int presign, os_sign_result *res) {
  os_sign_req r;
  char hex[65];
  read_request(L, ls, 2, &r, presign);
  if (ls->s.alg == OS_ALG_AWS4) hash_body(L, 2, &r, hex);
  int ok = presign ? os_sign_query(&ls->s, &r, res) : os_sign_header(&ls->s, &r, res);
  if (!ok) {
    lua_pushnil(L);
    lua_pushstring(L, ls->s.errbuf);
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
  l_signer *ls = check_signer(L);
  os_sign_result res;
  if (!do_sign(L, ls, 0, &res)) return 2;
  push_added_headers(L, &res);
  return 1;
}

/* s:presign(req) -> url (path?query when the host is unknown) | nil, err.
 * One string: a second result would cost a second allocation per URL. */
static int signer_presign(lua_State *L) {
  l_signer *ls = check_signer(L);
  os_sign_result res;
  if (!do_sign(L, ls, 1, &res)) return 2;
  push_str(L, res.url);
  return 1;
}

static int mode_is_query(lua_State *L, int arg) {
  const char *mode = luaL_optstring(L, arg, "header");
  if (strcmp(mode, "header") == 0) return 0;
  if (strcmp(mode, "query") == 0) return 1;
  return luaL_argerror(L, arg, "mode must be 'header' or 'query'");
}

/* s:details(req [, mode]) -> table with every intermediate string. */
static int signer_details(lua_State *L) {
  l_signer *ls = check_signer(L);
  int presign = mode_is_query(L, 3);
  os_sign_result res;
  if (!do_sign(L, ls, presign, &res)) return 2;
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
  l_signer *ls = check_signer(L);
  os_sign_result res;
  if (!do_sign(L, ls, mode_is_query(L, 3), &res)) return 2;
  push_str(L, res.canonical_request);
  return 1;
}

static int signer_string_to_sign(lua_State *L) {
  l_signer *ls = check_signer(L);
  os_sign_result res;
  if (!do_sign(L, ls, mode_is_query(L, 3), &res)) return 2;
  push_str(L, res.string_to_sign);
  return 1;
}

static os_str field_or_empty(lua_State *L, int idx, const char *field) {
  os_str r = {"", 0};
  if (lua_istable(L, idx)) {
    const char *p = osl_optfield_string(L, idx, field, "opts", &r.n);
    if (p) r.p = p;
  }
  return r;
}

static int64_t check_time_arg(lua_State *L, int arg) {
  lua_Number t = luaL_checknumber(L, arg);
  if (!(t >= 0 && t <= 253402300799.0)) luaL_argerror(L, arg, "epoch seconds out of range");
  return (int64_t)t;
}

/* s:chunk_signature(time, prev_sig, chunk_data [, {region=, service=}]) */
static int signer_chunk_signature(lua_State *L) {
  l_signer *ls = check_signer(L);
  if (ls->s.alg != OS_ALG_AWS4) return luaL_error(L, "chunk signatures exist only for aws4");
  int64_t t = check_time_arg(L, 2);
  os_str prev;
  prev.p = luaL_checklstring(L, 3, &prev.n);
  size_t n;
  const char *data = luaL_checklstring(L, 4, &n);
  unsigned char h[32];
  unsigned int len = 0;
  EVP_Digest(data, n, h, &len, EVP_sha256(), NULL);
  char sig[65];
  if (!os_sign_aws4_chunk(&ls->s, t, field_or_empty(L, 5, "region"),
                          field_or_empty(L, 5, "service"), prev, h, sig)) {
    lua_pushnil(L);
    lua_pushstring(L, ls->s.errbuf);
    return 2;
  }
  lua_pushlstring(L, sig, 64);
  return 1;
}

/* s:trailer_signature(time, prev_sig, {{name, value}, ...} [, opts]) */
static int signer_trailer_signature(lua_State *L) {
  l_signer *ls = check_signer(L);
  if (ls->s.alg != OS_ALG_AWS4) return luaL_error(L, "trailer signatures exist only for aws4");
  int64_t t = check_time_arg(L, 2);
  os_str prev;
  prev.p = luaL_checklstring(L, 3, &prev.n);
  luaL_checktype(L, 4, LUA_TTABLE);
  size_t n = osl_rawlen(L, 4);
  grow(L, (void **)&ls->hdrs, &ls->hdrs_cap, n ? n : 1, sizeof(os_kv));
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 4, (int)i + 1);
    if (!lua_istable(L, -1)) luaL_argerror(L, 4, "trailers must be {name, value} pairs");
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    ls->hdrs[i].name = check_header_part(L, -2, "name");
    ls->hdrs[i].value = check_header_part(L, -1, "value");
    lua_pop(L, 3);
  }
  char sig[65];
  if (!os_sign_aws4_trailer(&ls->s, t, field_or_empty(L, 5, "region"),
                            field_or_empty(L, 5, "service"), prev, ls->hdrs, n, sig)) {
    lua_pushnil(L);
    lua_pushstring(L, ls->s.errbuf);
    return 2;
  }
  lua_pushlstring(L, sig, 64);
  return 1;
}

/* s:policy_signature(policy_base64, time [, {region=, service=}]) */
static int signer_policy_signature(lua_State *L) {
  l_signer *ls = check_signer(L);
  os_str policy;
  policy.p = luaL_checklstring(L, 2, &policy.n);
  int64_t t = lua_isnoneornil(L, 3) ? 0 : check_time_arg(L, 3);
  if (ls->s.alg != OS_ALG_OSS1 && lua_isnoneornil(L, 3))
    return luaL_argerror(L, 3, "time is required for aws4/oss4 policies");
  if (!os_sign_policy(&ls->s, t, field_or_empty(L, 4, "region"), field_or_empty(L, 4, "service"),
                      policy, &ls->s.work)) {
    lua_pushnil(L);
    lua_pushstring(L, ls->s.errbuf);
    return 2;
  }
  lua_pushlstring(L, ls->s.work.data, ls->s.work.len);
  os_buf_reset(&ls->s.work);
  return 1;
}

/* s:set_credentials(access_key, secret_key [, session_token]) */
static int signer_set_credentials(lua_State *L) {
  l_signer *ls = check_signer(L);
  size_t akn, skn, tn = 0;
  const char *ak = luaL_checklstring(L, 2, &akn);
  const char *sk = luaL_checklstring(L, 3, &skn);
  const char *tok = luaL_optlstring(L, 4, NULL, &tn);
  if (akn == 0) return luaL_argerror(L, 2, "access_key is empty");
  if (skn == 0) return luaL_argerror(L, 3, "secret_key is empty");
  if (!os_signer_set_credentials(&ls->s, ak, akn, sk, skn, tok, tn))
    return luaL_error(L, "%s", ls->s.errbuf);
  return 0;
}

static int signer_tostring(lua_State *L) {
  l_signer *ls = osl_checkudata(L, 1, SIGNER_CLASS);
  static const char *const names[] = {"aws4", "oss1", "oss4"};
  /* Never the secret: only what identifies the signer. */
  if (!ls->ready)
    lua_pushliteral(L, "objstore.signer (closed)");
  else
    lua_pushfstring(L, "objstore.signer (%s, %s)", names[ls->s.alg],
                    ls->s.access_key.len ? os_buf_cstr(&ls->s.access_key) : "no key");
  return 1;
}

/* core.signer.new(algorithm, flags) -> signer. Credentials, region and
 * service are set by the Lua layer, which validates the options first. */
static int signer_new(lua_State *L) {
  static const char *const algs[] = {"aws4", "oss1", "oss4", NULL};
  int alg = luaL_checkoption(L, 1, NULL, algs);
  lua_Integer flags = luaL_optinteger(L, 2, 0);
  size_t rn = 0, sn = 0;
  const char *region = luaL_optlstring(L, 3, "", &rn);
  const char *service = luaL_optlstring(L, 4, "", &sn);
  /* Zeroed userdata first: a failure below leaves nothing to free but it. */
  l_signer *ls = osl_newuserdata(L, sizeof *ls);
  memset(ls, 0, sizeof *ls);
  luaL_getmetatable(L, SIGNER_CLASS);
  lua_setmetatable(L, -2);
  ls->ready = 1;
  if (!os_signer_init(&ls->s, (os_sign_alg)alg)) return luaL_error(L, "%s", ls->s.errbuf);
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
  osl_newlib(L, funcs);
  static const struct {
    const char *name;
    unsigned v;
  } consts[] = {
      {"NORMALIZE_PATH", OS_SIGN_NORMALIZE_PATH}, {"DOUBLE_ENCODE", OS_SIGN_DOUBLE_ENCODE},
      {"CONTENT_SHA256", OS_SIGN_CONTENT_SHA256}, {"TOKEN_UNSIGNED", OS_SIGN_TOKEN_UNSIGNED},
      {"QUERY_SHA256", OS_SIGN_QUERY_SHA256},     {"NO_DATE_HEADER", OS_SIGN_NO_DATE_HEADER},
  };
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    lua_pushinteger(L, (lua_Integer)consts[i].v);
    lua_setfield(L, -2, consts[i].name);
  }
  return 1;
}
