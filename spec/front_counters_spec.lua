-- The S3 front's per-tenant counters (objstore.front.counters, on
-- objstore.metrics) and request limits (objstore.front.limits), offline:
-- a registry without a shared dict, and a stand-in for ngx.shared.DICT
-- with the incr semantics the limits use. Through nginx:
-- spec/front_metrics_spec.lua.
local counters = require "objstore.front.counters"
local limits = require "objstore.front.limits"
local metrics = require "objstore.metrics"

-- ngx.shared.DICT's incr(key, by, init, init_ttl) and get, with a clock.
local function fake_dict()
  local d = { v = {}, ttl = {} }
  function d:incr(key, by, init, ttl)
    if self.v[key] == nil then
      if init == nil then return nil, "not found" end
      self.v[key], self.ttl[key] = init, ttl
    end
    self.v[key] = self.v[key] + by
    return self.v[key]
  end
  function d:get(key) return self.v[key] end
  return d
end

describe("objstore.front.counters", function()
  it("renders the front's families with escaped tenant labels, after objstore's", function()
    local r = metrics.new{ families = counters.FAMILIES }
    counters.record(r, { tenant = 'x "y"\\z\n', operation = "PutObject", status = 200, bytes_in = 10, bytes_out = 0 })
    counters.record(r, { tenant = 'x "y"\\z\n', operation = "GetObject", status = 404, bytes_in = 0, bytes_out = 5,
      code = "NoSuchKey" })
    counters.record(r, { operation = nil, status = 403, code = "InvalidAccessKeyId" })
    local text = r:prometheus()
    local t = 'tenant="x \\"y\\"\\\\z\\n"'
    local R = "objstore_front_requests_total"
    assert.truthy(text:find(R .. '{class="2xx",operation="PutObject",' .. t .. '} 1\n', 1, true), text)
    assert.truthy(text:find(R .. '{class="4xx",operation="GetObject",' .. t .. '} 1\n', 1, true))
    assert.truthy(text:find('objstore_front_bytes_total{direction="in",' .. t .. '} 10\n', 1, true))
    assert.truthy(text:find('objstore_front_bytes_total{direction="out",' .. t .. '} 5\n', 1, true))
    assert.truthy(text:find('objstore_front_errors_total{code="NoSuchKey",' .. t .. '} 1\n', 1, true))
    assert.truthy(text:find('objstore_front_requests_total{class="4xx",operation="unknown",tenant=""} 1\n', 1, true))
    assert.truthy(text:find("# TYPE objstore_front_bytes_total counter\n", 1, true))
  end)

  it("refuses families that would break the exposition", function()
    assert.has_error(function() metrics.new{ families = { { "bad name", "help" } } } end)
    assert.has_error(function() metrics.new{ families = { { "ok_name", "two\nlines" } } } end)
    assert.has_error(function() metrics.new{ families = { "x" } } end)
  end)
end)

describe("objstore.front.limits", function()
  it("admits N requests per clock-aligned window, then Retry-After until it ends; refusals do not count", function()
    local d, l = fake_dict(), { requests = 2, window = 60 }
    assert.is_true(limits.admit(d, "t", l, 120))
    assert.is_true(limits.admit(d, "t", l, 130.5))
    local ok, after = limits.admit(d, "t", l, 170.2)
    assert.is_false(ok)
    assert.equal(10, after)
    ok, after = limits.admit(d, "t", l, 179.9)
    assert.is_false(ok)
    assert.equal(1, after)
    -- another tenant has its own window
    assert.is_true(limits.admit(d, "u", l, 170))
    -- the next window starts afresh; the key expires after its window
    assert.is_true(limits.admit(d, "t", l, 180))
    assert.equal(61, d.ttl["l\0" .. "180\0t"])
  end)

  it("admits requests while the window's bytes are under the budget, then Retry-After until it ends", function()
    local d, l = fake_dict(), { bytes = 100, window = 60 }
    assert.is_true(limits.admit(d, "t", l, 120))
    limits.add_bytes(d, "t", l, 121, 60)
    assert.is_true(limits.admit(d, "t", l, 122)) -- 60 < 100: admitted, it may move more
    limits.add_bytes(d, "t", l, 125, 60)
    local ok, after = limits.admit(d, "t", l, 130)
    assert.is_false(ok)
    assert.equal(50, after)
    -- only t's budget, and a fresh one in the next window
    assert.is_true(limits.admit(d, "u", l, 130))
    assert.is_true(limits.admit(d, "t", l, 180))
    assert.equal(61, d.ttl["b\0" .. "120\0t"])
    -- requests and bytes together: either refuses
    local both = { requests = 1, bytes = 1000, window = 60 }
    assert.is_true(limits.admit(d, "v", both, 200))
    assert.is_false((limits.admit(d, "v", both, 201)))
    -- nothing counted without a byte budget, nor for a bad count
    limits.add_bytes(d, "w", { requests = 5, window = 60 }, 200, 10)
    limits.add_bytes(d, "w", l, 200, -5)
    assert.is_nil(d.v["b\0" .. "180\0w"])
  end)

  it("admits when the dict cannot count (an outage of the limiter is not one of the store)", function()
    local d = { incr = function() return nil, "no memory" end }
    assert.is_true(limits.admit(d, "t", { requests = 1, window = 1 }, 5))
  end)
end)
