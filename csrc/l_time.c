/*
 * core.time: a monotonic clock and a sleep that does not need LuaSocket.
 * Retries sleep through an injected sleeper; this is the default outside
 * OpenResty (where ngx.sleep yields instead of blocking the worker).
 */
#include <errno.h>
#include <time.h>

#include "l_compat.h"

/* core.time.sleep(seconds): sleeps, resuming after signals. */
static int l_sleep(lua_State *L) {
  static const char F[] = "core.time.sleep";
  lua_Number s = osl_checknumber(L, 1, F, 1, "seconds");
  if (!(s >= 0 && s <= 86400.0))
    return osl_misuse(L, F, 1, "seconds", "must be between 0 and 86400");
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

/* core.time.monotonic() -> seconds (float) on a clock that never jumps. */
static int l_monotonic(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* core.time.now() -> epoch seconds with sub-second precision. */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

int osl_open_time(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"sleep", l_sleep},
      {"monotonic", l_monotonic},
      {"now", l_now},
      {NULL, NULL},
  };
  osl_newlib(L, funcs);
  return 1;
}
