-- The rockspec must build exactly what the Makefile builds: every C file in
-- csrc/ and every Lua module in lua/objstore/, or `luarocks make` ships a
-- module that fails at load time; and every module the code requires must
-- be one the rock builds or one a declared dependency installs.
local lfs = require "lfs"

-- Modules from outside the rock, by the rock that provides them. A require
-- of anything else (not built by the rock, not listed here, not part of
-- Lua or LuaJIT) fails the spec: declare the dependency and list it here.
local PROVIDED_BY = {
  cjson = "lua-cjson", ["cjson.safe"] = "lua-cjson",
  lfs = "luafilesystem",
}
local BUILTIN = {
  string = true, table = true, io = true, os = true, math = true, debug = true, coroutine = true,
  package = true, utf8 = true, bit32 = true, bit = true, ffi = true, jit = true,
  ["table.new"] = true, ["table.clear"] = true,
  -- OpenResty's lua-resty-core: present wherever ngx is, required only there.
  ["ngx.semaphore"] = true,
}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function listdir(dir, pattern, prefix, out)
  out = out or {}
  for name in lfs.dir(dir) do
    local path = dir .. "/" .. name
    if name ~= "." and name ~= ".." then
      if lfs.attributes(path, "mode") == "directory" then
        listdir(path, pattern, prefix, out)
      elseif name:match(pattern) then
        out[#out + 1] = path
      end
    end
  end
  table.sort(out)
  return out
end

-- The rockspec evaluated as the Lua file it is (its globals in a table).
local function load_rockspec(text)
  local env = {}
  local chunk
  if setfenv then
    chunk = assert(loadstring(text, "=rockspec"))
    setfenv(chunk, env)
  else
    chunk = assert(load(text, "=rockspec", "t", env))
  end
  chunk()
  return env
end

-- Lua source without its comments (a "--" inside a string cuts the rest of
-- that line, which only loses what follows it there).
local function code_of(text)
  text = text:gsub("%-%-%[(=*)%[.-%]%1%]", "")
  return (text:gsub("%-%-[^\n]*", ""))
end

-- { {file, module}, ... }: every require "<literal>" in lua/.
local function requires()
  local out = {}
  for _, path in ipairs(listdir("lua", "%.lua$")) do
    for _, name in code_of(read(path)):gmatch("require%s*%(?%s*([\"'])([%w_.%-]+)%1") do
      out[#out + 1] = { path, name }
    end
  end
  return out
end

describe("rockspec", function()
  local spec = read("rockspec/objstore-scm-1.rockspec")
  local rock = load_rockspec(spec)

  it("lists every C source of the core", function()
    for _, path in ipairs(listdir("csrc", "%.c$")) do
      -- csrc/fuzz/ holds the libFuzzer targets (make fuzz), not part of the rock.
      if not path:find("^csrc/fuzz/") then
        assert.truthy(spec:find('"' .. path .. '"', 1, true), path .. " is missing from the rockspec")
      end
    end
    for path in spec:gmatch('"(csrc/[^"]+%.c)"') do
      assert.truthy(lfs.attributes(path), path .. " is in the rockspec but not in csrc/")
      assert.falsy(path:find("^csrc/fuzz/"), path .. " is a fuzz target: the rock must not build it")
    end
  end)

  it("maps every Lua module", function()
    for _, path in ipairs(listdir("lua/objstore", "%.lua$")) do
      assert.truthy(spec:find('"' .. path .. '"', 1, true), path .. " is missing from the rockspec")
    end
  end)

  it("builds or declares every module the code requires", function()
    local declared = {}
    for _, dep in ipairs(rock.dependencies or {}) do declared[dep:match("^%s*([%w_.%-]+)")] = true end
    local used = {}
    for _, r in ipairs(requires()) do
      local file, name = r[1], r[2]
      if not rock.build.modules[name] and not BUILTIN[name] then
        local dep = PROVIDED_BY[name]
        assert.truthy(dep, file .. " requires '" .. name .. "', which the rock does not build and no "
          .. "dependency provides (declare it in the rockspec and in PROVIDED_BY)")
        assert.truthy(declared[dep], file .. " requires '" .. name .. "' from " .. dep
          .. ", which the rockspec does not list in dependencies")
        used[dep] = true
      end
    end
    for dep in pairs(declared) do
      assert.truthy(dep == "lua" or used[dep], "dependency " .. dep .. " is declared but nothing requires it")
    end
  end)

  it("builds every objstore module the code names, from a file that exists", function()
    -- module names in string literals too: some modules are required
    -- through a table of names (objstore.operations)
    for _, path in ipairs(listdir("lua", "%.lua$")) do
      for name in code_of(read(path)):gmatch("[\"'](objstore[%w_.]*[%w_])[\"']") do
        -- "objstore" or "objstore.<module>"; metric names (objstore_*) are not modules
        if name ~= "objstore" and name:sub(1, 9) ~= "objstore." then name = nil end
        if name then
          assert.truthy(rock.build.modules[name],
            path .. " names module '" .. name .. "', which the rock does not build")
        end
      end
    end
    for name, src in pairs(rock.build.modules) do
      local file = type(src) == "string" and src or nil
      if file then assert.truthy(lfs.attributes(file), name .. " maps to " .. file .. ", which does not exist") end
    end
  end)

  it("keeps pure C files free of lua.h", function()
    local files = listdir("csrc", "^os_.*%.[ch]$")
    for _, path in ipairs(listdir("csrc/fuzz", "^fuzz_.*%.c$")) do files[#files + 1] = path end
    local LUA_HEADERS = { lua = true, lauxlib = true, lualib = true, luaconf = true, luajit = true, l_compat = true }
    for _, path in ipairs(files) do
      for name in read(path):gmatch("#include%s*[<\"]([%w_]+)%.h[>\"]") do
        assert.is_nil(LUA_HEADERS[name], path .. " includes " .. name .. ".h")
      end
    end
  end)
end)
