/*
 * core.http: the HTTP transport (os_http.c) for Lua.
 *
 *   core.http.session([opts]) -> session | nil, err
 *   session:request(req) -> res | nil, err
 *   session:run(source, on_done [, max_concurrent]) -> true | nil, err
 *   session:close()              (also __gc and, on 5.4, __close)
 *   core.http.curl_version       libcurl's version string
 *   core.http.errors             { [code] = retryable by default } of every
 *                                transport error code (from OS_HTTP_ERRORS)
 *
 * Misuse (an unknown or mistyped field, a closed or busy session) raises in
 * the one format (osl_misuse): "objstore.core.http.request: argument #1
 * (req.headers): ...". Transfer failures are returned as error tables
 * {code, message, retryable, curl_code} with the shared error metatable.
 *
 * See lua/objstore/transport/curl.lua for the request and result fields.
 *
 * A session used after fork() in the child renews itself first (new multi
 * and share handles; the inherited ones, the parent's, are never touched,
 * not even by close or __gc): see renew_after_fork.
 *
 * Lua values that C points into while transfers run (URL, method and body
 * strings, reader and sink functions, the reader's current chunk) are
 * anchored in a per-perform table stored in the session's user value and on
 * the stack, and released when perform returns. Reader and sink functions
 * are called from inside curl's callbacks, so only through lua_pcall of a
 * protected helper: a Lua error there ends only its own transfer, reported
 * as a CallbackError, and never unwinds through curl's frames.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "l_compat.h"
#include "os_http.h"
#include "os_version.h"

#define SESSION_CLASS "objstore.http.session"
#define XFER_CLASS "objstore.http.xfer"

typedef struct {
  os_http_session s;
  int open;
  pid_t pid; /* the process whose handles s holds (see renew_after_fork) */
} l_session;

/* Slots of a transfer's anchor entry. */
enum {
  A_REQ = 1,
  A_URL,
  A_METHOD,
  A_BODY,
  A_READER,
  A_SINK,
  A_SINK_PATH,
  A_CHUNK,
  A_XFER,
  A_ONHEAD,
  A_ONPROGRESS,
  A_N = A_ONPROGRESS
};

enum { CB_READ = 1, CB_WRITE, CB_HEAD, CB_PROGRESS };

struct perform_ctx {
  lua_State *L; /* the thread that called perform: callbacks run on it */
  int helper;   /* absolute stack index of the protected helper closure */
};

typedef struct {
  os_http_xfer x;
  int index; /* of its entry in the anchors table */
  struct perform_ctx *ctx;
  /* exchange with the protected helper */
  int cb_kind;
  const char *cb_data;
  size_t cb_len;
  int64_t cb_sent, cb_recv;
  int cb_abort;
} l_xfer;

/* Key of the running perform's anchors table in the session's user value. */
static char anchors_key;

/* ---- user values ------------------------------------------------------------- */

/* Pops a table and makes it the user value of the userdata at idx. */
static void http_setuv(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 504
  lua_setiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
  lua_setuservalue(L, idx);
#else
  lua_setfenv(L, idx);
#endif
}

static void http_getuv(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 504
  lua_getiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
  lua_getuservalue(L, idx);
#else
  lua_getfenv(L, idx);
#endif
}

/* ---- argument checks ------------------------------------------------------- */

/* Where a request field came from, for error messages: the function
 * ("core.http.request"), the argument as the caller counts it, and the
 * table's name in it ("req", "reqs[3]", "req.body"). */
typedef struct {
  const char *fname;
  int arg;
  char what[32];
} argctx;

/* Raises "objstore.<fname>: argument #<arg> (<what>.<field>): <problem>";
 * field NULL names the table itself. */
static int arg_error(lua_State *L, const argctx *a, const char *field, const char *fmt, ...)
    OSL_PRINTF(4, 5);

static int arg_error(lua_State *L, const argctx *a, const char *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *problem = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  const char *name = field != NULL ? lua_pushfstring(L, "%s.%s", a->what, field) : a->what;
  return osl_misuse(L, a->fname, a->arg, name, "%s", problem);
}

static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t len) {
  if (len == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    if (!is_tchar((unsigned char)s[i])) return 0;
  }
  return 1;
}

/* Non-negative whole number below 2^53 at idx, or def when nil. */
static int64_t opt_count(lua_State *L, int idx, const argctx *a, const char *field, int64_t def) {
  if (lua_isnil(L, idx)) return def;
  if (lua_type(L, idx) != LUA_TNUMBER) {
    arg_error(L, a, field, "number expected, got %s", luaL_typename(L, idx));
  }
  lua_Number n = lua_tonumber(L, idx);
  if (!(n >= 0 && n < 9007199254740992.0) || floor(n) != n) {
    arg_error(L, a, field, "non-negative integer expected");
  }
  return (int64_t)n;
}

/* Seconds (fractions allowed) as milliseconds, or def when nil. */
static long opt_seconds(lua_State *L, int idx, const argctx *a, const char *field, long def) {
  if (lua_isnil(L, idx)) return def;
  if (lua_type(L, idx) != LUA_TNUMBER) {
    arg_error(L, a, field, "number of seconds expected, got %s", luaL_typename(L, idx));
  }
  lua_Number n = lua_tonumber(L, idx);
  if (!(n >= 0 && n <= 2147483.0)) arg_error(L, a, field, "must be between 0 and 2147483");
  return (long)(n * 1000 + 0.5);
}

static int opt_bool(lua_State *L, int idx, const argctx *a, const char *field, int def) {
  if (lua_isnil(L, idx)) return def;
  if (lua_type(L, idx) != LUA_TBOOLEAN) {
    arg_error(L, a, field, "boolean expected, got %s", luaL_typename(L, idx));
  }
  return lua_toboolean(L, idx);
}

