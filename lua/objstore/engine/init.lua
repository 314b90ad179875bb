--- The engine under a client: endpoints and failover, the transport,
-- signers, the credentials cache, the retry policy, the clock (skew) and
-- the observers (hooks, logger, metrics), with the request API every
-- client, STS and credentials fetcher shares:
--   engine:send(record)   -> result | nil, err   one request through the pipeline
--   engine:run(spec)      many at once, each retried alone (objstore.engine.pipeline.run)
--   engine:now()          seconds since the epoch as the server sees them
--   engine:close()
-- objstore.client is an engine with one method per operation on top;
-- objstore.sts is one with STS's signers. The engine knows no credential
-- source: its maker passes the provider (objstore.credentials' chains),
-- so the require graph stays a tree (credentials -> sts -> engine).
local signer_mod = require "objstore.engine.signer"
local endpoint = require "objstore.engine.endpoint"
local errors = require "objstore.errors"
local credentials_util = require "objstore.credentials.util"
local shared_files = require "objstore.credentials.shared_files"
local dialects = require "objstore.engine.dialect"
local retry = require "objstore.engine.retry"
local failover = require "objstore.engine.failover"
local request = require "objstore.engine.request"
local pipeline = require "objstore.engine.pipeline"
local log = require "objstore.log"
local transport_mod = require "objstore.transport"
local auto = require "objstore.transport.auto"
local curl_transport = require "objstore.transport.curl"
local ngx_transport = require "objstore.transport.ngx"
local core = require "objstore.core"

local type, pairs, ipairs, tostring, setmetatable, getmetatable, select, rawget = type, pairs, ipairs, tostring,
  setmetatable, getmetatable, select, rawget
local unpack = table.unpack or unpack
local monotonic = core.time.monotonic
local os_time, os_getenv = os.time, os.getenv

local provider_of = credentials_util.provider
local REFRESH_MARGIN = credentials_util.REFRESH_MARGIN

local Engine = { _VERSION = core._VERSION }
Engine.__index = Engine

local OPTIONS = {
  provider = "string", endpoint = "string", region = "string", access_key = "string", secret_key = "string",
  session_token = "string", credentials = "any", addressing = "string", signature = "string",
  timeout = "number", connect_timeout = "number", tls = "table", transport = "any", proxy = "string",
  user_agent = "string", profile = "string", env = "table", max_connections = "number", retry = "any",
  endpoints = "table", failover = "table", hooks = "table", metrics = "table", log = "function", log_level = "string",
  deadline = "number", read_timeout = "number", send_timeout = "number",
}

--- The client options, by type (documented at objstore.new).
Engine.OPTIONS = OPTIONS

-- TLS for the curl transport (an ngx transport takes its own tls options).
local TLS_OPTIONS = { ca_file = "string", ca_path = "string", insecure = "boolean", min_version = "string" }
local TLS_VERSIONS = { ["1.0"] = true, ["1.1"] = true, ["1.2"] = true, ["1.3"] = true }

local HOOKS = { on_request = "function", on_response = "function", on_retry = "function", on_failover = "function",
  on_error = "function", on_hook_error = "function" }

--- The first bad entry of a hooks table: (name, problem), or nil.
local function hooks_problem(hooks)
  for k, v in pairs(hooks or {}) do
    if not HOOKS[k] then
      return tostring(k), "is not a hook (on_request, on_response, on_retry, on_failover, on_error, on_hook_error)"
    end
    if type(v) ~= "function" then return tostring(k), "must be a function, " .. errors.got(v) end
  end
end

local function misuse(name, problem)
  errors.argument("client.new", 1, "opts" .. (name and ("." .. name) or ""), problem)
end

local function check_options(opts)
  errors.options("client.new", 1, opts, OPTIONS)
  local tls = errors.options("client.new", 1, opts.tls, TLS_OPTIONS, "opts.tls")
  if tls.min_version ~= nil and not TLS_VERSIONS[tls.min_version] then
    misuse("tls.min_version", 'must be "1.0", "1.1", "1.2" or "1.3"')
  end
  errors.options("client.new", 1, opts.hooks, HOOKS, "opts.hooks")
  if opts.deadline ~= nil and not (opts.deadline > 0 and opts.deadline < math.huge) then
    misuse("deadline", "must be a positive number of seconds")
  end
  for _, name in ipairs{ "read_timeout", "send_timeout" } do
    local v = opts[name]
    if v ~= nil and not (v >= 0 and v < math.huge) then misuse(name, "must be a number of seconds, 0 or more") end
  end
end

--- The hooks of the metrics registry and the caller's, each event to both.
local function merge_hooks(a, b)
  if not a then return b end
  if not b then return a end
  local out = {}
  for k, f in pairs(a) do out[k] = f end
  for k, g in pairs(b) do
    local f = out[k]
    out[k] = f and function(e)
      f(e)
      g(e)
    end or g
  end
  return out
end

local function env(opts, name)
  local v = opts.env and opts.env[name]
  if v == nil then v = os_getenv(name) end
  if v == "" then return nil end
  return v
end

-- The first of the environment variables `names` (a dialect's list) that is set.
local function first_env(opts, names)
  for _, name in ipairs(names or {}) do
    local v = env(opts, name)
    if v then return v end
  end
  return nil
end

--- Endpoints: URLs, or { url =, region =, bucket = } where region is the
-- one requests to it are signed for and bucket the name (or a map of
-- names) a bucket has there.
local function parse_endpoints(opts, default_url, region)
  if opts.endpoints and opts.endpoint then misuse("endpoints", "give endpoint or endpoints, not both") end
  local list = opts.endpoints or { default_url }
  if #list == 0 then misuse("endpoints", "must list at least one endpoint") end
  local eps = {}
  for i, item in ipairs(list) do
    local where = opts.endpoints and ("endpoints[" .. i .. "]") or "endpoint"
    local url, ep_region, ep_bucket = item, nil, nil
    if type(item) == "table" then
      url, ep_region, ep_bucket = item.url, item.region, item.bucket
      for k in pairs(item) do
        if k ~= "url" and k ~= "region" and k ~= "bucket" then
          misuse(where, "unknown field '" .. tostring(k) .. "'")
        end
      end
      if ep_region ~= nil and type(ep_region) ~= "string" then misuse(where .. ".region", "must be a string") end
      if ep_bucket ~= nil and type(ep_bucket) ~= "string" and type(ep_bucket) ~= "table" then
        misuse(where .. ".bucket", "must be a bucket name or a map of bucket names")
      end
    end
    local ep, eperr = endpoint.parse(url)
    if not ep then misuse(where, eperr) end
    ep.region = ep_region or region
    ep.bucket = ep_bucket
    eps[i] = ep
  end
  return eps
end

-- The transports take one option schema (objstore.transport.options): the
-- client's options go through as they are, less those that are not the
-- transport's (the cosocket transport's TLS trust is nginx's
-- lua_ssl_trusted_certificate, never tls.ca_file / tls.ca_path: a client
-- made with them uses them wherever it runs on curl).
local function transport_options(opts, kind)
  local tls = opts.tls or {}
  local t = { timeout = opts.timeout, connect_timeout = opts.connect_timeout, proxy = opts.proxy,
    read_timeout = opts.read_timeout, send_timeout = opts.send_timeout, user_agent = opts.user_agent,
    max_connections = opts.max_connections,
    tls = { insecure = tls.insecure, min_version = tls.min_version } }
  if kind == "curl" then t.tls.ca_file, t.tls.ca_path = tls.ca_file, tls.ca_path end
  return t
end

--- The transport: inside nginx (an `ngx` with get_phase) the one chosen
-- per call from the phase (objstore.transport.auto), "curl" forced there
-- with a warning per worker; elsewhere libcurl; "ngx" the cosockets only.
local function make_transport(opts)
  local t = opts.transport
  local in_ngx = auto.phase() ~= nil
  if t == nil and in_ngx then t = "auto" end
  if t == "auto" or (t == "curl" and in_ngx) then
    return auto.new{ ngx = transport_options(opts, "ngx"), curl = transport_options(opts, "curl"),
      force = t == "curl" and "curl" or nil }
  end
  if t == nil or t == "curl" then
    local curl, err = curl_transport.new(transport_options(opts, "curl"))
    if not curl then misuse("transport", tostring(err)) end
    return curl
  end
  if t == "ngx" then return ngx_transport.new(transport_options(opts, "ngx")) end
  if type(t) == "string" then misuse("transport", "must be 'auto', 'curl', 'ngx' or a transport object") end
  return transport_mod.check(t)
end

--- Checks a client's options table (raises on misuse); returns it ({}
-- for nil).
function Engine.check(opts)
  opts = opts or {}
  check_options(opts)
  local provider = opts.provider or "s3"
  if not dialects.get(provider) then
    misuse("provider", "must be " .. dialects.choices() .. ", got '" .. tostring(provider) .. "'")
  end
  return opts
