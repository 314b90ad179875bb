-- The OpenResty pieces outside nginx (plain Lua, every version): what the
-- per-phase transport picks for each phase, that nothing needs ngx at
-- require, misuse raising, a cached credentials provider passing through
-- to its provider outside nginx, and a shared metrics registry's options.
local auto = require "objstore.transport.auto"
local metrics = require "objstore.metrics"
local cached = require("objstore.openresty.credentials").cached

describe("objstore.transport.auto", function()
  it("picks cosockets, libcurl or refuses by phase", function()
    for _, p in ipairs{ "rewrite", "access", "content", "timer", "ssl_cert" } do
      assert.equal("ngx", auto.choice(p), p)
    end
    for _, p in ipairs{ "init", "init_worker" } do assert.equal("curl", auto.choice(p), p) end
    assert.equal("curl", auto.choice(nil))
    for _, p in ipairs{ "log", "header_filter", "body_filter", "balancer", "set" } do
      local which, why = auto.choice(p)
      assert.is_nil(which, p)
      assert.matches("objstore.openresty.defer", why, 1, true)
    end
  end)

  it("uses libcurl outside nginx and is what objstore.new picks only inside nginx", function()
    assert.is_nil(auto.phase())
    local t = auto.new{}
    assert.equal("curl", t:which())
    local c = require("objstore").new{ endpoint = "http://127.0.0.1:1", access_key = "a", secret_key = "b" }
    assert.is_nil(c.transport.which) -- the curl transport itself
    c:close()
    local res, err = t:request{ url = "http://127.0.0.1:1/" }
    assert.is_nil(res)
    assert.equal("ConnectFailed", err.code)
    t:close()
    assert.has_error(function() t:request{ url = "http://127.0.0.1:1/" } end)
    assert.has_error(function() auto.new{ force = "ngx" } end)
    assert.has_error(function() auto.new{ bogus = 1 } end)
  end)
end)

describe("objstore.openresty outside nginx", function()
  it("loads without ngx and raises a clear misuse when called", function()
    local onx = require "objstore.openresty"
    assert.has_error(function() onx.defer(function() end) end,
      "objstore.openresty.defer: needs OpenResty's ngx (call it inside nginx)")
    assert.has_error(function() onx.request_body_reader() end)
  end)
end)

describe("objstore.openresty.credentials.cached", function()
  it("calls the wrapped provider outside nginx and checks its arguments", function()
    local calls = 0
    local p = cached(function()
      calls = calls + 1
      return { access_key = "AK", secret_key = "SK", expiration = os.time() + 3600 }
    end, { dict = "d", ahead = 60 })
    local c = assert(p())
    assert.equal("AK", c.access_key)
    assert.equal(1, calls)
    local seen
    local pass = cached(function(client, reason)
      seen = { client, reason }
      return { access_key = "AK", secret_key = "SK" }
    end)
    assert(pass("the-client", "rejected"))
    assert.same({ "the-client", "rejected" }, seen)
    local bad = cached(function() error("boom") end)
    local r, err = bad()
    assert.is_nil(r)
    assert.equal("CredentialsError", err.code)
    local none = cached(function() return nil, "nothing here" end)
    r, err = none()
    assert.is_nil(r)
    assert.equal("NoCredentials", err.code)
    assert.has_error(function() cached("x") end)
    assert.has_error(function() cached(function() end, { dict = 1 }) end)
    assert.has_error(function() cached(function() end, { unknown = true }) end)
  end)
end)

describe("objstore.metrics shared registry", function()
  it("checks its options and renders locally outside nginx only when not shared", function()
    assert.has_error(function() metrics.new{ shared = 1 } end)
    assert.has_error(function() metrics.new{ flush_interval = 0 } end)
    local r = metrics.new{ shared = "objstore_metrics" }
    r:inc("objstore_requests_total", { operation = "GetObject", status = 200 })
    assert.is_nil(r:flush()) -- no nginx: no dict
    assert.has_error(function() r:prometheus() end)
    local plain = metrics.new()
    plain:inc("objstore_requests_total", { operation = "GetObject", status = 200 })
    assert.matches('objstore_requests_total{operation="GetObject",status="200"} 1', plain:prometheus(), 1, true)
  end)
end)