static const char *opt_string(lua_State *L, int idx, const argctx *a, const char *field,
                              size_t *len) {
  if (lua_isnil(L, idx)) return NULL;
  if (lua_type(L, idx) != LUA_TSTRING) {
    arg_error(L, a, field, "string expected, got %s", luaL_typename(L, idx));
  }
  size_t l;
  const char *s = lua_tolstring(L, idx, &l);
  if (strlen(s) != l) arg_error(L, a, field, "must not contain NUL bytes");
  if (len != NULL) *len = l;
  return s;
}

/* Raises naming the first key of the table at idx that is not in known. */
static void check_keys(lua_State *L, int idx, const argctx *a, const char *const known[]) {
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (int i = 0; known[i] != NULL && !ok; i++) ok = strcmp(k, known[i]) == 0;
      if (!ok) arg_error(L, a, NULL, "unknown field '%s'", k);
    } else {
      arg_error(L, a, NULL, "unexpected %s key", luaL_typename(L, -1));
    }
  }
}

/* ---- session ----------------------------------------------------------------- */

/* A session used in a child of the process that made it (nginx forks its
 * workers after init_by_lua): the inherited multi and share handles hold
 * the parent's pooled connections, whose sockets the parent and every
 * other child share, so reading an answer there may take someone else's.
 * They are never touched again (left allocated, their sockets open: no
 * cleanup, no close, nothing sent); the session goes on with new handles
 * of its own, made with the same settings. Raises only when out of memory. */
static void renew_after_fork(lua_State *L, l_session *ls) {
  pid_t now = getpid();
  /* Busy: forked from inside one of its callbacks; check_idle refuses it. */
  if (ls->pid == now || ls->s.busy) return;
  os_http_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.connect_timeout_ms = ls->s.connect_timeout_ms;
  cfg.timeout_ms = ls->s.timeout_ms;
  cfg.low_speed_limit = ls->s.low_speed_limit;
  cfg.low_speed_time = ls->s.low_speed_time;
  cfg.max_connections = ls->s.max_connections;
  cfg.tls_min_version = ls->s.tls_min_version;
  cfg.ca_file = ls->s.ca_file;
  cfg.ca_path = ls->s.ca_path;
  cfg.proxy = ls->s.proxy;
  cfg.user_agent = ls->s.user_agent;
  cfg.insecure = ls->s.insecure;
  cfg.verbose = ls->s.verbose;
  os_http_session fresh;
  memset(&fresh, 0, sizeof fresh);
  char err[256];
  if (os_http_session_init(&fresh, &cfg, err, sizeof err) != 0) {
    os_http_session_cleanup(&fresh);
    luaL_error(L, "core.http: cannot renew the session after fork: %s", err);
  }
  ls->s = fresh; /* the inherited handles and strings are left as they are */
  ls->pid = now;
}

static l_session *check_session(lua_State *L, const char *fname) {
  l_session *ls = (l_session *)osl_checkself(L, SESSION_CLASS, fname);
  if (!ls->open) osl_misuse(L, fname, 0, "self", "the session is closed");
  renew_after_fork(L, ls);
  return ls;
}

/* Raises when a callback of the session calls back into it. */
static void check_idle(lua_State *L, const l_session *ls, const char *fname) {
  if (ls->s.busy) {
    osl_misuse(L, fname, 0, "self", "the session is busy (called from one of its own callbacks)");
  }
}

static const char *const session_opts[] = {"connect_timeout",
                                           "timeout",
                                           "low_speed_limit",
                                           "low_speed_time",
                                           "ca_file",
                                           "ca_path",
                                           "insecure",
                                           "proxy",
                                           "user_agent",
                                           "max_connections",
                                           "verbose",
                                           "tls_min_version",
                                           NULL};

/* "1.0" .. "1.3" as curl's CURL_SSLVERSION_* (a minimum: the highest both
 * sides speak is still negotiated); nil is curl's own default. */
static long opt_tls_version(lua_State *L, int idx, const argctx *a, const char *field) {
  static const char *const names[] = {"1.0", "1.1", "1.2", "1.3", NULL};
  static const long values[] = {CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_TLSv1_1,
                                CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_TLSv1_3};
  const char *s = opt_string(L, idx, a, field, NULL);
  if (s == NULL) return 0;
  for (int i = 0; names[i] != NULL; i++)
    if (strcmp(s, names[i]) == 0) return values[i];
  arg_error(L, a, field, "must be \"1.0\", \"1.1\", \"1.2\" or \"1.3\"");
  return 0;
}

