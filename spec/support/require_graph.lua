--- The require graph of lua/objstore: which objstore.* module requires
-- which, read from the sources, and where each require stands (at the top
-- of its file, as `local x = require "..."`, or inside a function).
--
--   lua5.4 spec/support/require_graph.lua        prints "a -> b" per edge,
--                                                 then cycles and nested requires
--   local graph = dofile "spec/support/require_graph.lua" (from a spec):
--     graph.read(root) -> { modules = {name = path}, edges = {a = {b = line}},
--                           nested = {{from, to, line}} }
--     graph.cycles(g)  -> list of cycles, each a list of module names
--     graph.in_engine(path) -> whether a source file is in the engine layer
--                              (the directory lua/objstore/engine/)
local lfs = require "lfs"

local _M = {}

local function module_name(rel)
  return (rel:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."))
end

--- The lines of a source file as (number, code without its comment, line).
function _M.code_lines(path)
  local n, lines = 0, io.lines(path)
  return function()
    local line = lines()
    if line == nil then return nil end
    n = n + 1
    return n, (line:gsub("%-%-.*$", "")), line
  end
end

-- The requires of objstore modules in a line's code. Dynamic requires
-- (require(name)) are reported as nested by the caller, since their
-- target cannot be read.
local function requires_on(code)
  local out = {}
  for dep in code:gmatch('require%s*%(?%s*["\']([%w_%.]+)["\']') do
    if dep == "objstore" or dep:match("^objstore%.") then out[#out + 1] = dep end
  end
  if code:find("require%s*%(%s*[%a_]") then out[#out + 1] = "?dynamic" end
  return out
end

function _M.read(root)
  root = root or "lua"
  local g = { modules = {}, edges = {}, nested = {} }
  local function walk(dir, rel)
    for f in lfs.dir(dir) do
      if f ~= "." and f ~= ".." then
        local path, r = dir .. "/" .. f, rel and (rel .. "/" .. f) or f
        if lfs.attributes(path, "mode") == "directory" then
          walk(path, r)
        elseif f:match("%.lua$") then
          local m = module_name(r)
          g.modules[m] = path
          g.edges[m] = g.edges[m] or {}
          for n, code, line in _M.code_lines(path) do
            for _, dep in ipairs(requires_on(code)) do
              if dep ~= "?dynamic" then g.edges[m][dep] = g.edges[m][dep] or n end
              -- At the top: a line of its own at column 0 binding a local.
              if not line:match("^local [%w_, ]+= require") then
                g.nested[#g.nested + 1] = { from = m, to = dep, line = n }
              end
            end
          end
        end
      end
    end
  end
  walk(root .. "/objstore", "objstore")
  return g
end

--- The engine layer is a directory: lua/objstore/engine/ (objstore.engine,
-- objstore.engine.pipeline, ...). path as in graph.read's modules.
function _M.in_engine(path)
  return (path:gsub("^%./", "")):match("^lua/objstore/engine/") ~= nil
end

--- Every cycle found by a depth-first walk (each reported once per back edge).
function _M.cycles(g)
  local state, stack, found = {}, {}, {}
  local function visit(u)
    state[u] = "open"
    stack[#stack + 1] = u
    local deps = {}
    for v in pairs(g.edges[u] or {}) do deps[#deps + 1] = v end
    table.sort(deps)
    for _, v in ipairs(deps) do
      if state[v] == "open" then
        local i = #stack
        while stack[i] ~= v do i = i - 1 end
        local cycle = {}
        for k = i, #stack do cycle[#cycle + 1] = stack[k] end
        cycle[#cycle + 1] = v
        found[#found + 1] = cycle
      elseif not state[v] and g.edges[v] then
        visit(v)
      end
    end
    stack[#stack] = nil
    state[u] = "done"
  end
  local names = {}
  for m in pairs(g.edges) do names[#names + 1] = m end
  table.sort(names)
  for _, m in ipairs(names) do if not state[m] then visit(m) end end
  return found
end

if not pcall(debug.getlocal, 4, 1) then -- run as a script
  local g = _M.read(arg and arg[1] or "lua")
  local names = {}
  for m in pairs(g.edges) do names[#names + 1] = m end
  table.sort(names)
  for _, m in ipairs(names) do
    local deps = {}
    for d in pairs(g.edges[m]) do deps[#deps + 1] = d end
    table.sort(deps)
    for _, d in ipairs(deps) do print(m .. " -> " .. d) end
  end
  for _, c in ipairs(_M.cycles(g)) do print("cycle: " .. table.concat(c, " -> ")) end
  for _, n in ipairs(g.nested) do print(("nested: %s requires %s at line %d"):format(n.from, n.to, n.line)) end
end

return _M
