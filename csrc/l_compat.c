/* Shared helpers for the binding files; see l_compat.h. */
#include "l_compat.h"

#include <stdarg.h>
#include <string.h>

#if LUA_VERSION_NUM < 502
void osl_setfuncs_51(lua_State *L, const luaL_Reg *l) {
  for (; l->name != NULL; l++) {
    lua_pushcfunction(L, l->func);
    lua_setfield(L, -2, l->name);
  }
}
#endif

void osl_newlib(lua_State *L, const luaL_Reg *l) {
  lua_newtable(L);
  osl_setfuncs(L, l);
}

void osl_newclass(lua_State *L, const char *tname, const luaL_Reg *methods) {
  luaL_newmetatable(L, tname);
  osl_setfuncs(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, tname);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

void *osl_testudata(lua_State *L, int arg, const char *tname) {
  void *p = lua_touserdata(L, arg);
  if (p == NULL || !lua_getmetatable(L, arg)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

int osl_misuse(lua_State *L, const char *fname, int arg, const char *name, const char *fmt, ...) {
  va_list ap;
  int n = 2;
  luaL_where(L, 1);
  lua_pushfstring(L, "objstore.%s: ", fname);
  if (arg > 0) {
    lua_pushfstring(L, "argument #%d (%s): ", arg, name != NULL ? name : "?");
    n++;
  } else if (name != NULL) {
    lua_pushfstring(L, "(%s): ", name);
    n++;
  }
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, n + 1);
  return lua_error(L);
}

void *osl_checkself(lua_State *L, const char *tname, const char *fname) {
  void *p = osl_testudata(L, 1, tname);
  if (p == NULL) osl_misuse(L, fname, 0, "self", "%s expected, got %s", tname, luaL_typename(L, 1));
  return p;
}

const char *osl_checklstring(lua_State *L, int idx, const char *fname, int arg, const char *name,
                             size_t *len) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    osl_misuse(L, fname, arg, name, "string expected, got %s", luaL_typename(L, idx));
  return lua_tolstring(L, idx, len);
}

lua_Number osl_checknumber(lua_State *L, int idx, const char *fname, int arg, const char *name) {
  if (!lua_isnumber(L, idx))
    osl_misuse(L, fname, arg, name, "number expected, got %s", luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

void osl_checktype(lua_State *L, int idx, int t, const char *fname, int arg, const char *name) {
  if (lua_type(L, idx) != t)
    osl_misuse(L, fname, arg, name, "%s expected, got %s", lua_typename(L, t),
               luaL_typename(L, idx));
}

const char *osl_optfield_string(lua_State *L, int idx, const char *field, const char *fname,
                                int arg, const char *what, size_t *len) {
  const char *s = NULL;
  lua_getfield(L, idx, field);
  if (lua_type(L, -1) == LUA_TSTRING) {
    /* The value stays reachable from the table, so the pointer survives the pop. */
    s = lua_tolstring(L, -1, len);
  } else if (!lua_isnil(L, -1)) {
    const char *name = lua_pushfstring(L, "%s.%s", what, field);
    osl_misuse(L, fname, arg, name, "must be a string, got %s", luaL_typename(L, -2));
  }
  lua_pop(L, 1);
  return s;
}

/* The shared error metatable lives in the registry under OSL_ERROR_MT; its
 * __tostring here is a fallback that objstore.errors replaces with the full
 * log-line form when it loads. */
static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "%s - %s", lua_isstring(L, -2) ? lua_tostring(L, -2) : "Error",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  return 1;
}

void osl_push_error_mt(lua_State *L) {
  if (luaL_newmetatable(L, OSL_ERROR_MT)) {
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
}

int osl_push_error(lua_State *L, const char *code, const char *message, int retryable) {
  lua_pushnil(L);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, message != NULL ? message : "");
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, retryable);
  lua_setfield(L, -2, "retryable");
  osl_push_error_mt(L);
  lua_setmetatable(L, -2);
  return 2;
}
