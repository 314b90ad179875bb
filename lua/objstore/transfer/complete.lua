--- Completing a multipart upload and checking what the server assembled:
-- the one ETag check of every transfer. A multipart object's ETag is the
-- MD5 of its part MD5s followed by "-<count>"; servers differ in quoting
-- it and in case (OSS answers upper-case hex), so the value is compared.
local checksum = require "objstore.checksum"
local response = require "objstore.engine.response"
local errors = require "objstore.errors"

local _M = {}

--- Whether a part's ETag contradicts the MD5 (raw bytes) of what we sent.
-- An ETag that is not a plain MD5 (SSE-KMS, some gateways) proves nothing.
function _M.part_mismatch(etag, md5)
  if not md5 or type(etag) ~= "string" or not etag:match('^"?%x+"?$') then return false end
  return not response.etag_is_md5(etag, checksum.tohex(md5))
end

--- Completes `upload_id` with parts (a core.mpu state, or a list of
-- {part_number, etag}) and, when `expected` (the multipart ETag "hex-N" the
-- part MD5s imply, or the list of raw part MD5s) is given, checks the
-- object's ETag against it; `key_headers` (SSE-C) go on the HEAD that check
-- may need; `alg` (a flexible checksum the server verified) puts every
-- part's checksum into the body (Swift refuses the body with them when it
-- did not). Returns { etag, version_id, crc64ecma, ... } or nil, err.
function _M.complete(c, op, bucket, key, upload_id, parts, expected, key_headers, alg)
  local fin, err = c:complete_multipart_upload(bucket, key, upload_id, parts, alg and { checksum = alg } or nil)
  if not fin then
    err.upload_id = upload_id
    return nil, err
  end
  fin.etag = response.quoted_etag(fin.etag)
  if not expected then return fin end
  if not fin.etag then
    -- Some servers (radosgw) answer Complete with an empty ETag: ask.
    local h, herr = c:head_object(bucket, key, key_headers and { headers = key_headers } or nil)
    if not h then return nil, herr end
    fin.etag = response.quoted_etag(h.etag)
  end
  if type(expected) == "table" then expected = checksum.multipart_etag(expected) end
  local value = fin.etag and fin.etag:match('^"(.*)"$')
  if not value or value:lower() ~= expected:lower() then
    return nil, errors.failure(op, "BadDigest", "object ETag " .. tostring(fin.etag)
      .. " is not the MD5 of the part MD5s \"" .. expected .. "\"", bucket, key, { upload_id = upload_id })
  end
  return fin
end

return _M
