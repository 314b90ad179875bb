--- Argument checks and request headers shared by the operation builders.
-- Misuse raises in the one format of objstore.errors, naming the client
-- method and the argument as the caller wrote it (self is not counted):
--   objstore.client.put_object: argument #2 (key): must be a non-empty string, got nil
local errors = require "objstore.errors"
local request = require "objstore.engine.request"
local endpoint = require "objstore.engine.endpoint"
local sse = require "objstore.ops.sse"

local type, pairs, tostring = type, pairs, tostring

local _M = {}

local function fname(name) return "client." .. name end

--- Raises a misuse error for argument #n of client method `name`, at the
-- caller of that method (builders are called from the generated method).
function _M.misuse(name, n, argname, problem)
  errors.argument(fname(name), n, argname, problem)
end

function _M.bucket(c, name, n, bucket, argname)
  local p = request.bucket_problem(bucket)
  if not p and not c.dialect.path_style and not endpoint.dns_compatible(bucket, "http") then
    -- A provider without path-style requests (OSS) serves buckets only as
    -- host names: a name that cannot be one is misuse.
    p = "'" .. bucket .. "' is not a valid " .. c.dialect.title .. " bucket name"
  end
  if p then _M.misuse(name, n, argname or "bucket", p) end
end

function _M.key(name, n, key, argname)
  local p = request.key_problem(key)
  if p then _M.misuse(name, n, argname or "key", p) end
end

--- Checks an HTTP method against `allowed` ({ GET = true, ... }, listed
-- in `names` for the message); returns it upper-cased.
function _M.method(name, n, method, allowed, names)
  local m = type(method) == "string" and method:upper()
  if not m or not allowed[m] then _M.misuse(name, n, "method", "must be " .. names .. ", got " .. tostring(method)) end
  return m
end

_M.MAX_BWLIMIT = 1e12

--- opts.bwlimit of a transfer (bytes per second for all of it, a whole
-- number >= 1; nil: none) as the max_speed of each of `concurrency`
-- requests at once: their sum never exceeds it. Raises for a bad value.
function _M.max_speed(name, n, opts, concurrency)
  local v = opts.bwlimit
  if v == nil then return nil end
  -- At most MAX_BWLIMIT (1e12 B/s, as the command line): a larger value
  -- would reach the transport as a rate it cannot hold (> 2^53) and raise
  -- mid-transfer, after the HEAD and the part file.
  if type(v) ~= "number" or v ~= v or v < 1 or v % 1 ~= 0 or v > _M.MAX_BWLIMIT then
    _M.misuse(name, n, "opts.bwlimit", "must be a whole number of bytes per second from 1 to 1e12, "
      .. errors.got(v))
  end
  if type(concurrency) ~= "number" or concurrency < 1 then concurrency = 1 end
  return math.max(1, math.floor(v / concurrency))
end

-- Whole-number options shared by the transfer calls, with their ranges:
-- opts.concurrency: requests in flight at once (1-1024; default 4, 8 for
--   downloads).
-- opts.part_size: bytes a part (default 8 MiB; grown so the parts stay
--   within 10,000).
-- opts.multipart_threshold: sizes from this one on go in parts, smaller
--   ones in one request (default: the part size), boto3's rule.
-- opts.max_parts: at most this many parts (default the provider's 10,000).
-- opts.bwlimit: bytes per second for the whole transfer (1 to 1e12; nil:
--   no limit).
-- checked wherever they are allowed, before any request (0, 2.5, -1, NaN
-- or 1e6 in flight would spin, leave an upload behind or overflow).
local WHOLE = { concurrency = { 1, 1024 }, part_size = { 1, 5 * 1024 ^ 3 },
  multipart_threshold = { 0, 5 * 1024 ^ 4 }, max_parts = { 1, 10000 } }

--- Checks an options table against the names allowed; returns it (or {}).
function _M.opts(name, n, opts, allowed)
  if opts == nil then return {} end
  errors.options(fname(name), n, opts, allowed)
  for k, v in pairs(opts) do
    local range = WHOLE[k]
    if range and (type(v) ~= "number" or v ~= v or v % 1 ~= 0 or v < range[1] or v > range[2]) then
      _M.misuse(name, n, "opts." .. k, ("must be a whole number from %d to %d, "):format(range[1], range[2])
        .. errors.got(v))
    end
  end
  return opts
end

--- Checks a copy's source, { bucket =, key =, version_id = } (boto3's
-- CopySource), argument #n of `name`; returns the table for the request's
-- copy_source. A table, not two strings: a call written for the old
-- source-first order (bucket, key, dst_bucket, dst_key) would otherwise
-- copy the wrong way round without a word.
local SOURCE_FIELDS = { bucket = true, key = true, version_id = true }
function _M.source(c, name, n, src)
  if type(src) ~= "table" then
    _M.misuse(name, n, "source", "must be a table { bucket =, key =, version_id = }, " .. errors.got(src))
  end
  errors.options(fname(name), n, src, SOURCE_FIELDS, "source")
  _M.bucket(c, name, n, src.bucket, "source.bucket")
  _M.key(name, n, src.key, "source.key")
  local v = src.version_id
  if v ~= nil and (type(v) ~= "string" or v == "") then
    _M.misuse(name, n, "source.version_id", "must be a non-empty string, " .. errors.got(v))
  end
  return { bucket = src.bucket, key = src.key, version_id = v }
end

function _M.upload_id(name, n, id)
  if type(id) ~= "string" or id == "" then _M.misuse(name, n, "upload_id", "must be a non-empty string") end
end

function _M.part_number(name, n, pn)
  if type(pn) ~= "number" or pn < 1 or pn > 10000 or pn % 1 ~= 0 then
    _M.misuse(name, n, "part_number", "must be an integer from 1 to 10000, got " .. tostring(pn))
  end
