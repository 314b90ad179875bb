-- objstore.engine.retry policies: classification, backoff, quota, rate limiter.
local retry = require "objstore.engine.retry"
local errors = require "objstore.errors"
local clock = require "objstore.clock"

local function err(code, status, retryable)
  return errors.new{ code = code, status = status, retryable = retryable }
end

describe("retry.policy", function()
  it("rejects nonsense settings with the setting's name", function()
    for _, bad in ipairs{ { max_attempts = 0 }, { max_attempts = 1.5 }, { base_delay = -1 }, { max_delay = -0.1 },
      { base_delay = 0 / 0 }, { mode = "eager" }, { sleep = 5 }, { wat = 1 }, { base_delay = 5, max_delay = 1 } } do
      local ok, e = pcall(retry.policy, bad)
      assert.is_false(ok)
      local name = next(bad)
      assert.matches(name, tostring(e), 1, true)
      assert.matches("objstore%.engine%.retry%.policy: argument #1 %(opts[%.%w_]*%): ", tostring(e))
    end
  end)

  it("raises in the one misuse format, blaming the caller", function()
    local function err_of(opts)
      local ok, e = pcall(function() retry.policy(opts) end)
      assert.is_false(ok)
      return e
    end
    local P = "^spec/retry_spec%.lua:%d+: objstore%.engine%.retry%.policy: argument #1 "
    assert.matches(P .. "%(opts%.max_attempts%): must be a number >= 1, got 0$", err_of{ max_attempts = 0 })
    assert.matches(P .. "%(opts%.max_attempts%): must be a whole number, got 1%.5$", err_of{ max_attempts = 1.5 })
    assert.matches(P .. "%(opts%.mode%): must be 'standard' or 'adaptive', got eager$", err_of{ mode = "eager" })
    assert.matches(P .. "%(opts%.sleep%): must be a function, got number$", err_of{ sleep = 5 })
    assert.matches(P .. "%(opts%.wat%): is not an option of engine%.retry%.policy$", err_of{ wat = 1 })
    assert.matches(P .. "%(opts%.base_delay%): must not exceed max_delay", err_of{ base_delay = 5, max_delay = 1 })
    assert.matches(P .. "%(opts%): must be a table, got string$", err_of("fast"))
  end)

  it("retries retryable errors up to max_attempts with capped full jitter", function()
    local p = retry.policy{ max_attempts = 5, base_delay = 0.1, max_delay = 0.3, random = function() return 1 end }
    local e = err("SlowDown", 503)
    assert.equals(0.1, p:retry_delay(e, 1))
    assert.equals(0.2, p:retry_delay(e, 2))
    assert.equals(0.3, p:retry_delay(e, 3)) -- capped
    assert.equals(0.3, p:retry_delay(e, 4))
    assert.is_nil(p:retry_delay(e, 5))
  end)

  it("classifies by status and code", function()
    local p = retry.policy{ max_attempts = 10, quota = false }
    for _, e in ipairs{ err("InternalError", 500), err("SlowDown", 503), err("RequestTimeout", 400),
      err("ThrottlingException", 400), err("HTTP502", 502), err("X", 504), err("X", 408), err("X", 429),
      err("RequestTimeTooSkewed", 403), err("ExpiredToken", 400),
      errors.new{ code = "ConnectFailed", retryable = true } } do
      assert.is_number((p:retry_delay(e, 1)), e.code)
    end
    for _, e in ipairs{ err("NoSuchKey", 404), err("AccessDenied", 403), err("BadDigest", 400),
      err("SignatureDoesNotMatch", 403), errors.new{ code = "TLSError", retryable = false } } do
      assert.is_nil((p:retry_delay(e, 1)), e.code)
    end
  end)

  it("never retries a body it cannot send again", function()
    local p = retry.policy{}
    assert.is_nil((p:retry_delay(err("InternalError", 500), 1, false)))
  end)

  it("lets should_retry decide, falling back on nil", function()
    local p = retry.policy{ should_retry = function(e) if e.code == "NoSuchKey" then return true end end }
    assert.is_number((p:retry_delay(err("NoSuchKey", 404), 1)))
    assert.is_number((p:retry_delay(err("InternalError", 500), 1)))
    assert.is_nil((p:retry_delay(err("AccessDenied", 403), 1)))
  end)

  it("honours Retry-After up to max_delay", function()
    local p = retry.policy{ random = function() return 0 end, max_delay = 5 }
    local e = err("SlowDown", 503)
    e.retry_after = 2
    assert.equals(2, p:retry_delay(e, 1))
    e.retry_after = 60
    assert.equals(5, p:retry_delay(e, 1))
  end)

  it("stops retrying when the quota is spent and refills it on success", function()
    local p = retry.policy{ max_attempts = 1000 }
    local n = 0
    while p:retry_delay(err("InternalError", 500), 1) do n = n + 1 end
    assert.equals(100, n) -- 500 tokens / 5
    assert.equals(1, p.stats.quota_exhausted)
    p:on_success(5)
    assert.is_number((p:retry_delay(err("InternalError", 500), 1)))
    local t = retry.policy{}
    local m = 0
    while t:retry_delay(errors.new{ code = "Timeout", retryable = true }, 1) do m = m + 1 end
    assert.equals(50, m) -- timeouts cost 10
  end)
end)

describe("adaptive rate limiter", function()
  it("slows down on throttling and recovers on success", function()
    local l = retry.new_limiter(0)
    assert.equals(0, l:delay(0))
    l:on_throttle(0, 100)
    assert.near(70, l.rate, 1e-9)
    -- 70 requests per second: the bucket starts empty, so the first waits
    assert.is_true(l:delay(0) > 0)
    for t = 1, 60 do l:on_success(t) end
    assert.is_nil(l.rate) -- recovered well past the old rate: no more limiting
  end)

  it("is shared through the policy and says how long to hold each attempt back", function()
    local p = retry.policy{ mode = "adaptive" }
    assert.equals(0, p:before_attempt()) -- not limited before any throttling
    p:retry_delay(err("SlowDown", 503), 1)
    assert.is_number(p.limiter.rate)
    local held = 0
    for _ = 1, 50 do held = held + p:before_attempt() end
    assert.is_true(held > 0)
  end)
end)

describe("clock", function()
  it("parses HTTP and ISO dates without the local time zone", function()
    assert.equals(784111777, clock.parse("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equals(1705307400, clock.parse("2024-01-15T08:30:00.000Z"))
    assert.is_nil(clock.parse("yesterday"))
  end)

  it("adopts a server clock only when it is far off (or when told)", function()
    assert.is_nil(clock.skew_from("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 60))
    assert.equals(-3600, clock.skew_from("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 3600))
    assert.equals(-60, clock.skew_from("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 60, true))
  end)
end)
