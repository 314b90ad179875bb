--- Retry policies: plain tables of settings turned into policy objects that
-- the client consults after every failed attempt. Transport-agnostic: the
-- policy never waits itself: it says how long to wait, and the pipeline
-- waits with the transport's sleeper (blocking for curl, ngx.sleep for
-- cosockets) unless the policy's `sleep` option overrides it.
--
--   standard (default): up to 3 attempts, full-jitter exponential backoff
--     from base_delay (0.1 s) capped at max_delay (20 s), and a retry quota
--     (a token bucket of 500; a retry costs 5, a timeout 10; a success gives
--     back what its retries took, or 1) as in botocore's standard mode, so a
--     failing service is not hammered by every caller's retries at once;
--   adaptive: the same, plus a client-side rate limiter shared by every
--     request of the client, which slows down (see Limiter) on throttling
--     (503 SlowDown, 429, Throttling*) and recovers on success.
--
-- Options: mode, max_attempts, base_delay, max_delay, should_retry(err,
-- attempt) -> true|false|nil (nil: use the built-in classification), sleep,
-- random (for tests), quota (false to disable the retry quota).
local core = require "objstore.core"
local errors = require "objstore.errors"

local type, pairs, tostring, setmetatable, getmetatable, math_random, math_min, math_max =
  type, pairs, tostring, setmetatable, getmetatable, math.random, math.min, math.max
local monotonic = core.time.monotonic

local _M = {}

local THROTTLE_CODES = { SlowDown = true, Throttling = true, ThrottlingException = true, ThrottledException = true,
  RequestThrottled = true, TooManyRequestsException = true, RequestLimitExceeded = true,
  BandwidthLimitExceeded = true, ProvisionedThroughputExceededException = true }

function _M.is_throttle(err)
  return type(err) == "table" and (THROTTLE_CODES[err.code] == true or err.status == 429
    or (type(err.code) == "string" and err.code:find("^Throttl") ~= nil))
end

local TIMEOUT_CODES = { Timeout = true, RequestTimeout = true }

--- Client-side rate limiter for adaptive mode: a token bucket whose fill
-- rate follows throttling (multiplicative decrease, then CUBIC-like
-- growth back toward the last rate that worked).
local Limiter = {}
Limiter.__index = Limiter

function _M.new_limiter(now)
  return setmetatable({ rate = nil, tokens = 0, last = now or monotonic(), w_max = nil, t_drop = nil,
    min_rate = 0.5, beta = 0.7, scale = 0.4 }, Limiter)
end

--- Seconds to wait before the next request may go (0 when not limited).
function Limiter:delay(now)
  if not self.rate then return 0 end
  now = now or monotonic()
  self.tokens = math_min(self.tokens + (now - self.last) * self.rate, math_max(self.rate, 1))
  self.last = now
  if self.tokens >= 1 then
    self.tokens = self.tokens - 1
    return 0
  end
  local wait = (1 - self.tokens) / self.rate
  self.tokens = 0
  self.last = now + wait
  return wait
end

function Limiter:on_throttle(now, observed_rate)
  now = now or monotonic()
  local base = self.rate or observed_rate or 10
  self.w_max = base
  self.t_drop = now
  self.rate = math_max(base * self.beta, self.min_rate)
end

function Limiter:on_success(now)
  if not self.rate then return end
  now = now or monotonic()
  -- CUBIC: W(t) = C (t - K)^3 + Wmax, K = cbrt(Wmax (1 - beta) / C)
  local k = ((self.w_max * (1 - self.beta)) / self.scale) ^ (1 / 3)
  local t = now - self.t_drop
  local w = self.scale * (t - k) ^ 3 + self.w_max
  if t - k < 0 then w = self.w_max - self.scale * (k - t) ^ 3 end
  self.rate = math_max(w, self.min_rate)
  if self.rate > 2 * self.w_max then self.rate = nil end -- recovered: stop limiting
end

local Policy = {}
Policy.__index = Policy

local DEFAULTS = { mode = "standard", max_attempts = 3, base_delay = 0.1, max_delay = 20, quota = true }

