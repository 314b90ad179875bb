-- The S3 front's per-tenant counters (objstore.front.counters) on
-- /objstore-front-metrics and its per-tenant request limits
-- (objstore.front.limits), through the real front nginx in front of
-- radosgw, driven by boto3 (spec/support/front_clients.py) and curl.
-- Tagged #server: it needs radosgw (eval "$(bash spec/support/rgw.sh env)").
-- nginx listens on OBJSTORE_SPEC_FRONT_METRICS_PORT (18781), its files under
-- OBJSTORE_SPEC_FRONT_METRICS_DIR (/tmp/objstore-front-metrics-spec).
local objstore = require "objstore"
local servers = require "servers"
local futil = require "front_util"
local cjson = require "cjson"

local PORT = os.getenv("OBJSTORE_SPEC_FRONT_METRICS_PORT") or "18781"
local DIR = os.getenv("OBJSTORE_SPEC_FRONT_METRICS_DIR") or "/tmp/objstore-front-metrics-spec"
local URL = "http://127.0.0.1:" .. PORT
local PY = "/usr/bin/python3"

local sh, q, random_hex = futil.sh, futil.q, futil.random_hex
local write_file = servers.write_file

describe("the S3 front's per-tenant counters and limits #server #nginx", function()
  local store, bucket, A, B, L, BL, tmp

  local function py(t, args)
    local ok, out = sh(("env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=/dev/null "
      .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s "
      .. "AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true FRONT_URL=%s timeout 120 %s "
      .. "spec/support/front_clients.py %s"):format(q(t.ak), q(t.sk), q(URL), PY, args))
    local doc = ok and cjson.decode(out:match("[^\n]*\n?$") or "") or nil
    assert(type(doc) == "table", "front_clients.py " .. args .. " failed:\n" .. out)
    return doc
  end

  local function put(t, key, size)
    local f = tmp .. "/body-" .. size
    write_file(f, ("x"):rep(size))
    return py(t, "put " .. q(f) .. " data " .. q(key))
  end

  local function get(t, key)
    return py(t, "get data " .. q(key) .. " " .. q(tmp .. "/back"))
  end

  local function on_store(key)
    local res, err = store:get_object(bucket, key)
    if res then return res.body end
    assert.equal(404, err.status, tostring(err))
    return nil
  end

  -- The exposition text, once every worker's flush timer (1 s) has run.
  local function scrape()
    sh("sleep 1.5")
    local ok, out = sh("curl -sS --noproxy '*' -w '\\n%{http_code}' " .. q(URL .. "/objstore-front-metrics"))
    assert(ok, out)
    local text, code = out:match("^(.*)\n(%d+)$")
    assert.equal("200", code, out)
    return text
  end

  -- The value of one sample, its labels written as the exposition does
  -- (sorted, escaped); 0 when the series is absent.
  local function value(text, name, labels)
    local line = name .. "{" .. labels .. "} "
    for l in text:gmatch("[^\n]+") do
      if l:sub(1, #line) == line then return tonumber(l:sub(#line + 1)) end
    end
    return 0
  end

  -- The tenant label value of a name, escaped as the exposition format wants.
  local function label(name)
    return (name:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n"))
  end

  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
    local ok, out = sh("make --no-print-directory -s build LUA=luajit")
    assert(ok, "make build LUA=luajit failed: " .. out)
    tmp = DIR .. "-files"
    assert(sh("rm -rf " .. q(tmp) .. " && mkdir -p " .. q(tmp)))
    store = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"), region = "us-east-1", addressing = "path",
      access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY"),
      timeout = 60 }
    local id = random_hex(6)
    bucket = "front-metrics-" .. id
    assert(store:create_bucket(bucket))
    -- A's name needs escaping in a label; L may make 2 requests an hour.
    A = { name = 'team "a"\\one', ak = "AKMETRA" .. id, sk = random_hex(16) }
    B = { name = "team-b", ak = "AKMETRB" .. id, sk = random_hex(16) }
    L = { name = "limited", ak = "AKMETRL" .. id, sk = random_hex(16) }
    BL = { name = "byte-limited", ak = "AKMETRBL" .. id, sk = random_hex(16) }
    local tenants = {}
    for _, t in ipairs({ A, B, L, BL }) do
      tenants[t.name] = { keys = { { access_key = t.ak, secret_key = t.sk } }, buckets = {
        data = { store_bucket = bucket, prefix = t.ak .. "/", allow = { "read", "write", "list", "delete" } } } }
    end
    tenants[L.name].limits = { requests = 2, window = 3600 }
    tenants[BL.name].limits = { bytes = 30, window = 3600 }
    write_file(tmp .. "/tenants.json", cjson.encode({ tenants = tenants }))
    ok, out = sh(("FRONT_PORT=%s FRONT_DIR=%s FRONT_TENANTS=%s timeout 120 bash examples/front/run.sh start")
      :format(q(PORT), q(DIR), q(tmp .. "/tenants.json")))
    assert(ok, "cannot start the front: " .. out)
  end)

  teardown(function()
    sh(("FRONT_PORT=%s FRONT_DIR=%s timeout 60 bash examples/front/run.sh stop"):format(q(PORT), q(DIR)))
    if store and bucket then
      local keys = {}
      for o in store:list_objects_iter(bucket) do
        if o then keys[#keys + 1] = o.key end
      end
      if #keys > 0 then store:delete_objects(bucket, keys) end
      store:delete_bucket(bucket)
    end
    if tmp then sh("rm -rf " .. q(tmp)) end
  end)

  it("counts requests, bytes in and out and errors per tenant, each tenant only its own", function()
    assert.equal(200, put(A, "one.bin", 3000).status)
    assert.equal(200, get(A, "one.bin").status)
    assert.equal("404", py(A, "call head_object " .. q('{"Bucket":"data","Key":"missing"}')).code)
    assert.equal(200, put(B, "b.bin", 1000).status)
    assert.equal(200, get(B, "b.bin").status)
    assert.equal(200, get(B, "b.bin").status)
    -- a stranger: no tenant
    assert.equal(403, py({ ak = "AKNOBODY", sk = "not-a-secret" }, "raw GET /data/one.bin").status)
    local text = scrape()
    local a, b = label(A.name), label(B.name)
    local R, BY, E = "objstore_front_requests_total", "objstore_front_bytes_total", "objstore_front_errors_total"
    assert.equal(1, value(text, R, 'class="2xx",operation="PutObject",tenant="' .. a .. '"'))
    assert.equal(1, value(text, R, 'class="2xx",operation="GetObject",tenant="' .. a .. '"'))
    assert.equal(1, value(text, R, 'class="4xx",operation="HeadObject",tenant="' .. a .. '"'))
    assert.equal(1, value(text, E, 'code="NoSuchKey",tenant="' .. a .. '"'))
    assert.equal(3000, value(text, BY, 'direction="in",tenant="' .. a .. '"'))
    assert.equal(3000, value(text, BY, 'direction="out",tenant="' .. a .. '"'), text)
    assert.equal(1, value(text, R, 'class="2xx",operation="PutObject",tenant="' .. b .. '"'))
    assert.equal(2, value(text, R, 'class="2xx",operation="GetObject",tenant="' .. b .. '"'))
    assert.equal(0, value(text, R, 'class="4xx",operation="HeadObject",tenant="' .. b .. '"'))
    assert.equal(0, value(text, E, 'code="NoSuchKey",tenant="' .. b .. '"'))
    assert.equal(1000, value(text, BY, 'direction="in",tenant="' .. b .. '"'))
    assert.equal(2000, value(text, BY, 'direction="out",tenant="' .. b .. '"'))
    assert.equal(1, value(text, R, 'class="4xx",operation="unknown",tenant=""'))
    assert.equal(1, value(text, E, 'code="InvalidAccessKeyId",tenant=""'))
    -- Prometheus's own parser reads it, A's name back as it is in the file
    write_file(tmp .. "/metrics.txt", text)
    local pok, parsed = sh(PY .. " spec/support/prom_parse.py < " .. q(tmp .. "/metrics.txt"))
    assert(pok, parsed)
    local seen = 0
    for l in parsed:gmatch("[^\n]+") do
      local sample = cjson.decode(l)
      if sample.name == "objstore_front_bytes_total" and sample.labels.tenant == A.name
        and sample.labels.direction == "in" then
        seen = seen + 1
        assert.equal(3000, sample.value)
      end
    end
    assert.equal(1, seen)
    -- every series of the front's families is one of these tenants' or ""
    for tenant in text:gmatch('objstore_front_[%w_]+{[^\n]-tenant="(.-)"} ') do
      assert.is_true(tenant == a or tenant == b or tenant == "", tenant)
    end
    -- the store client's own families ride along in the same text
    assert.truthy(text:find("\nobjstore_requests_total{", 1, true), text)
    assert.truthy(text:find("# TYPE objstore_front_requests_total counter", 1, true), text)
    for _, t in ipairs({ A, B, L }) do
      assert.falsy(text:find(t.ak, 1, true), "an access key in the metrics")
      assert.falsy(text:find(t.sk, 1, true), "a secret in the metrics")
    end
    assert.falsy(text:find(os.getenv("OBJSTORE_TEST_SECRET_KEY"), 1, true), "the store secret in the metrics")
    assert.falsy(text:find(os.getenv("OBJSTORE_TEST_ACCESS_KEY"), 1, true), "the store key in the metrics")
  end)

  it("answers a tenant over its limit 503 SlowDown with Retry-After before the store, others unlimited", function()
    -- L's window is the clock hour: not one ending within this case
    local left = 3600 - os.time() % 3600
    if left < 60 then sh("sleep " .. (left + 1)) end
    assert.equal(200, put(L, "l1", 10).status)
    assert.equal(200, put(L, "l2", 10).status)
    local f = tmp .. "/l3"
    write_file(f, "third")
    local r = py(L, "raw PUT /data/l3 --body " .. q(f))
    assert.equal(503, r.status)
    assert.equal("SlowDown", futil.code_of(r.body))
    local after = tonumber(r.retry_after)
    assert.is_true(after ~= nil and after >= 1 and after <= 3600, tostring(r.retry_after))
    -- (raw: boto3 would retry a SlowDown)
    r = py(L, "raw GET /data/l1")
    assert.equal(503, r.status)
    assert.equal("SlowDown", futil.code_of(r.body))
    -- nothing reached the store
    assert.equal("xxxxxxxxxx", on_store(L.ak .. "/l1"))
    assert.is_nil(on_store(L.ak .. "/l3"))
    -- meanwhile B is not limited
    for i = 1, 3 do assert.equal(200, put(B, "free" .. i, 5).status) end
    assert.equal("xxxxx", on_store(B.ak .. "/free3"))
    local text = scrape()
    assert.equal(2, value(text, "objstore_front_errors_total", 'code="SlowDown",tenant="limited"'))
    assert.equal(2, value(text, "objstore_front_requests_total", 'class="2xx",operation="PutObject",tenant="limited"'))
    -- refused before routing: no operation yet
    assert.equal(2, value(text, "objstore_front_requests_total", 'class="5xx",operation="unknown",tenant="limited"'))
    assert.equal(20, value(text, "objstore_front_bytes_total", 'direction="in",tenant="limited"'))
  end)

  it("admits a tenant's requests while its bytes of the window are under its budget, then 503 SlowDown", function()
    local left = 3600 - os.time() % 3600
    if left < 60 then sh("sleep " .. (left + 1)) end
    assert.equal(200, put(BL, "b1", 20).status)
    assert.equal(200, put(BL, "b2", 20).status) -- 20 bytes moved: under 30, admitted
    local f = tmp .. "/b3"
    write_file(f, "third")
    local r = py(BL, "raw PUT /data/b3 --body " .. q(f))
    assert.equal(503, r.status, r.body)
    assert.equal("SlowDown", futil.code_of(r.body))
    local after = tonumber(r.retry_after)
    assert.is_true(after ~= nil and after >= 1 and after <= 3600, tostring(r.retry_after))
    assert.is_nil(on_store(BL.ak .. "/b3"))
    assert.equal(("x"):rep(20), on_store(BL.ak .. "/b2"))
    -- another tenant is not held back by it
    assert.equal(200, put(B, "free-of-bytes", 40).status)
  end)

  it("serves the metrics to 127.0.0.1 only", function()
    -- from 127.0.0.2 (loopback too, but not the allowed address): refused
    local ok, out = sh("curl -sS --noproxy '*' --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "
      .. q(URL .. "/objstore-front-metrics"))
    assert(ok, out)
    assert.equal("403", out)
    ok, out = sh("curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' " .. q(URL .. "/objstore-front-metrics"))
    assert(ok, out)
    assert.equal("200", out)
  end)
end)
