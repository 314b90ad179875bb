--- Presigned URLs: a request record for (method, bucket, key, opts),
-- presigned by the pipeline's one signing step for the healthiest endpoint.
--
--   c:presign("GET", b, k, { expires_in = 600, response = { content_type = "text/plain" } })
--   c:presign("PUT", b, k, { content_type = "image/png", content_md5 = md5b64 })
--   c:presign("PUT", b, k, { upload_id = id, part_number = 3 })   -- UploadPart
--
-- A URL is printable ASCII without '"', '\', '<', '>' or spaces: every byte
-- of bucket, key, query and session token is percent-encoded and the host
-- is checked when the client is made, so it goes into JSON or an HTML
-- attribute as it is (the OpenResty example's /presign writes
-- '{"url":"' .. url .. '"}').
--
-- The expiry is checked here, so a wrong one raises (misuse) rather than
-- coming back as a SigningError: a whole number of seconds from 1 to
-- 604800 (7 days, the longest S3 and OSS accept), 3600 by default.
local request = require "objstore.engine.request"
local pipeline = require "objstore.engine.pipeline"
local errors = require "objstore.errors"
local common = require "objstore.ops.common"
local sse = require "objstore.ops.sse"

local type, pairs, next, tostring, setmetatable = type, pairs, next, tostring, setmetatable

local _M = {}

_M.DEFAULT_EXPIRES = 3600
_M.MAX_EXPIRES = 7 * 24 * 3600

local METHODS = { GET = true, PUT = true, HEAD = true, DELETE = true }

-- response = { content_type = ... } -> response-content-type=... (GET):
-- the headers the store answers with, chosen by whoever made the URL.
local RESPONSE = { content_type = "response-content-type", content_disposition = "response-content-disposition",
  content_encoding = "response-content-encoding", content_language = "response-content-language",
  cache_control = "response-cache-control", expires = "response-expires" }

local OPTS = { expires_in = true, query = true, headers = true, version_id = true, time = true, response = true,
  content_type = true, content_md5 = true, upload_id = true, part_number = true,
  copy_source_sse_customer_key = true }
for k in pairs(sse.OBJECT_OPTS) do OPTS[k] = true end

--- Checks an expiry in seconds (nil: the default); raises for argument #n
-- of client method `fname`, option `name`.
function _M.expires(fname, n, v, name)
  if v == nil then return _M.DEFAULT_EXPIRES end
  if type(v) ~= "number" or v % 1 ~= 0 or v < 1 or v > _M.MAX_EXPIRES then
    common.misuse(fname, n, name or "opts.expires_in", "must be a whole number of seconds from 1 to "
      .. _M.MAX_EXPIRES .. " (7 days), got " .. tostring(v))
  end
  return v
end

-- The methods as given most often (upper case): no :upper() and no check.
local UPPER = { GET = "GET", PUT = "PUT", HEAD = "HEAD", DELETE = "DELETE" }

-- Options that add neither query nor header: the common presign (the
-- OpenResty example's) takes the short path, with nothing to build but
-- the record.
local PLAIN = { expires_in = true, time = true }

-- Per client, the buckets already found valid (a bucket name's validity
-- depends on it and the client's provider alone); emptied when it grows
-- past BUCKETS_MAX names, so a caller making up names cannot grow it.
local valid_buckets = setmetatable({}, { __mode = "k" })
local BUCKETS_MAX = 256

local function check_bucket(client, F, bucket)
  local seen = valid_buckets[client]
  if seen and seen.names[bucket] then return end
  common.bucket(client, F, 2, bucket)
  if not seen or seen.n >= BUCKETS_MAX then
    seen = { names = {}, n = 0 }
    valid_buckets[client] = seen
  end
  seen.names[bucket], seen.n = true, seen.n + 1
end

--- presign(client, method, bucket, key, opts) -> url | nil, err
function _M.presign(client, method, bucket, key, opts)
  local F = "presign"
  method = UPPER[method] or common.method(F, 1, method, METHODS, "GET, PUT, HEAD or DELETE")
  check_bucket(client, F, bucket)
  common.key(F, 3, key)
  if opts == nil then
    return pipeline.presign(client, request._prechecked{ op = "Presign", method = method, bucket = bucket,
      key = key }, _M.DEFAULT_EXPIRES)
  end
  local plain = type(opts) == "table"
  if plain then
    for k in pairs(opts) do
      if not PLAIN[k] then plain = false break end
    end
  end
  if plain then
    local expires = _M.expires(F, 4, opts.expires_in)
    return pipeline.presign(client, request._prechecked{ op = "Presign", method = method, bucket = bucket,
      key = key }, expires, opts.time)
  end
  opts = common.opts(F, 4, opts, OPTS)
  local expires = _M.expires(F, 4, opts.expires_in)
  local q
  if opts.query ~= nil then
    if type(opts.query) ~= "table" then
      common.misuse(F, 4, "opts.query", "must be a table, " .. errors.got(opts.query))
    end
    q = {}
    for k, v in pairs(opts.query) do q[k] = v end
  end
  if opts.version_id then
    q = q or {}
    q.versionId = opts.version_id
  end
  if opts.response ~= nil then
    if type(opts.response) ~= "table" then
      common.misuse(F, 4, "opts.response", "must be a table, " .. errors.got(opts.response))
    end
    for k, v in pairs(opts.response) do
      local name = RESPONSE[k]
      if not name then
        common.misuse(F, 4, "opts.response." .. tostring(k), "is not a response override (content_type, "
          .. "content_disposition, content_encoding, content_language, cache_control, expires)")
      end
      q = q or {}
      q[name] = tostring(v)
    end
  end
  if opts.upload_id ~= nil or opts.part_number ~= nil then
    if method ~= "PUT" then common.misuse(F, 1, "method", "must be PUT for an UploadPart URL") end
    common.upload_id(F, 4, opts.upload_id)
    common.part_number(F, 4, opts.part_number)
    q = q or {}
    q.uploadId, q.partNumber = opts.upload_id, tostring(opts.part_number)
  end
  local headers = common.extra_headers(F, 4, opts.headers, {})
  -- Constraints: signed, so the URL works only with these exact values.
  if opts.content_type then common.set_header(headers, "Content-Type", opts.content_type) end
  if opts.content_md5 then common.set_header(headers, "Content-MD5", opts.content_md5) end
  -- Encryption options become signed headers that whoever uses the URL
  -- must send: an SSE-C key never goes into a URL.
  sse.object_headers(client, F, 4, opts, headers)
  if opts.copy_source_sse_customer_key ~= nil then
    sse.key_headers(client, F, 4, { copy_source_sse_customer_key = opts.copy_source_sse_customer_key }, headers)
  end
  -- Bucket and key checked above; the query and headers (caller data) are
  -- checked by the constructor as request.new checks them.
  local req = request._prechecked{ op = "Presign", method = method, bucket = bucket, key = key, query = q,
    headers = next(headers) ~= nil and headers or nil }
  return pipeline.presign(client, req, expires, opts.time)
end

return _M
