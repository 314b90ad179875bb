-- credentials.assume_role inside OpenResty: the STS call goes through the
-- client's cosocket transport (objstore.transport.ngx), and the provider,
-- kept per worker, serves the next request without another AssumeRole.
-- nginx is spec/support/ngx_contract.sh's, started here on ports of our
-- own (OBJSTORE_SPEC_NGX_CREDS_PORT, default 18611, and the next three)
-- and its own directory, so it does not meet another run; GET /credentials*
-- run spec/support/ngx_credentials_runner.lua there. Also: every provider
-- shape wrapped by ngx_credentials.cached, and what cached() and an
-- explicit cosocket transport give in init_worker and log (values, never a
-- raise).
local cjson = require "cjson"
local curl = require "objstore.transport.curl"
local servers = require "spec.support.servers"

describe("credentials.assume_role in OpenResty #server #nginx", function()
  local rgw
  for _, s in ipairs(servers.list()) do
    if s.name == "rgw" then rgw = s end
  end
  local bucket = servers.bucket_name("h9-ngx")
  local dir = servers.tmpdir()
  local port = tonumber(os.getenv("OBJSTORE_SPEC_NGX_CREDS_PORT") or "18611")
  local env = "NGX_CONTRACT_PORT=" .. port .. " NGX_CONTRACT_DIR=" .. servers.q(dir .. "/ngx") .. " "

  setup(function()
    assert(servers.sh("bash spec/support/rgw.sh sts-setup"))
    assert(servers.client(rgw):create_bucket(bucket))
    local ok, out = servers.sh("make --no-print-directory -s build LUA=luajit")
    assert(ok, out)
    ok, out = servers.sh(env .. "timeout 60 bash spec/support/ngx_contract.sh start")
    assert(ok, "cannot start nginx: " .. out)
  end)

  teardown(function()
    servers.sh(env .. "timeout 30 bash spec/support/ngx_contract.sh stop")
    servers.cleanup(servers.client(rgw), bucket)
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  it("assumes the role through cosockets, once per worker", function()
    local t = curl.new{ timeout = 60 }
    local function get()
      local res = assert(t:request{ url = "http://127.0.0.1:" .. port .. "/credentials?bucket=" .. bucket })
      assert.are.equal(200, res.status, res.body)
      return cjson.decode(res.body)
    end
    local first, second = get(), get()
    t:close()
    assert.is_true(first.ok, tostring(first.error))
    assert.are.equal("from a cosocket", first.body)
    assert.are.equal(0, first.refreshes_before)
    assert.are.equal(1, first.refreshes)
    assert.is_true(first.sts_through_cosockets, cjson.encode(first.urls))
    assert.is_true(second.ok, tostring(second.error))
    assert.are.equal(1, second.refreshes)
    assert.is_false(second.sts_through_cosockets)
  end)

  local function get_json(path)
    local t = curl.new{ timeout = 60 }
    local res = assert(t:request{ url = "http://127.0.0.1:" .. port .. path })
    t:close()
    assert.are.equal(200, res.status, res.body)
    return cjson.decode(res.body)
  end

  it("cached() takes every provider shape: a function, a table, an object with :get, assume_role{}", function()
    local out = get_json("/credentials/shapes?bucket=" .. bucket)
    assert.same({ ["function"] = "ok", ["static table"] = "ok", ["object with :get"] = "ok",
      ["credentials.assume_role{}"] = "ok" }, out)
  end)

  it("lets requests of one worker wait for the fetch under way on the default transport's semaphore", function()
    -- objstore.transport.auto (what objstore.new picks in nginx) must hand
    -- the cache a semaphore: without one the five requests that asked
    -- during the fetch failed with CredentialsError (the 503s of the
    -- OpenResty example under concurrent load).
    local out = get_json("/credentials/concurrent?bucket=" .. bucket)
    assert.same({ "ok", "ok", "ok", "ok", "ok", "ok" }, out.results)
    assert.are.equal(1, out.fetches)
  end)

  it("gives error values in init_worker and log, never a raise", function()
    assert.are.equal("ok\n", (select(2, servers.sh("curl -s --max-time 10 http://127.0.0.1:" .. port
      .. "/credentials/log"))))
    servers.sh("sleep 1.5")
    local r = get_json("/credentials/phases")
    for _, name in ipairs{ "init_worker transport.ngx request", "init_worker transport.ngx run",
      "log transport.ngx request", "log transport.ngx run" } do
      assert.is_table(r[name], name)
      assert.is_nil(r[name].raised, name)
      assert.are.equal("TransportError", r[name].code, name)
      assert.matches("objstore.openresty.defer", r[name].message, 1, true)
    end
    assert.same({ ok = true }, r["init_worker cached static table"])
    for _, name in ipairs{ "init_worker cached cosocket provider", "log cached cosocket provider",
      "log cached refresh under way", "log cached shared, being refreshed elsewhere" } do
      assert.is_table(r[name], name)
      assert.is_nil(r[name].raised, name)
      assert.are.equal("CredentialsError", r[name].code, name)
      assert.matches("objstore.openresty.defer", r[name].message, 1, true)
    end
  end)
end)
