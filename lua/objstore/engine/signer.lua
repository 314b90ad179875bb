--- Request signing: AWS Signature V4 (`aws4`), Alibaba OSS V1 (`oss1`) and
-- OSS V4 (`oss4`), computed by the C core.
--
--     local signer = require "objstore.engine.signer"
--     local s = signer.new{ algorithm = "aws4", access_key = ak, secret_key = sk, region = "us-east-1" }
--     local headers = s:sign{ method = "GET", url = "https://b.s3.amazonaws.com/k", time = os.time() }
--     local url = s:presign{ method = "GET", url = "https://b.s3.amazonaws.com/k", time = os.time(), expires = 3600 }
--
-- Request tables: `method`; a full `url`, or `path` (as on the request
-- line) with `query` and a `host` (or a Host header); `bucket`/`key` (the
-- key raw, unencoded) build the path when none is given and are the OSS
-- signing context; `headers` (map or array of {name, value}); `body` or
-- `payload_hash`; `time` (epoch seconds, always injected: the signer never
-- reads the clock); `expires` (seconds, presign only).
-- Signer methods (implemented in C): sign, presign, details,
-- canonical_request, string_to_sign, chunk_signature, trailer_signature,
-- policy_signature, set_credentials, close. Misuse raises
-- ("objstore.core.signer.sign: argument #1 (req.time): is required"); a
-- request that cannot be signed returns nil, err (code SigningError).
local core = require "objstore.core"
local errors = require "objstore.errors"

local csigner = core.signer
local type, pairs = type, pairs

local _M = { _VERSION = core._VERSION }

local ALGORITHMS = { aws4 = true, oss1 = true, oss4 = true }

local FLAG_OPTIONS = {
  normalize_path = csigner.NORMALIZE_PATH,
  double_uri_encode = csigner.DOUBLE_ENCODE,
  content_sha256_header = csigner.CONTENT_SHA256,
  unsigned_session_token = csigner.TOKEN_UNSIGNED,
  query_content_sha256 = csigner.QUERY_SHA256,
}

local STRING_OPTIONS = {
  algorithm = true, access_key = true, secret_key = true, session_token = true,
  region = true, service = true,
}

-- Every option name (types are checked one by one below).
local OPTIONS = { add_date_header = true }
for k in pairs(STRING_OPTIONS) do OPTIONS[k] = true end
for k in pairs(FLAG_OPTIONS) do OPTIONS[k] = true end

-- Raises "objstore.engine.signer.new: argument #1 (opts.<name>): <problem>" (name
-- nil: the options table itself), blamed on the first caller outside objstore.
local function option_error(name, problem)
  errors.argument("engine.signer.new", 1, name and ("opts." .. name) or "opts", problem)
end

local function check_string(opts, name, required)
  local v = opts[name]
  if v == nil then
    if required then option_error(name, "is required") end
    return nil
  end
  if type(v) ~= "string" then option_error(name, "must be a string, " .. errors.got(v)) end
  if required and v == "" then option_error(name, "must not be empty") end
  if v:find("[%z\r\n]") then option_error(name, "contains NUL, CR or LF") end
  return v
end

--- Default flags: S3 signs the path as given and sends
-- x-amz-content-sha256; every other AWS service normalises and
-- double-encodes the path (the rules of the AWS SigV4 test suite).
local function default_flags(algorithm, service)
  if algorithm ~= "aws4" then return 0 end
  if service == "s3" then return csigner.CONTENT_SHA256 end
  return csigner.NORMALIZE_PATH + csigner.DOUBLE_ENCODE
end

--- Creates a signer. Raises on misuse (unknown option, wrong type,
-- missing credentials); the secret never appears in a message. Returns the
-- signer, or nil, err when the C core cannot make one (OpenSSL without
-- SHA-256 or HMAC, out of memory: code SigningError).
function _M.new(opts)
  if type(opts) ~= "table" then option_error(nil, "must be a table, " .. errors.got(opts)) end
  errors.options("engine.signer.new", 1, opts, OPTIONS)
  local algorithm = check_string(opts, "algorithm") or "aws4"
  if not ALGORITHMS[algorithm] then
    option_error("algorithm", "unknown algorithm '" .. algorithm .. "' (aws4, oss1 or oss4)")
  end
  local access_key = check_string(opts, "access_key", true)
  local secret_key = check_string(opts, "secret_key", true)
  local token = check_string(opts, "session_token")
  local region = check_string(opts, "region")
  local service = check_string(opts, "service")
  if not service then
    service = (algorithm == "aws4") and "s3" or (algorithm == "oss4" and "oss" or nil)
  end
  local flags = default_flags(algorithm, service)
  for name, bit in pairs(FLAG_OPTIONS) do
    local v = opts[name]
    if v ~= nil then
      if type(v) ~= "boolean" then option_error(name, "must be a boolean, " .. errors.got(v)) end
      local has = (flags % (bit * 2)) >= bit
      if v and not has then flags = flags + bit elseif not v and has then flags = flags - bit end
    end
  end
  if opts.add_date_header ~= nil then
    if type(opts.add_date_header) ~= "boolean" then
      option_error("add_date_header", "must be a boolean, " .. errors.got(opts.add_date_header))
    end
    if opts.add_date_header == false then flags = flags + csigner.NO_DATE_HEADER end
  end
  local s, err = csigner.new(algorithm, flags, region, service)
  if not s then return nil, err end
  local ok, cerr = s:set_credentials(access_key, secret_key, token)
  if not ok then
    s:close()
    return nil, cerr
  end
  return s
end

return _M
