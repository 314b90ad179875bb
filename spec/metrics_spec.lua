-- Metrics: objstore.metrics fed by the pipeline's events, rendered in the
-- Prometheus text format and read back by the Prometheus client library's
-- own parser (python3-prometheus-client), counts checked against what a
-- counting transport really sent to rgw.
local objstore = require "objstore"
local metrics = require "objstore.metrics"
local servers = require "servers"
local cjson = require "cjson"

local PY = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"

--- Parses exposition text with prometheus_client; returns a list of samples.
local function parse(text)
  local dir = servers.tmpdir()
  local path = dir .. "/metrics.txt"
  servers.write_file(path, text)
  local ok, out = servers.sh(PY .. " spec/support/prom_parse.py < " .. servers.q(path))
  os.remove(path)
  os.remove(dir)
  assert(ok, "prometheus_client could not parse the output:\n" .. out .. "\n" .. text)
  local samples = {}
  for line in out:gmatch("[^\n]+") do samples[#samples + 1] = cjson.decode(line) end
  return samples
end

local function value(samples, name, labels)
  local total, found = 0, false
  for _, s in ipairs(samples) do
    if s.name == name then
      local match = true
      for k, v in pairs(labels or {}) do
        if s.labels[k] ~= tostring(v) then match = false end
      end
      if match then total, found = total + s.value, true end
    end
  end
  return found and total or nil
end

describe("metrics registry", function()
  it("renders counters, gauges and histograms the Prometheus parser reads", function()
    local r = metrics.new{ buckets = { 0.1, 1 } }
    local h = r:hooks()
    h.on_request{}
    h.on_response{ op = "GetObject", status = 200, latency = 0.05, bytes_in = 10, bytes_out = 0 }
    h.on_request{}
    h.on_response{ op = "GetObject", status = 503, latency = 0.5, bytes_in = 0, bytes_out = 0,
      error = { code = "SlowDown", status = 503 } }
    h.on_retry{ op = "GetObject", reason = "SlowDown" }
    h.on_request{}
    h.on_response{ op = 'Odd"Op\\', code = "ConnectFailed", latency = 2 }
    h.on_failover{ from = "http://a", to = "http://b" }
    h.on_error{ op = "GetObject", error = { code = "NoSuchKey" } }
    local s = parse(r:prometheus())
    assert.equals(1, value(s, "objstore_requests_total", { operation = "GetObject", status = 200 }))
    assert.equals(1, value(s, "objstore_requests_total", { operation = "GetObject", status = 503 }))
    assert.equals(1, value(s, "objstore_requests_total", { operation = 'Odd"Op\\', status = "ConnectFailed" }))
    assert.equals(1, value(s, "objstore_throttles_total", { operation = "GetObject" }))
    assert.equals(1, value(s, "objstore_retries_total", { reason = "SlowDown" }))
    assert.equals(1, value(s, "objstore_failovers_total", { from = "http://a", to = "http://b" }))
    assert.equals(1, value(s, "objstore_errors_total", { code = "NoSuchKey" }))
    assert.equals(10, value(s, "objstore_request_bytes_total", { operation = "GetObject", direction = "in" }))
    assert.equals(0, value(s, "objstore_inflight_requests"))
    -- buckets are cumulative
    assert.equals(1, value(s, "objstore_request_duration_seconds_bucket", { operation = "GetObject", le = "0.1" }))
    assert.equals(2, value(s, "objstore_request_duration_seconds_bucket", { operation = "GetObject", le = "1" }))
    assert.equals(2, value(s, "objstore_request_duration_seconds_count", { operation = "GetObject" }))
    assert.near(0.55, value(s, "objstore_request_duration_seconds_sum", { operation = "GetObject" }), 1e-9)
  end)

  it("rejects what is not a registry", function()
    local ok, err = pcall(objstore.new, { endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
      metrics = {} })
    assert.is_false(ok)
    assert.matches("objstore%.client%.new: argument #1 %(opts%.metrics%)", err)
  end)
end)

describe("metrics on rgw #server", function()
  local rgw
  for _, s in ipairs(servers.list()) do
    if s.name == "rgw" then rgw = s end
  end

  --- The curl transport, counting what it really sends.
  local function counting()
    local curl = assert(require("objstore.transport.curl").new{ connect_timeout = 1 })
    local t = { capabilities = curl.capabilities, sent = 0, by_method = {} }
    local function count(req)
      t.sent = t.sent + 1
      t.by_method[req.method] = (t.by_method[req.method] or 0) + 1
    end
    function t.request(_, req)
      count(req)
      return curl:request(req)
    end
    function t.run(_, source, on_done, n)
      return curl:run(function()
        local req = source()
        if req then count(req) end
        return req
      end, on_done, n)
    end
    function t.sleep(_, s) return curl:sleep(s) end
    function t.close() return curl:close() end
    return t
  end

  it("counts every request the transport sent, by operation and status", function()
    local registry = metrics.new()
    local t = counting()
    local c = servers.client(rgw, { metrics = registry, transport = t })
    local bucket = servers.bucket_name("metrics")
    assert(c:create_bucket(bucket))
    for i = 1, 5 do assert(c:put_object(bucket, "k" .. i, ("x"):rep(i * 100))) end
    for i = 1, 5 do assert(c:get_object(bucket, "k" .. i)) end
    assert.is_false(c:object_exists(bucket, "missing"))
    local dir = servers.tmpdir()
    local path = dir .. "/f"
    assert(servers.sh("head -c " .. (2 * 5 * 1024 * 1024 + 7) .. " /dev/urandom > " .. servers.q(path)))
    assert(c:upload_file(bucket, "big", path, { part_size = 5 * 1024 * 1024 }))
    servers.sh("rm -rf " .. servers.q(dir))
    local s = parse(registry:prometheus())
    assert.equals(t.sent, value(s, "objstore_requests_total"))
    assert.equals(5, value(s, "objstore_requests_total", { operation = "PutObject", status = 200 }))
    assert.equals(5, value(s, "objstore_requests_total", { operation = "GetObject", status = 200 }))
    assert.equals(1, value(s, "objstore_requests_total", { operation = "HeadObject", status = 404 }))
    assert.equals(3, value(s, "objstore_requests_total", { operation = "UploadPart", status = 200 }))
    assert.equals(t.by_method.PUT, value(s, "objstore_requests_total", { operation = "PutObject" })
      + value(s, "objstore_requests_total", { operation = "UploadPart" })
      + value(s, "objstore_requests_total", { operation = "CreateBucket" }))
    assert.equals(1500 + 2 * 5 * 1024 * 1024 + 7,
      value(s, "objstore_request_bytes_total", { operation = "PutObject", direction = "out" })
      + value(s, "objstore_request_bytes_total", { operation = "UploadPart", direction = "out" }))
    assert.equals(1500, value(s, "objstore_request_bytes_total", { operation = "GetObject", direction = "in" }))
    assert.equals(t.sent, value(s, "objstore_request_duration_seconds_count"))
    assert.equals(0, value(s, "objstore_inflight_requests"))
    servers.cleanup(c, bucket)
  end)

  it("counts fail-overs and transport errors, and shows each endpoint's breaker", function()
    local registry = metrics.new()
    local t = counting()
    local c = servers.client(rgw, { endpoint = false, endpoints = { "http://127.0.0.1:9", rgw.endpoint },
      metrics = registry, transport = t, failover = { threshold = 1, cooldown = 60 } })
    assert(c:list_buckets())
    local s = parse(registry:prometheus())
    assert.equals(2, t.sent)
    assert.equals(1, value(s, "objstore_requests_total", { operation = "ListBuckets", status = "ConnectFailed" }))
    assert.equals(1, value(s, "objstore_requests_total", { operation = "ListBuckets", status = 200 }))
    assert.equals(1, value(s, "objstore_failovers_total", { from = "http://127.0.0.1:9", to = rgw.endpoint }))
    assert.equals(2, value(s, "objstore_circuit_state", { endpoint = "http://127.0.0.1:9" }))
    assert.equals(0, value(s, "objstore_circuit_state", { endpoint = rgw.endpoint }))
  end)
end)
