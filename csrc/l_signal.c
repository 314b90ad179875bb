/*
 * core.signal: SIGINT and SIGTERM for the command line (os_signal.c).
 *   core.signal.trap() -> true | nil, err
 *       installs the handlers; from then on a signal raises the error
 *       "interrupted (SIGINT)" or "interrupted (SIGTERM)" in the main Lua
 *       thread as soon as Lua code runs again, as lua.c does for SIGINT.
 *       Transfers under way stop within ~100 ms (the curl run loop checks),
 *       so the code around them can clean up before the error goes on.
 *       Only for a process of its own: never call it inside OpenResty.
 *   core.signal.pending() -> nil | "INT" | "TERM"
 *       the signal received, if any (the CLI's exit status: 130 or 143)
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "l_compat.h"
#include "os_signal.h"

static lua_State *main_L; /* where the hook goes: the thread lua.c runs */
static int defer_depth;   /* inside a C run loop: the error waits for its end */

static int raise_interrupt(lua_State *L, int sig) {
  lua_pushstring(L, sig == SIGTERM  ? "interrupted (SIGTERM)"
                    : sig == SIGHUP ? "interrupted (SIGHUP)"
                                    : "interrupted (SIGINT)");
  return lua_error(L);
}

/* Runs at the next call, return or instruction of the main thread. Inside
 * a run loop's callbacks it waits (staying set): an error there would only
 * fail one transfer; the loop itself raises when it returns. */
static void hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (defer_depth > 0) return;
  lua_sethook(L, NULL, 0, 0);
  int sig = os_signal_take();
  if (sig != 0) raise_interrupt(L, sig);
}

/* From the signal handler: lua_sethook is the one Lua call that is safe
 * there (lua.c relies on it too). */
static void notify(int signo) {
  (void)signo;
  if (main_L != NULL) lua_sethook(main_L, hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void osl_signal_defer(int delta) {
  defer_depth += delta;
}

/* After a run loop has returned and let go of its transfers: raises the
 * pending interrupt, if any, instead of returning. */
void osl_signal_raise_pending(lua_State *L) {
  if (defer_depth > 0 || os_signal_undelivered() == 0) return;
  if (main_L != NULL) lua_sethook(main_L, NULL, 0, 0);
  int sig = os_signal_take();
  if (sig != 0) raise_interrupt(L, sig);
}

/* __gc of the registry's guard: the state that trapped is closing (or the
 * guard is collected). From here a signal takes its default action: the
 * hook's state is gone, nothing is left to clean up. */
static int l_release(lua_State *L) {
  (void)L;
  os_signal_untrap();
  main_L = NULL;
  return 0;
}

#define GUARD "objstore.signal.guard"

static int l_trap(lua_State *L) {
#if LUA_VERSION_NUM >= 502
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main_L = lua_tothread(L, -1);
  lua_pop(L, 1);
#else
  main_L = L; /* 5.1 and LuaJIT keep no main-thread entry: the CLI calls from it */
#endif
  if (os_signal_trap(notify) != 0) {
    return osl_push_error(L, "SignalError", strerror(errno), 0);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, GUARD);
  if (lua_isnil(L, -1)) {
    osl_newuserdata(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_release);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, GUARD);
  }
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* signal.columns([fd = 2]) -> the width of the terminal on fd, or nil
 * when fd is not a terminal (or reports no size). */
static int l_columns(lua_State *L) {
  int fd = 2;
  if (!lua_isnoneornil(L, 1)) {
    lua_Number v = osl_checknumber(L, 1, "core.signal.columns", 1, "fd");
    if (v != v || v < 0 || v > 65535 || v != (lua_Number)(int)v)
      return osl_misuse(L, "core.signal.columns", 1, "fd",
                        "must be a file descriptor (0 to 65535)");
    fd = (int)v;
  }
  int n = os_term_columns(fd);
  if (n <= 0) return 0;
  lua_pushinteger(L, n);
  return 1;
}

static int l_pending(lua_State *L) {
  int sig = os_signal_pending();
  if (sig == 0) {
    lua_pushnil(L);
  } else {
    lua_pushstring(L, sig == SIGTERM ? "TERM" : sig == SIGHUP ? "HUP" : "INT");
  }
  return 1;
}

int osl_open_signal(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"trap", l_trap},
      {"columns", l_columns},
      {"pending", l_pending},
      {NULL, NULL},
  };
  osl_newlib(L, funcs);
  return 1;
}