end

--- Sets a header, replacing any other spelling of the same name: HTTP
-- header names are case-insensitive, and two spellings would be sent (and
-- signed) twice.
function _M.set_header(headers, name, value)
  local lname = name:lower()
  for k in pairs(headers) do
    if k ~= name and k:lower() == lname then headers[k] = nil end
  end
  headers[name] = value
end

--- The options that become object headers on PUT, Copy and CreateMultipartUpload.
-- opts.content_type: the Content-Type (default: guessed from the file or
--   key's extension, else application/octet-stream).
-- opts.metadata: user metadata, { name = value }: names of letters,
--   digits, -, _ and . (sent as x-amz-meta-*/x-oss-meta-*).
-- opts.acl: a canned ACL for the object ("private", "public-read", ...).
-- opts.storage_class: the storage class ("STANDARD", "STANDARD_IA", OSS
--   "IA", "Archive", ...).
-- opts.headers: extra request headers, { name = value }, over the ones
--   objstore sets.
-- opts.cache_control: the Cache-Control stored with the object.
-- opts.content_disposition: the Content-Disposition stored with the object.
-- opts.content_encoding: the Content-Encoding stored with the object.
-- opts.content_language: the Content-Language stored with the object.
-- opts.expires: the Expires header stored with the object (HTTP date text).
_M.UPLOAD_OPTS = { content_type = true, metadata = true, acl = true, storage_class = true, headers = true,
  cache_control = true, content_disposition = true, content_encoding = true, content_language = true,
  expires = true }
for k in pairs(sse.OBJECT_OPTS) do _M.UPLOAD_OPTS[k] = true end

--- Puts caller-facing upload options into request headers.
function _M.upload_headers(c, name, n, opts, headers)
  local d = c.dialect
  if opts.content_type then headers["Content-Type"] = opts.content_type end
  if opts.cache_control then headers["Cache-Control"] = opts.cache_control end
  if opts.content_disposition then headers["Content-Disposition"] = opts.content_disposition end
  if opts.content_encoding then headers["Content-Encoding"] = opts.content_encoding end
  if opts.content_language then headers["Content-Language"] = opts.content_language end
  if opts.expires then headers["Expires"] = opts.expires end
  if opts.acl then headers[d.object_acl] = opts.acl end
  if opts.storage_class then headers[d.storage_class] = opts.storage_class end
  if opts.metadata then
    if type(opts.metadata) ~= "table" then
      _M.misuse(name, n, "opts.metadata", "must be a table, " .. errors.got(opts.metadata))
    end
    for k, v in pairs(opts.metadata) do
      if type(k) ~= "string" or not k:match("^[%w%-_.]+$") then
        _M.misuse(name, n, "opts.metadata", "name '" .. tostring(k) .. "' must be letters, digits, -, _ or .")
      end
      headers[d.meta .. k:lower()] = tostring(v)
    end
  end
  sse.object_headers(c, name, n, opts, headers)
  _M.extra_headers(name, n, opts.headers, headers)
  return headers
end

--- Caller headers (opts.headers) over the ones a builder set.
function _M.extra_headers(name, n, extra, headers)
  if extra == nil then return headers end
  if type(extra) ~= "table" then _M.misuse(name, n, "opts.headers", "must be a table, " .. errors.got(extra)) end
  for k, v in pairs(extra) do _M.set_header(headers, k, v) end
  return headers
end

--- The upload options of `opts` alone (for the requests a transfer makes).
function _M.upload_opts(opts)
  local o = {}
  for k in pairs(_M.UPLOAD_OPTS) do o[k] = opts[k] end
  return o
end

-- opts.part_headers: headers every part request carries, a table or
--   function(part_number) -> table (e.g. SSE-C keys).
--- Headers a transfer part carries beyond its own: opts.part_headers, a
-- table or function(part_number) -> table (e.g. SSE-C keys, which every
-- part needs).
function _M.part_headers(opts, number)
  local ph = opts.part_headers
  if type(ph) == "function" then return ph(number) end
  return ph
end

--- The customer-key (SSE-C) headers among `headers`: a HEAD or GET of the
-- object must carry them again. With `c` and transfer options `opts`, those
-- of opts.sse_customer_key too.
function _M.customer_key_headers(headers, c, opts)
  local out
  if opts and opts.sse_customer_key ~= nil then
    out = sse.key_headers(c, "transfer", 4, { sse_customer_key = opts.sse_customer_key })
  end
  for k, v in pairs(headers or {}) do
    if k:lower():find("server-side-encryption-customer-", 1, true) then
      out = out or {}
      out[k] = v
    end
  end
  return out
end

--- Conditional request headers:
-- opts.if_match: only if the object's ETag is this (If-Match).
-- opts.if_none_match: only if the ETag is not this ("*": only if the object
--   does not exist) (If-None-Match).
-- opts.if_modified_since: only if changed since this HTTP date.
-- opts.if_unmodified_since: only if unchanged since this HTTP date.
function _M.conditional_headers(opts, h)
  if opts.if_match then _M.set_header(h, "If-Match", opts.if_match) end
  if opts.if_none_match then _M.set_header(h, "If-None-Match", opts.if_none_match) end
  if opts.if_modified_since then _M.set_header(h, "If-Modified-Since", opts.if_modified_since) end
  if opts.if_unmodified_since then _M.set_header(h, "If-Unmodified-Since", opts.if_unmodified_since) end
end

--- The XML namespace for request bodies (the dialect's: S3's; OSS takes none).
function _M.namespace(c)
  return c.dialect.xmlns
end

return _M
