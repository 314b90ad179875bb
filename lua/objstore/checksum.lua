--- Hashes and checksums used by S3 and OSS.
--
-- One API over the native `objstore.core` hash and CRC objects:
--
--    local checksum = require "objstore.checksum"
--    checksum.md5_base64(body)              --> Content-MD5 header
--    checksum.sha256_hex(body)              --> x-amz-content-sha256
--    checksum.crc32c_base64(body)           --> x-amz-checksum-crc32c
--    checksum.crc64ecma_decimal(body)       --> x-oss-hash-crc64ecma
--    local h = checksum.new("crc64nvme")
--    h:update(chunk1):update(chunk2)
--    h:base64digest()                       --> x-amz-checksum-crc64nvme
--
-- Algorithms: "md5", "sha1", "sha256" (hashes) and "crc32", "crc32c",
-- "crc64ecma" (CRC-64/XZ, as OSS uses it), "crc64nvme" (CRCs).
--
-- Every digest is raw bytes unless the function name says `_hex` (lower-case
-- hex), `_base64` (standard base64, padded) or `_decimal` (unsigned decimal).
-- CRC digests are big-endian, which is what S3 base64-encodes.
--
-- Objects from `new` share `update(s)` (returns the object), `digest()`,
-- `hexdigest()`, `base64digest()`, `copy()` and `close()`. A hash is finished
-- by its first digest call (update then raises); a CRC is never finished and
-- also has `decimal()`, `value()`, `length()`.
--
-- Misuse (wrong types, unknown algorithms, malformed digests) raises an error
-- naming the argument, in the one format of objstore:
--   objstore.checksum.new: argument #1 (alg): unknown algorithm 'sha3' (...)
-- Runtime failures (OpenSSL refusing an algorithm) return nil, err.
-- @module objstore.checksum

local core = require "objstore.core"
local errors = require "objstore.errors"

local ipairs, type, tostring, tonumber = ipairs, type, tostring, tonumber
local concat = table.concat
local ceil = math.ceil
local format, char = string.format, string.char

local hash, crc = core.hash, core.crc

local checksum = { _VERSION = core._VERSION }

--- Every algorithm name, hashes first.
checksum.ALGORITHMS = { "md5", "sha1", "sha256", "crc32", "crc32c", "crc64ecma", "crc64nvme" }

-- Raw digest size in bytes of each algorithm, and which family it is in.
local SIZE = { md5 = 16, sha1 = 20, sha256 = 32, crc32 = 4, crc32c = 4, crc64ecma = 8, crc64nvme = 8 }
local IS_CRC = { crc32 = true, crc32c = true, crc64ecma = true, crc64nvme = true }
local IS_HASH = { md5 = true, sha1 = true, sha256 = true }
local HASH_LIST = "md5, sha1, sha256"
local ALL_LIST = "md5, sha1, sha256, crc32, crc32c, crc64ecma, crc64nvme"
local CRC_LIST = "crc32, crc32c, crc64ecma, crc64nvme"

-- Raises "objstore.checksum.<fname>: argument #<n> (<name>): <problem>".
-- blamed on the first caller outside objstore (errors.argument).
local function argerror(fname, n, name, problem)
  errors.argument("checksum." .. fname, n, name, problem)
end

local function check_string(fname, n, name, v)
  if type(v) ~= "string" then argerror(fname, n, name, "string expected, got " .. type(v)) end
  return v
end

local function check_alg(fname, n, alg, set, list)
  if type(alg) ~= "string" then argerror(fname, n, "alg", "string expected, got " .. type(alg)) end
  if not set[alg] then argerror(fname, n, "alg", format("unknown algorithm '%s' (expected %s)", alg, list)) end
  return alg
end

local function check_list(fname, n, name, v)
  if type(v) ~= "table" then argerror(fname, n, name, "table expected, got " .. type(v)) end
  if #v == 0 then argerror(fname, n, name, "at least one entry expected") end
  return v
end

--- Raw digest size in bytes of `alg`.
function checksum.size(alg)
  return SIZE[check_alg("size", 1, alg, SIZE, ALL_LIST)]
end

--- Whether `alg` is a CRC (combinable, never finished) rather than a hash.
function checksum.is_crc(alg)
  check_alg("is_crc", 1, alg, SIZE, ALL_LIST)
  return IS_CRC[alg] == true
end

