--- Command-line arguments: flags (with their kinds) and positional
-- arguments, and the locations they name: s3://bucket/key,
-- oss://bucket/key, a local path, or "-" (stdin/stdout). Usage errors are
-- raised as { usage = message } and become exit code 2.
local error, tonumber, type = error, tonumber, type

local _M = {}

local function usage(msg)
  error({ usage = msg }, 0)
end
_M.usage = usage

--- Flags every command takes; a command adds its own.
_M.GLOBAL = { profile = "string", endpoint = "string", region = "string", json = "bool", q = "bool", quiet = "bool",
  help = "bool", h = "bool", concurrency = "number", ["part-size"] = "size" }

--- "8M", "64MiB", "1G", "512k", "1000" -> bytes.
function _M.size(s)
  local n, unit = tostring(s):match("^(%d+%.?%d*)%s*(%a*)$")
  local mult = { [""] = 1, b = 1, k = 1024, kb = 1024, kib = 1024, m = 1024 ^ 2, mb = 1024 ^ 2, mib = 1024 ^ 2,
    g = 1024 ^ 3, gb = 1024 ^ 3, gib = 1024 ^ 3 }
  local m = n and mult[unit:lower()]
  if not m then return nil end
  return math.floor(tonumber(n) * m)
end

--- parse(argv, first, flags) -> opts, positional. Repeated list flags
-- (include/exclude) keep their order in opts.filters.
function _M.parse(argv, first, flags)
  local opts, pos = { filters = {} }, {}
  local i = first
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do pos[#pos + 1] = argv[j] end
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      local name, value = a:match("^%-%-?([^=]+)=(.*)$")
      if not name then name = a:match("^%-%-?(.+)$") end
      local kind = flags[name] or _M.GLOBAL[name]
      if not kind then usage("unknown option '" .. a .. "'") end
      if kind == "bool" then
        if value then usage("option --" .. name .. " takes no value") end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage("option --" .. name .. " needs a value") end
        end
        if kind == "number" then
          local n = tonumber(value)
          if not n or n < 0 then usage("option --" .. name .. " needs a number >= 0, got '" .. value .. "'") end
          opts[name] = n
        elseif kind == "size" then
          local n = _M.size(value)
          if not n then usage("option --" .. name .. " needs a size like 8M, got '" .. value .. "'") end
          opts[name] = n
        elseif kind == "filter" then
          opts.filters[#opts.filters + 1] = { name, value }
        else
          opts[name] = value
        end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  if opts.q then opts.quiet = true end
  if opts.h then opts.help = true end
  return opts, pos
end

--- A location: { kind = "remote", provider, bucket, key } | { kind = "local", path } | { kind = "std" }.
function _M.location(s)
  if s == "-" then return { kind = "std" } end
  local scheme, rest = s:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    if s == "" then usage("empty path") end
    if s:find("%z") then usage("a path with NUL is not allowed") end
    return { kind = "local", path = s }
  end
  local provider = ({ s3 = "s3", oss = "oss" })[scheme:lower()]
  if not provider then usage("unknown URL scheme '" .. scheme .. "://' (use s3:// or oss://)") end
  local bucket, key = rest:match("^([^/]*)/?(.*)$")
  if bucket == "" then usage("no bucket in '" .. s .. "'") end
  if not bucket:find("^[%w][%w.%-_]*$") or #bucket < 3 or #bucket > 63 then
    usage("'" .. bucket .. "' is not a valid bucket name")
  end
  if key:find("%z") or key:find("[\r\n]") then usage("a key with NUL, CR or LF is not allowed") end
  return { kind = "remote", provider = provider, bucket = bucket, key = key, url = s }
end

--- Positional count check.
function _M.want(pos, min, max, what)
  if #pos < min or #pos > max then usage(what) end
end

_M.is_usage = function(e) return type(e) == "table" and e.usage ~= nil end

return _M
