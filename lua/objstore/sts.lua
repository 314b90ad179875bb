--- Temporary credentials from a Security Token Service: AWS STS (the
-- SigV4-signed query API of service `sts`) and Alibaba Cloud STS (the RPC
-- API with its HMAC-SHA1 signature). Every call is a request record
-- (objstore.engine.request) sent through an objstore client's pipeline, so it is
-- retried, logged and timed like any other request.
--
--   local sts = require "objstore.sts"
--   local c, err = sts.assume_role{ provider = "s3", endpoint = "http://127.0.0.1:7480",
--     access_key = ak, secret_key = sk, role_arn = "arn:aws:iam:::role/R", session_name = "app",
--     duration = 3600 }
--   -- c = { access_key, secret_key, session_token, expiration (epoch s), arn, ... }
--
-- Functions (each takes one options table, or is a method of sts.new(opts)):
--   assume_role, get_caller_identity            (s3 and oss)
--   get_session_token, assume_role_with_web_identity (s3)
--   assume_role_with_oidc                       (oss)
-- Options of the STS endpoint: provider ("s3" default, or "oss"), endpoint
-- (default: the regional endpoint, https://sts.<region>.amazonaws.com or
-- https://sts.<region>.aliyuncs.com), region, access_key/secret_key/
-- session_token or credentials (any objstore credentials provider),
-- transport, timeout, retry, log, log_level, hooks.
-- Failures return nil, err with the shared error table; misuse raises.
local Engine = require "objstore.engine"
local dialects = require "objstore.engine.dialect"
local signer_mod = require "objstore.engine.signer"
local request = require "objstore.engine.request"
local errors = require "objstore.errors"
local clock = require "objstore.clock"
local xml = require "objstore.xml"
local core = require "objstore.core"
local url_mod = require "objstore.url"
local cjson = require "cjson.safe"

local type, pairs, ipairs, tostring, setmetatable = type, pairs, ipairs, tostring, setmetatable
local concat, sort = table.concat, table.sort
local os_date = os.date
local uri_encode = core.encode.uri_encode
local hmac, sha1, sha256, tohex, tobase64 = core.hash.hmac, core.hash.sha1, core.hash.sha256, core.hash.tohex,
  core.hash.tobase64
local monotonic = core.time.monotonic

local _M = {}

local AWS_VERSION, ALIYUN_VERSION = "2011-06-15", "2015-04-01"

local function misuse(fname, name, problem)
  errors.argument("sts." .. fname, 1, "opts" .. (name and ("." .. name) or ""), problem)
end

--- default_endpoint(provider, region) -> URL
-- The default endpoint of a provider's STS in `region` (the dialect's
-- sts_endpoint; unknown providers: S3's).
function _M.default_endpoint(provider, region)
  return (dialects.get(provider) or dialects.s3).sts_endpoint(region)
end

-- ---------------------------------------------------------------------------
-- Alibaba Cloud's RPC signature (signature version 1.0, HMAC-SHA1):
--   StringToSign = METHOD & "%2F" & percent(canonical query)
--   Signature    = base64(HMAC-SHA1(secret .. "&", StringToSign))
-- where the canonical query is every parameter but Signature, sorted by
-- name, each name and value percent-encoded (RFC 3986: only A-Z a-z 0-9
-- - _ . ~ kept). The signature goes last in the query.

local nonce_counter = 0

--- A fresh SignatureNonce: unique per request, so a retry is not refused
-- as a replay.
local function make_nonce()
  nonce_counter = nonce_counter + 1
  return tohex(sha1(tostring(nonce_counter) .. ":" .. tostring(monotonic()) .. ":" .. tostring({}))):sub(1, 32)
end

--- rpc_signature(method, params, secret) -> { query, string_to_sign, signature }
-- The canonical query, string to sign and signature of an RPC request
-- whose (encoded) parameters are `params` ({ {name, value}, ... }).
function _M.rpc_signature(method, params, secret)
  local sorted = {}
  for i, kv in ipairs(params) do sorted[i] = kv end
  sort(sorted, function(a, b) return a[1] < b[1] end)
  local parts = {}
  for i, kv in ipairs(sorted) do parts[i] = kv[1] .. "=" .. kv[2] end
  local canonical = concat(parts, "&")
  local sts = method .. "&" .. uri_encode("/") .. "&" .. uri_encode(canonical)
  local sig = tobase64(hmac("sha1", secret .. "&", sts))
  return canonical, sts, sig
end

local RpcSigner = {}
RpcSigner.__index = RpcSigner

--- A signer with the pipeline's signer interface (sign, set_credentials,
-- close) that puts the RPC signature and its common parameters into the
-- query: sign returns (headers, nil, signed query). The secret is kept in
-- a closure, never in a field a log could print.
local function rpc_signer(ak, sk, token, nonce)
  local self = setmetatable({ nonce = nonce or make_nonce }, RpcSigner)
  function self.set_credentials(_, a, s, t)
    for _, v in ipairs{ a, s, t or "" } do
      if type(v) ~= "string" or v:find("[%z\r\n]") then
        return nil, errors.new{ code = "SigningError", retryable = false,
          message = "credentials contain NUL, CR or LF" }
      end
    end
    -- The secret and the token live in a closure, not in fields a dump
    -- of the client would show.
    self.ak = a
    self.secret = function() return s, t end
    return true
  end
  local ok, err = self:set_credentials(ak, sk, token)
  if not ok then return nil, err end
  return self
