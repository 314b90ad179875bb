--- The one credentials cache (as aws-c-auth's cached provider): fetches
-- temporary credentials and renews them ahead of their expiration, shared
-- by every request of a client. objstore.openresty.credentials.cached puts
-- a cross-worker tier (a lua_shared_dict) under it as its `fetch`.
--
--   local p = refreshing.new{ name = "assume-role", fetch = function(client) -> creds | nil, err,
--     margin = 300, retry_after = 10, now = function() -> epoch, on_error = function(err) end }
-- (`now` defaults to the clock of the client asking, c:now()).
--   objstore.new{ credentials = p, ... }
--
-- * Renewal starts `margin` seconds (default credentials.REFRESH_MARGIN,
--   5 minutes) before `expiration`, or half-way through the credentials'
--   life when that is shorter (short-lived credentials), or at the
--   `refresh_at` the fetch gives (another worker's schedule); the server's
--   refusal (ExpiredToken: the pipeline calls get(client, "rejected"))
--   renews at once.
-- * One renewal at a time: requests that ask while one is under way (the
--   cosocket transport runs parts concurrently) use the current
--   credentials while they are still valid, and wait for the renewal only
--   when there are none left: on the transport's semaphore
--   (client:semaphore(), ngx.semaphore in nginx), woken once when it ends,
--   never polling; a transport without one never has two requests asking
--   at once.
-- * A renewal that fails keeps the current credentials until they expire,
--   reports the error (on_error, else the client's on_error hook and log,
--   op "RefreshCredentials") and is not tried again for `retry_after`
--   seconds, so a failing STS is not asked once per request.
-- Nothing is fetched before the first request.
local errors = require "objstore.errors"
local util = require "objstore.credentials.util"
local log = require "objstore.log"
local clock = require "objstore.clock"

local type, tostring, tonumber, setmetatable, pcall = type, tostring, tonumber, setmetatable, pcall
local os_time = os.time

local _M = {}

local Refreshing = {}
Refreshing.__index = Refreshing
-- Callable as a plain provider: p(client, reason).
Refreshing.__call = function(self, client, reason) return self:get(client, reason) end

-- Longest wait for another request's renewal when no credentials are left.
local WAIT_LIMIT = 60

function _M.new(opts)
  if type(opts) ~= "table" or type(opts.fetch) ~= "function" then
    errors.argument("credentials.refreshing", 1, "opts.fetch", "must be a function")
  end
  local margin = opts.margin
  if margin == nil then margin = util.REFRESH_MARGIN end
  if type(margin) ~= "number" or margin < 0 then
    errors.argument("credentials.refreshing", 1, "opts.margin", "must be a number of seconds >= 0")
  end
  return setmetatable({ fetch = opts.fetch, name = opts.name or "refreshing", margin = margin,
    retry_after = opts.retry_after or 10, clock = opts.now, on_error = opts.on_error,
    refreshes = 0, failures = 0, not_before = 0, waiting = 0 }, Refreshing)
end

--- The time expirations are compared with: `now` if given, else the
-- client's clock (the server's time, skew corrected), else os.time.
function Refreshing:now(client)
  if self.clock then return self.clock() end
  if client and client.now then return client:now() end
  return os_time()
end

local function valid(c, now)
  return c ~= nil and (c.expiration == nil or c.expiration > now)
end

function Refreshing:report(client, err)
  self.last_error = err
  self.failures = self.failures + 1
  if self.on_error then
    pcall(self.on_error, err)
  elseif client and client.notify then
    client:notify("on_error", { op = "RefreshCredentials", source = self.name, error = err })
  end
end

--- Wakes every request waiting for the renewal that just ended, once each:
-- the semaphore's own count of its waiters where it keeps one
-- (ngx.semaphore: a negative count), which a waiter that was killed or
-- already woken cannot leave wrong (a surplus posted would let every later
-- wait return at once, without the credentials).
function Refreshing:wake()
  local n = self.waiting
  if self.sema and type(self.sema.count) == "function" then
    local ok, k = pcall(self.sema.count, self.sema)
    if ok and type(k) == "number" then n = k < 0 and -k or 0 end
  end
  if n > 0 and self.sema then self.sema:post(n) end
end

--- The expiration a fetch gave, as epoch seconds: a number, a numeric
-- string or an ISO 8601 time; nil, err for anything else (compared with
-- the clock it would raise at every later call).
local function expiration_of(name, v)
  if v == nil or type(v) == "number" then return v end
  local t = type(v) == "string" and (tonumber(v) or clock.parse_iso8601(v)) or nil
  if t then return t end
  return nil, errors.new{ code = "CredentialsError", retryable = false,
    message = name .. ": the credentials' expiration is not a time (" .. type(v) .. ")" }
end

--- When credentials expiring at `exp`, fetched at `now`, are due: `margin`
-- before, or half their remaining life when that is shorter.
function Refreshing:due_at(exp, now)
  local life = exp - now
  return exp - (life / 2 < self.margin and life / 2 or self.margin)
end

--- Renews now: the new credentials, or nil, err (the old ones are kept).
function Refreshing:refresh(client, reason)
  -- When it started: a renewal whose request was killed mid-fetch (a
  -- client abort in nginx ends its thread without returning here) is
  -- taken as ended after WAIT_LIMIT, never waited for by every later call.
  local mark = { at = self:now(client) }
  self.inflight = mark
  local ok, c, err = pcall(self.fetch, client, reason)
  if self.inflight == mark then self.inflight = false end
  self:wake()
  local exp
  if ok and type(c) == "table" then
    exp, err = expiration_of(self.name, c.expiration)
    if err then c = nil end
  end
  if not ok then
    err = errors.new{ code = "CredentialsError", retryable = false,
      message = self.name .. ": " .. log.redact(tostring(c)) }
    c = nil
  elseif type(c) ~= "table" or type(c.access_key) ~= "string" or type(c.secret_key) ~= "string" then
    err = errors.is(err) and err or errors.new{ code = "CredentialsError", retryable = false,
      message = self.name .. ": " .. log.redact(tostring(err or "no credentials")) }
    local msg = tostring(err.message or err.code or "")
    if not msg:find(self.name, 1, true) then err.message = self.name .. ": " .. msg end
    c = nil
  end
  if not c then
    self.not_before = self:now(client) + self.retry_after
    -- A first fetch that fails is the failure of the request that asked;
    -- a renewal that fails while credentials are held is reported.
    if self.creds then self:report(client, err) else self.last_error = err end
    return nil, err
  end
  self.refreshes = self.refreshes + 1
  -- The secret and the token stay in a closure; `creds` is the public
  -- view (access key, expiration, arn), the one whose expiration counts.
  self.creds = { access_key = c.access_key, expiration = exp, arn = c.arn, source = c.source,
    refresh_at = tonumber(c.refresh_at) or (exp and self:due_at(exp, self:now(client))) }
  self.held = function() return c end
  self.last_error, self.not_before = nil, 0
  return self:current()
end

--- The held credentials, with the view's expiration.
function Refreshing:current()
  local c = self.held()
  c.expiration = self.creds.expiration
  return c
end

--- Waits for the renewal under way on the transport's semaphore; true
-- when it ended, false where none can be had or the phase cannot wait.
function Refreshing:wait(client)
  if not self.sema then
    self.sema = client and type(client.semaphore) == "function" and client:semaphore() or nil
    if not self.sema then return false end
  end
  self.waiting = self.waiting + 1
  -- A wait that raises (no request to wait in) still leaves the count.
  local pok, ok = pcall(self.sema.wait, self.sema, WAIT_LIMIT)
  self.waiting = self.waiting - 1
  return pok and ok == true
end

--- The provider call: get(client, reason) -> credentials | nil, err.
function Refreshing:get(client, reason)
  local now = self:now(client)
  local c = self.creds
  if self.inflight and now - self.inflight.at >= WAIT_LIMIT then self.inflight = false end
  if self.inflight then
    if valid(c, now) and reason ~= "rejected" then return self:current() end
    -- No usable credentials: wait for the renewal under way.
    self:wait(client)
    if self.creds and valid(self.creds, self:now(client)) then return self:current() end
    return nil, self.last_error or errors.new{ code = "CredentialsError", retryable = true,
      message = self.name .. ": no credentials: a renewal is under way and this caller cannot wait for it (in "
        .. "nginx, where the phase cannot yield, defer the call with objstore.openresty.defer)" }
  end
  local due = c == nil or reason == "rejected" or (c.refresh_at ~= nil and c.refresh_at <= now)
  if not due then return self:current() end
  if c ~= nil and now < self.not_before and valid(c, now) then return self:current() end
  local fresh, err = self:refresh(client, reason)
  if fresh then return fresh end
  if valid(c, self:now(client)) and reason ~= "rejected" then return self:current() end
  return nil, err
end

--- As a plain function provider.
function Refreshing:provider()
  return function(client, reason) return self:get(client, reason) end
end

return _M
