--- Credentials in OpenResty: any provider wrapped so that each worker keeps
-- what it returned, refreshes it ahead of expiry with one light thread
-- while its other requests wait (ngx.semaphore) or go on with the still
-- valid credentials, and - with a `lua_shared_dict` - only one worker of
-- all calls the provider (the credentials endpoint) per refresh.
--
--    local cached = require("objstore.openresty.credentials").cached
--    local provider = cached(my_provider, { dict = "objstore_creds", key = "app" })
--    local c = objstore.new{ endpoint = ..., credentials = provider }
--
-- `my_provider` is any provider of objstore.credentials: a function
-- returning `{ access_key, secret_key, session_token?, expiration? }` (epoch
-- seconds) or nil, err, an object with :get() or :resolve() (the
-- refreshing providers, credentials.assume_role{...} among them), or a
-- table of static credentials; it may do cosocket I/O (it runs in a request
-- phase or a timer). In a phase that cannot yield (init_worker, log,
-- header_filter, ...) valid cached credentials are returned as anywhere;
-- a provider that needs cosockets there, or a refresh another light thread
-- or worker is doing, gives nil, err (CredentialsError naming
-- objstore.openresty.defer), never a raise. Whatever the client passes a provider (`client, reason`)
-- is passed on; `reason == "rejected"` (the server refused the
-- credentials) drops this worker's copy and the shared one first.
--
-- Options: `dict` (a lua_shared_dict name; without it each worker calls
-- the provider itself), `key` (the entry in the dict, default "default":
-- one per distinct provider), `ahead` (seconds before `expiration` at which
-- a refresh starts, default 600: above the client's own 300-second margin,
-- so its requests keep valid credentials while the refresh runs),
-- `lock_timeout` (seconds the cross-worker sentinel lives, default 10: a
-- worker that dies mid-refresh holds it no longer), `wait` (seconds a
-- request waits for a refresh in progress, default 10).
--
-- How: in a worker, the first caller without usable credentials becomes the
-- refresher; later callers wait on a semaphore until it is done. When the
-- cached credentials are due but not expired, the caller gets them at once
-- and a timer (`ngx.timer.at(0)`) refreshes in the background. The
-- refresher first looks in the dict for credentials another worker got; if
-- none, it takes the sentinel (`dict:add(key .. ":lock", ..., lock_timeout)`)
-- and calls the provider, storing the result in the dict (JSON, expiring
-- with the credentials); a worker that loses the `add` polls the dict until
-- the winner stored them or the sentinel expired. The dict holds the
-- secret in nginx's shared memory (readable by the workers only, never
-- logged).
--
-- Derived signing keys are cached in each client's signers (per region and
-- UTC date); keep one client per worker (a module-level variable of the
-- handler) to keep them across requests.
-- @module objstore.openresty.credentials
local errors = require "objstore.errors"
local credentials = require "objstore.credentials"
local auto = require "objstore.transport.auto"

local type, rawget, tostring, pcall = type, rawget, tostring, pcall
local _G = _G

local _M = {}

_M.DEFAULTS = { ahead = 600, lock_timeout = 10, wait = 10 }

local OPTIONS = { dict = "string", key = "string", ahead = "number", lock_timeout = "number", wait = "number" }

local function live_now(ngx)
  ngx.update_time()
  return ngx.now()
end

local function valid(c, at)
  return c ~= nil and (c.expiration == nil or c.expiration > at)
end

-- When a refresh of `c` is due: `ahead` before it expires, or half-way
-- through its life when that is shorter (short-lived credentials).
local function due(c, at)
  return c.refresh_at ~= nil and c.refresh_at <= at
end

local function copy(c, now, ahead)
  local exp = c.expiration
  local out = { access_key = c.access_key, secret_key = c.secret_key, session_token = c.session_token,
    expiration = exp }
  if type(exp) == "number" then
    local life = exp - now
    out.refresh_at = exp - (life / 2 < ahead and life / 2 or ahead)
  end
  return out
end

-- Whether the running phase may yield (cosockets, ngx.sleep, a semaphore
-- wait): not init, init_worker, log, header_filter, body_filter, ...
local function can_yield(ngx)
  return auto.COSOCKET_PHASES[ngx.get_phase()] == true
end

local function cannot_wait(ngx, what)
  return errors.new{ code = "CredentialsError", retryable = true, message = what .. " and the "
    .. tostring(ngx.get_phase()) .. " phase cannot wait for it: defer the call with objstore.openresty.defer "
    .. "(ngx.timer.at(0, ...))" }
end

