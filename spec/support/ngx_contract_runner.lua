-- Runs the transport contract (spec/support/transport_contract.lua) against
-- objstore.transport.ngx inside nginx, with a small busted-compatible shim:
-- describe, it, setup, teardown, before_each, after_each, pending, and the
-- assert functions the contract uses. spec/support/ngx_contract.sh puts it
-- behind `location = /contract`; the answer is one line per case
-- ("ok", "FAIL" or "PENDING", the full name, the message) and last
--   N passed, N failed, N pending
local _M = {}

local concat = table.concat

-- assert ------------------------------------------------------------------

-- One printable line for a value: strings quoted, cut at 100 bytes, bytes
-- outside printable ASCII as \ddd.
local function fmt(v)
  if type(v) == "string" then
    local s = v:sub(1, 100):gsub('[^%w%p ]', function(c) return "\\" .. c:byte() end):gsub('"', '\\"')
    return '"' .. s .. '"' .. (#v > 100 and ("... (" .. #v .. " bytes)") or "")
  end
  return tostring(v)
end

local function fail(msg, default)
  error(msg ~= nil and tostring(msg) or default, 3)
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local assert_ = setmetatable({}, {
  __call = function(_, v, msg, ...)
    if not v then error(msg ~= nil and tostring(msg) or "assertion failed!", 2) end
    return v, msg, ...
  end,
})

function assert_.equal(want, got, msg)
  if want ~= got then fail(msg, "expected " .. fmt(want) .. ", got " .. fmt(got)) end
end
assert_.are_equal = assert_.equal

function assert_.same(want, got, msg)
  if not deep_equal(want, got) then fail(msg, "tables differ") end
end

local function is_type(t)
  return function(v, msg)
    if type(v) ~= t then fail(msg, t .. " expected, got " .. type(v) .. " " .. fmt(v)) end
  end
end
assert_.is_table, assert_.is_string, assert_.is_boolean = is_type("table"), is_type("string"), is_type("boolean")
assert_.is_function, assert_.is_number = is_type("function"), is_type("number")

function assert_.is_nil(v, msg)
  if v ~= nil then fail(msg, "nil expected, got " .. fmt(v)) end
end
function assert_.is_not_nil(v, msg)
  if v == nil then fail(msg, "a value expected, got nil") end
end
function assert_.is_true(v, msg)
  if v ~= true then fail(msg, "true expected, got " .. fmt(v)) end
end
function assert_.is_false(v, msg)
  if v ~= false then fail(msg, "false expected, got " .. fmt(v)) end
end
function assert_.truthy(v, msg)
  if not v then fail(msg, "truthy value expected, got " .. fmt(v)) end
end

-- busted's assert.matches(pattern, s, init, plain).
function assert_.matches(pattern, s, init, plain, msg)
  if type(s) ~= "string" or not s:find(pattern, init, plain) then
    fail(msg, fmt(s) .. " does not match " .. fmt(pattern))
  end
end

function assert_.has_error(f, want)
  local ok, e = pcall(f)
  if ok then fail(nil, "an error expected") end
  if want ~= nil and tostring(e):gsub("^[^:]*:%d+: ", "") ~= want then
    fail(nil, "error " .. fmt(tostring(e)) .. ", expected " .. fmt(want))
  end
end

-- describe / it -------------------------------------------------------------

local function new_block(name, parent)
  return { name = name, parent = parent, items = {}, setup = {}, teardown = {}, before = {}, after = {} }
end

local function shim()
  local root = new_block(nil, nil)
  local cur = root
  local current_test
  local env = { assert = assert_ }
  function env.describe(name, fn)
    local b = new_block(name, cur)
    cur.items[#cur.items + 1] = { block = b }
    local saved = cur
    cur = b
    fn()
    cur = saved
  end
  function env.it(name, fn)
    cur.items[#cur.items + 1] = { name = name, fn = fn }
  end
  function env.setup(fn) cur.setup[#cur.setup + 1] = fn end
  function env.teardown(fn) cur.teardown[#cur.teardown + 1] = fn end
  function env.before_each(fn) cur.before[#cur.before + 1] = fn end
  function env.after_each(fn) cur.after[#cur.after + 1] = fn end
  env.lazy_setup, env.lazy_teardown = env.setup, env.teardown
  function env.pending(msg)
    if current_test then
      current_test.pending = msg or "pending"
    else
      cur.items[#cur.items + 1] = { name = tostring(msg), pending = "pending" }
    end
  end
  local function set_current(t) current_test = t end
  return env, root, set_current
end

-- The error of a case, as one line (where it was raised and the message).
local function trace(e)
  return (tostring(e):gsub("[\r\n]+", " | "))
end

-- Runs the tree; report(status, fullname, message) for each case.
local function run_block(b, names, report, set_current, inherited_before, inherited_after)
  local function full(n)
    local t = {}
    for _, x in ipairs(names) do t[#t + 1] = x end
    t[#t + 1] = n
    return concat(t, " ")
  end
  local before, after = {}, {}
  for _, f in ipairs(inherited_before) do before[#before + 1] = f end
  for _, f in ipairs(b.before) do before[#before + 1] = f end
  for _, f in ipairs(b.after) do after[#after + 1] = f end
  for _, f in ipairs(inherited_after) do after[#after + 1] = f end
  local setup_err
  for _, f in ipairs(b.setup) do
    local ok, e = xpcall(f, trace)
    if not ok then setup_err = e break end
  end
  local function each_case(blk, nm, fn)
    for _, item in ipairs(blk.items) do
      if item.block then
        local sub = {}
        for _, x in ipairs(nm) do sub[#sub + 1] = x end
        sub[#sub + 1] = item.block.name
        fn(item, sub)
      else
        fn(item, nm)
      end
    end
  end
  if setup_err then
    local function all_fail(blk, nm)
      each_case(blk, nm, function(item, sub)
        if item.block then all_fail(item.block, sub)
        else report("FAIL", concat(nm, " ") .. " " .. item.name, "setup failed: " .. setup_err) end
      end)
    end
    all_fail(b, names)
  else
    for _, item in ipairs(b.items) do
      if item.block then
        local sub = {}
        for _, x in ipairs(names) do sub[#sub + 1] = x end
        sub[#sub + 1] = item.block.name
        run_block(item.block, sub, report, set_current, before, after)
      elseif item.fn == nil then
        report("PENDING", full(item.name), item.pending)
      else
        local t = {}
        set_current(t)
        local ok, e = true, nil
        for _, f in ipairs(before) do
          ok, e = xpcall(f, trace)
          if not ok then break end
        end
        if ok then ok, e = xpcall(item.fn, trace) end
        for _, f in ipairs(after) do
          local aok, ae = xpcall(f, trace)
          if ok and not aok then ok, e = false, ae end
        end
        set_current(nil)
        if not ok then report("FAIL", full(item.name), e)
        elseif t.pending then report("PENDING", full(item.name), t.pending)
        else report("ok", full(item.name), "") end
      end
    end
  end
  for _, f in ipairs(b.teardown) do
    local ok, e = xpcall(f, trace)
    if not ok then report("FAIL", full("(teardown)"), e) end
  end
end

-- ngx-specific cases ---------------------------------------------------------

-- Raw answers for the cases below, written on the request's raw socket by
-- `location = /raw` of the same nginx (then the connection is closed).
local RAW = {
  chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    .. "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
  close = "HTTP/1.1 200 OK\r\nConnection: close\r\nX-A: 1\r\n\r\n" .. ("0123456789"):rep(10000),
  short = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
  shortchunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc",
  badstatus = "HTXP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
  badheader = "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n",
  continue = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  stall = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
}

--- The handler of `location = /raw?k=<kind>`.
function _M.raw()
  local k = ngx.var.arg_k
  local sock = assert(ngx.req.socket(true))
  sock:send(RAW[k] or "HTTP/1.1 500 Unknown\r\nContent-Length: 0\r\n\r\n")
  if k == "stall" then ngx.sleep(3) end
end

local function extras(env, base)
  local describe, it, assert, setup, teardown = env.describe, env.it, env.assert, env.setup, env.teardown
  local pending = env.pending
  local checksum = require "objstore.checksum"
  local ngx_transport = require "objstore.transport.ngx"
  -- The layer above (objstore.engine.pipeline: runner, sleeper, capabilities)
  -- over this transport, against radosgw.
  describe("ngx transport under an objstore client", function()
    local servers = require "servers"
    local c, bucket, dir
    setup(function()
      local srv = assert(servers.list()[1], "no rgw configured")
      c = servers.client(srv, { transport = ngx_transport.new {} })
      bucket = servers.bucket_name("ngx-client")
      assert(c:create_bucket(bucket))
      dir = os.tmpname()
    end)
    teardown(function()
      if c and bucket then servers.cleanup(c, bucket) end
      for _, suffix in ipairs { "", ".up", ".down" } do os.remove(dir .. suffix) end
      if c then c:close() end
    end)

    it("puts and gets an object", function()
      assert(c:put_object(bucket, "k", "hello from nginx"))
      local r = assert(c:get_object(bucket, "k"))
      assert.equal("hello from nginx", r.body)
    end)

    it("uploads a file in parts and downloads it in ranges, concurrently", function()
      local P = 5 * 1024 * 1024
      local data = require("transport_contract").bytes(2 * P + 12345, 9)
      servers.write_file(dir .. ".up", data)
      local up = assert(c:upload_file(bucket, "big", dir .. ".up", { part_size = P, multipart_threshold = 1,
        concurrency = 3 }))
      assert.equal(#data, up.size)
      assert.equal(3, up.parts)
      local down = assert(c:download_file(bucket, "big", dir .. ".down", { part_size = P, concurrency = 3 }))
      assert.equal(#data, down.size)
      assert.is_true(servers.read_file(dir .. ".down") == data, "downloaded bytes differ")
    end)
  end)

  describe("ngx transport: HTTP details", function()
    local t
    setup(function() t = ngx_transport.new { read_timeout = 5 } end)
    teardown(function() t:close() end)
    local function raw(k, fields)
      local r = { url = base .. "/raw?k=" .. k, timeout = 10 }
      for f, v in pairs(fields or {}) do r[f] = v end
      return t:request(r)
    end

    it("decodes a chunked response (extensions, trailers), hashing it", function()
      local res = assert(raw("chunked", { hashes = { "md5" } }))
      assert.equal(200, res.status)
      assert.equal("hello world", res.body)
      assert.equal(11, res.bytes)
      assert.equal(checksum.digest("md5", "hello world"), res.hashes.md5)
    end)

    it("reads a close-delimited body to its end", function()
      local res = assert(raw("close"))
      assert.equal(100000, res.bytes)
      assert.equal(("0123456789"):rep(10000), res.body)
      assert.equal("1", res.headers["x-a"])
    end)

    it("skips a 100 Continue", function()
      local res = assert(raw("continue"))
      assert.equal(200, res.status)
      assert.equal("ok", res.body)
    end)

    it("gives BodyTruncated for a body shorter than Content-Length or its chunk", function()
      for _, k in ipairs { "short", "shortchunk" } do
        local res, err = raw(k)
        assert.is_nil(res)
        assert.equal("BodyTruncated", err.code, k .. ": " .. tostring(err))
        assert.is_true(err.retryable)
      end
    end)

    it("gives ProtocolError for a malformed status line or header", function()
      for _, k in ipairs { "badstatus", "badheader" } do
        local res, err = raw(k)
        assert.is_nil(res)
        assert.equal("ProtocolError", err.code, k .. ": " .. tostring(err))
      end
    end)

    it("gives Timeout when the body stops coming, within the request's timeout", function()
      local t0 = ngx.now()
      local res, err = raw("stall", { timeout = 0.5 })
      ngx.update_time()
      assert.is_nil(res)
      assert.equal("Timeout", err.code, tostring(err))
      assert.is_true(ngx.now() - t0 < 2)
    end)

    it("reuses a connection only after a whole answer, never after an abort or an early error", function()
      local t2 = ngx_transport.new {}
      local a = assert(t2:request { url = base .. "/hello" })
      assert.equal("hello", a.body)
      assert.equal(1, a.connects)
      local b = assert(t2:request { url = base .. "/hello" })
      assert.equal(0, b.connects, "the second request reuses the connection")
      local c = assert(t2:request { method = "HEAD", url = base .. "/hello" })
      assert.equal(0, c.connects)
      assert.equal(0, c.bytes)
      local d = assert(t2:request { url = base .. "/nocontent" })
      assert.equal(204, d.status)
      assert.equal(0, d.connects)
      -- an aborted body: that connection is closed
      local _, err = t2:request { url = base .. "/big", sink = function() return false end }
      assert.equal("Aborted", err.code)
      local e = assert(t2:request { url = base .. "/hello" })
      assert.equal(1, e.connects, "after an abort a new connection")
      -- an error status answered to a request with a body: closed
      local f = assert(t2:request { method = "PUT", url = base .. "/forbidden", body = ("x"):rep(1000) })
      assert.equal(403, f.status)
      local g = assert(t2:request { url = base .. "/hello" })
      assert.equal(1, g.connects, "after an error answer to a body a new connection")
      -- Connection: close from the server
      assert(t2:request { url = base .. "/closing" })
      local h = assert(t2:request { url = base .. "/hello" })
      assert.equal(1, h.connects, "after Connection: close a new connection")
      t2:close()
    end)

    it("ends its idle pooled connections on close", function()
      local function active()
        ngx.sleep(0.05) -- let the server side see the close
        return tonumber(ngx.var.connections_active)
      end
      if not active() then return pending("no $connections_active (stub_status) in this nginx") end
      local before = active()
      local t4 = ngx_transport.new {}
      local ok_ = {}
      assert(t4:run(function()
        if #ok_ < 3 then ok_[#ok_ + 1] = true return { url = base .. "/hello" } end
      end, function(_, res, err) assert(res, tostring(err)) end, 3))
      local during = active()
      assert.is_true(during >= before + 3, "idle connections kept: before " .. before .. ", then " .. during)
      t4:close()
      assert.equal(before, active(), "connections open after close")
    end)

    it("goes through an http proxy", function()
      local tp = ngx_transport.new { proxy = "http://127.0.0.1:" .. ngx.var.forward_proxy_port }
      local res = assert(tp:request { url = base .. "/hello?x=1", timeout = 10 })
      assert.equal(200, res.status)
      assert.equal("hello", res.body)
      assert.equal("1", res.headers["x-via-proxy"])
      tp:close()
    end)

    it("gives InvalidURL and ResolveFailed (no resolver configured)", function()
      for _, u in ipairs { "ftp://127.0.0.1/", "http://", "http://127.0.0.1:99999/", "127.0.0.1/x" } do
        local res, err = t:request { url = u }
        assert.is_nil(res)
        assert.equal("InvalidURL", err.code, u .. ": " .. tostring(err))
      end
      local res, err = t:request { url = "http://no-such-host.invalid/", timeout = 5 }
      assert.is_nil(res)
      assert.equal("ResolveFailed", err.code, tostring(err))
    end)

    it("raises misuse in the project's format, and once closed", function()
      local ok, e = pcall(t.request, t, { url = base .. "/hello", nope = 1 })
      assert.is_false(ok)
      assert.matches("objstore.transport.ngx.request: argument #1 (req.nope): unknown field", e, 1, true)
      ok, e = pcall(t.request, t, { url = base .. "/hello", hashes = { "sha3" } })
      assert.is_false(ok)
      assert.matches("(req.hashes[1]): unknown hash 'sha3'", e, 1, true)
      local t3 = ngx_transport.new {}
      t3:close()
      ok, e = pcall(t3.request, t3, { url = base .. "/hello" })
      assert.is_false(ok)
      assert.matches("objstore.transport.ngx.request: (self): the transport is closed", e, 1, true)
      ok, e = pcall(t3.run, t3, function() end, function() end)
      assert.is_false(ok)
      assert.matches("objstore.transport.ngx.run: (self): the transport is closed", e, 1, true)
      ok, e = pcall(ngx_transport.new, { pool = 3 })
      assert.is_false(ok)
      assert.matches("objstore.transport.ngx.new: argument #1 (opts.pool): is not an option of transport.ngx.new", e,
        1, true)
    end)

    -- nginx's own TLS servers (ngx_contract.sh): a certificate the workers
    -- trust (lua_ssl_trusted_certificate) and one they do not.
    it("speaks TLS, verifying the certificate by default", function()
      local trusted, other = (ngx.var.tls_ports or ""):match("^(%d+) (%d+)$")
      if not trusted then return pending("no TLS servers (openssl missing when nginx was configured)") end
      local tv = ngx_transport.new { tls = { server_name = "localhost" } }
      local res = assert(tv:request { url = "https://127.0.0.1:" .. trusted .. "/hello", timeout = 10 })
      assert.equal("hello", res.body)
      res = assert(tv:request { url = "https://127.0.0.1:" .. trusted .. "/hello", timeout = 10 })
      assert.equal(0, res.connects, "the TLS connection is reused")
      local _, err = tv:request { url = "https://127.0.0.1:" .. other .. "/hello", timeout = 10 }
      assert.equal("TLSError", err and err.code, tostring(err))
      assert.is_false(err.retryable)
      tv:close()
      local tw = ngx_transport.new { tls = { server_name = "not-localhost.example" } }
      _, err = tw:request { url = "https://127.0.0.1:" .. trusted .. "/hello", timeout = 10 }
      assert.equal("TLSError", err and err.code, "a certificate for another name: " .. tostring(err))
      tw:close()
      local ti = ngx_transport.new { tls = { insecure = true } }
      res = assert(ti:request { url = "https://127.0.0.1:" .. other .. "/hello", timeout = 10 })
      assert.equal("hello", res.body)
      ti:close()
    end)
  end)
end

--- Declares the contract for the ngx transport in the shim and runs it,
-- writing the report with ngx.say. `opts`: bucket_prefix.
function _M.run(opts)
  opts = opts or {}
  local env, root, set_current = shim()
  local contract = require("transport_contract").contract
  local ok, e = xpcall(function()
    contract("ngx", function() return require("objstore.transport.ngx").new {} end, env,
      { bucket_prefix = opts.bucket_prefix or "ngx" })
    extras(env, "http://127.0.0.1:" .. ngx.var.server_port)
  end, trace)
  local counts = { ok = 0, FAIL = 0, PENDING = 0 }
  local lines = {}
  local function report(status, name, msg)
    counts[status] = counts[status] + 1
    local line = status .. ": " .. name .. (msg ~= "" and (": " .. tostring(msg)) or "")
    lines[#lines + 1] = line
    ngx.say(line)
    ngx.flush(true)
  end
  if not ok then
    report("FAIL", "declaring the contract", e)
  else
    run_block(root, {}, report, set_current, {}, {})
  end
  ngx.say(counts.ok, " passed, ", counts.FAIL, " failed, ", counts.PENDING, " pending")
end

return _M