static int l_http_session(lua_State *L) {
  argctx a = {"core.http.session", 1, "opts"};
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  if (!lua_istable(L, 1)) arg_error(L, &a, NULL, "table expected, got %s", luaL_typename(L, 1));
  lua_settop(L, 1);
  check_keys(L, 1, &a, session_opts);

  os_http_config cfg;
  memset(&cfg, 0, sizeof cfg);
  lua_getfield(L, 1, "connect_timeout");
  cfg.connect_timeout_ms = opt_seconds(L, -1, &a, "connect_timeout", 10000);
  lua_getfield(L, 1, "timeout");
  cfg.timeout_ms = opt_seconds(L, -1, &a, "timeout", 0);
  lua_getfield(L, 1, "low_speed_limit");
  cfg.low_speed_limit = (long)opt_count(L, -1, &a, "low_speed_limit", 1);
  lua_getfield(L, 1, "low_speed_time");
  cfg.low_speed_time = (long)opt_count(L, -1, &a, "low_speed_time", 30);
  lua_getfield(L, 1, "max_connections");
  int64_t maxc = opt_count(L, -1, &a, "max_connections", 16);
  if (maxc < 1 || maxc > 65536) arg_error(L, &a, "max_connections", "must be between 1 and 65536");
  cfg.max_connections = (long)maxc;
  lua_getfield(L, 1, "insecure");
  cfg.insecure = opt_bool(L, -1, &a, "insecure", 0);
  lua_getfield(L, 1, "verbose");
  cfg.verbose = opt_bool(L, -1, &a, "verbose", 0);
  lua_getfield(L, 1, "tls_min_version");
  cfg.tls_min_version = opt_tls_version(L, -1, &a, "tls_min_version");
  /* The strings stay on the stack (so alive) until session_init copies them. */
  lua_getfield(L, 1, "ca_file");
  cfg.ca_file = opt_string(L, -1, &a, "ca_file", NULL);
  lua_getfield(L, 1, "ca_path");
  cfg.ca_path = opt_string(L, -1, &a, "ca_path", NULL);
  lua_getfield(L, 1, "proxy");
  cfg.proxy = opt_string(L, -1, &a, "proxy", NULL);
  lua_getfield(L, 1, "user_agent");
  cfg.user_agent = opt_string(L, -1, &a, "user_agent", NULL);
  if (cfg.user_agent == NULL) cfg.user_agent = "objstore/" OS_VERSION;

  /* Zeroed userdata with its metatable first, so that __gc frees whatever
   * session_init manages to build even if it fails halfway. */
  l_session *ls = (l_session *)osl_newuserdata(L, sizeof *ls);
  memset(ls, 0, sizeof *ls);
  luaL_getmetatable(L, SESSION_CLASS);
  lua_setmetatable(L, -2);
  lua_newtable(L);
  http_setuv(L, -2);
  char err[256];
  if (os_http_session_init(&ls->s, &cfg, err, sizeof err) != 0) {
    os_http_session_cleanup(&ls->s);
    osl_push_error(L, os_http_error_name(OS_HTTP_E_TRANSPORT), err, 0);
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "curl_code");
    return 2;
  }
  ls->open = 1;
  ls->pid = getpid();
  return 1;
}

static int l_session_close(lua_State *L) {
  static const char F[] = "core.http.close";
  l_session *ls = (l_session *)osl_checkself(L, SESSION_CLASS, F);
  if (!ls->open) return 0;
  if (ls->s.busy)
    return osl_misuse(L, F, 0, "self", "cannot close a session from inside one of its callbacks");
  ls->open = 0;
  /* Handles inherited across fork() are the parent's: left alone. */
  if (ls->pid == getpid()) os_http_session_cleanup(&ls->s);
  lua_newtable(L); /* drop anything still anchored */
  http_setuv(L, 1);
  return 0;
}

static int l_session_tostring(lua_State *L) {
  l_session *ls = (l_session *)osl_checkself(L, SESSION_CLASS, "core.http.__tostring");
  lua_pushfstring(L, "%s (%s): %p", SESSION_CLASS, ls->open ? "open" : "closed", (void *)ls);
  return 1;
}

/* ---- transfers --------------------------------------------------------------- */

static int l_xfer_gc(lua_State *L) {
  l_xfer *lx = (l_xfer *)osl_checkself(L, XFER_CLASS, "core.http.__gc");
  os_http_xfer_cleanup(&lx->x);
  return 0;
}

/* Text of a value a callback returned or raised as an error. Runs inside
 * the protected helper or on a string only, so it may allocate. */
static const char *err_text(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    return lua_tostring(L, idx);
  }
#if LUA_VERSION_NUM >= 502
  return luaL_tolstring(L, idx, NULL);
#else
  return lua_pushfstring(L, "(a %s value)", luaL_typename(L, idx));
#endif
}

/* Pushes x's response headers as { ["lower-case-name"] = value }, repeats
 * joined with ", ". May raise (allocates): only inside a protected call or
 * in perform's own frame. */
static void push_headers(lua_State *L, os_http_xfer *x) {
  lua_newtable(L);
  size_t cursor = 0;
  const char *name, *value;
  while (os_http_xfer_next_header(x, &cursor, &name, &value)) {
    lua_getfield(L, -1, name);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushstring(L, value);
    } else {
      lua_pushliteral(L, ", ");
      lua_pushstring(L, value);
      lua_concat(L, 3);
    }
    lua_setfield(L, -2, name);
  }
}

/* Runs under lua_pcall with the l_xfer as light userdata; upvalue 1 is the
 * anchors table. Everything that can raise (calling the user's function,
 * making the chunk string) happens here, never in a curl frame directly. */
static int cb_helper(lua_State *L) {
  l_xfer *lx = (l_xfer *)lua_touserdata(L, 1);
  lua_rawgeti(L, lua_upvalueindex(1), lx->index); /* 2: the entry */
  if (lx->cb_kind == CB_READ) {
    lua_rawgeti(L, 2, A_READER);
    lua_call(L, 0, 2);
    int t = lua_type(L, -2);
    if (t == LUA_TSTRING) {
      /* Anchored until the next call: curl copies from it meanwhile. */
      lua_pushvalue(L, -2);
      lua_rawseti(L, 2, A_CHUNK);
      lx->cb_data = lua_tolstring(L, -2, &lx->cb_len);
    } else if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, -2))) {
      lua_pushnil(L);
      lua_rawseti(L, 2, A_CHUNK);
      lx->cb_data = NULL;
      lx->cb_len = 0;
      if (!lua_isnil(L, -1) || t == LUA_TBOOLEAN) {
        os_http_xfer_fail(&lx->x, OS_HTTP_E_ABORTED, -1, "reader: %s",
                          lua_isnil(L, -1) ? "returned false" : err_text(L, -1));
        lx->cb_abort = 1;
      }
    } else {
      return luaL_error(L, "returned a %s (expected a string chunk, or nil at the end)",
                        luaL_typename(L, -2));
    }
    return 0;
  }
  if (lx->cb_kind == CB_HEAD) {
    lua_rawgeti(L, 2, A_ONHEAD);
    lua_pushinteger(L, (lua_Integer)lx->x.status);
    push_headers(L, &lx->x);
    lua_call(L, 2, 2);
  } else if (lx->cb_kind == CB_PROGRESS) {
    lua_rawgeti(L, 2, A_ONPROGRESS);
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)lx->cb_sent);
    lua_pushinteger(L, (lua_Integer)lx->cb_recv);