--- cached(provider, opts) -> provider
-- `provider` wrapped for nginx workers (see the module notes): each worker
-- keeps what it returned and refreshes it ahead of expiry with one light
-- thread; with opts.dict one worker of all calls the provider per refresh.
-- opts.dict: a lua_shared_dict name (without it each worker calls the
--   provider itself).
-- opts.key: the entry in the dict (default "default").
-- opts.ahead: seconds before expiration at which a refresh starts
--   (default 600).
-- opts.lock_timeout: seconds the cross-worker sentinel lives (default 10).
-- opts.wait: seconds a request waits for a refresh in progress (default 10).
-- errors: CredentialsError (in a phase that cannot wait for a refresh).
function _M.cached(provider, opts)
  local given = provider
  provider = credentials.provider(provider)
  if not provider then
    errors.argument("openresty.credentials.cached", 1, "provider", "must be a function, an object with :get() or "
      .. ":resolve() (credentials.assume_role{...}) or a table of static credentials, " .. errors.got(given))
  end
  opts = errors.options("openresty.credentials.cached", 2, opts, OPTIONS)
  local ahead = opts.ahead or _M.DEFAULTS.ahead
  local lock_timeout = opts.lock_timeout or _M.DEFAULTS.lock_timeout
  local wait = opts.wait or _M.DEFAULTS.wait
  local key = opts.key or "default"
  local lock_key = key .. ":lock"
  -- Per worker (this closure's upvalues).
  local creds, last_err, refreshing, sema = nil, nil, false, nil
  local cjson

  -- Calls the provider: { credentials } or nil, err, never raises.
  local function call_provider(ngx, client, reason)
    local ok, c, err = pcall(provider, client, reason)
    if not ok then
      local where = ""
      if ngx and not can_yield(ngx) then
        where = " in the " .. tostring(ngx.get_phase()) .. " phase (no cosockets there: defer the call with "
          .. "objstore.openresty.defer, ngx.timer.at(0, ...))"
      end
      return nil, errors.new{ code = "CredentialsError", message = "credentials provider failed" .. where .. ": "
        .. tostring(c), retryable = false }
    end
    if type(c) ~= "table" or type(c.access_key) ~= "string" or type(c.secret_key) ~= "string" then
      return nil, errors.is(err) and err or errors.new{ code = "NoCredentials", retryable = false,
        message = tostring(err or "the provider returned no credentials") }
    end
    return copy(c, ngx and live_now(ngx) or os.time(), ahead)
  end

  -- Fresh credentials from the dict (another worker's), or nil.
  local function from_dict(dict, at)
    local s = dict:get(key)
    if not s then return nil end
    local ok, c = pcall(cjson.decode, s)
    if ok and type(c) == "table" and valid(c, at) and not due(c, at) then return c end
    return nil
  end

  local function fetch_shared(ngx, dict, client, reason)
    cjson = cjson or require "cjson.safe"
    local deadline = live_now(ngx) + wait
    while true do
      local now = live_now(ngx)
      local c = from_dict(dict, now)
      if c then return c end
      local won = dict:add(lock_key, ngx.worker.pid(), lock_timeout)
      if won then
        local got, err = call_provider(ngx, client, reason)
        if got then
          local ttl = got.expiration and (got.expiration - live_now(ngx)) or 0
          if ttl >= 0 then dict:set(key, cjson.encode(got), ttl > 0 and ttl or 0) end
        end
        dict:delete(lock_key)
        return got, err
      end
      if now >= deadline then
        return nil, errors.new{ code = "CredentialsError", retryable = true,
          message = "no credentials from the worker refreshing them within " .. wait .. " s" }
      end
      if not can_yield(ngx) then return nil, cannot_wait(ngx, "another worker is refreshing the credentials") end
      ngx.sleep(0.02)
    end
  end

  local function refresh(ngx, client, reason)
    refreshing = true
    local dict = opts.dict and ngx.shared[opts.dict]
    local got, err
    if opts.dict and not dict then
      err = errors.new{ code = "CredentialsError", retryable = false,
        message = "no lua_shared_dict named '" .. opts.dict .. "' in the nginx configuration" }
    elseif dict then
      local ok, g, e = pcall(fetch_shared, ngx, dict, client, reason)
      if ok then got, err = g, e else err = errors.new{ code = "CredentialsError", message = tostring(g) } end
    else
      got, err = call_provider(ngx, client, reason)
    end
    if got then creds, last_err = got, nil else last_err = err end
    refreshing = false
    if sema then
      local waiting = sema:count()
      if waiting < 0 then sema:post(-waiting) end
    end
  end

  return function(client, reason)
    local ngx = rawget(_G, "ngx")
    if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then return call_provider(nil, client, reason) end
    if reason == "rejected" and creds and not refreshing then
      -- The server refused these (ExpiredToken): neither this worker's
      -- copy nor the shared one is used again.
      local dict = opts.dict and ngx.shared[opts.dict]
      if dict then
        local s = dict:get(key)
        cjson = cjson or require "cjson.safe"
        local c = s and cjson.decode(s)
        if type(c) == "table" and c.access_key == creds.access_key and c.session_token == creds.session_token then
          dict:delete(key)
        end
      end
      creds = nil
    end
    local now = live_now(ngx)
    if valid(creds, now) and not due(creds, now) then return creds end
    if valid(creds, now) then
      -- Due but still valid: refreshed in the background, used meanwhile.
      if not refreshing then
        refreshing = true
        local ok = ngx.timer.at(0, function(premature)
          if not premature then refresh(ngx, client, reason) else refreshing = false end
        end)
        if not ok then refreshing = false end
      end
      return creds
    end
    if refreshing then
      if not can_yield(ngx) then return nil, cannot_wait(ngx, "a refresh of the credentials is under way") end
      sema = sema or require("ngx.semaphore").new(0)
      local ok = sema:wait(wait)
      if ok and valid(creds, live_now(ngx)) then return creds end
      return nil, last_err or errors.new{ code = "CredentialsError", retryable = true,
        message = "the credentials refresh did not finish within " .. wait .. " s" }
    end
    refresh(ngx, client, reason)
    if valid(creds, live_now(ngx)) then return creds end
    return nil, last_err
  end
end

return _M
