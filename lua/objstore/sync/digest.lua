--- Digests of local files, computed in C (objstore.core): the MD5 a
-- single PUT sends as Content-MD5 (and a plain ETag is), and the whole-
-- object CRC-64/NVME stored in `objstore-crc64nvme` metadata (base64 of
-- the big-endian CRC, as x-amz-checksum-crc64nvme), both in one read.
local core = require "objstore.core"
local errors = require "objstore.errors"

local io_open, tostring = io.open, tostring
local b64 = core.encode.base64_encode

local _M = {}

local CHUNK = 1024 * 1024

--- The metadata name (after x-amz-meta- / x-oss-meta-) of the whole-object CRC.
_M.CRC_META = "objstore-crc64nvme"

local function failure(path, err)
  return errors.new{ code = "LocalFileError", message = "cannot read " .. path .. ": " .. tostring(err),
    retryable = false }
end

--- file(path, [want_body]) -> { md5 = b64, md5_hex, crc64nvme = b64, crc64ecma = decimal, body } | nil, err
-- With want_body the bytes are kept (small files are sent from memory).
function _M.file(path, want_body)
  local f, err = io_open(path, "rb")
  if not f then return nil, failure(path, err) end
  local md5 = core.hash.new("md5")
  local nvme, ecma = core.crc.new("crc64nvme"), core.crc.new("crc64ecma")
  local parts = want_body and {} or nil
  while true do
    local chunk = f:read(CHUNK)
    if not chunk then break end
    md5:update(chunk)
    nvme:update(chunk)
    ecma:update(chunk)
    if parts then parts[#parts + 1] = chunk end
  end
  f:close()
  local raw = md5:digest()
  local out = { md5 = b64(raw), md5_hex = core.hash.tohex(raw), crc64nvme = nvme:base64(), crc64ecma = ecma:decimal(),
    body = parts and table.concat(parts) or nil }
  md5:close()
  nvme:close()
  ecma:close()
  return out
end

--- Whether an ETag is a plain MD5 (single-part upload), and its hex.
function _M.etag_md5(etag)
  if type(etag) ~= "string" then return nil end
  local hex = etag:gsub('"', ""):lower()
  if hex:find("^%x+$") and #hex == 32 then return hex end
  return nil
end

return _M