#else
    lua_pushnumber(L, (lua_Number)lx->cb_sent);
    lua_pushnumber(L, (lua_Number)lx->cb_recv);
#endif
    lua_call(L, 2, 2);
  } else {
    lua_rawgeti(L, 2, A_SINK);
    lua_pushlstring(L, lx->cb_data, lx->cb_len);
    lua_call(L, 1, 2);
  }
  /* LTN12 style: false, or nil plus an error, stops; anything else goes on
   * (so a sink that returns nothing keeps receiving). */
  int t = lua_type(L, -2);
  if ((t == LUA_TBOOLEAN && !lua_toboolean(L, -2)) || (t == LUA_TNIL && !lua_isnil(L, -1))) {
    os_http_xfer_fail(&lx->x, OS_HTTP_E_ABORTED, -1, "%s: %s",
                      lx->cb_kind == CB_HEAD       ? "on_head"
                      : lx->cb_kind == CB_PROGRESS ? "on_progress"
                                                   : "sink",
                      lua_isnil(L, -1) ? "returned false" : err_text(L, -1));
    lx->cb_abort = 1;
  }
  return 0;
}

/* Called from inside curl. The stack was grown before perform started and
 * pushing a value or a light userdata does not allocate, so nothing here can
 * raise outside lua_pcall. */
static int call_helper(l_xfer *lx, int kind) {
  lua_State *L = lx->ctx->L;
  int top = lua_gettop(L);
  lx->cb_kind = kind;
  lx->cb_abort = 0;
  lua_pushvalue(L, lx->ctx->helper);
  lua_pushlightuserdata(L, lx);
  int rc = lua_pcall(L, 1, 0, 0);
  if (rc != 0) {
    const char *who = kind == CB_READ       ? "reader"
                      : kind == CB_HEAD     ? "on_head"
                      : kind == CB_PROGRESS ? "on_progress"
                                            : "sink";
    if (lua_type(L, -1) == LUA_TSTRING) {
      os_http_xfer_fail(&lx->x, OS_HTTP_E_CALLBACK, -1, "%s: %s", who, lua_tostring(L, -1));
    } else {
      os_http_xfer_fail(&lx->x, OS_HTTP_E_CALLBACK, -1, "%s: error object is a %s value", who,
                        luaL_typename(L, -1));
    }
  }
  lua_settop(L, top);
  return rc != 0 || lx->cb_abort ? -1 : 0;
}

static int lx_read(void *ud, os_http_xfer *x, const char **data, size_t *len) {
  (void)x;
  l_xfer *lx = ud;
  if (call_helper(lx, CB_READ) != 0) return -1;
  *data = lx->cb_data;
  *len = lx->cb_len;
  return 0;
}

static int lx_write(void *ud, os_http_xfer *x, const char *data, size_t len) {
  (void)x;
  l_xfer *lx = ud;
  lx->cb_data = data;
  lx->cb_len = len;
  return call_helper(lx, CB_WRITE);
}

static int lx_head(void *ud, os_http_xfer *x) {
  (void)x;
  return call_helper((l_xfer *)ud, CB_HEAD);
}

static int lx_progress(void *ud, os_http_xfer *x, int64_t sent, int64_t received) {
  (void)x;
  l_xfer *lx = ud;
  lx->cb_sent = sent;
  lx->cb_recv = received;
  return call_helper(lx, CB_PROGRESS);
}

static const char *const req_fields[] = {"method",      "url",         "headers",   "body",
                                         "body_length", "sink",        "hashes",    "body_hashes",
                                         "expect_100",  "timeout",     "max_speed", "max_body",
                                         "on_head",     "on_progress", NULL};

static void add_header(lua_State *L, const argctx *a, l_xfer *lx, int name_idx, int value_idx) {
  size_t nlen, vlen;
  if (lua_type(L, name_idx) != LUA_TSTRING) {
    arg_error(L, a, "headers", "header name must be a string, got %s", luaL_typename(L, name_idx));
  }
  const char *name = lua_tolstring(L, name_idx, &nlen);
  if (!is_token(name, nlen)) arg_error(L, a, "headers", "invalid header name '%s'", name);
  int vt = lua_type(L, value_idx);
  if (vt != LUA_TSTRING && vt != LUA_TNUMBER) {
    arg_error(L, a, "headers", "value of '%s' must be a string, got %s", name,
              luaL_typename(L, value_idx));
  }
  /* A number becomes a string in its stack slot, which is the caller's copy. */
  const char *value = lua_tolstring(L, value_idx, &vlen);
  for (size_t i = 0; i < vlen; i++) {
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') {
      arg_error(L, a, "headers", "value of '%s' contains CR, LF or NUL", name);
    }
  }
  if (os_http_xfer_add_header(&lx->x, name, nlen, value, vlen) != 0) {
    luaL_error(L, "out of memory");
  }
}

