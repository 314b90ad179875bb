--- Command-line arguments: flags (with their kinds and ranges) and
-- positional arguments, and the locations they name: s3://bucket/key,
-- oss://bucket/key, a local path, or "-" (stdin/stdout). Each command
-- accepts only the flags it honours (COMMANDS); a flag it does not is a
-- usage error, never silently ignored. Usage errors are raised as
-- { usage = message } and become exit code 2.
local error, tonumber, type, tostring = error, tonumber, type, tostring
local floor, huge = math.floor, math.huge

local _M = {}

local function usage(msg)
  error({ usage = msg }, 0)
end
_M.usage = usage

local MiB, GiB = 1024 * 1024, 1024 * 1024 * 1024

--- Every flag: its kind, and for numbers the range it must lie in.
-- int: a whole number; size: bytes, "8M", "64MiB", "1G"; seconds: a number.
_M.FLAGS = {
  profile = { "string" }, endpoint = { "string" }, region = { "string" }, json = { "bool" }, q = { "bool" },
  quiet = { "bool" }, help = { "bool" }, h = { "bool" }, v = { "bool" }, verbose = { "bool" },
  r = { "bool" }, recursive = { "bool" }, include = { "filter" }, exclude = { "filter" }, delete = { "bool" },
  ["dry-run"] = { "bool" }, checksum = { "bool" }, ["size-only"] = { "bool" }, force = { "bool" },
  backup = { "string" }, ["delete-excluded"] = { "bool" }, ["no-state"] = { "bool" }, ["state-file"] = { "string" },
  ["follow-symlinks"] = { "bool" }, ["content-type"] = { "string" }, method = { "string" },
  signature = { "choice", v1 = true, v4 = true },
  ["max-delete"] = { "int", 0, 1e9 },
  concurrency = { "int", 1, 1024 },
  ["expires-in"] = { "int", 1, 604800 },
  ["modify-window"] = { "seconds", 0, 366 * 86400 },
  ["part-size"] = { "size", 5 * MiB, 5 * GiB },
  bwlimit = { "size", 1, 1e12 },
  -- What an upload stores with the object.
  ["cache-control"] = { "string" }, ["content-disposition"] = { "string" }, metadata = { "kv" },
  ["storage-class"] = { "word" },
  acl = { "choice", private = true, ["public-read"] = true, ["public-read-write"] = true,
    ["authenticated-read"] = true, ["bucket-owner-read"] = true, ["bucket-owner-full-control"] = true,
    ["aws-exec-read"] = true, default = true },
  sse = { "choice", AES256 = true, ["aws:kms"] = true, KMS = true, SM4 = true },
  ["sse-kms-key-id"] = { "string" },
  ["sse-c-key"] = { "string" },
  -- The network.
  timeout = { "seconds", 1, 86400 },
  ["connect-timeout"] = { "seconds", 1, 3600 },
  retries = { "int", 0, 100 },
  ["ca-bundle"] = { "string" },
  ["no-verify-ssl"] = { "bool" },
  resume = { "bool" }, abort = { "bool" },
  ["human-readable"] = { "bool" }, summarize = { "bool" }, versions = { "bool" }, ["version-id"] = { "string" },
}

--- String flags that name local files (any byte a file name may hold).
local LOCAL_PATHS = { ["state-file"] = true, backup = true, ["ca-bundle"] = true, ["sse-c-key"] = true }

--- Flags every command takes (they may also come before the command).
_M.GLOBAL = { profile = true, endpoint = true, region = true, json = true, q = true, quiet = true, help = true,
  h = true, signature = true, timeout = true, ["connect-timeout"] = true, retries = true, ["ca-bundle"] = true,
  ["no-verify-ssl"] = true }

local function set(list)
  local t = {}
  for _, k in ipairs(list) do t[k] = true end
  return t
end

-- The flags of the directory/prefix walk: cp -r and mv -r take them, a
-- single cp or mv does not.
local WALK = { "include", "exclude", "checksum", "size-only", "modify-window", "no-state", "state-file",
  "follow-symlinks" }
local TRANSFER = { "r", "recursive", "v", "verbose", "dry-run", "concurrency", "part-size", "bwlimit" }
-- What an upload stores with the object (cp, mv, sync to a remote).
local UPLOAD = { "content-type", "cache-control", "content-disposition", "metadata", "storage-class", "acl", "sse",
  "sse-kms-key-id", "sse-c-key" }
_M.UPLOAD = UPLOAD

