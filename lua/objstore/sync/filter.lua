--- Ordered include/exclude rules: the first rule whose glob matches a
-- relative name decides (as rclone's filter rules). When no rule matches,
-- the name is included unless the rules contain an include, in which case
-- it is excluded (an include list means "only these"). aws s3 sync applies
-- its --exclude/--include in order with the LAST match winning; s5cmd has
-- only excludes. Globs: `*` any run of characters but `/`, `**` any run
-- including `/`, `?` one character but `/`, `[...]` a class; a glob
-- without `/` matches the last path segment, one with `/` the whole name.
local type, ipairs = type, ipairs

local _M = {}

local function glob_pattern(glob)
  local out, i, n = { "^" }, 1, #glob
  while i <= n do
    local ch = glob:sub(i, i)
    if ch == "*" then
      if glob:sub(i + 1, i + 1) == "*" then
        out[#out + 1] = ".*"
        i = i + 1
      else
        out[#out + 1] = "[^/]*"
      end
    elseif ch == "?" then
      out[#out + 1] = "[^/]"
    elseif ch == "[" then
      local close = glob:find("]", i + 1, true)
      if close then
        local class = glob:sub(i + 1, close - 1):gsub("^!", "^"):gsub("%%", "%%%%")
        out[#out + 1] = "[" .. class .. "]"
        i = close
      else
        out[#out + 1] = "%["
      end
    elseif ch:find("^[%^%$%(%)%%%.%]%+%-]$") then
      out[#out + 1] = "%" .. ch
    else
      out[#out + 1] = ch
    end
    i = i + 1
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

--- rules: { {"include"|"exclude", glob}, ... } in order. Returns a
-- function(rel) -> true when rel takes part in the sync.
function _M.new(rules)
  local compiled, has_include = {}, false
  for i, r in ipairs(rules or {}) do
    compiled[i] = { include = r[1] == "include", pattern = glob_pattern(r[2]), segment = not r[2]:find("/", 1, true) }
    if r[1] == "include" then has_include = true end
  end
  if #compiled == 0 then return function() return true end end
  return function(rel)
    local last = rel:match("([^/]*)$")
    for _, r in ipairs(compiled) do
      if (r.segment and last or rel):find(r.pattern) then return r.include end
    end
    return not has_include
  end
end

--- Rules from opts: opts.filters (ordered pairs) or opts.include/opts.exclude
-- (a glob or a list; includes are tried first).
function _M.from_opts(opts)
  if opts.filters then return _M.new(opts.filters) end
  local rules = {}
  local function add(kind, v)
    if type(v) == "string" then v = { v } end
    for _, g in ipairs(v or {}) do rules[#rules + 1] = { kind, g } end
  end
  add("include", opts.include)
  add("exclude", opts.exclude)
  return _M.new(rules)
end

_M.glob_pattern = glob_pattern

return _M
