--- Verifies an incoming S3 SigV4 request the way S3 does: Authorization
-- header or presigned query, clock skew, credential scope, signature.
--
--     local sigv4 = require "objstore.front.sigv4"
--     local auth, err = sigv4.verify({ method = "PUT", path = "/b/k", query = "",
--       headers = { host = "b.example", ... }, now = ngx.time() },
--       function(access_key) return secrets[access_key] end, { region = "us-east-1" })
--     if not auth then return reply(s3_error.render(err)) end
--
-- The expected signature is computed by the C signer (`objstore.core.signer`)
-- from the client's own signed-header set and the raw path and query; only
-- the derived key of `auth.chunk_signer` uses `core.hash.hmac` directly,
-- because chunk signatures are checked on a running SHA-256.
-- Runtime failures return nil, err with err.code the S3 error code and
-- err.status the HTTP status; a request without any authentication returns
-- `{ anonymous = true }` unless opts.anonymous is false (then AccessDenied).
-- Secret keys never appear in results or errors.
-- @module objstore.front.sigv4
local core = require "objstore.core"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local url = require "objstore.url"

local type, pairs, ipairs, tonumber, tostring, setmetatable = type, pairs, ipairs, tonumber, tostring, setmetatable
local byte, lower, format = string.byte, string.lower, string.format
local concat, sort = table.concat, table.sort
local abs, floor = math.abs, math.floor

local csigner, hash, enc = core.signer, core.hash, core.encode

local _M = { _VERSION = core._VERSION }

local ALG = "AWS4-HMAC-SHA256"
local MAX_SKEW = 900        -- S3's 15 minutes
local MAX_EXPIRES = 604800  -- 7 days
-- The C signer's limits (OS_SIGN_MAX_FIELD, OS_SIGN_MAX_HEADERS in
-- csrc/os_sign.h): past them it raises or fails with a SigningError, so a
-- request beyond them is refused before it gets there.
local MAX_FIELD, MAX_HEADERS = 64 * 1024, 256
local EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

--- Payload declarations S3 accepts in x-amz-content-sha256 besides a hex digest.
local PAYLOADS = {
  ["UNSIGNED-PAYLOAD"] = true,
  ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"] = true,
  ["STREAMING-UNSIGNED-PAYLOAD-TRAILER"] = true,
  ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"] = true,
}

--- Checksum trailers S3 knows (x-amz-trailer), as objstore.front.aws_chunked does.
local TRAILERS = {
  ["x-amz-checksum-crc32"] = true, ["x-amz-checksum-crc32c"] = true, ["x-amz-checksum-crc64nvme"] = true,
  ["x-amz-checksum-sha1"] = true, ["x-amz-checksum-sha256"] = true,
}

local OPTIONS = { region = "any", service = "string", max_skew = "number", anonymous = "boolean",
  normalize_path = "boolean", double_uri_encode = "boolean" }

-- Query parameters of a presigned URL the C signer writes itself; the rest
-- of the client's query is handed over as it came.
local PRESIGN_PARAMS = {
  ["X-Amz-Algorithm"] = "algorithm", ["X-Amz-Credential"] = "credential", ["X-Amz-Date"] = "date",
  ["X-Amz-Expires"] = "expires", ["X-Amz-SignedHeaders"] = "signed_headers",
  ["X-Amz-Signature"] = "signature", ["X-Amz-Security-Token"] = "token",
  ["X-Amz-Content-Sha256"] = "content_sha256",
}

--- An S3 error value: code, status, message, and the elements S3 adds.
local function fail(code, status, message, extra)
  local e = { code = code, status = status, message = message, retryable = false }
  for k, v in pairs(extra or {}) do e[k] = v end
  return nil, errors.new(e)
end

local function malformed(presigned, what)
  if presigned then
    return fail("AuthorizationQueryParametersError", 400, what)
  end
  return fail("AuthorizationHeaderMalformed", 400, "The authorization header is malformed; " .. what)
end

