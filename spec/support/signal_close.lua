-- Run by luajit (cli_attack19_spec): traps the signals in a second Lua state,
-- closes it (which unloads objstore.core), then prints whether SIGHUP still
-- has a handler and whether the core is still mapped. arg[1]: a cpath.
local ffi = require "ffi"
ffi.cdef[[
typedef struct lua_State lua_State;
lua_State *luaL_newstate(void);
void luaL_openlibs(lua_State *L);
int luaL_loadstring(lua_State *L, const char *s);
int lua_pcall(lua_State *L, int nargs, int nresults, int errfunc);
void lua_close(lua_State *L);
const char *lua_tolstring(lua_State *L, int idx, size_t *len);
]]
local cpath = arg[1]
local L = ffi.C.luaL_newstate()
ffi.C.luaL_openlibs(L)
assert(ffi.C.luaL_loadstring(L, "package.cpath = " .. string.format("%q", cpath)
  .. " .. ';' .. package.cpath; assert(require('objstore.core').signal.trap())") == 0)
if ffi.C.lua_pcall(L, 0, 0, 0) ~= 0 then error(ffi.string(ffi.C.lua_tolstring(L, -1, nil))) end
ffi.C.lua_close(L)
local status = io.open("/proc/self/status"):read("*a")
local cgt = tonumber(status:match("SigCgt:%s*(%x+)"), 16)
local maps = io.open("/proc/self/maps"):read("*a")
-- SIGHUP (1): bit 0 of SigCgt
local mapped = maps:find("objstore/core.so", 1, true) ~= nil
print(("hup_caught=%s core_mapped=%s"):format(tostring(cgt % 2 == 1), tostring(mapped)))
