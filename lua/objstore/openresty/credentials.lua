--- Credentials in OpenResty: any provider behind the one credentials cache
-- (objstore.credentials.refreshing) so that each worker keeps what it
-- returned and renews it ahead of expiry, one renewal at a time, while its
-- other requests go on with the still valid credentials or wait on a
-- semaphore, woken once when it ends; and - with a `lua_shared_dict` - a
-- cross-worker tier under that cache, so that one worker of all calls the
-- provider (the credentials endpoint) per refresh.
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
-- a refresh starts, default the cache's one margin,
-- credentials.REFRESH_MARGIN, 300; half the credentials' life when that is
-- shorter), `lock_timeout` (seconds the cross-worker sentinel lives,
-- default 10: a worker that dies mid-refresh holds it no longer), `wait`
-- (seconds a worker waits for another worker's refresh, default 10).
--
-- The tier: the renewing worker first looks in the dict for credentials
-- another worker got and that are not due yet; if none, it takes the
-- sentinel (`dict:add(key .. ":lock", ..., lock_timeout)`) and calls the
-- provider, storing the result in the dict (JSON with its refresh time,
-- expiring with the credentials); a worker that loses the `add` looks in
-- the dict again every 20 ms until the winner stored them or the sentinel
-- expired (workers share no semaphore: the one poll left, across
-- processes). The dict holds the secret in nginx's shared memory (readable
-- by the workers only, never logged).
--
-- Derived signing keys are cached in each client's signers (per region and
-- UTC date); keep one client per worker (a module-level variable of the
-- handler) to keep them across requests.
-- @module objstore.openresty.credentials
local errors = require "objstore.errors"
local credentials = require "objstore.credentials"
local refreshing = require "objstore.credentials.refreshing"
local auto = require "objstore.transport.auto"
local log = require "objstore.log"
local clock = require "objstore.clock"

local type, rawget, tostring, pcall = type, rawget, tostring, pcall
local _G = _G

local _M = {}

_M.DEFAULTS = { ahead = credentials.REFRESH_MARGIN, lock_timeout = 10, wait = 10 }

local OPTIONS = { dict = "string", key = "string", ahead = "number", lock_timeout = "number", wait = "number" }

local function live_now(ngx)
  ngx.update_time()
  return ngx.now()
end

local function valid(c, at)
  return c ~= nil and (c.expiration == nil or c.expiration > at)
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

-- When credentials expiring at `exp`, got at `now`, are due (the cache's
-- rule, written into the dict so that every worker renews on one schedule).
local function refresh_time(exp, now, ahead)
  local life = exp - now
  return exp - (life / 2 < ahead and life / 2 or ahead)
end

-- Calls the provider: { credentials } or nil, err, never raises.
local function call_provider(provider, ngx, client, reason)
  local ok, c, err = pcall(provider, client, reason)
  if not ok then
    local where = ""
    if ngx and not can_yield(ngx) then
      where = " in the " .. tostring(ngx.get_phase()) .. " phase (no cosockets there: defer the call with "
        .. "objstore.openresty.defer, ngx.timer.at(0, ...))"
    end
    return nil, errors.new{ code = "CredentialsError", message = "credentials provider failed" .. where .. ": "
      .. log.redact(tostring(c)), retryable = false }
  end
  if type(c) ~= "table" or type(c.access_key) ~= "string" or type(c.secret_key) ~= "string" then
    return nil, errors.is(err) and err or errors.new{ code = "NoCredentials", retryable = false,
      message = log.redact(tostring(err or "the provider returned no credentials")) }
  end
  -- An expiration that is not a number would raise where it is compared
  -- (and, kept in the dict without a TTL, at every call of every worker).
  local exp = c.expiration
  if exp ~= nil and type(exp) ~= "number" then
    exp = type(exp) == "string" and (tonumber(exp) or clock.parse_iso8601(exp)) or nil
    if not exp then
      return nil, errors.new{ code = "CredentialsError", retryable = false,
        message = "the provider's credentials have an expiration that is not a time (" .. type(c.expiration) .. ")" }
    end
  end
  return { access_key = c.access_key, secret_key = c.secret_key, session_token = c.session_token,
    expiration = exp }