end

function RpcSigner:sign(input)
  if not self.secret then
    return nil, errors.new{ code = "SigningError", message = "signer closed", retryable = false }
  end
  local params = url_mod.decode_query(input.query, true) -- kept encoded: signed as sent
  local function add(k, v) params[#params + 1] = { uri_encode(k), uri_encode(v) } end
  add("Format", "JSON")
  add("Timestamp", os_date("!%Y-%m-%dT%H:%M:%SZ", math.floor(input.time)))
  if self.ak == "" then
    -- Anonymous (AssumeRoleWithOIDC): the common parameters, no signature.
    local canonical = _M.rpc_signature(input.method, params, "")
    return {}, nil, canonical
  end
  add("SignatureMethod", "HMAC-SHA1")
  add("SignatureNonce", self.nonce())
  add("SignatureVersion", "1.0")
  add("AccessKeyId", self.ak)
  local secret, token = self.secret()
  if token and token ~= "" then add("SecurityToken", token) end
  local canonical, _, sig = _M.rpc_signature(input.method, params, secret)
  return {}, nil, canonical .. "&Signature=" .. uri_encode(sig)
end

function RpcSigner:close()
  self.secret, self.ak = nil, nil
end

-- Requests that carry no signature at all (AssumeRoleWithWebIdentity and
-- AssumeRoleWithOIDC: the token is the proof).
local Anonymous = {}
Anonymous.__index = Anonymous
function Anonymous.sign() return {} end
function Anonymous.set_credentials() return true end
function Anonymous.close() end

local ANONYMOUS_CREDS = { access_key = "", secret_key = "" }

-- ---------------------------------------------------------------------------
-- The STS client: an objstore client whose signer is the STS one.

local Sts = {}
Sts.__index = Sts

-- The STS protocols, by a dialect's `sts` name (objstore.engine.dialect): the
-- actions' parameters, their answers' parsers, the request builder and the
-- signer. Filled below, once their functions are defined.
local PROTOCOLS = {
  aws = { signer = function(region, ak, sk, token, _, anonymous)
    if anonymous then return setmetatable({}, Anonymous) end
    return signer_mod.new{ algorithm = "aws4", service = "sts", access_key = ak, secret_key = sk,
      session_token = token, region = region }
  end },
  aliyun = { signer = function(_, ak, sk, token, nonce) return rpc_signer(ak, sk, token, nonce) end },
}

local OPTS = { provider = true, endpoint = true, region = true, access_key = true, secret_key = true,
  session_token = true, credentials = true, transport = true, timeout = true, connect_timeout = true,
  retry = true, log = true, log_level = true, hooks = true, nonce = true, addressing = true }

--- new(opts) -> sts client
-- An STS client: its methods assume_role, get_session_token,
-- get_caller_identity, assume_role_with_web_identity and
-- assume_role_with_oidc take the parameters, `call(action, params)` any
-- action, `close()` frees it. Raises on misuse.
-- opts.provider: "s3" (default) or "oss".
-- opts.endpoint: default https://sts.<region>.amazonaws.com or
--   https://sts.<region>.aliyuncs.com.
-- opts.region: the region of the endpoint and the signature.
-- opts.access_key: with secret_key and session_token, or opts.credentials
--   (any provider): the caller's credentials.
-- opts.transport: as objstore.new (also timeout, retry, log, log_level,
--   hooks).
function _M.new(opts, fname)
  fname = fname or "new"
  if type(opts) ~= "table" then misuse(fname, nil, "must be a table, " .. errors.got(opts)) end
  local allowed = {}
  for k in pairs(OPTS) do allowed[k] = true end
  for k in pairs(_M.PARAMS) do allowed[k] = true end
  errors.options("sts." .. fname, 1, opts, allowed)
  local provider = opts.provider or "s3"
  local d = dialects.get(provider)
  if not d then misuse(fname, "provider", "must be " .. dialects.choices()) end
  local protocol = PROTOCOLS[d.sts]
  local copts = { provider = "s3", transport = opts.transport, timeout = opts.timeout,
    connect_timeout = opts.connect_timeout, retry = opts.retry, log = opts.log, log_level = opts.log_level,
    hooks = opts.hooks, addressing = opts.addressing,
    region = opts.region or d.sts_region,
    endpoint = opts.endpoint or d.sts_endpoint(opts.region) }
  local anonymous = not (opts.access_key or opts.secret_key or opts.credentials)
  if opts.access_key or opts.secret_key then
    copts.access_key, copts.secret_key, copts.session_token = opts.access_key, opts.secret_key, opts.session_token
  elseif opts.credentials ~= nil then
    copts.credentials = opts.credentials
  else
    copts.credentials = ANONYMOUS_CREDS
  end
  local nonce = opts.nonce
  if nonce ~= nil and type(nonce) ~= "function" then
    local fixed = tostring(nonce)
    nonce = function() return fixed end
  end
  local c = Engine.new(copts, nil, function(region, ak, sk, token)
    return protocol.signer(region, ak, sk, token, nonce, anonymous)
  end)
  return setmetatable({ client = c, provider = provider, protocol = protocol,
    own_transport = opts.transport == nil,
    anonymous = anonymous }, Sts)
end

--- close()
-- Closes the STS client's engine.
function Sts:close()
  self.client:reset(self.own_transport)
end

-- ---------------------------------------------------------------------------
-- Answers.

local function malformed(op, what, res)
  return nil, errors.new{ code = "MalformedResponse", op = op, status = res and res.status, retryable = false,
    message = "STS " .. op .. ": " .. what }
end

--- parse_time(text) -> epoch seconds | nil
-- Epoch seconds of an ISO 8601 time with an optional offset
-- (objstore.clock.parse_iso8601).
_M.parse_time = clock.parse_iso8601

local function credentials_of(op, res, ak, sk, token, exp, extra)
  if type(ak) ~= "string" or type(sk) ~= "string" or type(token) ~= "string" or ak == "" or sk == "" then
    return malformed(op, "the answer has no credentials", res)
  end
  local expiration = _M.parse_time(exp)
  if not expiration then return malformed(op, "the answer has no valid Expiration", res) end
  local out = { access_key = ak, secret_key = sk, session_token = token, expiration = expiration }
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

local function xml_result(op, res)
  local t, root = xml.parse(res.body or "")
  if not t then return malformed(op, "cannot parse the XML answer", res) end
  if root ~= op .. "Response" then return malformed(op, "unexpected answer <" .. tostring(root) .. ">", res) end
  local r = t[xml.snake(op .. "Result")]
  if type(r) ~= "table" then return malformed(op, "the answer has no " .. op .. "Result", res) end
  local meta = t.response_metadata
  return r, type(meta) == "table" and meta.request_id or nil
end

local function aws_credentials(op)
  return function(res)
    local r, rid = xml_result(op, res)
    if not r then return nil, rid end
    local c = type(r.credentials) == "table" and r.credentials or {}
    local user = type(r.assumed_role_user) == "table" and r.assumed_role_user or {}
    return credentials_of(op, res, c.access_key_id, c.secret_access_key, c.session_token, c.expiration,
      { arn = user.arn, assumed_role_id = user.assumed_role_id, request_id = rid,
        subject = r.subject_from_web_identity_token })
  end
end

local function json_result(op, res)
  local j = cjson.decode(res.body or "")
  if type(j) ~= "table" then return malformed(op, "cannot parse the JSON answer", res) end
  return j
end

local function ali_credentials(op)
  return function(res)
    local j, err = json_result(op, res)
    if not j then return nil, err end
    local c = type(j.Credentials) == "table" and j.Credentials or {}
    local user = type(j.AssumedRoleUser) == "table" and j.AssumedRoleUser or {}
    return credentials_of(op, res, c.AccessKeyId, c.AccessKeySecret, c.SecurityToken, c.Expiration,
      { arn = user.Arn, assumed_role_id = user.AssumedRoleId, request_id = j.RequestId })
  end
end

-- ---------------------------------------------------------------------------
-- Requests. Parameters per action, in the order of botocore's models
-- (botocore itself writes them in the order the caller passed them).

_M.PARAMS = { role_arn = true, session_name = true, duration = true, policy = true, external_id = true,
  serial_number = true, token_code = true, source_identity = true, web_identity_token = true,
  provider_id = true, oidc_provider_arn = true, oidc_token = true, policy_arns = true, time = true }

local AWS_ACTIONS = {
  AssumeRole = { { "RoleArn", "role_arn", true }, { "RoleSessionName", "session_name", true },
    { "PolicyArns", "policy_arns" }, { "Policy", "policy" }, { "DurationSeconds", "duration" },
    { "ExternalId", "external_id" }, { "SerialNumber", "serial_number" }, { "TokenCode", "token_code" },
    { "SourceIdentity", "source_identity" } },
  GetSessionToken = { { "DurationSeconds", "duration" }, { "SerialNumber", "serial_number" },
    { "TokenCode", "token_code" } },
  GetCallerIdentity = {},
  AssumeRoleWithWebIdentity = { { "RoleArn", "role_arn", true }, { "RoleSessionName", "session_name", true },
    { "WebIdentityToken", "web_identity_token", true }, { "ProviderId", "provider_id" },
    { "PolicyArns", "policy_arns" }, { "Policy", "policy" }, { "DurationSeconds", "duration" } },
}

local ALI_ACTIONS = {
  AssumeRole = { { "RoleArn", "role_arn", true }, { "RoleSessionName", "session_name", true },
    { "Policy", "policy" }, { "DurationSeconds", "duration" }, { "ExternalId", "external_id" } },
  GetCallerIdentity = {},
  AssumeRoleWithOIDC = { { "OIDCProviderArn", "oidc_provider_arn", true }, { "RoleArn", "role_arn", true },
    { "OIDCToken", "oidc_token", true }, { "RoleSessionName", "session_name" }, { "Policy", "policy" },
    { "DurationSeconds", "duration" } },
}

local function param_value(fname, field, v)
  if type(v) == "number" then
    if v ~= math.floor(v) or v <= 0 then misuse(fname, field, "must be a whole number of seconds > 0") end
    return string.format("%d", v)
  end
  if type(v) == "table" and field == "policy" then
    local s = cjson.encode(v)
    if not s then misuse(fname, field, "cannot be encoded as JSON") end
    return s
  end
  if type(v) ~= "string" or v == "" then misuse(fname, field, "must be a non-empty string, " .. errors.got(v)) end
  return v
end

local function identity(op)
  return function(res)
    local r, rid = xml_result(op, res)
    if not r then return nil, rid end
    return { account = r.account, arn = r.arn, user_id = r.user_id, request_id = rid }
  end
end

local function ali_identity(op)
  return function(res)
    local j, err = json_result(op, res)
    if not j then return nil, err end
    if type(j.Arn) ~= "string" then return malformed(op, "the answer has no Arn", res) end
    return { account = j.AccountId, arn = j.Arn, user_id = j.UserId, identity_type = j.IdentityType,
      principal_id = j.PrincipalId, role_id = j.RoleId, request_id = j.RequestId }
  end
end

local PARSERS = {
  aws = { AssumeRole = aws_credentials, GetSessionToken = aws_credentials, GetCallerIdentity = identity,
    AssumeRoleWithWebIdentity = aws_credentials },
  aliyun = { AssumeRole = ali_credentials, GetCallerIdentity = ali_identity, AssumeRoleWithOIDC = ali_credentials },
}

--- build_request(action, params) -> record
-- The request record of `action` ("AssumeRole", ...) with the caller's
-- parameters.
function Sts:build_request(action, params, fname)
  local p = {}
  local protocol = self.protocol
  local list = protocol.actions[action]
  if not list then misuse(fname, nil, action .. " is not an action of " .. self.provider .. " STS") end
  for _, spec in ipairs(list) do
    local wire, field, required = spec[1], spec[2], spec[3]
    local v = params[field]
    if v == nil and required then misuse(fname, field, "is required") end
    if v ~= nil then
      if field == "policy_arns" then
        if type(v) ~= "table" then misuse(fname, field, "must be a list of ARNs") end
        for i, arn in ipairs(v) do
          p[#p + 1] = { wire .. ".member." .. i .. ".arn", param_value(fname, field, arn) }
        end
      else
        p[#p + 1] = { wire, param_value(fname, field, v) }
      end
    end
  end
  return protocol.build(action, p, protocol.parsers[action](action))
end

-- RPC: everything in the query, Action and Version first (the signer
-- sorts the canonical form); x-acs-* name the action as the SDKs do.
local function aliyun_request(action, p, parse)
  local q = { { "Action", action }, { "Version", ALIYUN_VERSION } }
  for _, kv in ipairs(p) do q[#q + 1] = kv end
  return request.new{ op = action, method = "GET", query = q, parse = parse,
    headers = { ["x-acs-action"] = action, ["x-acs-version"] = ALIYUN_VERSION } }
end

-- The query API: a form body, signed with its SHA-256 (service sts).
local function aws_request(action, p, parse)
  local form = { { "Action", action }, { "Version", AWS_VERSION } }
  for _, kv in ipairs(p) do form[#form + 1] = kv end
  local body = url_mod.encode_form(form)
  return request.new{ op = action, method = "POST", body = body, body_length = #body,
    payload_hash = tohex(sha256(body)), parse = parse,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" } }
end

PROTOCOLS.aws.actions, PROTOCOLS.aws.parsers, PROTOCOLS.aws.build = AWS_ACTIONS, PARSERS.aws, aws_request
PROTOCOLS.aliyun.actions, PROTOCOLS.aliyun.parsers, PROTOCOLS.aliyun.build = ALI_ACTIONS, PARSERS.aliyun,
  aliyun_request

--- The transport request `action` would send at time `time` (default now):
-- { method, url, headers, body }, signed; for comparisons with the SDKs.
function Sts:prepare(action, params, time)
  local req = self:build_request(action, params or {}, "prepare")
  return self.client:sign_at(req, time, true)
end

--- call(action, params) -> result | nil, err
-- Sends `action` with `params` (the parameters of assume_role and the
-- others).
function Sts:call(action, params, fname)
  local req = self:build_request(action, params or {}, fname or "call")
  return self.client:send(req)
end

--- assume_role(opts) -> { access_key, secret_key, session_token, expiration, arn, ... } | nil, err
-- AssumeRole (AWS and Alibaba Cloud), with a client of its own closed
-- afterwards. opts: those of sts.new and the parameters below; also a
-- method of sts.new(opts): s:assume_role(params).
-- opts.role_arn: the role to assume (required).
-- opts.session_name: the role session name (required).
-- opts.duration: seconds the credentials last.
-- opts.policy: a session policy, JSON text or a table.
-- opts.policy_arns: managed policy ARNs (AWS).
-- opts.external_id: the external id the role's trust policy asks for.
-- opts.serial_number: the MFA device (AWS), with token_code.
-- opts.token_code: the MFA code (AWS).
-- opts.source_identity: the source identity (AWS).
-- result.expiration: epoch seconds.
-- errors: AccessDenied, MalformedResponse (no credentials or Expiration in
--   the answer), and those of any request.

--- get_session_token(opts) -> { access_key, secret_key, session_token, expiration } | nil, err
-- GetSessionToken (AWS): opts.duration, opts.serial_number, opts.token_code.

--- get_caller_identity(opts) -> { account, arn, user_id, request_id } | nil, err
-- GetCallerIdentity (AWS and Alibaba Cloud): who the credentials are.

--- assume_role_with_web_identity(opts) -> { access_key, secret_key, session_token, expiration, ... } | nil, err
-- AssumeRoleWithWebIdentity (AWS), unsigned: opts.role_arn,
-- opts.session_name, opts.web_identity_token (required), provider_id,
-- policy, policy_arns, duration.

--- assume_role_with_oidc(opts) -> { access_key, secret_key, session_token, expiration, ... } | nil, err
-- AssumeRoleWithOIDC (Alibaba Cloud), unsigned: opts.oidc_provider_arn,
-- opts.role_arn, opts.oidc_token (required), session_name, policy,
-- duration.
local METHODS = {
  assume_role = "AssumeRole", get_session_token = "GetSessionToken", get_caller_identity = "GetCallerIdentity",
  assume_role_with_web_identity = "AssumeRoleWithWebIdentity", assume_role_with_oidc = "AssumeRoleWithOIDC",
}

for method, action in pairs(METHODS) do
  Sts[method] = function(self, params)
    if params ~= nil and type(params) ~= "table" then
      errors.argument("sts." .. method, 1, "params", "must be a table, " .. errors.got(params))
    end
    return self:call(action, params, method)
  end
  -- One call with a client of its own, closed afterwards.
  _M[method] = function(opts)
    local s = _M.new(opts, method)
    local r, err = s[method](s, opts)
    s:close()
    return r, err
  end
end

return _M
