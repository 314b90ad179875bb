-- Rewrites the source and module lists of rockspec/objstore-scm-1.rockspec
-- from csrc/*.c (not csrc/fuzz/) and lua/objstore/**.lua (make rockspec), so the rock always
-- builds what the Makefile builds. spec/packaging_spec.lua checks the result.
local lfs = require "lfs"

local function walk(dir, pattern, out)
  for name in lfs.dir(dir) do
    local path = dir .. "/" .. name
    if name ~= "." and name ~= ".." then
      if lfs.attributes(path, "mode") == "directory" then
        walk(path, pattern, out)
      elseif name:match(pattern) then
        out[#out + 1] = path
      end
    end
  end
  return out
end

local path = "rockspec/objstore-scm-1.rockspec"
local f = assert(io.open(path, "rb"))
local text = f:read("*a")
f:close()

local sources = {}
-- csrc/fuzz/ holds the libFuzzer targets (make fuzz): not part of the rock.
for _, s in ipairs(walk("csrc", "%.c$", {})) do
  if not s:find("^csrc/fuzz/") then sources[#sources + 1] = s end
end
table.sort(sources)
for i, s in ipairs(sources) do sources[i] = '        "' .. s .. '",' end

local modules = walk("lua/objstore", "%.lua$", {})
table.sort(modules)
for i, m in ipairs(modules) do
  local name = m:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  modules[i] = '    ["' .. name .. '"] = "' .. m .. '",'
end

local n1, n2
text, n1 = text:gsub("(      sources = {\n).-(\n      },)", function(a, b)
  return a .. table.concat(sources, "\n") .. b
end)
text, n2 = text:gsub("(\n    },\n)(    %[\"objstore.-\n)(  },\n}\ntest)", function(a, _, c)
  return a .. table.concat(modules, "\n") .. "\n" .. c
end)
assert(n1 == 1 and n2 == 1, "rockspec layout not recognised")
f = assert(io.open(path, "wb"))
f:write(text)
f:close()
print(string.format("%s: %d C sources, %d Lua modules", path, #sources, #modules))
