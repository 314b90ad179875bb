--- The tenants of the S3 front: who may sign requests (access keys and
-- their secrets), which buckets each tenant sees, where those live on the
-- store (a store bucket and a key prefix) and what the tenant may do there.
-- Pure Lua, no nginx: the front server (objstore.front.server) asks it.
--
--     local tenants = require "objstore.front.tenants"
--     local set = assert(tenants.new("/etc/objstore-front/tenants.json"))
--     local tenant, secret = set:lookup(access_key)
--     local sb, skey = set:map(tenant, "photos", "2024/a.jpg", "read")
--
-- The file is JSON:
--
--     { "tenants": {
--         "alice": {
--           "keys": [ { "access_key": "AKALICE", "secret_key": "..." } ],
--           "buckets": {
--             "photos": { "store_bucket": "shared", "prefix": "alice/photos/",
--                         "allow": ["read", "write", "list", "delete"] } },
--           "limits": { "requests": 100, "window": 1 } } } }
--
-- `limits` is optional: at most `requests` requests per clock-aligned
-- window of `window` seconds (default 1), per machine
-- (objstore.front.limits).
--
-- The prefix is a plain string prefix of the store key: a tenant's key K in
-- bucket B is the store key `prefix .. K` in `store_bucket`. Two mappings of
-- different tenants into one store bucket must have prefixes neither of
-- which starts the other (else one could see the other's objects); the file
-- is refused otherwise. The file is read again when its modification time,
-- size or inode changes, checked at most once a second; a new file that is
-- invalid is logged and the previous set kept. Secret keys never appear in
-- errors or log lines.
--
-- nginx's workers each hold a registry. Given a shared dictionary
-- (opts.shared, an ngx.shared.DICT), the newest valid file any worker read
-- is kept there, and every worker takes it: a worker that was not asked
-- while a file was valid does not go on with an older set once the file
-- has turned invalid (a key revoked in the valid file stays revoked
-- everywhere).
-- @module objstore.front.tenants
local core = require "objstore.core"
local errors = require "objstore.errors"
local request = require "objstore.engine.request"
local cjson = require "cjson.safe"
local lfs = require "lfs"

local type, pairs, ipairs, tostring, tonumber, next, pcall, setmetatable =
  type, pairs, ipairs, tostring, tonumber, next, pcall, setmetatable
local io_open, os_time = io.open, os.time
local sort, concat = table.sort, table.concat

local _M = { _VERSION = core._VERSION }

--- The operations a mapping may allow ("multipart": the multipart upload
-- operations; the front also asks "write" for those that write; "create":
-- CreateBucket and DeleteBucket, in a bucket space only).
_M.OPERATIONS = { read = true, write = true, list = true, delete = true, multipart = true, create = true }

local function s3err(code, status, message, extra)
  local e = { code = code, status = status, message = message, retryable = false }
  for k, v in pairs(extra or {}) do e[k] = v end
  return errors.new(e)
end

local function bad(field, problem)
  return nil, errors.new{ code = "InvalidTenants", retryable = false, field = field,
    message = field .. ": " .. problem }
end

local function bucket_problem(name)
  if type(name) ~= "string" then return "must be a string, " .. errors.got(name) end
  if #name < 3 or #name > 63 then return "must be 3 to 63 characters long" end
  if not name:find("^[a-z0-9][a-z0-9.-]*[a-z0-9]$") then
    return "must be lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"
  end
  if name:find("..", 1, true) then return "must not contain '..'" end
  return nil
end

--- Why `name` is not a bucket name the front accepts (S3's rules for new
-- buckets), or nil.
_M.bucket_problem = bucket_problem

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do if t[i] == nil then return false end end
  return true
end

local KNOWN_TOP = { tenants = true }
local KNOWN_TENANT = { keys = true, buckets = true, limits = true, bucket_space = true }
local KNOWN_LIMITS = { requests = true, bytes = true, window = true }

local KNOWN_KEY = { access_key = true, secret_key = true }
local KNOWN_MAPPING = { store_bucket = true, prefix = true, allow = true }

local function unknown(t, known, where)
  for _, k in ipairs(sorted_keys(t)) do
    if not known[k] then return where .. "." .. tostring(k) end
  end
end

-- "limits": { "requests": N, "bytes": B, "window": S }: at most N
-- requests of the tenant, and no new request once B bytes moved, in each
-- window of S seconds (default 1) aligned on the clock; N or B or both
-- (objstore.front.limits enforces them). Integers only, so that what the
-- file says is exactly what is enforced.
local function limits_of(l, where)
  if type(l) ~= "table" or is_array(l) and next(l) ~= nil then
    return bad(where, "must be an object { requests, bytes, window }")
  end
  local u = unknown(l, KNOWN_LIMITS, where)
  if u then return bad(u, "unknown field") end
  local n, b, w = l.requests, l.bytes, l.window == nil and 1 or l.window
  if n == nil and b == nil then return bad(where, "needs requests or bytes") end
  if n ~= nil and (type(n) ~= "number" or n % 1 ~= 0 or n < 1 or n > 1e9) then
    return bad(where .. ".requests", "must be an integer from 1 to 1000000000")
  end
  if b ~= nil and (type(b) ~= "number" or b % 1 ~= 0 or b < 1 or b > 1e15) then
    return bad(where .. ".bytes", "must be an integer from 1 to 1000000000000000")
  end
  if type(w) ~= "number" or w % 1 ~= 0 or w < 1 or w > 86400 then
    return bad(where .. ".window", "must be an integer number of seconds from 1 to 86400")
  end
  return { requests = n and math.floor(n), bytes = b and math.floor(b), window = math.floor(w) }
end

-- "bucket_space": { "store_bucket": B, "prefix": P, "allow": [...] }: the
-- buckets the tenant creates itself (CreateBucket, allowed by "create").
-- Bucket N lives under `P .. N .. "/"` in B; that it exists is an empty
-- marker object `P .. ".buckets/" .. N` (no bucket name starts with "."),
-- so that every nginx worker and machine sees it. P must be non-empty,
-- end with "/", and overlap no other mapping of any tenant (the tenant's
-- own included: a static bucket there would share keys with a created
-- one).
local function space_of(sp, where, places, name)
  if type(sp) ~= "table" or is_array(sp) and next(sp) ~= nil then
    return bad(where, "must be an object { store_bucket, prefix, allow }")
  end
  local u = unknown(sp, KNOWN_MAPPING, where)
  if u then return bad(u, "unknown field") end
  local p = bucket_problem(sp.store_bucket)
  if p then return bad(where .. ".store_bucket", p) end
  local prefix = sp.prefix
  if type(prefix) ~= "string" or prefix == "" or prefix:sub(-1) ~= "/" or #prefix > 400
      or request.key_problem(prefix) then
    return bad(where .. ".prefix", "must be a key prefix ending with '/', at most 400 bytes")
  end
  if not is_array(sp.allow) or #sp.allow == 0 then
    return bad(where .. ".allow", "must be a non-empty array of operations (read, write, list, delete, "
      .. "multipart, create)")
  end
  local allow = {}
  for i, op in ipairs(sp.allow) do
    if not _M.OPERATIONS[op] then
      return bad(where .. ".allow[" .. i .. "]", "unknown operation " .. tostring(op)
        .. " (read, write, list, delete, multipart, create)")
    end
    allow[op] = true
  end
  local list = places[sp.store_bucket] or {}
  places[sp.store_bucket] = list
  for _, other in ipairs(list) do
    if prefix:sub(1, #other.prefix) == other.prefix or other.prefix:sub(1, #prefix) == prefix then
      return bad(where .. ".prefix", "overlaps " .. other.where .. ".prefix in the same store bucket "
        .. "(created buckets would share keys with it)")
    end
  end
  list[#list + 1] = { prefix = prefix, where = where, tenant = name, space = true }
  return { store_bucket = sp.store_bucket, prefix = prefix, allow = allow }
end

--- parse(text) -> set | nil, err
-- Validates a tenants document (JSON text) strictly and returns the set:
-- `{ tenants = { name = { name, keys, buckets } }, by_key = { access_key =
-- { tenant, secret } } }`. Any problem is nil, err{code = "InvalidTenants",
-- field} whose message names the field ("tenants.alice.buckets.photos.allow[2]:
-- ..."), never a secret.
function _M.parse(text)
  if type(text) ~= "string" then
    errors.argument("front.tenants.parse", 1, "text", "must be a string, " .. errors.got(text))
  end
  local doc, jerr = cjson.decode(text)
  if type(doc) ~= "table" then return bad("(file)", "is not a JSON object: " .. tostring(jerr or "not an object")) end
  local u = unknown(doc, KNOWN_TOP, "(file)")
  if u then return bad(u, "unknown field") end
  if type(doc.tenants) ~= "table" or is_array(doc.tenants) and next(doc.tenants) ~= nil then
    return bad("tenants", "must be an object of tenant name -> tenant")
  end
  local set = { tenants = {}, by_key = {} }
  local places = {} -- store bucket -> { { prefix, where, tenant } }
  for _, name in ipairs(sorted_keys(doc.tenants)) do
    local t, where = doc.tenants[name], "tenants." .. tostring(name)
    if type(name) ~= "string" or name == "" then return bad(where, "tenant names must be non-empty strings") end
    if type(t) ~= "table" then return bad(where, "must be an object") end
    u = unknown(t, KNOWN_TENANT, where)
    if u then return bad(u, "unknown field") end
    if not is_array(t.keys) or #t.keys == 0 then return bad(where .. ".keys", "must be a non-empty array") end
    local tenant = { name = name, keys = {}, buckets = {} }
    if t.limits ~= nil then
      local lerr
      tenant.limits, lerr = limits_of(t.limits, where .. ".limits")
      if not tenant.limits then return nil, lerr end
    end
    for i, k in ipairs(t.keys) do
      local kw = where .. ".keys[" .. i .. "]"
      if type(k) ~= "table" then return bad(kw, "must be an object { access_key, secret_key }") end
      u = unknown(k, KNOWN_KEY, kw)
      if u then return bad(u, "unknown field") end
      local ak, sk = k.access_key, k.secret_key
      if type(ak) ~= "string" or not ak:find("^[%w%-_.:+=]+$") or #ak > 128 then
        return bad(kw .. ".access_key", "must be 1 to 128 letters, digits or - _ . : + =")
      end
      if type(sk) ~= "string" or #sk < 8 or #sk > 256 or sk:find("[%z\1-\31\127]") then
        return bad(kw .. ".secret_key", "must be a string of 8 to 256 printable characters")
      end
      if set.by_key[ak] then return bad(kw .. ".access_key", "is used twice in the file") end
      set.by_key[ak] = { tenant = tenant, secret = sk }
      tenant.keys[#tenant.keys + 1] = ak
    end
    if type(t.buckets) ~= "table" or is_array(t.buckets) and next(t.buckets) ~= nil then
      return bad(where .. ".buckets", "must be an object of bucket name -> mapping")
    end
    for _, bname in ipairs(sorted_keys(t.buckets)) do
      local m, bw = t.buckets[bname], where .. ".buckets." .. tostring(bname)
      local p = bucket_problem(bname)
      if p then return bad(bw, "the bucket name " .. p) end
      if type(m) ~= "table" then return bad(bw, "must be an object { store_bucket, prefix, allow }") end
      u = unknown(m, KNOWN_MAPPING, bw)
      if u then return bad(u, "unknown field") end
      p = bucket_problem(m.store_bucket)
      if p then return bad(bw .. ".store_bucket", p) end
      local prefix = m.prefix
      if prefix == nil then prefix = "" end
      if type(prefix) ~= "string" then return bad(bw .. ".prefix", "must be a string, " .. errors.got(prefix)) end
      if #prefix > 512 then return bad(bw .. ".prefix", "is longer than 512 bytes") end
      if prefix ~= "" and request.key_problem(prefix) then
        return bad(bw .. ".prefix", request.key_problem(prefix))
      end
      if not is_array(m.allow) or #m.allow == 0 then
        return bad(bw .. ".allow", "must be a non-empty array of operations (read, write, list, delete, multipart)")
      end
      local allow = {}
      for i, op in ipairs(m.allow) do
        if not _M.OPERATIONS[op] then
          return bad(bw .. ".allow[" .. i .. "]", "unknown operation " .. tostring(op)
            .. " (read, write, list, delete, multipart)")
        end
        allow[op] = true
      end
      local list = places[m.store_bucket] or {}
      places[m.store_bucket] = list
      for _, other in ipairs(list) do
        if (other.tenant ~= name or other.space) and (prefix:sub(1, #other.prefix) == other.prefix
          or other.prefix:sub(1, #prefix) == prefix) then
          return bad(bw .. ".prefix", "overlaps " .. other.where .. ".prefix in the same store bucket "
            .. "(a tenant would see another's objects)")
        end
      end
      list[#list + 1] = { prefix = prefix, where = bw, tenant = name }
      tenant.buckets[bname] = { name = bname, store_bucket = m.store_bucket, prefix = prefix, allow = allow }
    end
    if t.bucket_space ~= nil then
      local sp, serr = space_of(t.bucket_space, where .. ".bucket_space", places, name)
      if not sp then return nil, serr end
      tenant.space = sp
    end
    set.tenants[name] = tenant
  end
  return set
end

--- load(path) -> set | nil, err
-- Reads and parses a tenants file (see parse).
local function read_file(path)
  local f, oerr = io_open(path, "rb")
  if not f then return nil, errors.new{ code = "InvalidTenants", retryable = false, message = tostring(oerr) } end
  local text = f:read("*a")
  f:close()
  return text or ""
end

--- load(path) -> set, text | nil, err
-- Reads and parses a tenants file (see parse); `text` is what was read.
function _M.load(path)
  if type(path) ~= "string" then
    errors.argument("front.tenants.load", 1, "path", "must be a string, " .. errors.got(path))
  end
  local text, rerr = read_file(path)
  if not text then return nil, rerr end
  local set, err = _M.parse(text)
  if not set then
    err.message = path .. ": " .. err.message
    return nil, err
  end
  return set, text
end

local R = {}
R.__index = R
_M.Registry = R

-- The file's identity for change detection. Its times have a resolution
-- of one second: a file rewritten in place with the same size within the
-- second it was read keeps the same stamp, and the rewrite (a rotated key
-- of the same length, a key revoked) would never be seen. So a stamp whose
-- status-change time is not older than the last second is "racy" (as git
-- calls it) and not trusted: a fresh table, equal to no other stamp, so the
-- file is read again at the next check.
-- Also the file's status-change time, which orders the files workers read
-- for the shared dictionary.
local function stamp(path)
  local a = lfs.attributes(path)
  if not a then return nil, 0 end
  local ctime = tonumber(a.change) or 0
  if ctime >= os_time() - 1 then return {}, ctime end
  return concat({ tostring(a.modification), tostring(a.size), tostring(a.ino), tostring(a.change) }, ":"), ctime
end

--- new(path, opts) -> registry | nil, err
-- A registry over the tenants file `path`, loaded now (nil, err when it is
-- invalid). `opts.log`: function(level, message) for reloads ("info") and
-- refused files ("error"); `opts.now`: the clock, seconds (os.time);
-- `opts.interval`: seconds between checks of the file (1); `opts.fallback`:
-- a set (from load) used when the file is invalid now; `opts.shared`: a
-- dictionary with get(key) -> value, flags and set(key, value, exptime,
-- flags), as ngx.shared.DICT, shared by the registries of one file.
function _M.new(path, opts)
  opts = errors.options("front.tenants.new", 2, opts, { log = "function", now = "function", interval = "number",
    fallback = "table", shared = "table" })
  -- the stamp before the read: a change in between is seen at the next check
  local st, ctime = stamp(path)
  local set, err = _M.load(path)
  local text = set and err
  if set then err = nil end
  if not set and opts.fallback then
    -- a worker started (or respawned) while the file is invalid keeps the
    -- set its master loaded, as a running worker keeps its previous set
    if opts.log then
      opts.log("error", "objstore.front.tenants: kept the previous tenants, the new file is refused: "
        .. tostring(err and err.message))
    end
    set = opts.fallback
  end
  local reg = setmetatable({ path = path, set = set, stamp = st, log = opts.log or function() end,
    now = opts.now or os_time, interval = opts.interval or 1, checked = (opts.now or os_time)(),
    shared = opts.shared, shared_key = "objstore.front.tenants:" .. path, text = text, ctime = text and ctime or -1 },
    R)
  if text then reg:publish() end
  reg:adopt()
  if not reg.set then return nil, err end
  return reg
end

--- Puts this registry's file in the shared dictionary, unless a newer one
-- (a later status-change time) is there already.
function R:publish()
  local sh = self.shared
  if not sh then return end
  local _, flags = sh:get(self.shared_key)
  if flags == nil or self.ctime >= flags then sh:set(self.shared_key, self.text, 0, self.ctime) end
end

--- Takes the shared dictionary's file when it is another, at least as new
-- as this registry's: what another worker read last.
function R:adopt()
  local sh = self.shared
  if not sh then return end
  local text, flags = sh:get(self.shared_key)
  if type(text) ~= "string" or text == self.text or (tonumber(flags) or -1) < self.ctime then return end
  local ok, set = pcall(_M.parse, text)
  if ok and set then self.set, self.text, self.ctime = set, text, flags end
end

--- tenants:refresh() -> set
-- The current set: the file is read again when it changed (checked at most
-- once per `interval`); an invalid new file is logged and the old set kept.
function R:refresh()
  local now = self.now()
  if now - self.checked < self.interval then return self.set end
  self.checked = now
  local s, ctime = stamp(self.path)
  if s ~= self.stamp then
    self.stamp = s
    local ok, set, err = pcall(_M.load, self.path)
    if ok and set then
      self.set, self.text, self.ctime = set, err, ctime
      self:publish()
      self.log("info", "objstore.front.tenants: reloaded " .. self.path)
    else
      self.log("error", "objstore.front.tenants: kept the previous tenants, the new file is refused: "
        .. tostring(ok and err and err.message or set))
    end
  end
  self:adopt()
  return self.set
end

--- tenants:lookup(access_key) -> tenant, secret | nil
-- The tenant an access key belongs to and its secret; nil for an unknown key.
function R:lookup(access_key)
  local e = self:refresh().by_key[access_key]
  if not e then return nil end
  return e.tenant, e.secret
end

local function segment_problem(key)
  for seg in (key .. "/"):gmatch("([^/]*)/") do
    if seg == "." or seg == ".." then return true end
  end
  return false
end

--- tenants:map(tenant, bucket, key, op) -> store_bucket, store_key, mapping | nil, err
-- Where a tenant's `bucket`/`key` lives on the store, when `op` (read,
-- write, list, delete, multipart) is allowed there. `key` nil for bucket
-- operations (then store_key is the prefix). Errors are S3 errors:
-- NoSuchBucket (404) for a bucket the tenant does not have, AccessDenied
-- (403) for an operation not allowed, InvalidArgument (400) for an empty
-- key, a NUL, invalid UTF-8 or a "." or ".." path segment (refused: a store
-- or proxy that normalises paths would leave the prefix),
-- KeyTooLongError (400) when prefix and key pass 1024 bytes.
function R:map(tenant, bucket, key, op, created) -- luacheck: ignore 212/self
  if not _M.OPERATIONS[op] then
    errors.argument("front.tenants.map", 4, "op", "must be read, write, list, delete, multipart or create")
  end
  local m = type(tenant) == "table" and tenant.buckets[bucket] or nil
  if not m and created then m = _M.space_mapping(tenant, bucket) end
  if not m then
    return nil, s3err("NoSuchBucket", 404, "The specified bucket does not exist", { bucket_name = bucket })
  end
  if not m.allow[op] then return nil, s3err("AccessDenied", 403, "Access Denied") end
  if key == nil then return m.store_bucket, m.prefix, m end
  if type(key) ~= "string" or key == "" then
    return nil, s3err("InvalidArgument", 400, "An object key must not be empty")
  end
  if #key > 1024 then return nil, s3err("KeyTooLongError", 400, "Your key is too long") end
  local p = request.key_problem(key)
  if p then return nil, s3err("InvalidArgument", 400, "The object key " .. p) end
  if segment_problem(key) then
    return nil, s3err("InvalidArgument", 400, "Object keys with a '.' or '..' path segment are not accepted here")
  end
  local skey = m.prefix .. key
  if #skey > 1024 then return nil, s3err("KeyTooLongError", 400, "Your key is too long") end
  return m.store_bucket, skey, m
end

--- space_mapping(tenant, bucket) -> mapping | nil
-- The mapping of `bucket` in the tenant's bucket space (whether it was
-- created is the marker's to say: space_marker), nil without a space, for
-- a static bucket's name or a name S3 would refuse.
function _M.space_mapping(tenant, bucket)
  local sp = type(tenant) == "table" and tenant.space or nil
  if not sp or tenant.buckets[bucket] or bucket_problem(bucket) then return nil end
  return { name = bucket, store_bucket = sp.store_bucket, prefix = sp.prefix .. bucket .. "/", allow = sp.allow,
    created = true }
end

--- space_marker(tenant, bucket) -> store_bucket, key
-- Where the marker of a created bucket lives.
function _M.space_marker(tenant, bucket)
  return tenant.space.store_bucket, tenant.space.prefix .. ".buckets/" .. bucket
end

--- tenants:buckets(tenant) -> { name, ... }
-- The tenant's bucket names, sorted.
function R:buckets(tenant) -- luacheck: ignore 212/self
  return sorted_keys(tenant.buckets)
end

return _M
