--- A credentials provider that fetches temporary credentials and renews
-- them ahead of their expiration, shared by every request of a client:
--
--   local p = refreshing.new{ name = "assume-role", fetch = function(client) -> creds | nil, err,
--     margin = 300, retry_after = 10, now = function() -> epoch, on_error = function(err) end }
-- (`now` defaults to the clock of the client asking, c:now()).
--   objstore.new{ credentials = p, ... }
--
-- * Renewal starts `margin` seconds (default credentials.REFRESH_MARGIN,
--   5 minutes) before `expiration`; the server's refusal (ExpiredToken:
--   the pipeline calls get(client, "rejected")) renews at once.
-- * One renewal at a time: requests that ask while one is under way (the
--   cosocket transport runs parts concurrently) use the current
--   credentials while they are still valid, and wait for the renewal only
--   when there are none left.
-- * A renewal that fails keeps the current credentials until they expire,
--   reports the error (on_error, else the client's on_error hook and log,
--   op "RefreshCredentials") and is not tried again for `retry_after`
--   seconds, so a failing STS is not asked once per request.
-- Nothing is fetched before the first request.
local errors = require "objstore.errors"
local util = require "objstore.credentials.util"
local log = require "objstore.log"

local type, tostring, setmetatable, pcall = type, tostring, setmetatable, pcall
local os_time = os.time

local _M = {}

local Refreshing = {}
Refreshing.__index = Refreshing
-- Callable as a plain provider: p(client, reason).
Refreshing.__call = function(self, client, reason) return self:get(client, reason) end

-- Longest wait for another coroutine's renewal when no credentials are left.
local WAIT_LIMIT, WAIT_STEP = 60, 0.05

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
    refreshes = 0, failures = 0, not_before = 0 }, Refreshing)
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

--- Renews now: the new credentials, or nil, err (the old ones are kept).
function Refreshing:refresh(client)
  self.inflight = true
  local ok, c, err = pcall(self.fetch, client)
  self.inflight = false
  if not ok then
    err = errors.new{ code = "CredentialsError", retryable = false,
      message = self.name .. ": " .. log.redact(tostring(c)) }
    c = nil
  elseif type(c) ~= "table" or type(c.access_key) ~= "string" or type(c.secret_key) ~= "string" then
    err = errors.is(err) and err or errors.new{ code = "CredentialsError", retryable = false,
      message = self.name .. ": " .. tostring(err or "no credentials") }
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
  self.creds = { access_key = c.access_key, expiration = c.expiration, arn = c.arn, source = c.source }
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

--- The provider call: get(client, reason) -> credentials | nil, err.
function Refreshing:get(client, reason)
  local now = self:now(client)
  local c = self.creds
  if self.inflight then
    if valid(c, now) and reason ~= "rejected" then return self:current() end
    -- No usable credentials: wait for the renewal under way.
    local can_wait = client and client.pause
    local waited = 0
    while self.inflight and can_wait and waited < WAIT_LIMIT do
      client:pause(WAIT_STEP)
      waited = waited + WAIT_STEP
    end
    if self.creds and valid(self.creds, self:now(client)) then return self:current() end
    return nil, self.last_error or errors.new{ code = "CredentialsError", retryable = false,
      message = self.name .. ": no credentials (renewal still under way)" }
  end
  local due = c == nil or reason == "rejected" or (c.expiration ~= nil and c.expiration - self.margin <= now)
  if not due then return self:current() end
  if c ~= nil and now < self.not_before and valid(c, now) then return self:current() end
  local fresh, err = self:refresh(client)
  if fresh then return fresh end
  if valid(c, self:now(client)) and reason ~= "rejected" then return self:current() end
  return nil, err
end

--- As a plain function provider.
function Refreshing:provider()
  return function(client, reason) return self:get(client, reason) end
end

return _M