--- Headers as a map lower-case name -> value; repeats joined with ",".
-- A value may be a list of values (ngx.req.get_headers() gives one for a
-- repeated header).
local function header_map(h)
  local out = {}
  local function add(name, value)
    name = lower(name)
    if type(value) == "table" then
      local parts = {}
      for i, v in ipairs(value) do parts[i] = tostring(v) end
      value = concat(parts, ",")
    else
      value = tostring(value)
    end
    out[name] = out[name] and (out[name] .. "," .. value) or value
  end
  if h[1] ~= nil then
    for _, p in ipairs(h) do add(p[1], p[2]) end
  else
    -- sorted so that case-variant duplicates join in one order
    local names = {}
    for k in pairs(h) do names[#names + 1] = k end
    sort(names)
    for _, k in ipairs(names) do add(k, h[k]) end
  end
  return out
end

--- Query parameters decoded (name -> list of values), to find the
-- authentication ones; the raw string goes to the signer untouched.
local function query_params(q)
  local out = {}
  for _, kv in ipairs(url.decode_query(q)) do
    local k, v = kv[1], kv[2]
    local list = out[k]
    if not list then list = {}; out[k] = list end
    list[#list + 1] = v == true and "" or v
  end
  return out
end

--- The client's query without the presign parameters the signer adds.
local function strip_presign(q)
  local keep = {}
  for part in q:gmatch("[^&]+") do
    if not PRESIGN_PARAMS[enc.uri_decode(part:match("^[^=]*"))] then keep[#keep + 1] = part end
  end
  return concat(keep, "&")
end

-- Days from 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
local function epoch(y, m, d, hh, mi, ss)
  y = (m <= 2) and (y - 1) or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400 + hh * 3600 + mi * 60 + ss
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

--- "20130524T000000Z" -> epoch seconds; nil unless it is a real instant
-- written the one way the signer writes it back (so the string to sign
-- holds exactly what the client sent).
local function parse_iso(s)
  local y, m, d, hh, mi, ss = s:match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then return nil end
  local t = epoch(tonumber(y), tonumber(m), tonumber(d), tonumber(hh), tonumber(mi), tonumber(ss))
  if t < 0 or enc.iso8601(t) ~= s then return nil end
  return t
end

--- An RFC 1123 Date header ("Fri, 24 May 2013 00:00:00 GMT") -> epoch seconds.
local function parse_http_date(s)
  local d, mon, y, hh, mi, ss = s:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  local t = epoch(tonumber(y), MONTHS[mon], tonumber(d), tonumber(hh), tonumber(mi), tonumber(ss))
  if t < 0 or enc.http_date(t) ~= s then return nil end
  return t
end

--- Whether two strings are equal, in a time that depends on their length
-- only (no early exit at the first difference): for signatures.
function _M.constant_time_equal(a, b)
  if #a ~= #b then return false end
  local d = 0
  for i = 1, #a do d = d + abs(byte(a, i) - byte(b, i)) end
  return d == 0
end
local same = _M.constant_time_equal

--- The key that signs chunks and trailers of one request: HMAC-SHA256
-- chained from the secret over date, region, service (the SigV4 key
-- derivation), kept in a closure so it never prints.
local chunk_signer_mt = { __tostring = function() return "objstore.front.sigv4 chunk signer" end }
chunk_signer_mt.__index = chunk_signer_mt

local function chunk_signer(secret, scope, datetime, date8, region, service)
  local k = hash.hmac("sha256", "AWS4" .. secret, date8)
  k = hash.hmac("sha256", k, region)
  k = hash.hmac("sha256", k, service)
  k = hash.hmac("sha256", k, "aws4_request")
  local head = "\n" .. datetime .. "\n" .. scope .. "\n"
  local function sign(kind, prev, tail)
    return hash.tohex(hash.hmac("sha256", k, ALG .. kind .. head .. prev .. "\n" .. tail))
  end
  return setmetatable({
    --- Expected signature of a chunk from the previous signature and the
    -- chunk's hex SHA-256.
    chunk = function(_, prev, sha256_hex) return sign("-PAYLOAD", prev, EMPTY_SHA256 .. "\n" .. sha256_hex) end,
    --- Expected signature of the trailers from the final chunk's signature
    -- and the hex SHA-256 of the canonical trailer lines ("name:value\n"...).
    trailer = function(_, prev, sha256_hex) return sign("-TRAILER", prev, sha256_hex) end,
  }, chunk_signer_mt)
end

-- Signers kept per access key, region and service (a worker's, at most
-- SIGNERS_MAX, all dropped past that): the C signer caches the key derived
-- for a date, so a request of a key seen before costs one HMAC of the
-- string to sign instead of five. An entry is used only with the very
-- secret the lookup gives now (a rotated secret makes a new signer).
local SIGNERS_MAX = 1024
local signers, nsigners = {}, 0

local function signer_for(access_key, secret, region, service)
  local id = access_key .. "\0" .. region .. "\0" .. service
  local e = signers[id]
  if e and e.secret == secret then return e.signer end
  local s = csigner.new("aws4", 0, region, service)
  if not s then return nil end
  if not s:set_credentials(access_key, secret, nil) then
    s:close()
    return nil
  end
  if e then
    e.signer:close()
  else
    if nsigners >= SIGNERS_MAX then
      for _, old in pairs(signers) do old.signer:close() end
      signers, nsigners = {}, 0
    end
    nsigners = nsigners + 1
  end
  signers[id] = { secret = secret, signer = s }
  return s
end

--- Splits "Credential=..., SignedHeaders=..., Signature=..." (any spacing
-- around the commas and equals signs, any order).
local function parse_authorization(value)
  local rest = value:sub(#ALG + 1)
  if not rest:find("^%s") then return nil end
  local fields = {}
  for part in rest:gmatch("[^,]+") do
    local k, v = part:match("^%s*([%w%-]+)%s*=%s*(.-)%s*$")
    if not k then return nil end
    if fields[k] then return nil end
    fields[k] = v
  end
  return fields
end

--- "AK/20130524/us-east-1/s3/aws4_request" -> its parts.
local function parse_credential(cred)
  local ak, date8, region, service, term = cred:match("^([^/]+)/(%d%d%d%d%d%d%d%d)/([^/]+)/([^/]+)/([^/]+)$")
  if not ak then return nil end
  return { access_key = ak, date = date8, region = region, service = service, terminal = term }
end

--- "host;x-amz-date" -> array of names; nil when malformed.
local function parse_signed_headers(s)
  local names, seen = {}, {}
  for name in (s .. ";"):gmatch("([^;]*);") do
    if not name:find("^[%w!#$%%&'*+.^_`|~-]+$") then return nil end
    name = lower(name)
    if not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
  if #names == 0 then return nil end
  return names
end

local function region_ok(allowed, region)
  if allowed == nil then return true end
  if type(allowed) == "string" then return allowed == region end
  for _, r in ipairs(allowed) do
    if r == region then return true end
  end
  return false
end

local function first_region(allowed)
  return type(allowed) == "table" and allowed[1] or allowed
end

--- Checks one request's scope against the configuration; nil, err on a mismatch.
local function check_scope(c, opts, presigned, date_value)
  local service = opts.service or "s3"
  if c.terminal ~= "aws4_request" then
    return malformed(presigned, format('%sincorrect terminal "%s". This endpoint uses "aws4_request".',
      presigned and "Error parsing the X-Amz-Credential parameter; " or "", c.terminal))
  end
  -- the C signer refuses a region or service over 63 bytes (SigningError)
  if not region_ok(opts.region, c.region) or #c.region > 63 then
    local e = presigned and "Error parsing the X-Amz-Credential parameter; " or ""
    local _, err = malformed(presigned, format("%sthe region '%s' is wrong; expecting '%s'", e, c.region,
      tostring(first_region(opts.region))))
    err.region = tostring(first_region(opts.region))
    return nil, err
  end
  if c.service ~= service then
    return malformed(presigned, format('%sincorrect service "%s". This endpoint belongs to "%s".',
      presigned and "Error parsing the X-Amz-Credential parameter; " or "", c.service, service))
  end
  if c.date ~= date_value:sub(1, 8) then
    return malformed(presigned, format('%sInvalid credential date "%s". This date is not the same as X-Amz-Date: "%s".',
      presigned and "Error parsing the X-Amz-Credential parameter; " or "", c.date, date_value:sub(1, 8)))
  end
  return true
end

local function header_auth(req, h, opts)
  local fields = parse_authorization(h.authorization)
  if not fields or not fields.Credential or not fields.SignedHeaders or not fields.Signature then
    local missing = not fields and "Credential" or (not fields.Credential and "Credential")
      or (not fields.SignedHeaders and "SignedHeaders") or "Signature"
    return fail("AuthorizationHeaderMalformed", 400,
      "The authorization header is malformed; the authorization header requires three components: "
      .. "Credential, SignedHeaders, and Signature (" .. missing .. " is missing or malformed).")
  end
  local c = parse_credential(fields.Credential)
  if not c then
    return malformed(false,
      'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
  end
  local signed = parse_signed_headers(fields.SignedHeaders)
  if not signed then return malformed(false, "the SignedHeaders are mal-formed.") end
  local date_value, t = h["x-amz-date"], nil
  if date_value then
    t = parse_iso(date_value)
  elseif h.date then
    t = parse_http_date(h.date)
    date_value = t and enc.iso8601(t)
  end
  if not t then
    return fail("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header")
  end
  local skew = opts.max_skew or MAX_SKEW
  if abs(req.now - t) > skew then
    return fail("RequestTimeTooSkewed", 403,
      "The difference between the request time and the current time is too large.",
      { request_time = h["x-amz-date"] or h.date, server_time = enc.iso8601(floor(req.now)),
        max_allowed_skew_ms = skew * 1000 })
  end
  local ok, err = check_scope(c, opts, false, date_value)
  if not ok then return nil, err end
  local payload = h["x-amz-content-sha256"]
  if payload == nil then
    if (opts.service or "s3") == "s3" then
      return fail("InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256")
    end
    payload = hash.tohex(hash.sha256(req.body or ""))
  elseif not PAYLOADS[payload] and not (#payload == 64 and payload:find("^%x+$")) then
    return fail("InvalidArgument", 400, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
      .. "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
      .. "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
      { argument_name = "x-amz-content-sha256", argument_value = payload })
  end
  return {
    credential = c, signed = signed, signature = fields.Signature, time = t, datetime = date_value,
    payload = payload, token = h["x-amz-security-token"], presigned = false,
  }
end

local function query_auth(req, q, opts)
  local p = {}
  for name, field in pairs(PRESIGN_PARAMS) do
    local list = q[name]
    if list then
      if #list > 1 then return malformed(true, "Duplicate query parameter " .. name .. ".") end
      p[field] = list[1]
    end
  end
  if not (p.algorithm and p.credential and p.signature and p.date and p.signed_headers and p.expires) then
    return fail("AuthorizationQueryParametersError", 400, "Query-string authentication version 4 requires the "
      .. "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
      .. "X-Amz-Expires parameters.")
  end
  if p.algorithm ~= ALG then
    return malformed(true, 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
  end
  local c = parse_credential(p.credential)
  if not c then
    return malformed(true, 'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; '
      .. 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
  end
  local t = parse_iso(p.date)
  if not t then
    return malformed(true, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
  end
  if not p.expires:find("^%d+$") or #p.expires > 7 or tostring(tonumber(p.expires)) ~= p.expires then
    return malformed(true, "X-Amz-Expires should be a number")
  end
  local expires = tonumber(p.expires)
  -- S3 documents 1 as the shortest lifetime; 0 would also reach the C
  -- signer, which refuses it with a SigningError that is no S3 answer.
  if expires < 1 then
    return malformed(true, "X-Amz-Expires must be at least 1 second")
  end
  if expires > MAX_EXPIRES then
    return malformed(true, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
  end
  local signed = parse_signed_headers(p.signed_headers)
  if not signed then return malformed(true, "Error parsing the X-Amz-SignedHeaders parameter.") end
  local ok, err = check_scope(c, opts, true, p.date)
  if not ok then return nil, err end
  if t - req.now > (opts.max_skew or MAX_SKEW) then
    return fail("AccessDenied", 403, "Request is not valid yet")
  end
  if req.now > t + expires then
    return fail("AccessDenied", 403, "Request has expired", { expires_seconds = expires,
      expires = enc.iso8601(t + expires), server_time = enc.iso8601(floor(req.now)) })
  end
  -- X-Amz-Content-Sha256 in the URL obeys the header's rule (it was taken
  -- as it came, any text becoming auth.payload)
  local cs = p.content_sha256
  if cs and not PAYLOADS[cs] and not (#cs == 64 and cs:find("^%x+$")) then
    return fail("InvalidArgument", 400, "X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD, "
      .. "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
      .. "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
      { argument_name = "X-Amz-Content-Sha256", argument_value = cs })
  end
  -- S3 presigned URLs leave the body unsigned; other services sign its hash
  local payload = p.content_sha256
    or ((opts.service or "s3") == "s3" and "UNSIGNED-PAYLOAD" or hash.tohex(hash.sha256(req.body or "")))
  return {
    credential = c, signed = signed, signature = p.signature, time = t, datetime = p.date, expires = expires,
    payload = payload, token = p.token, presigned = true, query_sha256 = p.content_sha256 ~= nil,
  }
end

--- The C signer's request for what the client signed: its signed headers
-- only, their values as received, the raw path and the raw query.
local function signer_request(req, h, a, opts)
  local headers = {}
  for i, name in ipairs(a.signed) do headers[i] = { name, h[name] or "" } end
  local r = {
    method = req.method, path = req.path ~= "" and req.path or "/", time = a.time, headers = headers,
    payload_hash = a.payload, add_date_header = false, content_sha256_header = false,
    sign_all_headers = true, region = a.credential.region, service = a.credential.service,
    normalize_path = opts.normalize_path == true, double_uri_encode = opts.double_uri_encode == true,
  }
  if a.presigned then
    r.query = strip_presign(req.query or "")
    r.expires = a.expires
    r.query_content_sha256 = a.query_sha256
    -- a token in the URL is signed (it is among the parameters)
    r.unsigned_session_token = false
  else
    r.query = req.query or ""
    -- a header-mode token is one of the signed headers or not signed at all
    r.unsigned_session_token = true
  end
  return r
end

local function check_request(req)
  if type(req) ~= "table" then
    errors.argument("front.sigv4.verify", 1, "req", "must be a table, " .. errors.got(req))
  end
  for _, f in ipairs{ "method", "path" } do
    if type(req[f]) ~= "string" then
      errors.argument("front.sigv4.verify", 1, "req." .. f, "must be a string, " .. errors.got(req[f]))
    end
  end
  if req.query ~= nil and type(req.query) ~= "string" then
    errors.argument("front.sigv4.verify", 1, "req.query", "must be a string, " .. errors.got(req.query))
  end
  if type(req.headers) ~= "table" then
    errors.argument("front.sigv4.verify", 1, "req.headers", "must be a table, " .. errors.got(req.headers))
  end
  if type(req.now) ~= "number" then
    errors.argument("front.sigv4.verify", 1, "req.now", "must be epoch seconds, " .. errors.got(req.now))
  end
end

--- Verifies a request. `req`: { method, path (raw, as on the request line,
-- no query), query (raw, no '?'), headers (map lower-case name -> value, or
-- array of {name, value}; repeats are joined with ",", as are the values of
-- a map entry that is a list, as ngx.req.get_headers() gives), now (epoch seconds),
-- body (optional: hashed for services other than s3 when no
-- x-amz-content-sha256 is sent) }. `lookup(access_key, session_token)`
-- returns the secret key, or nil (InvalidAccessKeyId), or nil, err (err is
-- returned as it is); an error it raises becomes InternalError (status
-- 500, its message dropped: it may hold anything). `opts`: region (string or array of allowed regions;
-- nil accepts any), service (default "s3"), max_skew (seconds, default 900),
-- anonymous (default true: a request without authentication returns
-- { anonymous = true }; false: AccessDenied), normalize_path and
-- double_uri_encode (false, as S3; true for the generic SigV4 services).
-- Returns { access_key, region, service, date, datetime, time, scope,
-- signed_headers, payload, seed_signature, session_token, presigned,
-- expires, decoded_content_length, trailer, chunk_signer } or nil, err with
-- err.code one of AccessDenied, AuthorizationHeaderMalformed,
-- AuthorizationQueryParametersError, InternalError, InvalidAccessKeyId,
-- InvalidArgument, InvalidRequest, InvalidToken, RequestTimeTooSkewed,
-- SignatureDoesNotMatch (with
-- string_to_sign, canonical_request, signature_provided and access_key_id).
function _M.verify(req, lookup, opts)
  check_request(req)
  if type(lookup) ~= "function" then
    errors.argument("front.sigv4.verify", 2, "lookup", "must be a function, " .. errors.got(lookup))
  end
  opts = errors.options("front.sigv4.verify", 3, opts, OPTIONS)
  local h = header_map(req.headers)
  local q = query_params(req.query or "")
  local authz = h.authorization
  local has_query = q["X-Amz-Algorithm"] or q["X-Amz-Signature"] or q["X-Amz-Credential"]
  if (q.Signature and q.AWSAccessKeyId) or (authz and authz:find("^AWS ")) then
    return fail("InvalidRequest", 400,
      "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
  end
  if authz and has_query then
    return fail("InvalidArgument", 400, "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
      .. "parameter, Signature query string parameter or the Authorization header should be specified",
      { argument_name = "Authorization", argument_value = authz })
  end
  if not authz and not has_query then
    if opts.anonymous == false then return fail("AccessDenied", 403, "Access Denied") end
    return { anonymous = true }
  end
  if authz and authz:sub(1, #ALG) ~= ALG then
    return fail("InvalidArgument", 400, "Unsupported Authorization Type",
      { argument_name = "Authorization", argument_value = authz })
  end
  local a, err
  if authz then a, err = header_auth(req, h, opts) else a, err = query_auth(req, q, opts) end
  if not a then return nil, err end

  -- Headers S3 insists on signing: host, and every x-amz-* header sent
  -- (the generic SigV4 services of the test suite let a token go unsigned).
  local signed_set = {}
  for _, n in ipairs(a.signed) do signed_set[n] = true end
  local unsigned = {}
  if not signed_set.host then unsigned[1] = "host" end
  if (opts.service or "s3") == "s3" then
    for name in pairs(h) do
      if name:find("^x%-amz%-") and not signed_set[name] then unsigned[#unsigned + 1] = name end
    end
  end
  if #unsigned > 0 then
    sort(unsigned)
    return fail("AccessDenied", 403, "There were headers present in the request which were not signed",
      { headers_not_signed = concat(unsigned, ", ") })
  end

  -- The C signer raises on NUL, CR or LF in the access key, the session
  -- token or a header value (they would forge lines of the canonical
  -- request): a hostile client gets an S3 answer, not a raised error.
  local c = a.credential
  if c.access_key:find("[%z\r\n]") then
    return fail("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.",
      { access_key_id = c.access_key })
  end
  if a.token and a.token:find("[%z\r\n]") then
    return fail("InvalidToken", 400, "The provided token is malformed or otherwise invalid.")
  end
  if #req.path > MAX_FIELD or #(req.query or "") > MAX_FIELD then
    return fail("InvalidRequest", 400, "The request URI is too long.")
  end
  if #a.signed > MAX_HEADERS then
    return fail("RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size.")
  end
  for _, name in ipairs(a.signed) do
    if h[name] and #h[name] > MAX_FIELD then
      return fail("RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size.")
    end
    if h[name] and h[name]:find("[%z\r]") then
      return fail("InvalidArgument", 400, "Header value contains a NUL or CR character.",
        { argument_name = name, argument_value = h[name] })
    end
  end
  -- A lookup that raises (a store down) answers InternalError; its message
  -- is not passed on, as it may hold anything (a secret, a password).
  local called, secret, lerr = pcall(lookup, c.access_key, a.token)
  if not called then
    return fail("InternalError", 500, "We encountered an internal error. Please try again.")
  end
  if secret == nil then
    if lerr ~= nil then return nil, lerr end
    return fail("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.",
      { access_key_id = c.access_key })
  end
  if type(secret) ~= "string" or secret == "" then
    errors.argument("front.sigv4.verify", 2, "lookup", "must return the secret key as a string, " .. errors.got(secret))
  end

  -- A signer failure left after the checks above is no S3 answer of its
  -- own (a SigningError has no status): it is S3's InternalError.
  local function internal()
    return fail("InternalError", 500, "We encountered an internal error. Please try again.")
  end
  local token = a.presigned and a.token or nil
  local d
  if token then
    -- a presigned session token is signed into the query: a signer of its own
    local s = csigner.new("aws4", 0, c.region, c.service)
    if not s then return internal() end
    if not s:set_credentials(c.access_key, secret, token) then
      s:close()
      return internal()
    end
    d = s:details(signer_request(req, h, a, opts), "query")
    s:close()
  else
    local s = signer_for(c.access_key, secret, c.region, c.service)
    if not s then return internal() end
    d = s:details(signer_request(req, h, a, opts), a.presigned and "query" or "header")
  end
  if not d then return internal() end
  if not same(d.signature, lower(a.signature)) or not a.signature:find("^%x+$") then
    return fail("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the "
      .. "signature you provided. Check your key and signing method.",
      { access_key_id = c.access_key, string_to_sign = d.string_to_sign, signature_provided = a.signature,
        canonical_request = d.canonical_request })
  end
  local scope = c.date .. "/" .. c.region .. "/" .. c.service .. "/aws4_request"
  -- A decoded length that is not a plain decimal was dropped silently
  -- before, and then aws_chunked checked no length at all.
  local decoded = h["x-amz-decoded-content-length"]
  if decoded and a.payload:find("^STREAMING%-") and not decoded:find("^%d+$") then
    return fail("InvalidArgument", 400, "x-amz-decoded-content-length must be a non-negative integer.",
      { argument_name = "x-amz-decoded-content-length", argument_value = decoded })
  end
  -- x-amz-trailer is the client's: aws_chunked.new raises on a name it
  -- does not know (a list, x-amz-checksum-md5), so it is refused here.
  local trailer = h["x-amz-trailer"]
  if trailer and a.payload:find("^STREAMING%-") and trailer:find("%S")
    and not TRAILERS[lower(trailer:match("^%s*(.-)%s*$"))] then
    return fail("InvalidArgument", 400, "The value specified in the x-amz-trailer header is not supported",
      { argument_name = "x-amz-trailer", argument_value = trailer })
  end
  local auth = {
    access_key = c.access_key, region = c.region, service = c.service, date = c.date, datetime = a.datetime,
    time = a.time, scope = scope, signed_headers = a.signed, payload = a.payload, seed_signature = d.signature,
    session_token = a.token, presigned = a.presigned, expires = a.expires,
    decoded_content_length = decoded and decoded:find("^%d+$") and tonumber(decoded) or nil,
    trailer = h["x-amz-trailer"],
  }
  -- auth.chunk_signer is derived when first asked (an aws-chunked body):
  -- a GET or a plain PUT never pays its four HMACs. The secret stays in
  -- this closure, never in the table.
  return setmetatable(auth, { __index = function(t, k)
    if k ~= "chunk_signer" then return nil end
    local cs = chunk_signer(secret, scope, a.datetime, c.date, c.region, c.service)
    rawset(t, k, cs)
    return cs
  end })
end

--- A running check of a body against the hex SHA-256 the request declared
-- (auth.payload): `c:update(data)`, then `c:finish()` -> true or nil, err
-- (XAmzContentSHA256Mismatch). For any other payload declaration finish()
-- is true.
function _M.payload_checker(auth)
  if type(auth) ~= "table" then
    errors.argument("front.sigv4.payload_checker", 1, "auth", "must be a table, " .. errors.got(auth))
  end
  local want = type(auth.payload) == "string" and not PAYLOADS[auth.payload] and lower(auth.payload) or nil
  local h = want and checksum.new("sha256")
  return {
    update = function(self, data)
      if h then h:update(data) end
      return self
    end,
    finish = function()
      if not h then return true end
      local got = h:hexdigest()
      if got ~= want then
        return fail("XAmzContentSHA256Mismatch", 400,
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
          { client_computed_content_sha256 = want, s3_computed_content_sha256 = got })
      end
      return true
    end,
  }
end

return _M