-- Raises "objstore.engine.retry.policy: argument #1 (opts.<name>): <problem>"
-- (name nil: the options table), blamed on the first caller outside objstore.
local function bad(name, problem)
  errors.argument("engine.retry.policy", 1, name and ("opts." .. name) or "opts", problem)
end

local OPTIONS = { mode = true, max_attempts = true, base_delay = true, max_delay = true, should_retry = "function",
  sleep = "function", random = "function", quota = true }

local function check(opts)
  errors.options("engine.retry.policy", 1, opts, OPTIONS)
  local function num(name, min)
    local v = opts[name]
    if v == nil then return end
    if type(v) ~= "number" or v ~= v or v < min or v == math.huge then
      bad(name, "must be a number >= " .. min .. ", got " .. tostring(v))
    end
  end
  num("max_attempts", 1)
  num("base_delay", 0)
  num("max_delay", 0)
  if opts.max_attempts and opts.max_attempts % 1 ~= 0 then
    bad("max_attempts", "must be a whole number, got " .. tostring(opts.max_attempts))
  end
  if opts.mode ~= nil and opts.mode ~= "standard" and opts.mode ~= "adaptive" then
    bad("mode", "must be 'standard' or 'adaptive', got " .. tostring(opts.mode))
  end
  if opts.base_delay and opts.max_delay and opts.base_delay > opts.max_delay then
    bad("base_delay", "must not exceed max_delay (" .. tostring(opts.base_delay) .. " > "
      .. tostring(opts.max_delay) .. ")")
  end
end

--- Makes a policy from a table of settings (or returns a policy as is).
-- Raises on a setting it does not know or cannot use.
function _M.policy(opts)
  if getmetatable(opts) == Policy then return opts end
  opts = opts or {}
  check(opts)
  local p = setmetatable({}, Policy)
  for k, v in pairs(DEFAULTS) do p[k] = v end
  for k, v in pairs(opts) do p[k] = v end
  p.random = p.random or math_random
  p.tokens = 500
  p.stats = { attempts = 0, retries = 0, throttled = 0, quota_exhausted = 0 }
  if p.mode == "adaptive" then p.limiter = _M.new_limiter() end
  return p
end

--- Called before each attempt: the seconds the adaptive rate limiter
-- wants this attempt held back (0 to go now).
function Policy:before_attempt()
  self.stats.attempts = self.stats.attempts + 1
  if self.limiter then return self.limiter:delay() end
  return 0
end

--- Called after a successful attempt; `cost` is what that request's
-- retries took from the quota.
function Policy:on_success(cost)
  if self.quota then self.tokens = math_min(500, self.tokens + ((cost and cost > 0) and cost or 1)) end
  if self.limiter then self.limiter:on_success() end
end

--- Seconds to wait before attempt+1, or nil (and the reason) to give up.
-- `rewindable` false means the body cannot be sent again.
function Policy:retry_delay(err, attempt, rewindable)
  if _M.is_throttle(err) then
    self.stats.throttled = self.stats.throttled + 1
    if self.limiter then self.limiter:on_throttle() end
  end
  if attempt >= self.max_attempts then return nil, "attempts exhausted" end
  if rewindable == false then return nil, "body cannot be sent again" end
  local decision
  if self.should_retry then decision = self.should_retry(err, attempt) end
  if decision == nil then decision = err.retryable == true end
  if not decision then return nil, "not retryable" end
  local cost = 0
  if self.quota then
    cost = TIMEOUT_CODES[err.code] and 10 or 5
    if self.tokens < cost then
      self.stats.quota_exhausted = self.stats.quota_exhausted + 1
      return nil, "retry quota exhausted"
    end
    self.tokens = self.tokens - cost
  end
  local cap = math_min(self.max_delay, self.base_delay * 2 ^ (attempt - 1))
  local delay = self.random() * cap
  if type(err.retry_after) == "number" and err.retry_after > delay then
    delay = math_min(err.retry_after, self.max_delay)
  end
  self.stats.retries = self.stats.retries + 1
  return delay, cost
end

_M.Policy = Policy
_M.Limiter = Limiter
return _M
