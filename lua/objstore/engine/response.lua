--- Readers of S3 and OSS responses shared by every operation: the error
-- value of a failed response, XML bodies, object metadata from headers.
-- They take the dialect (objstore.engine.dialect) so they serve both protocols.
local errors = require "objstore.errors"
local xml = require "objstore.xml"
local log = require "objstore.log"
local cjson = require "cjson.safe"
local dialects = require "objstore.engine.dialect"
local sse = require "objstore.ops.sse"

local type, pairs, tostring, tonumber = type, pairs, tostring, tonumber
local string_char, string_format, concat = string.char, string.format, table.concat

local _M = {}

-- What a status means when the body does not say (HEAD, proxies).
local CODE_BY_STATUS = { [301] = "PermanentRedirect", [304] = "NotModified", [400] = "BadRequest",
  [403] = "AccessDenied", [405] = "MethodNotAllowed", [409] = "Conflict", [412] = "PreconditionFailed",
  [416] = "InvalidRange", [429] = "TooManyRequests", [500] = "InternalError", [501] = "NotImplemented",
  [502] = "BadGateway", [503] = "ServiceUnavailable", [504] = "GatewayTimeout" }

--- "50 55 54" (CanonicalRequestBytes, StringToSignBytes) with its text
-- redacted: the bytes of a canonical request hold the session token and
-- SSE-C keys as much as its text does.
local function redact_bytes(b)
  local text = {}
  for h in b:gmatch("%x%x?") do text[#text + 1] = string_char(tonumber(h, 16)) end
  text = concat(text)
  local red = log.redact(text)
  if red == text then return b end
  local out = {}
  for i = 1, #red do out[i] = string_format("%02x", red:byte(i)) end
  return concat(out, " ")
end

--- The server's <Error> fields, secrets redacted: servers echo the
-- canonical request and string to sign they computed (AWS, OSS), with the
-- session token and SSE-C key headers in them, and the signature sent.
local function redact(parsed)
  for k, v in pairs(parsed) do
    if type(v) == "string" then
      if k:find("_bytes$") then
        parsed[k] = redact_bytes(v)
      elseif k == "signature_provided" then
        parsed[k] = log.REDACTED
      else
        parsed[k] = log.redact(v)
      end
    end
  end
  return parsed
end

-- The server's <Error> fields that become fields of the error value under
-- their own names (README: Code -> code, Message -> message, RequestId ->
-- request_id, HostId -> host_id, Region, Resource, OSS's EC and the
-- signature debugging fields). Every field the server sent, these included,
-- is also in err.server; none of them can set objstore's own fields (status,
-- retryable, op, bucket, key, attempts, endpoint...).
local TOP_LEVEL = { code = true, message = true, request_id = true, host_id = true, region = true,
  resource = true, ec = true, canonical_request = true, canonical_request_bytes = true, string_to_sign = true,
  string_to_sign_bytes = true, signature_provided = true }
-- Bounds on what a server's text may put in an error: codes are short
-- names, messages a few lines.
local MAX_CODE, MAX_TEXT = 128, 4096

local function server_string(v, max)
  if type(v) ~= "string" then return nil end
  if #v > max then return v:sub(1, max) .. "...(" .. (#v - max) .. " more bytes)" end
  return v
end

--- The error value of a response that failed (status or an <Error> body).
function _M.error(dialect, req, res)
  local h = res.headers or {}
  local e = { status = res.status, op = req.op, bucket = req.bucket, key = req.key,
    request_id = h[dialect.request_id], host_id = dialect.host_id and h[dialect.host_id] or nil }
  local body = res.body
  if type(body) == "string" and body:find("<Error", 1, true) then
    local parsed = xml.error(body)
    if parsed then
      redact(parsed)
      e.server = parsed
      for k in pairs(TOP_LEVEL) do
        local v = server_string(parsed[k], (k == "code" or k == "request_id" or k == "host_id"
          or k == "region" or k == "ec") and MAX_CODE or MAX_TEXT)
        if v ~= nil then e[k] = v end
      end
      e.request_id = e.request_id or h[dialect.request_id]
    end
  end
  if not e.code and type(body) == "string" and body:find("^%s*{") then
    -- Alibaba Cloud's RPC APIs (STS) answer errors in JSON.
    local ok, j = pcall(cjson.decode, body)
    if ok and type(j) == "table" and type(j.Code) == "string" then
      e.code = server_string(j.Code, MAX_CODE)
      e.message = server_string(log.redact(tostring(j.Message or "")), MAX_TEXT)
      e.request_id = type(j.RequestId) == "string" and server_string(j.RequestId, MAX_CODE) or e.request_id
      e.host_id = type(j.HostId) == "string" and server_string(j.HostId, MAX_CODE) or e.host_id
    end
  end
  if not e.code then
    local st = res.status
    e.code = CODE_BY_STATUS[st]
      or (st == 404 and (req.key and "NoSuchKey" or (req.bucket and "NoSuchBucket" or "NotFound")))
      or ("HTTP" .. tostring(st))
    e.message = e.message or ("HTTP status " .. tostring(st))
  end
  e.region = e.region or h["x-amz-bucket-region"]
  if dialect.ec and e.ec == nil then e.ec = server_string(h[dialect.ec], MAX_CODE) end
  return errors.new(e)