--- Streaming object for any algorithm.
-- @param alg algorithm name
-- @param init CRCs only: value to continue from (integer or unsigned decimal
--   string, e.g. an OSS object's x-oss-hash-crc64ecma before an append)
-- @return object, or nil, err when OpenSSL refuses the algorithm
function checksum.new(alg, init)
  check_alg("new", 1, alg, SIZE, ALL_LIST)
  if IS_CRC[alg] then return crc.new(alg, init) end
  if init ~= nil then argerror("new", 2, "init", "only CRCs take an initial value") end
  return hash.new(alg)
end

--- Streaming HMAC object (`alg` is md5, sha1 or sha256).
function checksum.new_hmac(alg, key)
  check_alg("new_hmac", 1, alg, IS_HASH, HASH_LIST)
  check_string("new_hmac", 2, "key", key)
  return hash.new(alg, key)
end

--- Raw digest of `s`.
function checksum.digest(alg, s)
  check_alg("digest", 1, alg, SIZE, ALL_LIST)
  check_string("digest", 2, "data", s)
  if IS_CRC[alg] then return crc.compute(alg, s) end
  return hash[alg](s)
end

--- Lower-case hex of any bytes.
function checksum.tohex(bytes)
  return hash.tohex(check_string("tohex", 1, "bytes", bytes))
end

--- Standard padded base64 of any bytes.
function checksum.tobase64(bytes)
  return hash.tobase64(check_string("tobase64", 1, "bytes", bytes))
end

function checksum.hex(alg, s)
  return hash.tohex(checksum.digest(alg, s))
end

function checksum.base64(alg, s)
  return hash.tobase64(checksum.digest(alg, s))
end

--- Raw HMAC of `s` under `key`.
function checksum.hmac(alg, key, s)
  check_alg("hmac", 1, alg, IS_HASH, HASH_LIST)
  check_string("hmac", 2, "key", key)
  check_string("hmac", 3, "data", s)
  return hash.hmac(alg, key, s)
end

function checksum.hmac_hex(alg, key, s)
  return hash.tohex(checksum.hmac(alg, key, s))
end

-- checksum.<alg>(s) raw, checksum.<alg>_hex(s), checksum.<alg>_base64(s), and
-- for CRCs checksum.<alg>_decimal(s): each a direct call, no name look-up.
for _, alg in ipairs(checksum.ALGORITHMS) do
  local raw
  if IS_CRC[alg] then
    local compute = crc.compute
    raw = function(s) return compute(alg, check_string(alg, 1, "data", s)) end
    local to_decimal = crc.to_decimal
    checksum[alg .. "_decimal"] = function(s)
      return to_decimal(compute(alg, check_string(alg .. "_decimal", 1, "data", s)))
    end
  else
    local f = hash[alg]
    raw = function(s) return f(check_string(alg, 1, "data", s)) end
  end
  checksum[alg] = raw
  checksum[alg .. "_hex"] = function(s) return hash.tohex(raw(s)) end
  checksum[alg .. "_base64"] = function(s) return hash.tobase64(raw(s)) end
end

--- Unsigned decimal of a raw big-endian CRC (4 or 8 bytes): the OSS form.
function checksum.to_decimal(bytes)
  return crc.to_decimal(check_string("to_decimal", 1, "bytes", bytes))
end

--- Raw big-endian CRC from its unsigned decimal form.
function checksum.from_decimal(alg, decimal)
  check_alg("from_decimal", 1, alg, IS_CRC, CRC_LIST)
  return crc.from_decimal(alg, check_string("from_decimal", 2, "decimal", decimal))
end

--- CRC of A||B from raw CRC(A), raw CRC(B) and #B, without the data.
-- @return raw big-endian bytes
function checksum.combine(alg, crc_a, crc_b, len_b)
  check_alg("combine", 1, alg, IS_CRC, CRC_LIST)
  return crc.combine(alg, crc_a, crc_b, len_b)
end

--- `combine` on unsigned decimal strings, as OSS headers carry them.
function checksum.combine_decimal(alg, dec_a, dec_b, len_b)
  check_alg("combine_decimal", 1, alg, IS_CRC, CRC_LIST)
  check_string("combine_decimal", 2, "dec_a", dec_a)
  check_string("combine_decimal", 3, "dec_b", dec_b)
  local a, b = crc.from_decimal(alg, dec_a), crc.from_decimal(alg, dec_b)
  return crc.to_decimal(crc.combine(alg, a, b, len_b))
end

--- CRC of a whole object from its parts, in order (e.g. parallel uploads).
-- @param parts list of `{ crc = raw big-endian bytes, length = bytes }`
-- @return raw big-endian CRC of the concatenation, total length
function checksum.combine_parts(alg, parts)
  check_alg("combine_parts", 1, alg, IS_CRC, CRC_LIST)
  check_list("combine_parts", 2, "parts", parts)
  local acc, total
  for i, part in ipairs(parts) do
    if type(part) ~= "table" then
      argerror("combine_parts", 2, format("parts[%d]", i), "table expected, got " .. type(part))
    end
    local c, n = part.crc, part.length
    if type(c) ~= "string" or #c ~= SIZE[alg] then
      argerror("combine_parts", 2, format("parts[%d].crc", i), format("%d raw bytes expected", SIZE[alg]))
    end
    if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
      argerror("combine_parts", 2, format("parts[%d].length", i), "non-negative integer expected")
    end
    if acc == nil then
      acc, total = c, n
    else
      acc, total = crc.combine(alg, acc, c, n), total + n
    end
  end
  return acc, total
end

-- Digests that arrive as text (ETag hex, base64 checksum headers) are
-- accepted beside raw bytes; the lengths never collide.
local function unhex(s)
  return (s:gsub("%x%x", function(h) return char(tonumber(h, 16)) end))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_INDEX = {}
for i = 1, 64 do B64_INDEX[B64:byte(i)] = i - 1 end

local function unbase64(s)
  if #s % 4 ~= 0 or s:find("[^%w%+/=]") or s:find("=[^=]") then return nil end
  local out, pad = {}, #s:match("=*$")
  if pad > 2 then return nil end
  for i = 1, #s, 4 do
    local a, b, c, d = s:byte(i, i + 3)
    local n = B64_INDEX[a] * 262144 + B64_INDEX[b] * 4096 + (B64_INDEX[c] or 0) * 64 + (B64_INDEX[d] or 0)
    local b1, b2, b3 = (n - n % 65536) / 65536, (n % 65536 - n % 256) / 256, n % 256
    out[#out + 1] = char(b1, b2, b3)
  end
  local raw = concat(out)
  return raw:sub(1, #raw - pad)
end

-- argn/argname say which argument holds the list, for the error message.
local function raw_digest(fname, argn, argname, i, alg, d, allow_hex, allow_b64)
  local size = SIZE[alg]
  if type(d) == "string" then
    if #d == size then return d end
    if allow_hex then
      local h = d:match('^"?(%x+)"?$')
      if h and #h == 2 * size then return unhex(h) end
    end
    if allow_b64 and #d == 4 * ceil(size / 3) then
      local raw = unbase64(d)
      if raw and #raw == size then return raw end
    end
  end
  local forms = (allow_hex and ", hex or quoted hex" or "") .. (allow_b64 and " or base64" or "")
  local got = type(d) == "string" and (#d .. " bytes") or type(d)
  argerror(fname, argn, format("%s[%d]", argname, i),
    format("%s digest expected (%d raw bytes%s), got %s", alg, size, forms, got))
end

--- S3 multipart ETag: hex(MD5(MD5(part1) || ... || MD5(partN))) .. "-" .. N.
-- @param md5s list of part MD5s, raw (16 bytes) or hex (optionally quoted, as
--   in an UploadPart ETag)
-- @return the ETag without quotes, e.g. "c43647d2543bbb0984bac6210ff0eb6a-3"
function checksum.multipart_etag(md5s)
  check_list("multipart_etag", 1, "md5s", md5s)
  local h = hash.new("md5")
  for i, d in ipairs(md5s) do h:update(raw_digest("multipart_etag", 1, "md5s", i, "md5", d, true, false)) end
  local etag = h:hexdigest() .. "-" .. #md5s
  h:close()
  return etag
end

--- S3 COMPOSITE multipart checksum: base64(H(H1 || ... || Hn)) .. "-" .. N.
-- For CRCs, H is the CRC of the concatenated big-endian part CRCs.
-- @param alg sha1, sha256, crc32, crc32c, crc64ecma or crc64nvme
-- @param digests list of part digests, raw or base64 (as in x-amz-checksum-*)
function checksum.composite(alg, digests)
  check_alg("composite", 1, alg, SIZE, ALL_LIST)
  check_list("composite", 2, "digests", digests)
  local parts = {}
  for i, d in ipairs(digests) do parts[i] = raw_digest("composite", 2, "digests", i, alg, d, false, true) end
  return hash.tobase64(checksum.digest(alg, concat(parts))) .. "-" .. tostring(#digests)
end

return checksum
