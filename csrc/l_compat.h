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

#if defined(__GNUC__)
#define OSL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define OSL_PRINTF(f, a)
#endif

/* Raises a misuse error (a wrong argument type, an unknown field, a closed
 * object) in the one format of objstore, after the caller's position as
 * luaL_error gives it:
 *   objstore.<fname>: argument #<arg> (<name>): <problem>
 * fname is "<module>.<function>" (e.g. "core.signer.sign"); arg counts the
 * arguments as the caller wrote them (a method's self is not counted).
 * arg <= 0 leaves out "argument #n" for misuse that is not about one
 * argument ("objstore.core.hash.update: (self): the hash object is closed");
 * name NULL then leaves out "(name): " too. The problem is fmt formatted by
 * lua_pushfstring (%s %d %f %p %c %% only). Never returns; declared int for
 * `return osl_misuse(...)`. Every other misuse check below is built on it. */
int osl_misuse(lua_State *L, const char *fname, int arg, const char *name, const char *fmt, ...)
    OSL_PRINTF(5, 6);

/* Returns the userdata at arg if its metatable is tname, else NULL. */
void *osl_testudata(lua_State *L, int arg, const char *tname);

/* The userdata at index 1 (a method's self) if its metatable is tname; else
 * raises "objstore.<fname>: (self): <tname> expected, got <type>". */
void *osl_checkself(lua_State *L, const char *tname, const char *fname);

/* luaL_checklstring / luaL_checknumber / luaL_checktype in the misuse
 * format: idx is the stack index, arg and name what the message shows.
 * osl_checklstring takes a number too (converted in place, as Lua does). */
const char *osl_checklstring(lua_State *L, int idx, const char *fname, int arg, const char *name,
                             size_t *len);
lua_Number osl_checknumber(lua_State *L, int idx, const char *fname, int arg, const char *name);
void osl_checktype(lua_State *L, int idx, int t, const char *fname, int arg, const char *name);

/* Optional string field of the table at idx; NULL when absent or nil.
 * Raises "objstore.<fname>: argument #<arg> (<what>.<field>): must be a
 * string, got <type>" for any other type. */
const char *osl_optfield_string(lua_State *L, int idx, const char *field, const char *fname,
                                int arg, const char *what, size_t *len);

/* Registry name of the one error metatable shared by every objstore error. */
#define OSL_ERROR_MT "objstore.error"

/* Pushes the shared error metatable (created on first use). */
void osl_push_error_mt(lua_State *L);

/* Pushes nil and an error table {code, message, retryable} with the shared
 * metatable; returns 2, for `return osl_push_error(...)` in a binding. For
 * every runtime failure of a binding (misuse raises: osl_misuse). A caller
 * may add fields to the table (at -1) before returning. */
int osl_push_error(lua_State *L, const char *code, const char *message, int retryable);

/* The bytes of the core.buffer at idx (data, *len), or NULL when the value
 * there is not one: how core.http takes a buffer as a request body. */
const char *osl_buffer_data(lua_State *L, int idx, size_t *len);

/* Each submodule's opener pushes exactly one table. */
int osl_open_hash(lua_State *L);
int osl_open_crc(lua_State *L);
int osl_open_encode(lua_State *L);
int osl_open_signer(lua_State *L);
int osl_open_xml(lua_State *L);
int osl_open_http(lua_State *L);
int osl_open_time(lua_State *L);
int osl_open_buffer(lua_State *L);
int osl_open_mpu(lua_State *L);
int osl_open_fs(lua_State *L);
int osl_open_signal(lua_State *L);

/* l_signal.c, for the run loops of l_http.c: the interrupt hook waits while
 * the depth is above 0; raise_pending raises a signal not yet raised. */
void osl_signal_defer(int delta);
void osl_signal_raise_pending(lua_State *L);

#endif