end

-- The dialect whose request-id header `headers` carry (the provider that
-- answered), S3's when none does: the dialects are tried from the last
-- defined, S3 (the fallback) last.
local function guess_dialect(headers)
  local names = dialects.names
  for i = #names, 1, -1 do
    local d = dialects[names[i]]
    if headers[d.request_id] then return d end
  end
  return dialects.s3
end

--- Parses an XML body into a table (see objstore.xml), decoding
-- EncodingType=url fields. Returns t, root or nil, err. An <Error>
-- document is an error whatever the status line said: S3 sends one after
-- a 200 for CopyObject, UploadPartCopy and CompleteMultipartUpload, and a
-- broken server or proxy may for anything. `dialect` names the request-id
-- headers; without it, the answer's own headers say which protocol it is.
function _M.xml(res, req, dialect)
  local t, root = xml.parse(res.body or "")
  if not t then
    local e = errors.is(root) and root or errors.new{ code = "MalformedResponse", message = tostring(root) }
    e.code, e.retryable = "MalformedResponse", true
    e.message = "cannot parse the XML response: " .. tostring(e.message)
    e.status, e.op, e.bucket, e.key = res.status, req.op, req.bucket, req.key
    return nil, e
  end
  if root == "Error" then
    local h = res.headers or {}
    dialect = dialect or guess_dialect(h)
    return nil, _M.error(dialect, req, res)
  end
  if t.encoding_type == "url" then xml.decode_url_fields(t) end
  return t, root
end

--- The same, for the callers that name their dialect (CopyObject,
-- UploadPartCopy, CompleteMultipartUpload).
function _M.xml_or_error(dialect, res, req)
  return _M.xml(res, req, dialect)
end

function _M.request_id(dialect, res)
  return res.headers and res.headers[dialect.request_id] or nil
end

--- Object metadata from response headers: user metadata under `metadata`,
-- the standard headers under their snake_case names.
function _M.object_info(dialect, res)
  local h = res.headers or {}
  local meta = {}
  local plen = #dialect.meta
  for k, v in pairs(h) do
    if k:sub(1, plen) == dialect.meta then meta[k:sub(plen + 1)] = v end
  end
  local info = {
    etag = h["etag"], content_length = tonumber(h["content-length"]), content_type = h["content-type"],
    last_modified = h["last-modified"], cache_control = h["cache-control"],
    content_disposition = h["content-disposition"], content_encoding = h["content-encoding"],
    content_language = h["content-language"], expires = h["expires"], content_range = h["content-range"],
    accept_ranges = h["accept-ranges"],
    version_id = h[dialect.version_id], storage_class = h[dialect.prefix .. "storage-class"],
    delete_marker = h[dialect.delete_marker] == "true" or nil,
    request_id = h[dialect.request_id], metadata = meta, headers = h,
    server_side_encryption = h[dialect.prefix .. "server-side-encryption"],
  }
  if dialect.crc64 then info.crc64ecma = h[dialect.crc64] end
  sse.info(dialect, h, info)
  return info
end

--- Whether a part's ETag is the MD5 (raw bytes) we computed: ETags are hex,
-- lower case on S3 and upper case on OSS, quoted by most servers.
function _M.etag_is_md5(etag, md5_hex)
  if type(etag) ~= "string" then return false end
  local v = etag:match('^"?(%x+)"?$')
  return v ~= nil and v:lower() == md5_hex:lower()
end

--- An ETag's value, quoted the way S3 documents it ("…"), whatever the
-- server did (radosgw drops the quotes when it answers a retried Complete).
function _M.quoted_etag(etag)
  if type(etag) ~= "string" or etag == "" or etag == '""' then return nil end
  if etag:find('^"') then return etag end
  return '"' .. etag .. '"'
end

return _M
