--- Server-side encryption options as request headers, and the encryption
-- the server reports back. One table of options for every operation:
--
--   sse = "AES256" | "aws:kms" (S3)  or  "AES256" | "KMS" | "SM4" (OSS)
--   sse_kms_key_id = "key id"        (with aws:kms / KMS)
--   sse_kms_context = { k = "v" }    (S3 aws:kms: JSON, base64 on the wire)
--   sse_data_encryption = "SM4"      (OSS KMS: the data's cipher)
--   sse_customer_key = <32 raw bytes>            (SSE-C, S3 only)
--   copy_source_sse_customer_key = <32 raw bytes> (SSE-C key of a copy's source)
--
-- SSE-C keys are secrets: they become headers here and nowhere else, and
-- objstore.log redacts those headers wherever a server echoes them.
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local core = require "objstore.core"
local cjson = require "cjson"

local type, pairs, tostring = type, pairs, tostring
local b64 = core.encode.base64_encode

local _M = {}

--- Options that set how a new object is encrypted (PUT, Copy, Create).
-- opts.sse: server-side encryption: "AES256" | "aws:kms" (S3) or "AES256"
--   | "KMS" | "SM4" (OSS). The answer must confirm it (else SSENotApplied).
-- opts.sse_kms_key_id: the KMS key id (with aws:kms / KMS).
-- opts.sse_kms_context: the KMS encryption context, a table (S3 aws:kms;
--   JSON, base64 on the wire).
-- opts.sse_data_encryption: the data's cipher with OSS KMS ("SM4").
-- opts.sse_customer_key: an SSE-C key, 32 raw bytes (S3 only): needed again
--   to read the object. Never logged or put in errors.
-- opts.copy_source_sse_customer_key: the SSE-C key of a copy's source.
_M.OBJECT_OPTS = { sse = true, sse_kms_key_id = true, sse_kms_context = true, sse_data_encryption = true,
  sse_customer_key = true }

-- The modes of `sse`, the KMS mode's name, the SSE-C header prefixes and
-- the KMS context and data cipher headers are the dialect's
-- (objstore.engine.dialect: sse_modes, sse_kms, sse_customer_prefix, ...).

local function misuse(name, n, opt, problem)
  errors.argument("client." .. name, n, "opts." .. opt, problem)
end

--- The three SSE-C headers (prefix "x-amz-" or "x-amz-copy-source-") for a
-- raw 256-bit key. Misuse raises naming opts.<opt> of client method `name`.
local function customer_headers(name, n, opt, key, prefix, headers)
  if type(key) ~= "string" or #key ~= 32 then
    -- Never the key itself in the message: only its type and length.
    misuse(name, n, opt, "must be a 32-byte (256-bit) raw key string, got "
      .. (type(key) == "string" and (#key .. " bytes") or type(key)))
  end
  headers[prefix .. "server-side-encryption-customer-algorithm"] = "AES256"
  headers[prefix .. "server-side-encryption-customer-key"] = b64(key)
  headers[prefix .. "server-side-encryption-customer-key-MD5"] = checksum.md5_base64(key)
  return headers
end

--- SSE-C headers of `opts.sse_customer_key` (for GET, HEAD, UploadPart and
-- the destination of a copy) and `opts.copy_source_sse_customer_key` (the
-- source of a copy) into `headers`; returns headers.
function _M.key_headers(c, name, n, opts, headers)
  headers = headers or {}
  if opts.sse_customer_key == nil and opts.copy_source_sse_customer_key == nil then return headers end
  local d = c.dialect
  if not d.sse_customer_prefix then
    misuse(name, n, opts.sse_customer_key ~= nil and "sse_customer_key" or "copy_source_sse_customer_key",
      "customer-provided keys (SSE-C) are an S3 feature; OSS encrypts with sse = 'AES256', 'KMS' or 'SM4'")
  end
  if opts.sse_customer_key ~= nil then
    customer_headers(name, n, "sse_customer_key", opts.sse_customer_key, d.sse_customer_prefix, headers)
  end
  if opts.copy_source_sse_customer_key ~= nil then
    customer_headers(name, n, "copy_source_sse_customer_key", opts.copy_source_sse_customer_key,
      d.sse_customer_copy_prefix, headers)
  end
  return headers
end

--- Every encryption header of a new object (sse, KMS key and context, OSS
-- data cipher, SSE-C key) from opts into headers; returns headers.
function _M.object_headers(c, name, n, opts, headers)
  local d, mode = c.dialect, opts.sse
  if mode ~= nil then
    local modes = d.sse_modes
    if not modes[mode] then
      local list = {}
      for k in pairs(modes) do list[#list + 1] = "'" .. k .. "'" end
      table.sort(list)
      misuse(name, n, "sse", "must be one of " .. table.concat(list, ", ") .. ", got " .. tostring(mode))
    end
    if opts.sse_customer_key ~= nil then
      misuse(name, n, "sse", "cannot be combined with sse_customer_key (SSE-C is its own mode)")
    end
    headers[d.prefix .. "server-side-encryption"] = mode
  end
  if opts.sse_kms_key_id ~= nil then
    if mode == nil or mode ~= d.sse_kms or type(opts.sse_kms_key_id) ~= "string" or opts.sse_kms_key_id == "" then
      misuse(name, n, "sse_kms_key_id", "must be a non-empty string, with sse = '" .. d.sse_kms .. "'")
    end
    headers[d.sse_kms_key_id] = opts.sse_kms_key_id
  end
  local ctx = opts.sse_kms_context
  if ctx ~= nil then
    if not d.sse_kms_context or mode ~= d.sse_kms then
      misuse(name, n, "sse_kms_context", "is an S3 option, with sse = 'aws:kms'")
    end
    if type(ctx) == "table" then
      for k, v in pairs(ctx) do
        if type(k) ~= "string" or type(v) ~= "string" then
          misuse(name, n, "sse_kms_context", "must map strings to strings")
        end
      end
      ctx = cjson.encode(ctx)
    elseif type(ctx) ~= "string" then
      misuse(name, n, "sse_kms_context", "must be a table of strings or a JSON string, " .. errors.got(ctx))
    end
    headers[d.sse_kms_context] = b64(ctx)
  end
  if opts.sse_data_encryption ~= nil then
    if not d.sse_data_encryption or mode ~= d.sse_kms or opts.sse_data_encryption ~= "SM4" then
      misuse(name, n, "sse_data_encryption", "is an OSS option: 'SM4', with sse = 'KMS'")
    end
    headers[d.sse_data_encryption] = "SM4"
  end
  return _M.key_headers(c, name, n, { sse_customer_key = opts.sse_customer_key }, headers)
end

--- Whether an object written with these options gets an ETag that is the
-- MD5 of its bytes: on S3, SSE-KMS and SSE-C objects do not (the servers
-- still check every Content-MD5 they are sent).
function _M.etag_is_md5(c, opts)
  if opts.sse_customer_key ~= nil then return false end
  return not (opts.sse ~= nil and opts.sse == c.dialect.sse_kms and not c.dialect.kms_etag_is_md5)
end

--- Whether the server's answer to a write confirms the encryption asked
-- for in `opts`: a server that ignores the headers (radosgw 16 with
-- AES256, Swift s3api with SSE-C) stores the bytes as they came. Returns
-- `info` when confirmed (or nothing was asked), else nil and an
-- SSENotApplied error (the object may exist, unencrypted).
function _M.confirm(c, op, bucket, key, opts, info)
  local want, got
  if opts.sse_customer_key ~= nil then
    want, got = "SSE-C (x-amz-server-side-encryption-customer-algorithm: AES256)", info.sse_customer_algorithm
    if got == "AES256" then return info end
  elseif opts.sse ~= nil then
    want, got = c.dialect.prefix .. "server-side-encryption: " .. opts.sse, info.sse
    if type(got) == "string" and got:lower() == opts.sse:lower() then return info end
  else
    return info
  end
  return nil, errors.failure(op, "SSENotApplied", "the server did not confirm the encryption asked for ("
    .. want .. "; it answered " .. (got and tostring(got) or "nothing") .. "): the object may be stored unencrypted",
    bucket, key, { retryable = false, etag = info.etag, upload_id = info.upload_id, version_id = info.version_id })
end

--- The encryption fields of a response's headers (lower-case names).
function _M.info(d, h, into)
  into = into or {}
  into.sse = h[d.prefix .. "server-side-encryption"]
  into.kms_key_id = h[d.sse_kms_key_id]
  into.sse_data_encryption = d.sse_data_encryption and h[d.sse_data_encryption] or nil
  local cp = d.sse_customer_prefix
  into.sse_customer_algorithm = cp and h[cp .. "server-side-encryption-customer-algorithm"] or nil
  into.sse_customer_key_md5 = cp and h[cp .. "server-side-encryption-customer-key-md5"] or nil
  return into
end

return _M
