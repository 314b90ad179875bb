--- Digests of local files, computed in C (objstore.core): the MD5 a
-- single PUT sends as Content-MD5 (and a plain ETag is), and the whole-
-- object CRC-64/NVME stored in `objstore-crc64nvme` metadata (base64 of
-- the big-endian CRC, as x-amz-checksum-crc64nvme), both in one read.
local core = require "objstore.core"
local errors = require "objstore.errors"

local io_open, tostring, ipairs, tonumber, type = io.open, tostring, ipairs, tonumber, type
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

--- The multipart ETag ("hex-N") a file would have for each part size in
-- `sizes`, all from one read of the file: map part size -> ETag.
-- (The ETag of a multipart upload is the MD5 of its parts' raw MD5s, and
-- "-" and the part count.)
function _M.multipart_etags(path, sizes)
  local f, err = io_open(path, "rb")
  if not f then return nil, failure(path, err) end
  local cands = {}
  for i, ps in ipairs(sizes) do
    cands[i] = { size = ps, md5 = core.hash.new("md5"), filled = 0, parts = {} }
  end
  while true do
    local chunk = f:read(CHUNK)
    if not chunk then break end
    for _, c in ipairs(cands) do
      local pos, n = 1, #chunk
      while pos <= n do
        local take = math.min(c.size - c.filled, n - pos + 1)
        c.md5:update(pos == 1 and take == n and chunk or chunk:sub(pos, pos + take - 1))
        c.filled = c.filled + take
        pos = pos + take
        if c.filled == c.size then
          c.parts[#c.parts + 1] = c.md5:digest()
          c.md5:close()
          c.md5, c.filled = core.hash.new("md5"), 0
        end
      end
    end
  end
  f:close()
  local out = {}
  for _, c in ipairs(cands) do
    if c.filled > 0 or #c.parts == 0 then c.parts[#c.parts + 1] = c.md5:digest() end
    c.md5:close()
    local whole = core.hash.new("md5")
    whole:update(table.concat(c.parts))
    out[c.size] = core.hash.tohex(whole:digest()) .. "-" .. #c.parts
    whole:close()
  end
  return out
end

--- A multipart ETag's MD5-of-MD5s (hex) and part count, or nil.
function _M.etag_multipart(etag)
  if type(etag) ~= "string" then return nil end
  local hex, n = etag:gsub('"', ""):lower():match("^(%x+)%-(%d+)$")
  if not hex or #hex ~= 32 then return nil end
  return hex, tonumber(n)
end

--- Two ETags equal once unquoted (a CopyObject answer may drop the quotes a listing has).
function _M.same_etag(a, b)
  return type(a) == "string" and type(b) == "string" and a:gsub('"', ""):lower() == b:gsub('"', ""):lower()
end

--- Whether an ETag is a plain MD5 (single-part upload), and its hex.
function _M.etag_md5(etag)
  if type(etag) ~= "string" then return nil end
  local hex = etag:gsub('"', ""):lower()
  if hex:find("^%x+$") and #hex == 32 then return hex end
  return nil
end

return _M
