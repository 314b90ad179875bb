--- Argument checks and response readers shared by the operation files.
local errors = require "objstore.errors"
local core = require "objstore.core"

local type, pairs, tonumber = type, pairs, tonumber
local utf8_valid = core.encode.utf8_valid

local _M = {}

function _M.check_bucket(fname, bucket)
  if type(bucket) ~= "string" or bucket == "" then
    errors.argument(fname, "bucket must be a non-empty string, got " .. (bucket == "" and "''" or type(bucket)), 3)
  end
  if #bucket > 255 or bucket:find("[/%z\r\n]") then
    errors.argument(fname, "bucket '" .. bucket:sub(1, 64) .. "' is not a valid bucket name", 3)
  end
end

function _M.check_key(fname, key)
  if type(key) ~= "string" or key == "" then
    errors.argument(fname, "key must be a non-empty string, got " .. (key == "" and "''" or type(key)), 3)
  end
  if #key > 1024 then errors.argument(fname, "key is longer than 1024 bytes", 3) end
  if key:find("%z") then errors.argument(fname, "key contains a NUL byte", 3) end
  if not utf8_valid(key) then errors.argument(fname, "key is not valid UTF-8", 3) end
end

function _M.check_opts(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then errors.argument(fname, "opts must be a table, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if not allowed[k] then errors.argument(fname, "unknown option '" .. tostring(k) .. "'", 3) end
  end
  return opts
end

--- Object metadata from response headers: user metadata under `metadata`,
-- the standard headers under their snake_case names.
function _M.object_info(client, res)
  local h = res.headers or {}
  local d = client.dialect
  local meta = {}
  local plen = #d.meta
  for k, v in pairs(h) do
    if k:sub(1, plen) == d.meta then meta[k:sub(plen + 1)] = v end
  end
  local info = {
    etag = h["etag"], content_length = tonumber(h["content-length"]), content_type = h["content-type"],
    last_modified = h["last-modified"], cache_control = h["cache-control"],
    content_disposition = h["content-disposition"], content_encoding = h["content-encoding"],
    content_language = h["content-language"], expires = h["expires"], content_range = h["content-range"],
    accept_ranges = h["accept-ranges"],
    version_id = h[d.version_id], storage_class = h[d.prefix .. "storage-class"],
    delete_marker = h[d.delete_marker] == "true" or nil,
    request_id = h[d.request_id], metadata = meta, headers = h,
    server_side_encryption = h[d.prefix .. "server-side-encryption"],
  }
  if d.crc64 then info.crc64ecma = h[d.crc64] end
  return info
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

--- Puts caller-facing upload options into request headers.
function _M.upload_headers(client, opts, headers)
  local d = client.dialect
  if opts.content_type then headers["Content-Type"] = opts.content_type end
  if opts.cache_control then headers["Cache-Control"] = opts.cache_control end
  if opts.content_disposition then headers["Content-Disposition"] = opts.content_disposition end
  if opts.content_encoding then headers["Content-Encoding"] = opts.content_encoding end
  if opts.content_language then headers["Content-Language"] = opts.content_language end
  if opts.expires then headers["Expires"] = opts.expires end
  if opts.acl then headers[d.object_acl] = opts.acl end
  if opts.storage_class then headers[d.storage_class] = opts.storage_class end
  if opts.metadata then
    if type(opts.metadata) ~= "table" then errors.argument("put_object", "metadata must be a table", 4) end
    for k, v in pairs(opts.metadata) do
      if type(k) ~= "string" or not k:match("^[%w%-_.]+$") then
        errors.argument("put_object", "metadata name '" .. tostring(k) .. "' must be letters, digits, -, _ or .", 4)
      end
      headers[d.meta .. k:lower()] = tostring(v)
    end
  end
  if opts.headers then
    for k, v in pairs(opts.headers) do _M.set_header(headers, k, v) end
  end
  return headers
end

return _M
