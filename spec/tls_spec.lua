-- TLS on the curl transport against the rgw behind a TLS front
-- (spec/support/tls_front.sh: nginx with certificates from a throwaway CA):
-- verification on by default, a CA file, host-name checks, a minimum TLS
-- version, and `insecure` only when asked for.
local servers = require "servers"

local FRONT = "bash spec/support/tls_front.sh"

describe("TLS (curl transport) #server", function()
  local srv = servers.list()[1]
  local front, started_here = {}, false
  local bucket = servers.bucket_name("h11-tls")

  local function client(url, tls)
    return servers.client(srv, { endpoint = url, tls = tls, connect_timeout = 3, timeout = 20,
      retry = { max_attempts = 3, base_delay = 0.01 } })
  end

  setup(function()
    -- make test builds only the Lua 5.4 core; the front's nginx (for the
    -- ngx transport's cases) runs LuaJIT.
    local built, bout = servers.sh("make --no-print-directory -s build LUA=luajit")
    assert(built, "make build LUA=luajit failed: " .. bout)
    started_here = not servers.sh(FRONT .. " status")
    local ok, out = servers.sh(FRONT .. " start")
    assert(ok, out)
    local _, env = servers.sh(FRONT .. " env")
    for k, v in env:gmatch("export (TLS_FRONT_[%w_]+)=(%S+)") do front[k] = v end
    assert(front.TLS_FRONT_CA and front.TLS_FRONT_ENDPOINT, env)
  end)

  teardown(function()
    local c = client(front.TLS_FRONT_ENDPOINT, { ca_file = front.TLS_FRONT_CA })
    servers.cleanup(c, bucket)
    c:close()
    if started_here then servers.sh(FRONT .. " stop") end
  end)

  it("refuses a server whose CA is not trusted (the default), without retrying", function()
    local attempts = 0
    local c = servers.client(srv, { endpoint = front.TLS_FRONT_ENDPOINT, connect_timeout = 3,
      hooks = { on_request = function() attempts = attempts + 1 end } })
    local res, err = c:list_buckets()
    assert.is_nil(res)
    assert.equals("TLSError", err.code)
    assert.is_false(err.retryable)
    assert.is_nil(err.status)
    assert.matches("certificate", err.message)
    assert.equals(1, attempts)
    assert.equals(getmetatable(require("objstore.errors").new{ code = "X", message = "x" }), getmetatable(err))
  end)

  it("accepts it with tls.ca_file: put, get, list, delete over TLS", function()
    local c = client(front.TLS_FRONT_ENDPOINT, { ca_file = front.TLS_FRONT_CA })
    assert(c:create_bucket(bucket))
    local body = ("tls body "):rep(10000)
    assert(c:put_object(bucket, "over/tls", body))
    local got = assert(c:get_object(bucket, "over/tls"))
    assert.equals(body, got.body)
    local list = assert(c:list_objects(bucket))
    assert.equals("over/tls", list.contents[1].key)
    assert.equals(#body, list.contents[1].size)
    assert(c:delete_object(bucket, "over/tls"))
    c:close()
  end)

  it("accepts it with tls.ca_path (a hashed CA directory)", function()
    local d = servers.tmpdir()
    finally(function() servers.sh("rm -rf " .. servers.q(d)) end)
    assert(servers.sh("cp " .. servers.q(front.TLS_FRONT_CA) .. " " .. servers.q(d .. "/ca.pem")
      .. " && openssl rehash " .. servers.q(d)))
    local c = client(front.TLS_FRONT_ENDPOINT, { ca_path = d })
    assert(c:list_buckets())
  end)

  it("refuses a certificate for another host name, even from the trusted CA", function()
    local c = client(front.TLS_FRONT_WRONG_NAME, { ca_file = front.TLS_FRONT_CA })
    local res, err = c:list_buckets()
    assert.is_nil(res)
    assert.equals("TLSError", err.code)
    assert.is_false(err.retryable)
    assert.matches("name", err.message)
  end)

  it("refuses a server below tls.min_version, at once, and accepts it at its version", function()
    local attempts = 0
    local c = servers.client(srv, { endpoint = front.TLS_FRONT_TLS12, connect_timeout = 3,
      tls = { ca_file = front.TLS_FRONT_CA, min_version = "1.3" },
      hooks = { on_request = function() attempts = attempts + 1 end } })
    local res, err = c:list_buckets()
    assert.is_nil(res)
    assert.equals("TLSError", err.code)
    assert.is_false(err.retryable)
    assert.matches("version", err.message)
    assert.equals(1, attempts)
    assert(client(front.TLS_FRONT_TLS12, { ca_file = front.TLS_FRONT_CA, min_version = "1.2" }):list_buckets())
    -- the 1.3 front accepts a 1.3 minimum
    assert(client(front.TLS_FRONT_ENDPOINT, { ca_file = front.TLS_FRONT_CA, min_version = "1.3" }):list_buckets())
  end)

  it("turns verification off only with insecure = true", function()
    for _, url in ipairs{ front.TLS_FRONT_ENDPOINT, front.TLS_FRONT_WRONG_NAME } do
      assert(client(url, { insecure = true }):list_buckets())
      local _, err = client(url, { insecure = false }):list_buckets()
      assert.equals("TLSError", err.code)
      _, err = client(url, {}):list_buckets()
      assert.equals("TLSError", err.code)
    end
  end)

  it("checks the tls options when the client is made", function()
    local cases = {
      { { ca_file = 1 }, "opts%.tls%.ca_file%): must be a string, got number" },
      { { insecure = "yes" }, "opts%.tls%.insecure%): must be a boolean, got string" },
      { { min_version = "1.4" }, 'opts%.tls%.min_version%): must be "1%.0", "1%.1", "1%.2" or "1%.3"' },
      { { min_version = 1.3 }, "opts%.tls%.min_version%): must be a string, got number" },
      { { verify = false }, "opts%.tls%.verify%): is not an option of client%.new" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(client, front.TLS_FRONT_ENDPOINT, case[1])
      assert.is_false(ok)
      assert.matches("objstore%.client%.new: argument #1 %(" .. case[2], err)
    end
  end)

  describe("ngx transport, inside the front's nginx", function()
    local cjson = require "cjson"
    local curl = require "objstore.transport.curl"

    local function case(name, query)
      if not front.TLS_FRONT_NGX then return nil end
      local t = assert(curl.new{ timeout = 60, proxy = "" })
      local res = assert(t:request{ url = front.TLS_FRONT_NGX .. "/ngx/" .. name .. (query or "") })
      t:close()
      assert.equals(200, res.status, res.body)
      return cjson.decode(res.body)
    end

    it("refuses an untrusted CA, accepts the CA nginx trusts with a full round trip, insecure when set",
      function()
        local r = case("default")
        if not r then return pending("nginx has no Lua module or build/luajit has no core") end
        assert.is_false(r.ok)
        assert.equals("TLSError", r.code)
        assert.is_false(r.retryable)
        r = case("ca", "?bucket=" .. servers.bucket_name("h11-ngxtls"))
        assert.is_true(r.ok, r.message)
        assert.same({ "list_buckets", "round trip" }, r.steps)
        assert.is_true(case("insecure").ok)
      end)

    it("refuses a server below the protocols nginx allows (lua_ssl_protocols TLSv1.3)", function()
      local r = case("min-version")
      if not r then return pending("nginx has no Lua module or build/luajit has no core") end
      assert.is_false(r.ok)
      assert.equals("TLSError", r.code)
      assert.is_false(r.retryable)
    end)

    it("refuses a server below tls.min_version, accepts one at or above it", function()
      local r = case("min-option") -- min 1.3, the front's TLS 1.2 port
      if not r then return pending("nginx has no Lua module or build/luajit has no core") end
      assert.is_false(r.ok)
      assert.equals("TLSError", r.code)
      assert.is_false(r.retryable)
      assert.matches("below the TLS 1.3 asked for", r.message, 1, true)
      r = case("min-option-equal") -- min 1.2 on the same port
      assert.is_true(r.ok, r.message)
      r = case("min-option-ok") -- min 1.3, a port that speaks it
      assert.is_true(r.ok, r.message)
    end)

    it("keeps per-call hooks apart for concurrent calls on one client (light threads)", function()
      local r = case("call-hooks", "?bucket=" .. servers.bucket_name("h11-ngxhooks"))
      if not r then return pending("nginx has no Lua module or build/luajit has no core") end
      assert.is_true(r.ok, r.message or table.concat(r.steps or {}, ", "))
      for _, tag in ipairs{ "a", "b" } do
        assert.equals(10, #r.seen[tag]) -- on_request and on_response of five puts
        for _, key in ipairs(r.seen[tag]) do assert.equals(tag, key:sub(1, 1)) end
      end
      -- the two calls really ran at once
      assert.is_nil(r.order:match("^a+b+$"), r.order)
      assert.is_nil(r.order:match("^b+a+$"), r.order)
    end)

    it("refuses a certificate for another host name", function()
      local r = case("wrong-name")
      if not r then return pending("nginx has no Lua module or build/luajit has no core") end
      -- An IP endpoint: nginx checks the chain, objstore.transport.ngx the
      -- address against the certificate's IP SANs (the "ca" case above is
      -- the same address with a certificate that holds it).
      assert.is_false(r.ok)
      assert.equals("TLSError", r.code)
      assert.matches("certificate does not match 127.0.0.1", r.message, 1, true)
    end)
  end)
end)