end

--- Fills `self` (a table whose metatable chains to Engine) from checked
-- options: endpoints and failover, transport, signers, retry policy,
-- hooks and logger, clock. Credentials: the static keys or provider of
-- opts, else `default_provider` (the caller's default chain; the engine
-- knows no credential source). `new_signer(region, ak, sk, token)`, when
-- given, makes the signers instead of objstore.engine.signer (STS's own
-- signatures). Never does I/O except reading the shared AWS config file
-- when region/endpoint are not given.
function Engine.init(self, opts, default_provider, new_signer)
  local provider = opts.provider or "s3"
  local d = dialects.get(provider)
  self.provider, self.dialect, self.clock_skew, self.signers = provider, d, 0, {}
  self.refresh_margin, self.hooks, self.deadline, self.timeout = REFRESH_MARGIN, opts.hooks, opts.deadline,
    opts.timeout

  local shared_settings = {}
  if d.shared_config and not (opts.region and (opts.endpoint or opts.endpoints)) then
    local _, settings = shared_files.from_shared_files(opts.profile, opts.env)
    shared_settings = settings or {}
  end
  local region = opts.region or first_env(opts, d.region_env) or shared_settings.region
  local ep_url = opts.endpoint or first_env(opts, d.endpoint_env) or shared_settings.endpoint_url
  if d.region_prefix and region then region = region:gsub(d.region_prefix, "") end
  if not region then
    if not d.default_region then misuse("region", d.region_misuse) end
    region = d.default_region
  end
  self.region = region
  local eps = parse_endpoints(opts, ep_url or endpoint.default_url(d, region), region)
  local fo = opts.failover or {}
  for k, v in pairs(fo) do
    if (k ~= "threshold" and k ~= "cooldown") or type(v) ~= "number" or v <= 0 then
      misuse("failover." .. tostring(k), "must be threshold or cooldown, a positive number")
    end
  end
  self.endpoints = failover.new(eps, fo)
  -- Logging through the caller's function, from the pipeline's events.
  self.logger = log.new(opts.log, opts.log_level, "client.new")
  if opts.metrics then
    if type(opts.metrics.hooks) ~= "function" then misuse("metrics", "must be a registry of objstore.metrics.new()") end
    self.hooks = merge_hooks(opts.metrics:hooks(self.endpoints), opts.hooks)
  end
  -- Every region an endpoint is signed for gets its signer.
  local regions, seen = {}, {}
  for _, ep in ipairs(eps) do
    if not seen[ep.region] then regions[#regions + 1], seen[ep.region] = ep.region, true end
  end
  self.regions = regions
  self.endpoint = eps[1]

  local addressing = opts.addressing or endpoint.default_addressing(eps[1], d)
  if addressing ~= "virtual" and addressing ~= "path" then
    misuse("addressing", "must be 'virtual' or 'path', got '" .. addressing .. "'")
  end
  if addressing == "path" and not d.path_style then
    misuse("addressing", d.title .. " does not accept path-style addressing")
  end
  self.addressing = addressing

  local algorithm = d.signatures[opts.signature or d.default_signature]
  if not algorithm then misuse("signature", d.signature_misuse) end
  self.algorithm = algorithm
  self.new_signer = new_signer or function(r, ak, sk, token)
    return signer_mod.new{ algorithm = algorithm, access_key = ak, secret_key = sk, session_token = token, region = r }
  end

  if opts.access_key or opts.secret_key then
    if type(opts.access_key) ~= "string" or type(opts.secret_key) ~= "string" then
      misuse("access_key", "access_key and secret_key go together")
    end
    for _, name in ipairs{ "access_key", "secret_key", "session_token" } do
      local v = opts[name]
      if v ~= nil and (v == "" or v:find("[%z\r\n]")) then misuse(name, "is empty or contains NUL, CR or LF") end
    end
    self.creds_provider = provider_of{ access_key = opts.access_key, secret_key = opts.secret_key,
      session_token = opts.session_token }
  elseif opts.credentials ~= nil then
    self.creds_provider = provider_of(opts.credentials)
    if not self.creds_provider then
      misuse("credentials", "must be a function, an object with :get(), or a table")
    end
  else
    self.creds_provider = default_provider
    if not self.creds_provider then misuse("credentials", "are required (keys or a provider)") end
  end

  self.retry = retry.policy(opts.retry)
  local t = make_transport(opts)
  self.transport = t
  self.capabilities = transport_mod.capabilities(t)
  self.drive = transport_mod.runner(t)
  self.sleep = self.retry.sleep or transport_mod.sleeper(t)
  return self
end

--- now() -> seconds
-- Seconds since the epoch as the server sees them (see clock skew).
-- Always the system clock (time(2), a vDSO call), inside nginx too: nginx's
-- cached time can be minutes old in a long-running handler or timer, and
-- ngx.update_time() to refresh it costs more than the whole read.
function Engine:now()
  return os_time() + self.clock_skew
end

--- send(req) -> result | nil, err
-- Sends one request record (from build_request, or a table given to
-- objstore.engine.request.new) through the pipeline: signed, sent, retried,
-- observed like any operation.
function Engine:send(req)
  if not request.is(req) then req = request.new(req) end
  if req.error then return nil, req.error end
  return pipeline.call(self, req)
end

--- run(spec) -> true | nil, err
-- Sends many request records concurrently, each retried on its own:
-- spec = { concurrency = n (1-1024, default 8), next = function() ->
-- record | nil (nil: none ready, asked again after each completion),
-- done = function(req, res, err) -> true | false, err (false stops the
-- run) }; see objstore.engine.pipeline.run.
function Engine:run(spec)
  if type(spec) ~= "table" or type(spec.next) ~= "function" or type(spec.done) ~= "function" then
    errors.argument("client.run", 1, "spec", "must be a table with next() and done()")
  end
  local n = spec.concurrency
  if n ~= nil and (type(n) ~= "number" or n ~= n or n % 1 ~= 0 or n < 1 or n > 1024) then
    errors.argument("client.run", 1, "spec.concurrency", "must be a whole number from 1 to 1024, " .. errors.got(n))
  end
  return pipeline.run(self, spec)
end

--- sign(req) -> { method, url, headers, body, ... }
-- The signed transport request for a record at the engine's current
-- time, for the first endpoint (not sent).
function Engine:sign(req)
  return self:sign_at(req, nil, true)
end

--- Sends an event to the observers (hooks, the call's hooks, the
-- logger) when anyone listens; see objstore.engine.pipeline's notify.
function Engine:notify(name, event)
  if pipeline.observed(self) then pipeline.notify(self, name, event) end
end

--- Waits `seconds` the transport's way (ngx.sleep in nginx, a blocking
-- sleep elsewhere, the retry policy's own sleep when it has one).
function Engine:pause(seconds)
  return self.sleep(seconds)
end

--- semaphore() -> { wait(seconds), post(n) } | nil
-- A semaphore of the transport's I/O model (cosockets: ngx.semaphore), for
-- a wait on another request's work that is woken once when it is done;
-- nil when the transport has none (its requests never wait on each other).
function Engine:semaphore()
  local t = self.transport
  if type(t.semaphore) ~= "function" then return nil end
  return t:semaphore()
end

--- The transport requests go through (a credentials fetcher decides from
-- it whether it may re-enter it).
function Engine:get_transport()
  return self.transport
end

--- The signature algorithm: "aws4", "oss4" or "oss1".
function Engine:signature_algorithm()
  return self.algorithm
end

--- The signed transport request for a record at `time` (default: the
-- engine's now), for the healthiest endpoint, or with `first`, the first
-- one (what comparisons with the SDKs expect).
function Engine:sign_at(req, time, first)
  local member = first and self.endpoints.members[1] or self.endpoints:healthiest()
  return pipeline.sign(self, req, member, time or self:now())
end

--- Drops the signers and the credentials held, and closes the transport
-- when `close_transport` is not false.
function Engine:reset(close_transport)
  for _, s in pairs(self.signers) do s:close() end
  self.signers, self.creds = {}, nil
  if close_transport ~= false and self.transport and self.transport.close then self.transport:close() end
end

--- The hooks table's first bad entry: (name, problem), or nil.
Engine.hooks_problem = hooks_problem

--- close()
-- Closes the transport (its connections) and the signers and forgets the
-- credentials; the client must not be used afterwards.
function Engine:close()
  self:reset(true)
end

Engine.__tostring = function(self)
  return "objstore.engine(" .. self.provider .. ", " .. self.endpoint.url .. ")"
end

--- Per-call hooks and deadline: `opts.hooks` and `opts.deadline` in the
-- last argument of any operation. The operation runs on a view of the
-- client whose events go to these hooks as well as to the client's
-- (objstore.engine.pipeline `notify`) and whose requests share one deadline
-- (opts.deadline, else the client's `deadline`, counted from now; an
-- enclosing call's earlier one wins); every other field is read from and
-- written to the client itself (credentials, clock skew, endpoint health
-- stay shared), so the view is safe for concurrent calls on one client,
-- each with its own hooks. Returns the view and the arguments with
-- `hooks` and `deadline` taken out of a copy of opts; or self and the
-- arguments unchanged.
function Engine:call_view(name, n, ...)
  local opts = n > 0 and (select(n, ...)) or nil
  if type(opts) ~= "table" or request.is(opts) then opts = nil end
  local hooks, deadline = opts and opts.hooks, opts and opts.deadline
  local parent = rawget(self, "call")
  local inherited = parent and parent.deadline_at
  if hooks == nil and deadline == nil and (inherited or not self.deadline) then return self, ... end
  local args = { ... }
  errors.options("client." .. name, n, hooks, HOOKS, "opts.hooks")
  if deadline ~= nil and (type(deadline) ~= "number" or not (deadline > 0 and deadline < math.huge)) then
    errors.argument("client." .. name, n, "opts.deadline", "must be a positive number of seconds, "
      .. errors.got(deadline))
  end
  if opts and (hooks ~= nil or deadline ~= nil) then
    local rest = {}
    for key, v in pairs(opts) do
      if key ~= "hooks" and key ~= "deadline" then rest[key] = v end
    end
    args[n] = rest
  end
  local call = { hooks = hooks, parent = parent, deadline_at = inherited, deadline = parent and parent.deadline }
  local d = deadline or (not inherited and self.deadline) or nil
  if d then
    local at = monotonic() + d
    if not inherited or at < inherited then call.deadline_at, call.deadline = at, d end
  end
  local view = setmetatable({ call = call }, { __index = self, __newindex = self,
    __tostring = getmetatable(self).__tostring })
  return view, unpack(args, 1, n)
end

--- A bare engine (no operations): Engine.new(opts, default_provider, new_signer).
function Engine.new(opts, default_provider, new_signer)
  opts = Engine.check(opts)
  return Engine.init(setmetatable({}, Engine), opts, default_provider, new_signer)
end

return Engine
