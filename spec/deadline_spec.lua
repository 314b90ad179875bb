-- An overall deadline per call (objstore.new{deadline}, opts.deadline):
-- it covers every attempt and every wait between them, where `timeout` is
-- per attempt, so a store that stalls or trickles a byte a second cannot
-- hold a call past it. Against spec/support/hostile_server.py (modes
-- stall, trickle, slow-down), port OBJSTORE_SPEC_HOSTILE_PORT (default
-- 18140). No S3 server needed.
local objstore = require "objstore"
local core = require "objstore.core"

local PORT = tonumber(os.getenv("OBJSTORE_SPEC_HOSTILE_PORT") or "18140")
local now = core.time.monotonic

local function client(extra)
  local o = { endpoint = "http://127.0.0.1:" .. PORT, region = "us-east-1", addressing = "path",
    access_key = "AKIDEXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", transport = "curl" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return objstore.new(o)
end

--- Runs fn, returns (seconds taken, its results).
local function timed(fn)
  local t0 = now()
  local r = table.pack and table.pack(fn()) or { fn(), n = 2 }
  return now() - t0, r[1], r[2]
end

describe("deadline", function()
  local job
  setup(function()
    local p = assert(io.popen("/usr/bin/python3 spec/support/hostile_server.py " .. PORT
      .. " 120 >/dev/null 2>&1 & echo $!"))
    job = p:read("*l")
    p:close()
    local t = require("objstore.transport.curl").new{ timeout = 1 }
    for _ = 1, 50 do
      local _, err = t:request{ url = "http://127.0.0.1:" .. PORT .. "/empty" }
      if not err or err.code ~= "ConnectFailed" then break end
      core.time.sleep(0.1)
    end
    t:close()
  end)
  teardown(function()
    if job then os.execute("kill " .. job .. " 2>/dev/null") end
  end)

  for _, mode in ipairs{ "stall", "trickle" } do
    it("of the client ends a call to a store that " .. mode .. "s, within ~3 s", function()
      local c = client{ deadline = 2 }
      local took, res, err = timed(function() return c:get_object(mode, "k") end)
      assert.is_nil(res)
      assert.equal("DeadlineExceeded", err.code, tostring(err))
      assert.is_false(err.retryable)
      assert.is_true(took >= 1.9 and took < 3.5, "took " .. took)
      c:close()
    end)

    it("of one call (opts.deadline) ends it on a store that " .. mode .. "s", function()
      local c = client()
      local took, res, err = timed(function() return c:get_object(mode, "k", { deadline = 1.5 }) end)
      assert.is_nil(res)
      assert.equal("DeadlineExceeded", err.code, tostring(err))
      assert.is_true(took < 3, "took " .. took)
      -- The call's deadline is its own: the next call has none left over.
      took, res, err = timed(function() return c:get_object(mode, "k", { deadline = 1 }) end)
      assert.is_nil(res)
      assert.equal("DeadlineExceeded", err and err.code, tostring(err))
      assert.is_true(took >= 0.9 and took < 2.5, "took " .. took)
      c:close()
    end)
  end

  it("is not waited past for a retry (Retry-After beyond it)", function()
    local c = client{ deadline = 2 }
    local took, res, err = timed(function() return c:get_object("slow-down", "k") end)
    assert.is_nil(res)
    assert.equal("DeadlineExceeded", err.code, tostring(err))
    assert.matches("SlowDown", err.message)
    assert.equal(503, err.status)
    assert.is_true(took < 1, "took " .. took)
    c:close()
  end)

  it("leaves a final answer as it is", function()
    local c = client{ deadline = 5 }
    local _, res, err = timed(function() return c:get_object("garbage", "k", { deadline = 3 }) end)
    assert.is_nil(res)
    assert.not_equal("DeadlineExceeded", err.code)
    c:close()
  end)

  it("read_timeout is settable through the client: a stall fails as Timeout", function()
    local c = client{ read_timeout = 1, retry = { max_attempts = 1 } }
    local took, res, err = timed(function() return c:get_object("stall", "k") end)
    assert.is_nil(res)
    assert.equal("Timeout", err.code, tostring(err))
    assert.is_true(took < 3, "took " .. took)
    c:close()
  end)

  it("raises on misuse", function()
    assert.has_error(function() client{ deadline = 0 } end,
      "objstore.client.new: argument #1 (opts.deadline): must be a positive number of seconds")
    assert.has_error(function() client{ read_timeout = -1 } end,
      "objstore.client.new: argument #1 (opts.read_timeout): must be a number of seconds, 0 or more")
    local c = client()
    assert.has_error(function() c:get_object("b", "k", { deadline = "soon" }) end,
      "objstore.client.get_object: argument #3 (opts.deadline): must be a positive number of seconds, got string")
    c:close()
  end)
end)
