--- The client: options, credentials, and the one request pipeline every
-- operation goes through (locate -> sign -> transport -> parse). The
-- operations themselves live in objstore/client/*.lua and are added to
-- this class; they describe a request and how to read its answer.
local signer_mod = require "objstore.signer"
local endpoint = require "objstore.endpoint"
local errors = require "objstore.errors"
local credentials = require "objstore.credentials"
local dialects = require "objstore.dialect"
local retry = require "objstore.retry"
local clock = require "objstore.clock"
local failover = require "objstore.failover"
local xml = require "objstore.xml"
local core = require "objstore.core"

local type, pairs, ipairs, tostring, tonumber, setmetatable, pcall =
  type, pairs, ipairs, tostring, tonumber, setmetatable, pcall
local os_time, os_getenv = os.time, os.getenv
local concat, sort = table.concat, table.sort
local uri_encode = core.encode.uri_encode

local Client = { _VERSION = core._VERSION }
Client.__index = Client

local OPTIONS = {
  provider = "string", endpoint = "string", region = "string", access_key = "string", secret_key = "string",
  session_token = "string", credentials = "any", addressing = "string", signature = "string",
  timeout = "number", connect_timeout = "number", tls = "table", transport = "any", proxy = "string",
  user_agent = "string", profile = "string", env = "table", max_connections = "number", retry = "any",
  endpoints = "table", failover = "table",
}

local function check_options(opts)
  local unknown = {}
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then
      unknown[#unknown + 1] = tostring(k)
    elseif want ~= "any" and type(v) ~= want then
      errors.argument("new", "option '" .. k .. "' must be a " .. want .. ", got " .. type(v), 3)
    end
  end
  if #unknown > 0 then
    sort(unknown)
    errors.argument("new", "unknown option(s): " .. concat(unknown, ", "), 3)
  end
end

local function env(opts, name)
  local v = opts.env and opts.env[name]
  if v == nil then v = os_getenv(name) end
  if v == "" then return nil end
  return v
end

--- Creates a client. Raises on misuse; never does I/O except reading the
-- shared AWS config files when region/endpoint/credentials are not given.
function Client.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then errors.argument("new", "options table expected, got " .. type(opts), 2) end
  check_options(opts)
  local provider = opts.provider or "s3"
  if provider ~= "s3" and provider ~= "oss" then
    errors.argument("new", "provider must be 's3' or 'oss', got '" .. provider .. "'", 2)
  end
  local self = setmetatable({ provider = provider, dialect = dialects[provider], clock_skew = 0 }, Client)

  local shared_settings = {}
  if provider == "s3" and not (opts.region and opts.endpoint) then
    local _, settings = credentials.from_shared_files(opts.profile, opts.env)
    shared_settings = settings or {}
  end
  local region = opts.region
    or (provider == "oss" and env(opts, "OSS_REGION"))
    or (provider == "s3" and (env(opts, "AWS_REGION") or env(opts, "AWS_DEFAULT_REGION") or shared_settings.region))
  local ep_url = opts.endpoint
    or (provider == "oss" and env(opts, "OSS_ENDPOINT"))
    or (provider == "s3" and (env(opts, "AWS_ENDPOINT_URL_S3") or env(opts, "AWS_ENDPOINT_URL")
      or shared_settings.endpoint_url))
  if provider == "oss" and region then region = region:gsub("^oss%-", "") end
  if not region then
    if provider == "oss" then
      errors.argument("new", "region is required for OSS (e.g. 'cn-hangzhou')", 2)
    end
    region = "us-east-1"
  end
  if opts.endpoints and opts.endpoint then
    errors.argument("new", "give endpoint or endpoints, not both", 2)
  end
  local urls = opts.endpoints or { ep_url or endpoint.default_url(provider, region) }
  if #urls == 0 then errors.argument("new", "endpoints must list at least one URL", 2) end
  local eps = {}
  for i, u in ipairs(urls) do
    local ep, eperr = endpoint.parse(u)
    if not ep then errors.argument("new", (opts.endpoints and ("endpoints[" .. i .. "]: ") or "") .. eperr, 2) end
    eps[i] = ep
  end
  local fo = opts.failover or {}
  for k, v in pairs(fo) do
    if (k ~= "threshold" and k ~= "cooldown") or type(v) ~= "number" or v <= 0 then
      errors.argument("new", "failover." .. tostring(k) .. " must be threshold or cooldown, a positive number", 2)
    end
  end
  self.endpoints = failover.new(eps, fo)
  self.endpoint, self.region = eps[1], region

  local addressing = opts.addressing or endpoint.default_addressing(eps[1], provider)
  if addressing ~= "virtual" and addressing ~= "path" then
    errors.argument("new", "addressing must be 'virtual' or 'path', got '" .. addressing .. "'", 2)
  end
  if provider == "oss" and addressing == "path" then
    errors.argument("new", "OSS does not accept path-style addressing", 2)
  end
  self.addressing = addressing

  local algorithm = "aws4"
  if provider == "oss" then
    local sig = opts.signature or "v4"
    if sig ~= "v4" and sig ~= "v1" then errors.argument("new", "signature must be 'v4' or 'v1' for OSS", 2) end
    algorithm = sig == "v4" and "oss4" or "oss1"
  elseif opts.signature and opts.signature ~= "v4" then
    errors.argument("new", "S3 supports only signature 'v4'", 2)
  end
  self.algorithm = algorithm

  if opts.access_key or opts.secret_key then
    if type(opts.access_key) ~= "string" or type(opts.secret_key) ~= "string" then
      errors.argument("new", "access_key and secret_key go together", 2)
    end
    self.creds_provider = credentials.provider{ access_key = opts.access_key, secret_key = opts.secret_key,
      session_token = opts.session_token }
  elseif opts.credentials ~= nil then
    self.creds_provider = credentials.provider(opts.credentials)
    if not self.creds_provider then
      errors.argument("new", "credentials must be a function, an object with :get(), or a table", 2)
    end
  else
    self.creds_provider = credentials.default_chain(provider, { profile = opts.profile, env = opts.env })
  end

  local ok, policy = pcall(retry.policy, opts.retry)
  if not ok then errors.argument("new", "retry: " .. tostring(policy):gsub("^.-objstore%.retry: ", ""), 2) end
  self.retry = policy

  if opts.transport == nil or opts.transport == "curl" then
    local tls = opts.tls or {}
    self.transport = require("objstore.transport.curl").new{
      timeout = opts.timeout, connect_timeout = opts.connect_timeout, proxy = opts.proxy,
      ca_file = tls.ca_file, ca_path = tls.ca_path, insecure = tls.insecure, user_agent = opts.user_agent,
      max_connections = opts.max_connections,
    }
  elseif type(opts.transport) == "table" and type(opts.transport.request) == "function" then
    self.transport = opts.transport
  else
    errors.argument("new", "transport must be 'curl' or an object with :request(req)", 2)
  end
  return self
end

--- Current credentials, refreshed when they are about to expire. Creates or
-- re-keys the signer. Returns true or nil, err.
function Client:_credentials(now)
  local c = self.creds
  if c and (not c.expiration or c.expiration - credentials.REFRESH_MARGIN > now) then return true end
  local ok, got, perr = pcall(self.creds_provider)
  if not ok then
    return nil, errors.new{ code = "CredentialsError", message = "credentials provider failed: " .. tostring(got),
      retryable = false }
  end
  if type(got) ~= "table" or type(got.access_key) ~= "string" or type(got.secret_key) ~= "string" then
    return nil, errors.new{ code = "NoCredentials", message = tostring(perr or "no credentials"), retryable = false }
  end
  if not self.signer then
    self.signer = signer_mod.new{ algorithm = self.algorithm, access_key = got.access_key,
      secret_key = got.secret_key, session_token = got.session_token, region = self.region }
  else
    self.signer:set_credentials(got.access_key, got.secret_key, got.session_token)
  end
  self.creds = { expiration = got.expiration, access_key = got.access_key }
  return true
end

--- Seconds since the epoch as the server sees them (see clock skew).
function Client:now()
  return os_time() + self.clock_skew
end

--- Encodes a query table: { name = value | true } or an array of
-- { name, value } pairs; `true` (or "") makes a value-less sub-resource
-- like "?uploads". Sorted, so the same request always gets the same URL.
local function encode_query(q)
  if not q then return "" end
  local parts = {}
  if q[1] ~= nil then
    for _, kv in ipairs(q) do
      local k, v = kv[1], kv[2]
      parts[#parts + 1] = (v == true or v == nil) and uri_encode(k) or (uri_encode(k) .. "=" .. uri_encode(tostring(v)))
    end
  else
    for k, v in pairs(q) do
      if v ~= false then
        parts[#parts + 1] = (v == true) and uri_encode(k) or (uri_encode(k) .. "=" .. uri_encode(tostring(v)))
      end
    end
  end
  sort(parts)
  return concat(parts, "&")
end
Client._encode_query = encode_query

local function header_value(headers, lname)
  for k, v in pairs(headers) do
    if k:lower() == lname then return v end
  end
  return nil
end
Client._header_value = header_value

--- Reads an error response into an error value.
function Client:_error_from_response(op, res)
  local d = self.dialect
  local h = res.headers or {}
  local e = { status = res.status, op = op.name, bucket = op.bucket, key = op.key,
    request_id = h[d.request_id], host_id = d.host_id and h[d.host_id] or nil }
  local body = res.body
  if type(body) == "string" and body:find("<Error", 1, true) then
    local parsed = xml.error(body)
    if parsed then
      for k, v in pairs(parsed) do
        if e[k] == nil then e[k] = v end
      end
      e.code, e.message = parsed.code, parsed.message
      e.request_id = parsed.request_id or e.request_id
      e.host_id = parsed.host_id or e.host_id
    end
  end
  if not e.code then
    -- HEAD and some proxies answer without a body: name the status.
    local by_status = { [301] = "PermanentRedirect", [304] = "NotModified", [400] = "BadRequest",
      [403] = "AccessDenied", [404] = op.key and "NoSuchKey" or (op.bucket and "NoSuchBucket" or "NotFound"),
      [405] = "MethodNotAllowed", [409] = "Conflict", [412] = "PreconditionFailed",
      [416] = "InvalidRange", [429] = "TooManyRequests", [500] = "InternalError", [501] = "NotImplemented",
      [502] = "BadGateway", [503] = "ServiceUnavailable", [504] = "GatewayTimeout" }
    e.code = by_status[res.status] or ("HTTP" .. tostring(res.status))
    e.message = e.message or ("HTTP status " .. tostring(res.status))
  end
  return errors.new(e)
end

--- Builds and signs the transport request for an operation. `op` fields:
--   name, method, bucket, key, query, headers (map), body, body_length,
--   sink, hashes, body_hashes, timeout, ok_status (set of extra success
--   statuses), parse(res, op).
-- Returns the transport request or nil, err.
function Client:_build(op)
  local now = self:now()
  local ok, cerr = self:_credentials(now)
  if not ok then
    cerr.op, cerr.bucket, cerr.key = op.name, op.bucket, op.key
    return nil, cerr
  end
  -- Each attempt goes to the healthiest endpoint, avoiding the one that
  -- just failed when there is another.
  local member = self.endpoints:pick(op._member)
  op._member = member
  local ep = member.ep
  if self.provider == "oss" and op.bucket and not endpoint.dns_compatible(op.bucket, "http") then
    -- OSS serves buckets only as host names: a name that cannot be one is misuse.
    errors.argument(op.name, "'" .. op.bucket .. "' is not a valid OSS bucket name", 4)
  end
  local hostport, path = endpoint.locate(ep, self.addressing, op.bucket, op.key)
  local query = encode_query(op.query)
  local headers = {}
  for k, v in pairs(op.headers or {}) do headers[k] = tostring(v) end
  local sreq = { method = op.method, scheme = ep.scheme, host = hostport, path = path, query = query,
    headers = headers, payload_hash = op.payload_hash or "UNSIGNED-PAYLOAD", time = now,
    bucket = op.bucket, key = op.key, sub_resources = op.sub_resources }
  local added, serr = self.signer:sign(sreq)
  if not added then
    return nil, errors.new{ code = "SigningError", message = serr, op = op.name, bucket = op.bucket, key = op.key,
      retryable = false }
  end
  for k, v in pairs(added) do headers[k] = v end
  local url = ep.scheme .. "://" .. hostport .. path .. (query ~= "" and ("?" .. query) or "")
  return { method = op.method, url = url, headers = headers, body = op.body, body_length = op.body_length,
    sink = op.sink, hashes = op.hashes, body_hashes = op.body_hashes, timeout = op.timeout }
end

--- Turns a transport outcome into the operation's result or nil, err,
-- and tells the endpoint's circuit breaker how it went.
function Client:_finish(op, res, terr)
  local result, err = self:_finish_result(op, res, terr)
  local m = op._member
  if m then
    if err and failover.counts_against(err) then
      self.endpoints:failure(m)
      err.endpoint = m.ep.url
    elseif res then
      self.endpoints:success(m)
    end
  end
  return result, err
end

function Client:_finish_result(op, res, terr)
  if not res then
    local e = type(terr) == "table" and terr or { code = "TransportError", message = tostring(terr) }
    return nil, errors.new{ code = e.code or "TransportError", message = e.message or tostring(terr),
      retryable = e.retryable ~= false, op = op.name, bucket = op.bucket, key = op.key, curl_code = e.curl_code }
  end
  local st = res.status
  if (st >= 200 and st < 300) or (op.ok_status and op.ok_status[st]) then
    if op.parse then return op.parse(res, op) end
    return res
  end
  return nil, self:_error_from_response(op, res)
end

--- Can this request's body be sent again? Strings and file ranges can;
-- a reader function only if the op says how to rewind it. A function sink
-- that may already have been fed cannot be fed again.
local function rewindable(op)
  local b = op.body
  if type(b) == "function" and not op.rewind then return false end
  if type(op.sink) == "function" and not op.sink_rewind then return false end
  return true
end

--- Learns the server's clock from a response's Date header when ours is far
-- off (or when the server said RequestTimeTooSkewed), so every later
-- signature - including retries and other requests of this client - uses it.
function Client:_observe_clock(res, err)
  local date = res and res.headers and res.headers["date"]
  if not date then return end
  local off = clock.skew_from(date, os_time(), err and err.code == "RequestTimeTooSkewed")
  if off then self.clock_skew = off end
end

--- Builds, signs and sends one request, retrying as the client's (or the
-- op's) retry policy allows; returns the parse result (or the transport
-- result) or nil, err (err.attempts says how many were made).
function Client:_call(op)
  if self._dry_run then return self:_build(op) end
  local policy = op.retry or self.retry
  local attempt, cost = 0, 0
  while true do
    attempt = attempt + 1
    policy:before_attempt()
    local treq, berr = self:_build(op)
    if not treq then return nil, berr end
    local res, terr = self.transport:request(treq)
    local result, err = self:_finish(op, res, terr)
    if res then self:_observe_clock(res, err) end
    if result ~= nil or err == nil then
      policy:on_success(cost)
      return result, err
    end
    err.attempts = attempt
    if err.code == "ExpiredToken" or err.code == "ExpiredTokenException"
        or (err.code == "InvalidAccessKeyId" and self.creds and self.creds.expiration) then
      self.creds = nil -- fetch fresh credentials before the next attempt
    end
    if res and res.headers then
      local ra = tonumber(res.headers["retry-after"])
      if ra then err.retry_after = ra end
    end
    local delay, spent = policy:retry_delay(err, attempt, rewindable(op))
    if not delay and failover.counts_against(err) and rewindable(op) and attempt < policy.max_attempts
        + #self.endpoints.members - 1 and self.endpoints:usable_count() > 0 and #self.endpoints.members > 1 then
      -- Another endpoint may work: fail over at once rather than give up.
      delay, spent = 0, 0
    end
    if not delay then return nil, err end
    cost = cost + (spent or 0)
    if op.on_retry then op.on_retry(err, attempt, delay) end
    if delay > 0 then policy.sleep(delay) end
  end
end

--- Parses an XML response body into a table (see objstore.xml).
function Client._parse_xml(_, res, op)
  local t, root = xml.parse(res.body or "")
  if not t then
    return nil, errors.new{ code = "MalformedResponse", message = "cannot parse the XML response: " .. tostring(root),
      status = res.status, op = op.name, bucket = op.bucket, key = op.key, retryable = true }
  end
  if t.encoding_type == "url" then xml.decode_url_fields(t) end
  return t, root
end

--- Request id of a response, for results.
function Client:_request_id(res)
  return res.headers and res.headers[self.dialect.request_id] or nil
end

--- Returns what would be sent for an operation, without sending it: the
-- transport request { method, url, headers, body, ... } at the client's
-- current time (or `time` when given, for reproducible comparisons).
function Client:prepare(name, ...)
  local fn = Client[name]
  if type(fn) ~= "function" or name:sub(1, 1) == "_" then
    errors.argument("prepare", "unknown operation '" .. tostring(name) .. "'", 2)
  end
  local dry = setmetatable({ _dry_run = true }, { __index = self })
  return fn(dry, ...)
end

--- A presigned URL for (method, bucket, key). opts: expires (seconds,
-- default 3600), query (extra parameters, e.g. response-content-type),
-- headers (signed headers the caller will send), version_id, time.
function Client:presign(method, bucket, key, opts)
  opts = opts or {}
  if type(method) ~= "string" then errors.argument("presign", "method must be a string", 2) end
  local now = opts.time or self:now()
  local ok, cerr = self:_credentials(now)
  if not ok then return nil, cerr end
  local ep = self.endpoint
  local hostport, path = endpoint.locate(ep, self.addressing, bucket, key)
  local q = {}
  for k, v in pairs(opts.query or {}) do q[k] = v end
  if opts.version_id then q.versionId = opts.version_id end
  local url, err = self.signer:presign{ method = method:upper(), scheme = ep.scheme, host = hostport, path = path,
    query = encode_query(q), headers = opts.headers, time = now, expires = opts.expires or 3600,
    bucket = bucket, key = key }
  if not url then return nil, errors.new{ code = "SigningError", message = err, op = "Presign", bucket = bucket,
    key = key, retryable = false } end
  return url
end

function Client:close()
  if self.transport and self.transport.close then self.transport:close() end
  if self.signer then self.signer:close() end
end

return Client