local function join(...)
  local out = {}
  for _, l in ipairs{ ... } do for _, k in ipairs(l) do out[#out + 1] = k end end
  return set(out)
end

--- The flags each command honours, besides GLOBAL.
_M.COMMANDS = {
  ls = set{ "r", "recursive", "human-readable", "summarize", "versions" },
  cp = join(TRANSFER, WALK, UPLOAD, { "resume", "version-id" }),
  mv = join(TRANSFER, WALK, UPLOAD, { "resume", "version-id" }),
  rm = set{ "r", "recursive", "v", "verbose", "include", "exclude", "dry-run", "version-id" },
  sync = join(TRANSFER, WALK, UPLOAD, { "delete", "max-delete", "force", "backup", "delete-excluded" }),
  check = set{ "checksum", "size-only", "modify-window", "include", "exclude", "follow-symlinks" },
  cat = set{ "sse-c-key", "version-id" }, stat = set{ "sse-c-key", "version-id" }, du = {},
  mb = set{ "dry-run" },
  rb = set{ "force", "dry-run" },
  presign = set{ "expires-in", "method" },
  version = {},
  uploads = set{ "abort", "dry-run" },
}

--- Flags that only mean something with -r (cp, mv).
_M.WALK_ONLY = set(WALK)

--- "8M", "64MiB", "1G", "512k", "1000" -> bytes (whole), or nil.
function _M.size(s)
  local n, unit = tostring(s):match("^(%d+%.?%d*)%s*(%a*)$")
  local mult = { [""] = 1, b = 1, k = 1024, kb = 1024, kib = 1024, m = MiB, mb = MiB, mib = MiB,
    g = GiB, gb = GiB, gib = GiB, t = 1024 * GiB, tb = 1024 * GiB, tib = 1024 * GiB }
  local m = n and mult[unit:lower()]
  if not m then return nil end
  -- A byte count is whole: "2.5" (bytes) is refused, "2.5M" is not.
  if m == 1 and n:find(".", 1, true) and tonumber(n) % 1 ~= 0 then return nil end
  return floor(tonumber(n) * m)
end

local function human_range(kind, lo, hi)
  if kind == "size" and lo >= MiB then
    return (lo / MiB) .. "M to " .. (hi >= GiB and (hi / GiB) .. "G" or (hi / MiB) .. "M")
  end
  return ("%d to %d"):format(lo, hi)
end

--- The value of a number flag, checked: kind and range, no NaN, no infinity.
local function number(name, kind, lo, hi, value)
  local n
  if kind == "int" then
    n = value:match("^%d+$") and tonumber(value)
    if not n or n < lo or n > hi then
      usage(("option --%s needs a whole number from %s, got '%s'"):format(name, human_range(kind, lo, hi), value))
    end
  elseif kind == "size" then
    n = _M.size(value)
    if not n or n < lo or n > hi then
      usage(("option --%s needs a size from %s (like 8M), got '%s'"):format(name, human_range(kind, lo, hi), value))
    end
  else
    n = value:match("^%d+%.?%d*$") and tonumber(value)
    if not n or n ~= n or n == huge or n < lo or n > hi then
      usage(("option --%s needs a number of seconds from %s, got '%s'"):format(name, human_range("int", lo, hi),
        value))
    end
  end
  return n
end

--- parse(argv, first, command) -> opts, positional. Repeated list flags
-- (include/exclude) keep their order in opts.filters.
function _M.parse(argv, first, command)
  local allowed = _M.COMMANDS[command] or {}
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
      -- ls -h is --human-readable, as in ls(1) and du(1); --help stays help.
      if command == "ls" and a == "-h" then name = "human-readable" end
      local flag = _M.FLAGS[name]
      if not flag then usage("unknown option '" .. a .. "'") end
      if not (_M.GLOBAL[name] or allowed[name]) then
        usage("option --" .. name .. " is not an option of " .. command)
      end
      local kind = flag[1]
      if kind == "bool" then
        if value then usage("option --" .. name .. " takes no value") end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage("option --" .. name .. " needs a value") end
        end
        if kind == "filter" then
          opts.filters[#opts.filters + 1] = { name, value }
          opts[name] = true
        elseif kind == "kv" then
          local k, v = value:match("^([%w][%w%-_.]*)=(.*)$")
          if not k then usage("option --" .. name .. " needs KEY=VALUE (KEY: letters, digits, - _ .), got '"
            .. value .. "'") end
          if v:find("[%c]") then usage("option --" .. name .. ": a value with control characters is not allowed") end
          -- objstore's own names: the file's modification time (what sync
          -- compares) and its checksums; sync stored its own over the
          -- user's, a single cp the user's over its own.
          if k:lower() == "mtime" or k:lower():find("^objstore%-") then
            usage("option --" .. name .. ": '" .. k .. "' is objstore's own metadata (the file's modification "
              .. "time and checksums), not one to set")
          end
          opts[name] = opts[name] or {}
          opts[name][k:lower()] = v
        elseif kind == "word" then
          if not value:find("^[%u%d_]+$") then
            usage("option --" .. name .. " needs a name in capitals (like STANDARD_IA), got '" .. value .. "'")
          end
          opts[name] = value
        elseif kind == "string" then
          -- An empty value is a variable that was not set (`--version-id "$V"`):
          -- rm then deleted the current object, reported as "(version )".
          if value == "" then usage("option --" .. name .. " needs a value, got an empty one") end
          -- Header values, names, a region: CR or LF reached the signer, which
          -- raised (a Lua error naming internal files, exit 1).
          if not LOCAL_PATHS[name] and value:find("%c") then
            usage("option --" .. name .. ": a value with control characters (CR, LF, ...) is not allowed")
          end
          opts[name] = value
        elseif kind == "choice" then
          if not flag[value] then
            local names = {}
            for k in pairs(flag) do if k ~= 1 then names[#names + 1] = k end end
            table.sort(names)
            usage("option --" .. name .. " must be " .. table.concat(names, " or ") .. ", got '" .. value .. "'")
          end
          opts[name] = value
        else
          opts[name] = number(name, kind, flag[2], flag[3], value)
        end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  if opts.q then opts.quiet = true end
  if opts.h then opts.help = true end
  if opts.v then opts.verbose = true end
  if opts.recursive then opts.r = true end
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
