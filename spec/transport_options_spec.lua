-- One option schema for constructing every transport
-- (objstore.transport.options): curl and ngx take the same names with the
-- same meaning, each refuses, with the reason, what it cannot honour, and
-- read_timeout means "no byte for that long" on curl too (its low-speed
-- limit), checked against a server that answers nothing
-- (spec/support/hostile_server.py, mode "stall", on a port of its own).
local curl = require "objstore.transport.curl"
local ngx_transport = require "objstore.transport.ngx"
local options = require "objstore.transport.options"
local servers = require "servers"
local core = require "objstore.core"

local monotonic = core.time.monotonic

local function raises(f, pattern)
  local ok, err = pcall(f)
  assert.is_false(ok, "did not raise")
  assert.matches(pattern, tostring(err), 1, true)
end

describe("transport construction options", function()
  local both = { curl = curl.new, ngx = ngx_transport.new }

  it("are the same names for curl and ngx", function()
    for name, new in pairs(both) do
      local t = new { timeout = 30, connect_timeout = 2, read_timeout = 5, send_timeout = 5, max_connections = 4,
        proxy = "", user_agent = "ua/1", tls = { insecure = false, min_version = "1.2" } }
      assert.is_table(t, name)
      t:close()
    end
    -- the cosocket pool is max_connections
    assert.equals(4, ngx_transport.new { max_connections = 4 }.pool_size)
  end)

  it("refuse the old names, unknown names and bad values in one wording", function()
    for name, new in pairs(both) do
      local F = "objstore.transport." .. name .. ".new: argument #1 "
      raises(function() new { pool_size = 3 } end, F .. "(opts.pool_size): is not an option of transport."
        .. name .. ".new")
      raises(function() new { tls_min_version = "1.2" } end, F .. "(opts.tls_min_version): is not an option of")
      raises(function() new { ca_file = "/x" } end, F .. "(opts.ca_file): is not an option of")
      raises(function() new { tls = { verify = false } } end, F .. "(opts.tls.verify): is not an option of")
      raises(function() new { max_connections = 0 } end, F .. "(opts.max_connections): must be an integer from 1")
      raises(function() new { max_connections = 1.5 } end, F .. "(opts.max_connections): must be an integer from 1")
      raises(function() new { read_timeout = -1 } end, F .. "(opts.read_timeout): must be a non-negative number")
      raises(function() new { timeout = 0 / 0 } end, F .. "(opts.timeout): must be a non-negative number")
      raises(function() new { tls = { min_version = "1.4" } } end, F .. '(opts.tls.min_version): must be "1.0"')
      raises(function() new { tls = "yes" } end, F .. "(opts.tls): must be a table, got string")
    end
  end)

  it("refuse what a transport cannot honour, saying why", function()
    raises(function() curl.new { tls = { server_name = "example.com" } } end,
      "(opts.tls.server_name): is not supported by the curl transport")
    raises(function() ngx_transport.new { tls = { ca_file = "/etc/ssl/certs/ca-certificates.crt" } } end,
      "(opts.tls.ca_file): is not supported by the cosocket transport: nginx's lua_ssl_trusted_certificate")
    raises(function() ngx_transport.new { tls = { ca_path = "/etc/ssl/certs" } } end,
      "(opts.tls.ca_path): is not supported by the cosocket transport")
    raises(function() ngx_transport.new { verbose = true } end, "(opts.verbose): is not an option of transport.ngx.new")
    raises(function() curl.new { keepalive_timeout = 5 } end, "(opts.keepalive_timeout): is not an option of")
    raises(function() curl.new { read_timeout = 5, low_speed_time = 9 } end,
      "(opts.low_speed_limit): cannot be given with read_timeout or send_timeout")
    -- and each takes its own
    curl.new({ verbose = false, low_speed_limit = 1, low_speed_time = 30 }):close()
    ngx_transport.new({ keepalive_timeout = 5, tls = { server_name = "localhost" } }):close()
  end)

  it("documents one schema", function()
    for _, k in ipairs{ "timeout", "connect_timeout", "read_timeout", "send_timeout", "max_connections", "proxy",
      "user_agent", "tls" } do
      assert.is_string(options.SCHEMA[k], k)
    end
    for _, k in ipairs{ "ca_file", "ca_path", "insecure", "min_version", "server_name" } do
      assert.is_string(options.TLS[k], k)
    end
  end)

  describe("read_timeout on curl #server", function()
    local url, stop

    setup(function()
      local base
      base, stop = servers.hostile_server(0, 60)
      url = base .. "/stall/k"
    end)

    teardown(function()
      if stop then stop() end
    end)

    it("ends a request to a server that sends nothing after read_timeout, not the whole timeout", function()
      local t = assert(curl.new { read_timeout = 1, timeout = 30, proxy = "" })
      local t0 = monotonic()
      local res, err = t:request { url = url }
      local dt = monotonic() - t0
      t:close()
      assert.is_nil(res)
      assert.equals("Timeout", err.code, tostring(err))
      assert.is_true(dt < 10, "took " .. dt .. " s")
    end)
  end)
end)
