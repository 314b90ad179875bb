-- The transport contract (spec/support/transport_contract.lua) run for every
-- transport objstore ships, and the shared pieces of objstore.transport.
-- The contract cases are tagged #server: they need radosgw (eval "$(bash
-- spec/support/rgw.sh env)").
local core = require "objstore.core"
local transport = require "objstore.transport"
local contract = require("transport_contract").contract

-- Each entry: a name and a constructor. The OpenResty transport will add
-- { "ngx", function() return require("objstore.transport.ngx").new{} end }.
local TRANSPORTS = {
  { "curl", function() return require("objstore.transport.curl").new {} end },
}

for _, entry in ipairs(TRANSPORTS) do
  contract(entry[1], entry[2])
end

describe("objstore.transport", function()
  it("is a module with _VERSION", function()
    assert.equal(core._VERSION, transport._VERSION)
  end)

  describe("CODES", function()
    it("is the C table of csrc/os_http.h, code name -> retryable default", function()
      local f = io.open("csrc/os_http.h", "rb")
      if not f then return pending("csrc/os_http.h not found (run from the source tree)") end
      local h = f:read("*a")
      f:close()
      local want = {}
      for name, retry in h:gmatch('X%(OS_HTTP_[%w_]+,%s*"(%w+)",%s*(%d)%)') do
        if name ~= "OK" then want[name] = retry == "1" end
      end
      assert.is_not_nil(want.ConnectFailed)
      assert.same(want, transport.CODES)
    end)

    it("is core.http.errors when the core exports it", function()
      local c = core.http.errors
      if c == nil then return pending("core.http.errors is not exported yet: transport.CODES is the Lua copy") end
      for k, v in pairs(c) do
        if k ~= "OK" then assert.equal(v, transport.CODES[k], k) end
      end
      for k in pairs(transport.CODES) do assert.is_not_nil(c[k], k) end
    end)
  end)

  describe("error", function()
    it("makes a shared error with the code's retryable default", function()
      local e = transport.error("Timeout", "no answer in 5 s")
      assert.equal(core.error_mt, getmetatable(e))
      assert.same({ code = "Timeout", message = "no answer in 5 s", retryable = true }, e)
      e = transport.error("Aborted", "stop", { status = 7 })
      assert.is_false(e.retryable)
      assert.equal(7, e.status)
      assert.matches("^Aborted", tostring(e))
      assert.is_true(transport.error("TLSError", "handshake cut", { retryable = true }).retryable)
      assert.equal("Timeout", transport.error("Timeout").message)
    end)

    it("raises on an unknown code or a bad extra", function()
      assert.has_error(function() transport.error("Nope", "x") end,
        "objstore.transport.error: argument #1 (code): unknown transport error code Nope")
      assert.has_error(function() transport.error("Timeout", "x", 1) end,
        "objstore.transport.error: argument #3 (extra): table expected, got number")
    end)
  end)

  describe("check", function()
    local function req() end

    it("accepts a minimal transport with only request, and returns it", function()
      local t = { request = req }
      assert.equal(t, transport.check(t))
      local full = { request = req, run = req, sleep = req, close = req, semaphore = req,
        capabilities = { hashes = true, body_hashes = false, file_body = true, file_sink = true, run = true } }
      assert.equal(full, transport.check(full))
    end)

    it("raises in the misuse format, blaming the caller", function()
      local P = "objstore.transport.check: argument #1 (transport): "
      local cases = {
        { nil, "table expected, got nil" },
        { "curl", "table expected, got string" },
        { {}, "request must be a method, got nil" },
        { { request = req, run = 1 }, "run must be a method, got number" },
        { { request = req, sleep = "x" }, "sleep must be a method, got string" },
        { { request = req, semaphore = true }, "semaphore must be a method, got boolean" },
        { { request = req, capabilities = true }, "capabilities must be a table, got boolean" },
        { { request = req, capabilities = { hashes = 1 } }, "capabilities.hashes must be a boolean, got number" },
        { { request = req, capabilities = { run = true } }, "capabilities.run is true but run is missing" },
        { { request = req, run = req, capabilities = { run = false } },
          "capabilities.run is false but run is present" },
      }
      for _, c in ipairs(cases) do
        local ok, e = pcall(transport.check, c[1])
        assert.is_false(ok)
        assert.equal(P .. c[2], (tostring(e):gsub("^[^:]*:%d+: ", "")))
      end
      local _, e = pcall(function() transport.check({}) end)
      assert.matches("transport_contract_spec.lua:%d+: objstore%.transport%.check", e)
    end)
  end)

  describe("capabilities", function()
    it("gives every capability as a boolean, false when not said", function()
      assert.same({ hashes = false, body_hashes = false, file_body = false, file_sink = false, run = false,
        buffer_body = false, progress = false },
        transport.capabilities { request = function() end })
      assert.same({ hashes = true, body_hashes = false, file_body = false, file_sink = false, run = true,
        buffer_body = false, progress = false },
        transport.capabilities { request = function() end, run = function() end, capabilities = { hashes = true } })
    end)
  end)

  describe("a transport without buffer_body", function()
    it("gets a core.buffer body as a reader of its bytes, with body_length", function()
      local seen = {}
      local t = { request = function(_, req)
        local parts = {}
        for chunk in req.body do parts[#parts + 1] = chunk end
        seen[#seen + 1] = { kind = type(req.body), length = req.body_length, data = table.concat(parts) }
        return { status = 200, headers = { etag = '"x"' }, body = "" }
      end }
      local c = require("objstore").new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "s",
        transport = t }
      local data = ("0123456789abcdef"):rep(200000) -- 3.05 MiB: several chunks
      local buf = core.buffer.new()
      buf:append(data)
      assert(c:upload_part("b", "k", "id", 1, buf, { content_md5 = false }))
      assert.equal(1, #seen)
      assert.equal("function", seen[1].kind)
      assert.equal(#data, seen[1].length)
      assert.is_true(seen[1].data == data)
    end)
  end)

  describe("a transport without progress", function()
    it("never gets on_progress: a transfer's bytes count when its request ends", function()
      local fields = {}
      local t = { request = function(_, req)
        fields[#fields + 1] = req.on_progress == nil
        if type(req.body) == "function" then
          for _ in req.body do end -- luacheck: ignore 512
        end
        return { status = 200, headers = { etag = '"x"' }, body = "" }
      end }
      local c = require("objstore").new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "s",
        transport = t }
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(("p"):rep(1000))
      f:close()
      local seen = {}
      local res, err = c:upload_file("b", "k", path, { verify = false,
        progress = function(done) seen[#seen + 1] = done end })
      os.remove(path)
      assert.is_table(res, tostring(err))
      assert.same({ true }, fields)
      assert.equal(1000, seen[#seen])
    end)
  end)

  describe("sleeper", function()
    it("uses the transport's sleep", function()
      local got
      local t = { request = function() end, sleep = function(self, s) got = { self, s } end }
      transport.sleeper(t)(0.25)
      assert.same({ t, 0.25 }, got)
    end)

    it("falls back to the blocking core.time.sleep", function()
      assert.equal(core.time.sleep, transport.sleeper { request = function() end })
    end)
  end)

  describe("runner", function()
    it("uses the transport's run, passing n", function()
      local got
      local t = { request = function() end, run = function(self, s, d, n)
        got = { self, s, d, n }
        return nil, "multi failed"
      end }
      local s, d = function() end, function() end
      assert.same({ nil, "multi failed" }, { transport.runner(t)(s, d, 3) })
      assert.same({ t, s, d, 3 }, got)
    end)

    it("falls back to one request at a time, pulling after every completion", function()
      local log = {}
      local t = { request = function(_, r)
        log[#log + 1] = "request " .. r.id
        if r.id == "b" then return nil, transport.error("Timeout", "slow") end
        return { status = 200, body = r.id }
      end }
      local queue, asked = { { id = "a" } }, 0
      local rv = transport.runner(t)(function()
        asked = asked + 1
        return table.remove(queue, 1)
      end, function(req, res, err)
        log[#log + 1] = "done " .. req.id .. " " .. (res and res.body or err.code)
        if req.id == "a" then queue[#queue + 1] = { id = "b" } end
      end, 8)
      assert.is_true(rv)
      assert.same({ "request a", "done a a", "request b", "done b Timeout" }, log)
      assert.equal(3, asked)
    end)
  end)
end)