static void parse_headers(lua_State *L, const argctx *a, l_xfer *lx, int idx) {
  if (lua_isnil(L, idx)) return;
  if (!lua_istable(L, idx)) {
    arg_error(L, a, "headers", "table expected, got %s", luaL_typename(L, idx));
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int k = lua_gettop(L) - 1, v = lua_gettop(L);
    if (lua_type(L, k) == LUA_TNUMBER) {
      /* {name, value} pair of the list form */
      if (!lua_istable(L, v)) {
        arg_error(L, a, "headers", "list entries must be {name, value}, got %s",
                  luaL_typename(L, v));
      }
      lua_rawgeti(L, v, 1);
      lua_rawgeti(L, v, 2);
      add_header(L, a, lx, v + 1, v + 2);
      lua_pop(L, 2);
    } else {
      /* Copy the value: lua_tolstring on a number key would confuse lua_next. */
      lua_pushvalue(L, k);
      lua_pushvalue(L, v);
      add_header(L, a, lx, v + 1, v + 2);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
}

static void parse_digests(lua_State *L, const argctx *a, l_xfer *lx, int idx, const char *field,
                          int request_body) {
  if (lua_isnil(L, idx)) return;
  if (!lua_istable(L, idx)) {
    arg_error(L, a, field, "list of names expected, got %s", luaL_typename(L, idx));
  }
  int n = (int)osl_rawlen(L, idx);
  for (int i = 1; i <= n; i++) {
    char entry[32];
    snprintf(entry, sizeof entry, "%s[%d]", field, i);
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      arg_error(L, a, entry, "string expected, got %s", luaL_typename(L, -1));
    }
    const char *name = lua_tostring(L, -1);
    int rc = os_http_xfer_add_digest(&lx->x, request_body, name);
    if (rc == -1) {
      arg_error(L, a, entry,
                "unknown hash '%s' (md5, sha1, sha256, crc32, crc32c, crc64ecma, crc64nvme)", name);
    } else if (rc == -2) {
      arg_error(L, a, field, "at most %d names", OS_HTTP_MAX_DIGESTS);
    } else if (rc == -3) {
      /* OpenSSL refused the algorithm (a FIPS provider and MD5): a runtime
       * failure of this transfer, which is then skipped and reports it. */
      os_http_xfer_fail(&lx->x, OS_HTTP_E_TRANSPORT, 0, "OpenSSL cannot start the %s hash", name);
    }
    lua_pop(L, 1);
  }
}

static void parse_body(lua_State *L, const argctx *a, l_xfer *lx, int req, int entry) {
  lua_getfield(L, req, "body_length");
  int64_t body_length = opt_count(L, -1, a, "body_length", -1);
  lua_pop(L, 1);
  lua_getfield(L, req, "body");
  int b = lua_gettop(L);
  int t = lua_type(L, b);
  if (t != LUA_TNIL && lx->x.method_kind == OS_HTTP_M_HEAD) {
    arg_error(L, a, "body", "a HEAD request cannot have a body");
  }
  if (t == LUA_TNIL) {
    if (body_length > 0) arg_error(L, a, "body_length", "given without a body");
  } else if (t == LUA_TSTRING || (t == LUA_TUSERDATA && osl_buffer_data(L, b, &(size_t){0}))) {
    /* A string or a core.buffer: sent from memory, anchored until done. */
    size_t len;
    const char *s = t == LUA_TSTRING ? lua_tolstring(L, b, &len) : osl_buffer_data(L, b, &len);
    if (body_length >= 0 && (size_t)body_length != len) {
      char msg[96];
      snprintf(msg, sizeof msg, "%lld differs from the body string's length %llu",
               (long long)body_length, (unsigned long long)len);
      arg_error(L, a, "body_length", "%s", msg);
    }
    lua_pushvalue(L, b);
    lua_rawseti(L, entry, A_BODY);
    os_http_xfer_set_body_mem(&lx->x, s, len);
  } else if (t == LUA_TFUNCTION) {
    lua_pushvalue(L, b);
    lua_rawseti(L, entry, A_READER);
    os_http_xfer_set_body_reader(&lx->x, lx_read, lx, body_length);
  } else if (t == LUA_TTABLE) {
    static const char *const known[] = {"file", "offset", "length", NULL};
    argctx ba = *a;
    lua_pushfstring(L, "%s.body", a->what);
    strncpy(ba.what, lua_tostring(L, -1), sizeof ba.what - 1);
    lua_pop(L, 1);
    check_keys(L, b, &ba, known);
    lua_getfield(L, b, "file");
    const char *path = opt_string(L, -1, &ba, "file", NULL);
    if (path == NULL) arg_error(L, &ba, "file", "string expected, got nil");
    lua_getfield(L, b, "offset");
    int64_t offset = opt_count(L, -1, &ba, "offset", 0);
    lua_getfield(L, b, "length");
    int64_t length = opt_count(L, -1, &ba, "length", body_length);
    if (body_length >= 0 && length != body_length) {
      arg_error(L, a, "body_length", "differs from body.length");
    }
    /* An unreadable file is a runtime failure of this transfer, not misuse:
     * the transfer is skipped and reports LocalFileError. */
    (void)os_http_xfer_set_body_file(&lx->x, path, offset, length);
    lua_pop(L, 3);
  } else {
    arg_error(L, a, "body", "string, buffer, table or function expected, got %s",
              luaL_typename(L, b));
  }
  lua_pop(L, 1);
}

static void parse_sink(lua_State *L, const argctx *a, l_xfer *lx, int req, int entry) {
  lua_getfield(L, req, "sink");
  int s = lua_gettop(L);
  int t = lua_type(L, s);
  if (t == LUA_TFUNCTION) {
    lua_pushvalue(L, s);
    lua_rawseti(L, entry, A_SINK);
    os_http_xfer_set_sink_writer(&lx->x, lx_write, lx);
  } else if (t == LUA_TTABLE) {
    static const char *const known[] = {"file", "offset", NULL};
    argctx sa = *a;
    lua_pushfstring(L, "%s.sink", a->what);
    strncpy(sa.what, lua_tostring(L, -1), sizeof sa.what - 1);
    lua_pop(L, 1);
    check_keys(L, s, &sa, known);
    lua_getfield(L, s, "file");
    const char *path = opt_string(L, -1, &sa, "file", NULL);
    if (path == NULL) arg_error(L, &sa, "file", "string expected, got nil");
    lua_rawseti(L, entry, A_SINK_PATH); /* the path is opened only later */
    lua_getfield(L, s, "offset");
    int64_t offset = opt_count(L, -1, &sa, "offset", 0);
    lua_pop(L, 1);
    os_http_xfer_set_sink_file(&lx->x, path, offset);
  } else if (t != LUA_TNIL) {
    arg_error(L, a, "sink", "function or table expected, got %s", luaL_typename(L, s));
  }
  lua_pop(L, 1);
}

/* Checks the request table at req and builds its transfer; leaves the
 * anchor entry (whose A_XFER slot holds the transfer) on the stack. */
static l_xfer *parse_req(lua_State *L, const argctx *a, int req) {
  if (!lua_istable(L, req)) arg_error(L, a, NULL, "table expected, got %s", luaL_typename(L, req));
  check_keys(L, req, a, req_fields);

  lua_createtable(L, A_N, 0);
  int entry = lua_gettop(L);
  lua_pushvalue(L, req);
  lua_rawseti(L, entry, A_REQ);
  /* Zeroed, with its __gc, before anything is allocated for it. */
  l_xfer *lx = (l_xfer *)lua_newuserdata(L, sizeof *lx);
  memset(lx, 0, sizeof *lx);
  os_http_xfer_init(&lx->x);
  luaL_getmetatable(L, XFER_CLASS);
  lua_setmetatable(L, -2);
  lua_rawseti(L, entry, A_XFER);

  size_t len;
  lua_getfield(L, req, "method");
  const char *method = opt_string(L, -1, a, "method", &len);
  if (method != NULL) {
    if (!is_token(method, len)) arg_error(L, a, "method", "invalid method '%s'", method);
    lua_pushvalue(L, -1);
    lua_rawseti(L, entry, A_METHOD);
    os_http_xfer_set_method(&lx->x, method);
  }
  lua_getfield(L, req, "url");
  const char *url = opt_string(L, -1, a, "url", &len);
  if (url == NULL || len == 0) arg_error(L, a, "url", "non-empty string expected");
  lua_pushvalue(L, -1);
  lua_rawseti(L, entry, A_URL);
  lx->x.url = url;
  lua_getfield(L, req, "expect_100");
  lx->x.expect_100 = opt_bool(L, -1, a, "expect_100", 0);
  lua_getfield(L, req, "timeout");
  lx->x.timeout_ms = opt_seconds(L, -1, a, "timeout", -1);
  lua_getfield(L, req, "max_speed");
  lx->x.max_speed = opt_count(L, -1, a, "max_speed", 0);
  lua_getfield(L, req, "max_body");
  lx->x.max_body = opt_count(L, -1, a, "max_body", 0);
  lua_pop(L, 6);

  lua_getfield(L, req, "headers");
  parse_headers(L, a, lx, lua_gettop(L));
  lua_pop(L, 1);
  lua_getfield(L, req, "hashes");
  parse_digests(L, a, lx, lua_gettop(L), "hashes", 0);
  lua_pop(L, 1);
  lua_getfield(L, req, "body_hashes");
  parse_digests(L, a, lx, lua_gettop(L), "body_hashes", 1);
  lua_pop(L, 1);
  parse_sink(L, a, lx, req, entry);
  lua_getfield(L, req, "on_head");
  if (lua_type(L, -1) == LUA_TFUNCTION) {
    lua_rawseti(L, entry, A_ONHEAD);
    os_http_xfer_set_head_callback(&lx->x, lx_head, lx);
  } else if (!lua_isnil(L, -1)) {
    arg_error(L, a, "on_head", "function expected, got %s", luaL_typename(L, -1));
  } else {
    lua_pop(L, 1);
  }
  lua_getfield(L, req, "on_progress");
  if (lua_type(L, -1) == LUA_TFUNCTION) {
    lua_rawseti(L, entry, A_ONPROGRESS);
    os_http_xfer_set_progress_callback(&lx->x, lx_progress, lx);
  } else if (!lua_isnil(L, -1)) {
    arg_error(L, a, "on_progress", "function expected, got %s", luaL_typename(L, -1));
  } else {
    lua_pop(L, 1);
  }
  /* Last: it may open a file, which is better not opened for a request that
   * a later check would reject (the descriptor would wait for __gc). */
  parse_body(L, a, lx, req, entry);
  return lx;
}

/* ---- results ---------------------------------------------------------------- */

static void set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushnumber(L, (lua_Number)v);
#if LUA_VERSION_NUM >= 503
  if (v >= 0 && v < ((int64_t)1 << 53)) {
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)v);
  }
