-- credentials.assume_role inside OpenResty: the STS call goes through the
-- client's cosocket transport (objstore.transport.ngx), and the provider,
-- kept per worker, serves the next request without another AssumeRole.
-- nginx is spec/support/ngx_contract.sh's, started here on ports of our
-- own (18611-18614) and its own directory, so it does not meet another run;
-- GET /credentials runs spec/support/ngx_credentials_runner.lua there.
local cjson = require "cjson"
local curl = require "objstore.transport.curl"
local servers = require "spec.support.servers"

describe("credentials.assume_role in OpenResty #server", function()
  local rgw
  for _, s in ipairs(servers.list()) do
    if s.name == "rgw" then rgw = s end
  end
  local bucket = servers.bucket_name("h9-ngx")
  local dir = servers.tmpdir()
  local env = "NGX_CONTRACT_PORT=18611 NGX_CONTRACT_DIR=" .. servers.q(dir .. "/ngx") .. " "

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
      local res = assert(t:request{ url = "http://127.0.0.1:18611/credentials?bucket=" .. bucket })
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
end)
