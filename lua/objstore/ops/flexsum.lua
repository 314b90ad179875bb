--- S3's flexible checksums (`x-amz-checksum-<alg>`): the `checksum` option
-- of put_object, upload_part and the upload transfers.
--
-- The digest is computed here (in C: objstore.core's CRCs and hashes) and
-- sent as a header; the server that implements the feature checks it and
-- echoes the header in its answer. A server that does not (radosgw 16,
-- Swift s3api) accepts any value and echoes nothing, so the echo is the
-- only proof: without it the call fails with ChecksumNotVerified, unless
-- `checksum_policy = "send"` asked to send the checksum anyway, and then
-- the result says `checksum.verified = false`. objstore never reports a
-- checksum as verified by the server when the server did not answer it.
local checksum = require "objstore.checksum"
local errors = require "objstore.errors"
local core = require "objstore.core"
local hashjob = require "objstore.hashjob"

local type, tostring, io_open, math_min = type, tostring, io.open, math.min
local b64 = core.encode.base64_encode

local _M = {}

--- The algorithms S3 takes, with their names in headers and XML.
_M.ALGORITHMS = { crc32 = "CRC32", crc32c = "CRC32C", crc64nvme = "CRC64NVME", sha1 = "SHA1", sha256 = "SHA256" }
-- opts.checksum: a flexible checksum to send, "crc32" | "crc32c" |
--   "crc64nvme" | "sha1" | "sha256" (x-amz-checksum-<alg>); the server must
--   echo it (else ChecksumNotVerified).
-- opts.checksum_policy: "send" to send the checksum without requiring the
--   server to verify it (the result then says verified = false).
_M.OPTS = { checksum = true, checksum_policy = true }

local CHUNK = 1024 * 1024

--- Checks opts.checksum / opts.checksum_policy of client method `name`;
-- returns the algorithm (or nil when none is asked for).
function _M.option(c, name, n, opts)
  local alg = opts.checksum
  if alg == nil then
    if opts.checksum_policy ~= nil then
      errors.argument("client." .. name, n, "opts.checksum_policy", "is given without opts.checksum")
    end
    return nil
  end
  if not _M.ALGORITHMS[alg] then
    errors.argument("client." .. name, n, "opts.checksum",
      "must be 'crc32', 'crc32c', 'crc64nvme', 'sha1' or 'sha256', got " .. tostring(alg))
  end
  local policy = opts.checksum_policy
  if policy ~= nil and policy ~= "require" and policy ~= "send" then
    errors.argument("client." .. name, n, "opts.checksum_policy", "must be 'require' (default) or 'send'")
  end
  if not c.dialect.flexible_checksums then
    errors.argument("client." .. name, n, "opts.checksum", "flexible checksums are an S3 feature "
      .. "(OSS checks its own x-oss-hash-crc64ecma)")
  end
  return alg
end

--- The base64 digest of a prepared body (objstore.ops.body): a string, a
-- core.buffer or a file range; nil, err for a body that cannot be read
-- twice (a reader function).
function _M.of_body(alg, body)
  if type(body) == "string" then return checksum.base64(alg, body) end
  if core.buffer.is(body) then return b64(body:digest(alg)) end
  if type(body) == "table" and body.file then
    if not checksum.is_crc(alg) then
      local d, err = hashjob.file(alg, body.file, body.offset or 0, body.length)
      if not d then return nil, err end
      return b64(d)
    end
    local f, err = io_open(body.file, "rb")
    if not f then return nil, errors.new{ code = "LocalFileError", message = tostring(err), retryable = false } end
    f:seek("set", body.offset or 0)
    local h, left = checksum.new(alg), body.length
    while left > 0 do
      local s = f:read(math_min(CHUNK, left))
      if not s then break end
      h:update(s)
      left = left - #s
    end
    f:close()
    if left > 0 then
      return nil, errors.new{ code = "LocalFileError", message = body.file .. " is shorter than the range",
        retryable = false }
    end
    return h:base64digest()
  end
  return nil, errors.new{ code = "InvalidArgument", retryable = false,
    message = "a checksum needs a body that can be read twice (a string, a file or a file handle)" }
end

--- The header of `alg`'s checksum.
function _M.header(alg) return "x-amz-checksum-" .. alg end

--- Sets the request headers of a PUT or UploadPart with checksum `value`.
function _M.set_headers(headers, alg, value)
  headers[_M.header(alg)] = value
  headers["x-amz-sdk-checksum-algorithm"] = _M.ALGORITHMS[alg]
  return headers
end

--- What the server's answer says of the checksum sent: the result field
-- { algorithm, value, verified }, or nil, err (BadDigest when it echoed
-- another value, ChecksumNotVerified when it echoed none and the policy
-- requires it).
function _M.confirm(op, bucket, key, alg, value, policy, res_headers)
  local echoed = res_headers and res_headers[_M.header(alg)]
  if echoed == value then return { algorithm = alg, value = value, verified = true } end
  if echoed ~= nil then
    return nil, errors.failure(op, "BadDigest", "the server answered " .. _M.header(alg) .. ": " .. tostring(echoed)
      .. " for the " .. value .. " sent", bucket, key)
  end
  if policy == "send" then return { algorithm = alg, value = value, verified = false } end
  return nil, errors.failure(op, "ChecksumNotVerified", "the server did not confirm the " .. alg
    .. " checksum sent (no " .. _M.header(alg) .. " in its answer), so it does not verify flexible checksums; "
    .. "checksum_policy = 'send' sends them to such a server without that claim",
    bucket, key, { checksum = { algorithm = alg, value = value, verified = false } })
end

--- `out` with out.checksum from the answer's headers when `alg` was sent;
-- nil, err as confirm says.
function _M.attach(out, op, bucket, key, alg, value, policy, res_headers)
  if not alg or not out then return out end
  local r, err = _M.confirm(op, bucket, key, alg, value, policy, res_headers)
  if not r then return nil, err end
  out.checksum = r
  return out
end

--- The checksum header and value of a body for `alg` into headers; returns
-- the value, or nil, err.
function _M.body_headers(alg, body, headers)
  local value, err = _M.of_body(alg, body)
  if not value then return nil, err end
  _M.set_headers(headers, alg, value)
  return value
end

return _M