#endif
  lua_setfield(L, -2, k);
}

static void push_digests(lua_State *L, const os_http_digest *set, int n, const char *field) {
  if (n == 0) return;
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    lua_pushlstring(L, (const char *)set[i].out, set[i].outlen);
    lua_setfield(L, -2, set[i].name);
  }
  lua_setfield(L, -2, field);
}

/* Pushes the error table of a failed transfer: {code, message, retryable}
 * with the shared error metatable, plus curl_code. */
static void push_error(lua_State *L, const os_http_xfer *x) {
  osl_push_error(L, os_http_error_name(x->err), x->message, x->retryable);
  lua_remove(L, -2); /* the nil */
  set_int(L, "curl_code", x->curl_code);
}

static void push_result(lua_State *L, os_http_xfer *x) {
  lua_createtable(L, 0, 10);
  set_int(L, "status", x->http_status);
  push_headers(L, x);
  lua_setfield(L, -2, "headers");
  if (x->sink_kind == OS_HTTP_SINK_BUFFER || x->http_status >= 300) {
    lua_pushlstring(L, x->body.data != NULL ? x->body.data : "", x->body.len);
    lua_setfield(L, -2, "body");
  }
  set_int(L, "bytes", x->bytes);
  set_int(L, "sent", x->sent);
  lua_pushnumber(L, x->total_time);
  lua_setfield(L, -2, "total_time");
  set_int(L, "connects", x->connects);
  push_digests(L, x->digests, x->ndigests, "hashes");
  push_digests(L, x->body_digests, x->nbody_digests, "body_hashes");
}

