-- The rockspec must build exactly what the Makefile builds: every C file in
-- csrc/ and every Lua module in lua/objstore/, or `luarocks make` ships a
-- module that fails at load time.
local lfs = require "lfs"

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

describe("rockspec", function()
  local spec = read("rockspec/objstore-scm-1.rockspec")

  it("lists every C source of the core", function()
    for _, path in ipairs(listdir("csrc", "%.c$")) do
      assert.truthy(spec:find('"' .. path .. '"', 1, true), path .. " is missing from the rockspec")
    end
    for path in spec:gmatch('"(csrc/[^"]+%.c)"') do
      assert.truthy(lfs.attributes(path), path .. " is in the rockspec but not in csrc/")
    end
  end)

  it("maps every Lua module", function()
    for _, path in ipairs(listdir("lua/objstore", "%.lua$")) do
      assert.truthy(spec:find('"' .. path .. '"', 1, true), path .. " is missing from the rockspec")
    end
  end)

  it("keeps pure C files free of lua.h", function()
    for _, path in ipairs(listdir("csrc", "^os_.*%.[ch]$")) do
      assert.is_nil(read(path):find("#include%s*[<\"]l[a-z]*%.h[>\"]"), path .. " includes a Lua header")
    end
  end)
end)
