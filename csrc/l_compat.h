/*
 * Cross-version shims for the binding files (Lua 5.1-5.4, LuaJIT 2.1).
 * Every name is prefixed with osl_ so that nothing here can collide with a
 * lua_* / luaL_* symbol that LuaJIT 2.1 or a later Lua already exports.
 */
#ifndef OBJSTORE_L_COMPAT_H
#define OBJSTORE_L_COMPAT_H

#include <lauxlib.h>
#include <lua.h>

#if LUA_VERSION_NUM >= 502
#define osl_setfuncs(L, l) luaL_setfuncs(L, l, 0)
#define osl_rawlen(L, i) lua_rawlen(L, i)
#else
void osl_setfuncs_51(lua_State *L, const luaL_Reg *l);
#define osl_setfuncs(L, l) osl_setfuncs_51(L, l)
#define osl_rawlen(L, i) lua_objlen(L, i)
#endif

#if LUA_VERSION_NUM >= 504
#define osl_newuserdata(L, sz) lua_newuserdatauv(L, sz, 1)
#else
#define osl_newuserdata(L, sz) lua_newuserdata(L, sz)
#endif

/* Pushes a new table holding the functions of l (a NULL-terminated list). */
void osl_newlib(lua_State *L, const luaL_Reg *l);

/* Creates the metatable named tname with __index pointing at itself and the
 * given methods; leaves nothing on the stack. */
void osl_newclass(lua_State *L, const char *tname, const luaL_Reg *methods);

/* Returns the userdata at arg if its metatable is tname, else NULL. */
void *osl_testudata(lua_State *L, int arg, const char *tname);

/* Like osl_testudata but raises a type error naming tname. */
void *osl_checkudata(lua_State *L, int arg, const char *tname);

/* Optional string field of the table at idx; NULL when absent or nil.
 * Raises "<what>.<field> must be a string" for any other type. */
const char *osl_optfield_string(lua_State *L, int idx, const char *field, const char *what,
                                size_t *len);

/* Registry name of the one error metatable shared by every objstore error. */
#define OSL_ERROR_MT "objstore.error"

/* Pushes the shared error metatable (created on first use). */
void osl_push_error_mt(lua_State *L);

/* Pushes nil and an error table {code, message, retryable} with the shared
 * metatable; returns 2, for `return osl_push_error(...)` in a binding. */
int osl_push_error(lua_State *L, const char *code, const char *message, int retryable);

/* Each submodule's opener pushes exactly one table. */
int osl_open_hash(lua_State *L);
int osl_open_crc(lua_State *L);
int osl_open_encode(lua_State *L);
int osl_open_signer(lua_State *L);
int osl_open_xml(lua_State *L);
int osl_open_http(lua_State *L);
int osl_open_time(lua_State *L);

#endif