/* ---- request ---------------------------------------------------------------- */

/* Runs the one request at `req` and pushes res | nil, err. (The pull model
 * below, session:run, is how several go at once.) */
static int run_one(lua_State *L, const char *fname, l_session *ls, int req) {
  check_idle(L, ls, fname);
  lua_createtable(L, 1, 0);
  int anchors = lua_gettop(L);
  argctx a = {fname, 1, "req"};
  l_xfer *lx = parse_req(L, &a, req);
  lx->index = 1;
  lua_rawseti(L, anchors, 1); /* the entry */
  os_http_xfer *xs[1] = {&lx->x};

  /* Callbacks push at most a few values over the helper, inside lua_pcall. */
  luaL_checkstack(L, 16, "http request");
  /* From here until perform returns nothing may raise: curl frames come and
   * go in between, and the helper is the only way into Lua. */
  http_getuv(L, 1);
  lua_pushlightuserdata(L, &anchors_key);
  lua_pushvalue(L, anchors);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, anchors);
  lua_pushcclosure(L, cb_helper, 1);
  struct perform_ctx ctx = {L, lua_gettop(L)};
  lx->ctx = &ctx;

  osl_signal_defer(1);
  os_http_perform(&ls->s, xs, 1, 1);
  osl_signal_defer(-1);

  http_getuv(L, 1);
  lua_pushlightuserdata(L, &anchors_key);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 2); /* user value, helper */

  os_http_xfer *x = xs[0];
  int failed = x->err != OS_HTTP_OK;
  if (failed) {
    lua_pushnil(L);
    push_error(L, x);
  } else {
    push_result(L, x);
  }
  os_http_xfer_cleanup(x);
  osl_signal_raise_pending(L); /* SIGINT/SIGTERM stopped it: say so */
  return failed ? 2 : 1;
}

/* The optional max_concurrent at idx (a method's argument #idx-1). */
static size_t opt_max_concurrent(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return 0;
  lua_Number maxc = osl_checknumber(L, idx, fname, idx - 1, "max_concurrent");
  if (!(maxc >= 0 && maxc <= 65536) || floor(maxc) != maxc) {
    osl_misuse(L, fname, idx - 1, "max_concurrent",
               "integer between 0 (the session's max_connections) and 65536 expected");
  }
  return (size_t)maxc;
}

static int l_session_request(lua_State *L) {
  static const char F[] = "core.http.request";
  l_session *ls = check_session(L, F);
  osl_checktype(L, 2, LUA_TTABLE, F, 1, "req");
  lua_settop(L, 2);
  return run_one(L, F, ls, 2);
}

/* ---- run (pull model) ------------------------------------------------------ */

struct run_ctx {
  struct perform_ctx pctx;
  int pull;    /* absolute stack index of the pull helper */
  int donef;   /* absolute stack index of the done helper */
  int anchors; /* absolute stack index of the anchors table */
  int next_index;
  l_xfer *pulled;
  int failed;
  char err[512];
};