end

--- The cross-worker tier: fetch(client, reason) for the cache, through
-- the dict named `opts.dict` (see the module notes).
local function shared_tier(provider, opts, ahead)
  local key, lock_key = opts.key or "default", (opts.key or "default") .. ":lock"
  local lock_timeout = opts.lock_timeout or _M.DEFAULTS.lock_timeout
  local wait = opts.wait or _M.DEFAULTS.wait
  local cjson = require "cjson.safe"
  local handed -- what this worker last took: a refusal drops it from the dict

  -- Fresh credentials from the dict (another worker's), or nil.
  local function from_dict(dict, at)
    local s = dict:get(key)
    if not s then return nil end
    local c = cjson.decode(s)
    if type(c) == "table" and valid(c, at) and not (c.refresh_at and c.refresh_at <= at) then return c end
    return nil
  end

  local function fetch(ngx, dict, client, reason)
    if reason == "rejected" and handed then
      -- The server refused these (ExpiredToken): the shared copy goes too,
      -- unless another worker has already put new ones there.
      local c = cjson.decode(dict:get(key) or "null")
      if type(c) == "table" and c.access_key == handed.access_key and c.session_token == handed.session_token then
        dict:delete(key)
      end
    end
    local deadline = live_now(ngx) + wait
    while true do
      local now = live_now(ngx)
      local c = from_dict(dict, now)
      if c then return c end
      if not can_yield(ngx) then return nil, cannot_wait(ngx, "the credentials need a refresh") end
      if dict:add(lock_key, ngx.worker.pid(), lock_timeout) then
        local got, err = call_provider(provider, ngx, client, reason)
        if got and type(got.expiration) == "number" then
          got.refresh_at = refresh_time(got.expiration, live_now(ngx), ahead)
          local ttl = got.expiration - live_now(ngx)
          if ttl > 0 then dict:set(key, cjson.encode(got), ttl) end
        elseif got then
          dict:set(key, cjson.encode(got))
        end
        dict:delete(lock_key)
        return got, err
      end
      if now >= deadline then
        return nil, errors.new{ code = "CredentialsError", retryable = true,
          message = "no credentials from the worker refreshing them within " .. wait .. " s" }
      end
      ngx.sleep(0.02)
    end
  end

  return function(client, reason)
    local ngx = rawget(_G, "ngx")
    local dict = ngx.shared[opts.dict]
    if not dict then
      return nil, errors.new{ code = "CredentialsError", retryable = false,
        message = "no lua_shared_dict named '" .. opts.dict .. "' in the nginx configuration" }
    end
    local ok, got, err = pcall(fetch, ngx, dict, client, reason)
    if not ok then
      return nil, errors.new{ code = "CredentialsError", retryable = false, message = log.redact(tostring(got)) }
    end
    if got then handed = got end
    return got, err
  end
end

--- cached(provider, opts) -> provider
-- `provider` behind the one credentials cache (see the module notes): each
-- worker keeps what it returned and renews it ahead of expiry, one renewal
-- at a time; with opts.dict one worker of all calls the provider per
-- refresh.
-- opts.dict: a lua_shared_dict name (without it each worker calls the
--   provider itself).
-- opts.key: the entry in the dict (default "default").
-- opts.ahead: seconds before expiration at which a refresh starts
--   (default credentials.REFRESH_MARGIN, 300).
-- opts.lock_timeout: seconds the cross-worker sentinel lives (default 10).
-- opts.wait: seconds a worker waits for another worker's refresh (default 10).
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
  local fetch
  if opts.dict then
    fetch = shared_tier(provider, opts, ahead)
  else
    fetch = function(client, reason) return call_provider(provider, rawget(_G, "ngx"), client, reason) end
  end
  local cache = refreshing.new{ name = "openresty.credentials", fetch = fetch, margin = ahead,
    retry_after = 1 }
  return function(client, reason)
    local ngx = rawget(_G, "ngx")
    if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
      return call_provider(provider, nil, client, reason)
    end
    return cache:get(client, reason)
  end
end

return _M