static void run_fail(struct run_ctx *rc, const char *who, lua_State *L) {
  rc->failed = 1;
  snprintf(rc->err, sizeof rc->err, "%s: %s", who,
           lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string");
}

/* Under lua_pcall; upvalues: anchors, source. Asks the source for the next
 * request and builds its transfer (parse_req raises on misuse). */
static int pull_helper(lua_State *L) {
  struct run_ctx *rc = (struct run_ctx *)lua_touserdata(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_call(L, 0, 1);
  if (lua_isnil(L, -1)) return 0;
  int req = lua_gettop(L);
  argctx a = {"core.http.run", 1, "source()"};
  l_xfer *lx = parse_req(L, &a, req);
  lx->index = ++rc->next_index;
  lx->ctx = &rc->pctx;
  lua_rawseti(L, lua_upvalueindex(1), lx->index);
  rc->pulled = lx;
  return 0;
}

/* Under lua_pcall; upvalues: anchors, on_done. on_done(req, res, err). */
static int done_helper(lua_State *L) {
  l_xfer *lx = (l_xfer *)lua_touserdata(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_rawgeti(L, lua_upvalueindex(1), lx->index);
  lua_rawgeti(L, -1, A_REQ);
  lua_remove(L, -2);
  if (lx->x.err != OS_HTTP_OK) {
    lua_pushnil(L);
    push_error(L, &lx->x);
  } else {
    push_result(L, &lx->x);
    lua_pushnil(L);
  }
  lua_call(L, 3, 0);
  return 0;
}

/* Called from os_http_run (between curl calls, never inside them). */
static os_http_xfer *lx_pull(void *ud) {
  struct run_ctx *rc = (struct run_ctx *)ud;
  if (rc->failed) return NULL;
  lua_State *L = rc->pctx.L;
  int top = lua_gettop(L);
  rc->pulled = NULL;
  lua_pushvalue(L, rc->pull);
  lua_pushlightuserdata(L, rc);
  if (lua_pcall(L, 1, 0, 0) != 0) run_fail(rc, "source", L);
  lua_settop(L, top);
  return rc->pulled != NULL ? &rc->pulled->x : NULL;
}

static void lx_done(void *ud, os_http_xfer *x) {
  struct run_ctx *rc = (struct run_ctx *)ud;
  lua_State *L = rc->pctx.L;
  l_xfer *lx = (l_xfer *)(void *)x; /* x is the first member */
  int top = lua_gettop(L);
  if (!rc->failed) {
    lua_pushvalue(L, rc->donef);
    lua_pushlightuserdata(L, lx);
    if (lua_pcall(L, 1, 0, 0) != 0) run_fail(rc, "on_done", L);
  }
  lua_settop(L, top);
  /* Free descriptors and buffers now; then let go of the anchors (setting
   * an existing key to nil does not allocate). */
  os_http_xfer_cleanup(x);
  lua_pushnil(L);
  lua_rawseti(L, rc->anchors, lx->index);
}

/* session:run(source, on_done [, max_concurrent]): source() -> req | nil is
 * asked for work whenever a slot is free (and again after each completion);
 * on_done(req, res, err) gets each outcome. Returns when nothing runs and
 * the source has nothing. An error raised by source or on_done stops the
 * run (the running transfers finish first) and is raised here. */
static int l_session_run(lua_State *L) {
  static const char F[] = "core.http.run";
  l_session *ls = check_session(L, F);
  osl_checktype(L, 2, LUA_TFUNCTION, F, 1, "source");
  osl_checktype(L, 3, LUA_TFUNCTION, F, 2, "on_done");
  size_t maxc = opt_max_concurrent(L, 4, F);
  check_idle(L, ls, F);
  lua_settop(L, 3);
  luaL_checkstack(L, 24, "http run");
  lua_newtable(L);
  int anchors = lua_gettop(L);
  http_getuv(L, 1);
  lua_pushlightuserdata(L, &anchors_key);
  lua_pushvalue(L, anchors);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  struct run_ctx *rc = (struct run_ctx *)lua_newuserdata(L, sizeof *rc);
  memset(rc, 0, sizeof *rc);
  rc->anchors = anchors;
  lua_pushvalue(L, anchors);
  lua_pushcclosure(L, cb_helper, 1);
  rc->pctx.L = L;
  rc->pctx.helper = lua_gettop(L);
  lua_pushvalue(L, anchors);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, pull_helper, 2);
  rc->pull = lua_gettop(L);
  lua_pushvalue(L, anchors);
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, done_helper, 2);
  rc->donef = lua_gettop(L);

  osl_signal_defer(1);
  int mrc = os_http_run(&ls->s, lx_pull, lx_done, rc, maxc);
  osl_signal_defer(-1);

  http_getuv(L, 1);
  lua_pushlightuserdata(L, &anchors_key);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  osl_signal_raise_pending(L); /* SIGINT/SIGTERM stopped the run */
  /* Not misuse: the error a source or on_done raised, raised on here. */
  if (rc->failed) return luaL_error(L, "%s", rc->err);
  /* Each running transfer has already reported this through on_done. */
  if (mrc != 0) {
    return osl_push_error(L, os_http_error_name(OS_HTTP_E_TRANSPORT),
                          "the curl multi handle failed", 0);
  }
  lua_pushboolean(L, 1);
  return 1;
}

int osl_open_http(lua_State *L) {
  static const luaL_Reg session_methods[] = {
    {"request", l_session_request},
    {"run", l_session_run},
    {"close", l_session_close},
    {"__gc", l_session_close},
#if LUA_VERSION_NUM >= 504
    {"__close", l_session_close},
#endif
    {"__tostring", l_session_tostring},
    {NULL, NULL},
  };
  static const luaL_Reg xfer_methods[] = {{"__gc", l_xfer_gc}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"session", l_http_session}, {NULL, NULL}};
  char err[128];
  /* Not misuse: the module cannot load, which require reports. */
  if (os_http_global_init(err, sizeof err) != 0) luaL_error(L, "%s", err);
  osl_newclass(L, SESSION_CLASS, session_methods);
  osl_newclass(L, XFER_CLASS, xfer_methods);
  osl_newlib(L, funcs);
  /* The transport error codes and their retryable defaults (the X-macro). */
  lua_createtable(L, 0, OS_HTTP_ERROR_COUNT);
  for (int i = 0; i < OS_HTTP_ERROR_COUNT; i++) {
    if (i == OS_HTTP_OK) continue;
    lua_pushboolean(L, os_http_error_retryable((os_http_error)i));
    lua_setfield(L, -2, os_http_error_name((os_http_error)i));
  }
  lua_setfield(L, -2, "errors");
  /* Not curl_version(): it initialises LDAP and SASL (leaking their globals)
   * just to print their versions. */
  const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
  lua_pushfstring(L, "libcurl/%s %s", vi->version, vi->ssl_version ? vi->ssl_version : "no-TLS");
  lua_setfield(L, -2, "curl_version");
  return 1;
}
