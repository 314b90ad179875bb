-- The transport contract of objstore.transport as one spec, for any
-- transport: nothing here knows which transport it runs against.
--
--   local contract = require("transport_contract").contract
--   contract("curl", function() return require("objstore.transport.curl").new{} end)
--
-- `contract(name, new_transport [, env [, opts]])` declares a `describe`
-- block (tagged #server) that runs every case against transports made by
-- `new_transport()`. `env` is the calling spec's busted environment (its
-- `_ENV`, or `getfenv(1)` on 5.1), or any table with describe, it, setup,
-- teardown, pending and assert as busted has them; by default the caller's
-- is found. `opts.bucket_prefix` (default "tc") starts the bucket's name.
--
-- Requests go to the real radosgw (OBJSTORE_TEST_ENDPOINT,
-- OBJSTORE_TEST_ACCESS_KEY, OBJSTORE_TEST_SECRET_KEY: eval "$(bash
-- spec/support/rgw.sh env)"), signed with SigV4 (UNSIGNED-PAYLOAD), into a
-- bucket `tc-...` made and removed here. radosgw 16.2 refuses uploads
-- without a Content-Length (411), so the chunked (unknown-length) body goes
-- to Swift's s3api (OBJSTORE_SWIFT_*, spec/support/swift.sh env) and is
-- pending without it. Connection refused, a stalled answer and repeated
-- headers use 127.0.0.1 sockets of a small python3 helper that exits by
-- itself and is killed (by its pid) at the end; hostile answers (endless
-- bodies and lines) come from spec/support/hostile_server.py, on
-- OBJSTORE_TEST_HOSTILE_PORT or a free port.
local core = require "objstore.core"
local checksum = require "objstore.checksum"
local signer = require "objstore.engine.signer"
local transport = require "objstore.transport"
local servers = require "servers"

local monotonic = core.time.monotonic
local concat = table.concat

local _M = {}

local ALL = checksum.ALGORITHMS

-- Deterministic bytes: a 65521-byte block (a prime, so that short shifts
-- show) from a small LCG, rotated by `seed` and repeated.
local BLOCK
do
  local t, x = {}, 12345
  for i = 1, 65521 do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(math.floor(x / 65536) % 256)
  end
  BLOCK = concat(t)
end
local function bytes(n, seed)
  local s = (seed or 0) % #BLOCK
  local rot = BLOCK:sub(s + 1) .. BLOCK:sub(1, s)
  return rot:rep(math.floor(n / #rot) + 1):sub(1, n)
end
_M.bytes = bytes

local function md5hex(s) return checksum.tohex(checksum.digest("md5", s)) end

local read_file, write_file = servers.read_file, servers.write_file

local function getenv(n)
  local v = os.getenv(n)
  if v == "" then return nil end
  return v
end

-- The python3 helper: one port that listens and never answers (accepted by
-- the kernel backlog, so connect succeeds), one that answers every request
-- with a canned response carrying a repeated and a mixed-case header.
local HELPER_PY = [=[
import os, socket, sys, threading, time
from urllib.parse import urlsplit, parse_qs
threading.Timer(float(sys.argv[1]), lambda: os._exit(0)).start()
lock = threading.Lock()
active, peak = {}, {}
def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s
stall, canned = listener(), listener()
def handle(c):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                return
            data += d
        u = urlsplit(data.split(b" ", 2)[1].decode())
        q = parse_qs(u.query)
        extra = b""
        if u.path == "/delay":
            # Requests of one group that are being answered at once: the
            # most of them seen, as of this answer, goes in X-Peak.
            g, ms = q["g"][0], int(q["ms"][0])
            with lock:
                active[g] = active.get(g, 0) + 1
                peak[g] = max(peak.get(g, 0), active[g])
            time.sleep(ms / 1000.0)
            with lock:
                extra = b"X-Peak: %d\r\n" % peak[g]
                active[g] -= 1
        c.sendall(b"HTTP/1.1 200 OK\r\nX-Repeat: one\r\nX-Mixed-Case: v\r\nx-repeat: two\r\n" + extra +
                  b"Content-Length: 6\r\nConnection: close\r\n\r\ncanned")
    finally:
        c.close()
def serve():
    while True:
        c, _ = canned.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()
threading.Thread(target=serve, daemon=True).start()
print(stall.getsockname()[1], canned.getsockname()[1], flush=True)
while True:
    time.sleep(3600)
]=]

local function start_helper()
  local script = os.tmpname()
  local out = os.tmpname()
  write_file(script, HELPER_PY)
  local p = assert(io.popen("python3 " .. script .. " 300 >" .. out .. " 2>&1 & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local deadline = monotonic() + 10
  local stall, canned
  repeat
    local s = read_file(out) or ""
    stall, canned = s:match("^(%d+) (%d+)")
    if not stall then core.time.sleep(0.02) end
  until stall or monotonic() > deadline
  os.remove(script)
  os.remove(out)
  assert(stall, "the python3 helper did not start (is python3 installed?)")
  return { pid = pid, stall = tonumber(stall), canned = tonumber(canned) }
end

local function stop_helper(h)
  if h and h.pid then os.execute("kill " .. h.pid .. " 2>/dev/null") end
end

-- spec/support/hostile_server.py, next to this file: started on
-- OBJSTORE_TEST_HOSTILE_PORT (default: a free port), killed by its pid.
local function start_hostile()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local script = (src:match("^(.*)/[^/]*$") or ".") .. "/hostile_server.py"
  local out = os.tmpname()
  local port = tonumber(getenv("OBJSTORE_TEST_HOSTILE_PORT") or "0") or 0
  local p = assert(io.popen("python3 " .. script .. " " .. port .. " 300 >" .. out .. " 2>&1 & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local deadline = monotonic() + 10
  local got
  repeat
    got = (read_file(out) or ""):match("^listening (%d+)")
    if not got then core.time.sleep(0.02) end
  until got or monotonic() > deadline
  local log = read_file(out) or ""
  os.remove(out)
  if not got then
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    error("hostile_server.py did not start: " .. log)
  end
  return { pid = pid, url = "http://127.0.0.1:" .. got }
end

-- Resident memory of this process (kB), or nil without /proc.
local function rss_kb()
  local s = read_file("/proc/self/status")
  return s and tonumber(s:match("VmRSS:%s*(%d+)")) or nil
end

-- The busted environment of the function that called contract().
local function caller_env(level)
  if getfenv then
    local e = getfenv(level + 1) -- not `return getfenv(...)`: a tail call moves the levels
    return e
  end
  local f = debug.getinfo(level + 1, "f").func
  local i = 1
  while true do
    local n, v = debug.getupvalue(f, i)
    if n == nil then return _G end
    if n == "_ENV" then return v end
    i = i + 1
  end
end

function _M.contract(name, new_transport, env, opts)
  env = env or caller_env(2)
  local bucket_prefix = opts and opts.bucket_prefix or "tc"
  local describe, it, setup, teardown, assert = env.describe, env.it, env.setup, env.teardown, env.assert
  local function pending(msg) return env.pending(msg) end

  describe(name .. " transport contract #server", function()
    local E, AK, SK
    local t, caps, S, bucket, helper
    local keys = {} -- objects to remove at the end
    local tmp = {}  -- files to remove at the end
    local seen = {} -- every error the transport returned
    local DATA = bytes(300007, 1)
    local LARGE_N = 4 * 1024 * 1024

    local function tmpname()
      local p = os.tmpname()
      tmp[#tmp + 1] = p
      return p
    end

    -- A signed request for `path` (below the endpoint); `fields` are copied in.
    local function sreq(method, path, fields, signer_)
      local url = E .. path
      local headers = {}
      for k, v in pairs(fields and fields.headers or {}) do headers[k] = v end
      local add = (signer_ or S):sign { method = method, url = url, headers = headers,
        payload_hash = "UNSIGNED-PAYLOAD", time = os.time() }
      for k, v in pairs(add) do headers[k] = v end
      local r = { method = method, url = url, headers = headers }
      for k, v in pairs(fields or {}) do
        if k ~= "headers" then r[k] = v end
      end
      return r
    end
    local function key_path(key)
      keys[key] = true
      return "/" .. bucket .. "/" .. key
    end

    -- Every error: a table with the shared metatable, a known code and that
    -- code's retryable default unless the transport says why not.
    local function check_err(err, code)
      assert.is_table(err)
      seen[#seen + 1] = err
      assert.equal(core.error_mt, getmetatable(err))
      assert.is_string(err.code)
      assert.is_string(err.message)
      assert.is_boolean(err.retryable)
      assert.is_not_nil(transport.CODES[err.code], "code " .. tostring(err.code) .. " is not in transport.CODES")
      if err.retryable ~= transport.CODES[err.code] then
        local why = t.retryable_exceptions and t.retryable_exceptions[err.code]
        assert.is_string(why, err.code .. " retryable=" .. tostring(err.retryable) .. " unlike its default")
      end
      if code then assert.equal(code, err.code, tostring(err)) end
      return err
    end

    local function ok(res, err)
      if not res then check_err(err) end
      assert.is_table(res, "request failed: " .. tostring(err))
      return res
    end

    local function put(key, fields)
      return ok(t:request(sreq("PUT", key_path(key), fields)))
    end
    local function get(key, fields)
      return ok(t:request(sreq("GET", key_path(key), fields)))
    end

    local function need(cap)
      if not caps[cap] then
        pending(name .. " says capabilities." .. cap .. " = false: the layer above does this itself")
        return false
      end
      return true
    end

    setup(function()
      E, AK, SK = getenv("OBJSTORE_TEST_ENDPOINT"), getenv("OBJSTORE_TEST_ACCESS_KEY"),
        getenv("OBJSTORE_TEST_SECRET_KEY")
      assert(E and AK and SK, "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\" "
        .. "(or exclude the server tag)")
      S = signer.new { algorithm = "aws4", access_key = AK, secret_key = SK, region = "us-east-1" }
      t = assert(new_transport())
      caps = transport.capabilities(t)
      helper = start_helper()
      bucket = bucket_prefix .. "-" .. tostring(os.time()):sub(-6) .. "-" .. tostring(math.random(100000, 999999))
      local res = ok(t:request(sreq("PUT", "/" .. bucket)))
      assert(res.status == 200, "cannot create bucket " .. bucket .. ": " .. tostring(res.body))
      assert.equal(200, put("data", { body = DATA }).status)
      assert.equal(200, put("large", { body = bytes(LARGE_N, 7) }).status)
    end)

    teardown(function()
      stop_helper(helper)
      for _, p in ipairs(tmp) do os.remove(p) end
      if t and bucket then
        for k in pairs(keys) do t:request(sreq("DELETE", "/" .. bucket .. "/" .. k, { timeout = 30 })) end
        t:request(sreq("DELETE", "/" .. bucket, { timeout = 30 }))
      end
      if t and t.close then t:close() end
    end)

    describe("shape", function()
      it("has request, run, sleep and close methods and passes transport.check", function()
        assert.equal(t, transport.check(t))
        assert.is_function(t.request)
        assert.is_function(t.sleep)
        assert.is_function(t.close)
      end)

      it("says what it can do in capabilities, all booleans", function()
        local own = t.capabilities
        assert.is_table(own)
        for _, c in ipairs(transport.CAPABILITIES) do
          assert.is_boolean(own[c], "capabilities." .. c)
        end
        for k, v in pairs(own) do assert.is_boolean(v, "capabilities." .. tostring(k)) end
        assert.equal(type(t.run) == "function", own.run)
      end)
    end)

    describe("request bodies", function()
      it("sends a string", function()
        local body = bytes(100003, 2)
        local res = put("b-string", { body = body })
        assert.equal(200, res.status)
        assert.equal(#body, res.sent)
        assert.equal('"' .. md5hex(body) .. '"', res.headers.etag)
        assert.equal(body, get("b-string").body)
      end)

      it("sends a core.buffer in place, and sends it again unchanged", function()
        if not need("buffer_body") then return end
        local body = bytes(300007, 5)
        local buf = core.buffer.new()
        buf:append(body)
        for _ = 1, 2 do
          local res = put("b-buffer", { body = buf, body_length = #body })
          assert.equal(200, res.status)
          assert.equal(#body, res.sent)
          assert.equal('"' .. md5hex(body) .. '"', res.headers.etag)
        end
        assert.equal(body, get("b-buffer").body)
        assert.equal(#body, buf:len())
      end)

      it("sends a file range from an offset, and to the end when no length is given", function()
        if not need("file_body") then return end
        local path = tmpname()
        local content = bytes(200000, 3)
        write_file(path, content)
        local res = put("b-file", { body = { file = path, offset = 12345, length = 70000 } })
        assert.equal(200, res.status)
        assert.equal(70000, res.sent)
        assert.equal('"' .. md5hex(content:sub(12346, 82345)) .. '"', res.headers.etag)
        assert.equal(content:sub(12346, 82345), get("b-file").body)
        res = put("b-file-rest", { body = { file = path, offset = 150000 } })
        assert.equal(50000, res.sent)
        assert.equal(content:sub(150001), get("b-file-rest").body)
      end)

      it("sends a reader with body_length", function()
        local body = bytes(150001, 4)
        local sizes, pos, calls = { 1, 1000, 65536, 7 }, 1, 0
        local res = put("b-reader", { body_length = #body, body = function()
          calls = calls + 1
          if pos > #body then return nil end
          local n = sizes[(calls - 1) % #sizes + 1]
          local c = body:sub(pos, pos + n - 1)
          pos = pos + n
          return c
        end })
        assert.equal(200, res.status)
        assert.equal(#body, res.sent)
        assert.equal('"' .. md5hex(body) .. '"', res.headers.etag)
        assert.equal(body, get("b-reader").body)
      end)

      it("sends a reader of unknown length chunked (to Swift: rgw 16.2 refuses it)", function()
        local SE, SAK, SSK = getenv("OBJSTORE_SWIFT_ENDPOINT"), getenv("OBJSTORE_SWIFT_ACCESS_KEY"),
          getenv("OBJSTORE_SWIFT_SECRET_KEY")
        if not (SE and SAK and SSK) then
          return pending("rgw 16.2 answers 411 to uploads without Content-Length; "
            .. "eval \"$(bash spec/support/swift.sh env)\" to run this against Swift")
        end
        local ss = signer.new { algorithm = "aws4", access_key = SAK, secret_key = SSK, region = "us-east-1" }
        local function sw(method, path, fields)
          local url = SE .. path
          local h = ss:sign { method = method, url = url, payload_hash = "UNSIGNED-PAYLOAD", time = os.time() }
          local r = { method = method, url = url, headers = h }
          for k, v in pairs(fields or {}) do r[k] = v end
          return r
        end
        local sb = bucket .. "-chunked"
        local body = bytes(120000, 5)
        local pos = 1
        local want = caps.body_hashes and ALL or nil
        local ok_, e = pcall(function()
          assert.equal(200, ok(t:request(sw("PUT", "/" .. sb))).status)
          local res = ok(t:request(sw("PUT", "/" .. sb .. "/k", { body_hashes = want, body = function()
            if pos > #body then return nil end
            local c = body:sub(pos, pos + 9999)
            pos = pos + 10000
            return c
          end })))
          assert.equal(200, res.status)
          assert.equal('"' .. md5hex(body) .. '"', res.headers.etag)
          assert.equal(body, ok(t:request(sw("GET", "/" .. sb .. "/k"))).body)
          if want then
            for _, alg in ipairs(ALL) do assert.equal(checksum.digest(alg, body), res.body_hashes[alg], alg) end
          end
          assert.equal(#body, res.sent, "sent counts the body bytes, not the chunked framing")
        end)
        t:request(sw("DELETE", "/" .. sb .. "/k"))
        t:request(sw("DELETE", "/" .. sb))
        if not ok_ then error(e, 0) end
      end)

      it("sends an empty body: \"\", none, and a reader with body_length 0", function()
        local empty = '"' .. md5hex("") .. '"'
        local res = put("b-empty", { body = "" })
        assert.equal(200, res.status)
        assert.equal(0, res.sent)
        assert.equal(empty, res.headers.etag)
        res = put("b-none", {})
        assert.equal(200, res.status)
        assert.equal(0, res.sent)
        assert.equal(empty, res.headers.etag)
        res = put("b-empty-reader", { body_length = 0, body = function() return nil end })
        assert.equal(200, res.status)
        assert.equal(0, res.sent)
        assert.equal(empty, res.headers.etag)
        local g = get("b-empty")
        assert.equal(200, g.status)
        assert.equal("", g.body)
        assert.equal(0, g.bytes)
      end)
    end)

    describe("max_speed", function()
      -- 600,000 bytes at 300,000 B/s: 2 s on average, less the first piece
      -- a transport hands over before it measures (64 KiB here).
      it("sends the body and reads the response no faster than max_speed", function()
        local body = bytes(600000, 11)
        local t0 = monotonic()
        local res = put("b-paced", { body = body, max_speed = 300000 })
        local up = monotonic() - t0
        assert.equal(200, res.status)
        assert.equal('"' .. md5hex(body) .. '"', res.headers.etag)
        assert.is_true(up >= 1.4 and up < 20, "upload took " .. up .. " s")
        t0 = monotonic()
        local got = get("b-paced", { max_speed = 300000 })
        local down = monotonic() - t0
        assert.equal(body, got.body)
        assert.is_true(down >= 1.4 and down < 20, "download took " .. down .. " s")
        -- the same through a file sink, read back whole
        local path = os.tmpname()
        t0 = monotonic()
        ok(t:request(sreq("GET", key_path("b-paced"), { max_speed = 300000, sink = { file = path } })))
        local sunk = monotonic() - t0
        assert.equal(body, read_file(path))
        os.remove(path)
        assert.is_true(sunk >= 1.4 and sunk < 20, "download to a file took " .. sunk .. " s")
      end)

      it("refuses a max_speed that is not a whole number >= 0", function()
        for _, v in ipairs{ -1, 1.5, "fast" } do
          assert.has_error(function() t:request(sreq("GET", key_path("b-paced"), { max_speed = v })) end)
        end
      end)
    end)

    describe("on_progress", function()
      -- Records every call: { t, sent, received }.
      local function recorder()
        local calls = {}
        return calls, function(sent, received)
          calls[#calls + 1] = { t = monotonic(), sent = sent, received = received }
        end
      end
      -- Counts only grow (within one attempt), stay within total, move
      -- while the body is under way (a call strictly between 0 and total),
      -- and the calls come at most every ~100 ms.
      local function check_calls(calls, field, other, total, what)
        assert.is_true(#calls >= 4, #calls .. " calls for " .. what)
        local prev, mid = -1, false
        for i, c in ipairs(calls) do
          assert.is_number(c.sent)
          assert.is_number(c.received)
          assert.equal(0, c[other], other .. " of call " .. i)
          assert.is_true(c[field] >= prev, field .. " went back at call " .. i)
          assert.is_true(c[field] <= total, field .. " " .. c[field] .. " over " .. total)
          if c[field] > 0 and c[field] < total then mid = true end
          if i > 1 then
            assert.is_true(c.t - calls[i - 1].t >= 0.06, "two calls " .. (c.t - calls[i - 1].t) .. " s apart")
          end
          prev = c[field]
        end
        assert.is_true(mid, "no call while the body was moving")
      end

      it("reports the request body bytes sent as they go (string, file range, reader)", function()
        if not need("progress") then return end
        local body = bytes(600000, 13)
        local path = tmpname()
        write_file(path, body)
        -- The reader gives 64 KiB chunks: a transport may count a chunk at once.
        local kinds = { { body = body }, { body = function()
          local at = 1
          return function()
            if at > #body then return nil end
            at = at + 65536
            return body:sub(at - 65536, at - 1)
          end
        end, body_length = #body } }
        if caps.file_body then kinds[#kinds + 1] = { body = { file = path } } end
        for i, f in ipairs(kinds) do
          local calls, fn = recorder()
          local fields = { body = f.body, body_length = f.body_length, max_speed = 300000, on_progress = fn }
          if type(f.body) == "function" then fields.body = f.body() end
          local res = put("p-up-" .. i, fields)
          assert.equal(200, res.status)
          assert.equal('"' .. md5hex(body) .. '"', res.headers.etag)
          check_calls(calls, "sent", "received", #body, "body kind " .. i)
        end
      end)

      it("reports the response body bytes received as they come (collected, sink, file)", function()
        if not need("progress") then return end
        local sinks = { {}, { sink = function() end } }
        if caps.file_sink then sinks[#sinks + 1] = { sink = { file = tmpname() } } end
        for i, f in ipairs(sinks) do
          local calls, fn = recorder()
          local res = get("large", { sink = f.sink, max_speed = 2 * 1024 * 1024, on_progress = fn })
          assert.equal(200, res.status)
          assert.equal(LARGE_N, res.bytes)
          check_calls(calls, "received", "sent", LARGE_N, "sink " .. i)
        end
        -- An error document is no progress of the body asked for.
        local calls, fn = recorder()
        local res = get("no-such-key", { on_progress = fn })
        assert.equal(404, res.status)
        for _, c in ipairs(calls) do assert.equal(0, c.received) end
      end)

      it("stops with Aborted when on_progress returns false or nil, err, CallbackError when it raises", function()
        if not need("progress") then return end
        for _, ret in ipairs{ { false }, { nil, "enough" } } do
          local res, err = t:request(sreq("GET", key_path("large"), { max_speed = 2 * 1024 * 1024,
            sink = function() end, on_progress = function() return ret[1], ret[2] end }))
          assert.is_nil(res)
          check_err(err, "Aborted")
          if ret[2] then assert.matches("enough", err.message, 1, true) end
        end
        local res, err = t:request(sreq("GET", key_path("large"), { max_speed = 2 * 1024 * 1024,
          sink = function() end, on_progress = function() error("progress blew up") end }))
        assert.is_nil(res)
        check_err(err, "CallbackError")
        assert.matches("progress blew up", err.message, 1, true)
        assert.has_error(function() t:request(sreq("GET", key_path("data"), { on_progress = 1 })) end)
      end)
    end)

    describe("response sinks", function()
      it("collects the body into res.body without a sink", function()
        local res = get("data")
        assert.equal(200, res.status)
        assert.equal(#DATA, #res.body)
        assert.equal(DATA, res.body)
        assert.equal(#DATA, res.bytes)
        assert.equal(tostring(#DATA), res.headers["content-length"])
      end)

      it("writes two ranges into one file at an offset, without truncating it", function()
        if not need("file_sink") then return end
        local path = tmpname()
        local off, half = 4099, 150000
        write_file(path, ("Z"):rep(off + #DATA + 10))
        -- the second half first: the first write must not truncate the file
        local r1 = get("data", { headers = { Range = "bytes=" .. half .. "-" },
          sink = { file = path, offset = off + half } })
        assert.equal(206, r1.status)
        assert.equal(#DATA - half, r1.bytes)
        local r2 = get("data", { headers = { Range = "bytes=0-" .. (half - 1) }, sink = { file = path, offset = off } })
        assert.equal(206, r2.status)
        assert.equal(half, r2.bytes)
        local got = read_file(path)
        assert.equal(off + #DATA + 10, #got)
        assert.equal(("Z"):rep(off), got:sub(1, off))
        assert.is_true(got:sub(off + 1, off + #DATA) == DATA, "file content differs from the object")
        assert.equal(("Z"):rep(10), got:sub(-10))
      end)

      it("creates a missing sink file", function()
        if not need("file_sink") then return end
        local path = tmpname()
        os.remove(path)
        local res = get("data", { sink = { file = path } })
        assert.equal(200, res.status)
        assert.equal(#DATA, res.bytes)
        assert.is_true(read_file(path) == DATA, "file content differs from the object")
      end)

      it("feeds a function sink; returning nothing or true goes on", function()
        for _, ret in ipairs { "nothing", true } do
          local got = {}
          local res = get("data", { sink = function(chunk)
            got[#got + 1] = chunk
            if ret ~= "nothing" then return ret end
          end })
          assert.equal(200, res.status)
          assert.is_true(#got >= 1)
          assert.is_true(concat(got) == DATA, "sink saw other bytes than the object")
          assert.equal(#DATA, res.bytes)
        end
      end)

      it("aborts with Aborted when a function sink returns false, or nil and a reason", function()
        local calls = 0
        local res, err = t:request(sreq("GET", key_path("large"), { sink = function()
          calls = calls + 1
          return false
        end }))
        assert.is_nil(res)
        check_err(err, "Aborted")
        assert.is_false(err.retryable)
        assert.equal(1, calls)
        calls = 0
        res, err = t:request(sreq("GET", key_path("large"), { sink = function()
          calls = calls + 1
          return nil, "enough of this"
        end }))
        assert.is_nil(res)
        check_err(err, "Aborted")
        assert.matches("enough of this", err.message, 1, true)
        assert.equal(1, calls)
      end)

      it("ends with CallbackError, carrying the message, when a sink raises", function()
        local res, err = t:request(sreq("GET", key_path("data"), { sink = function() error("sink blew up") end }))
        assert.is_nil(res)
        check_err(err, "CallbackError")
        assert.matches("sink blew up", err.message, 1, true)
      end)

      it("calls on_head once with the final status and headers, before any body byte", function()
        local function watch(fields)
          local events, heads = {}, {}
          fields.on_head = function(status, headers)
            events[#events + 1] = "head"
            heads[#heads + 1] = { status = status, headers = headers }
          end
          if fields.sink == true then
            fields.sink = function(chunk) events[#events + 1] = #chunk end
          end
          return events, heads, fields
        end
        -- A function sink: the head comes first, then the body.
        local events, heads, fields = watch{ sink = true }
        local res = get("data", fields)
        assert.equal(200, res.status)
        assert.equal(1, #heads)
        assert.equal("head", events[1])
        assert.is_true(#events >= 2)
        for i = 2, #events do assert.is_number(events[i]) end
        assert.equal(200, heads[1].status)
        assert.equal(tostring(#DATA), heads[1].headers["content-length"])
        assert.equal('"' .. md5hex(DATA) .. '"', heads[1].headers["etag"])
        for k, v in pairs(heads[1].headers) do assert.equal(res.headers[k], v, k) end
        -- A range: the 206 head with its Content-Range.
        events, heads, fields = watch{ sink = true, headers = { Range = "bytes=10-19" } }
        res = get("data", fields)
        assert.equal(206, res.status)
        assert.equal(1, #heads)
        assert.equal(206, heads[1].status)
        assert.equal("bytes 10-19/" .. #DATA, heads[1].headers["content-range"])
        assert.equal("10", heads[1].headers["content-length"])
        assert.equal("head", events[1])
        -- Collected, a file sink, a HEAD (no body at all): once each.
        for _, f in ipairs{ {}, caps.file_sink and { sink = { file = tmpname() } } or {}, { method = "HEAD" } } do
          local method = f.method or "GET"
          f.method = nil
          _, heads, fields = watch(f)
          res = ok(t:request(sreq(method, key_path("data"), fields)))
          assert.equal(200, res.status)
          assert.equal(1, #heads, method)
          assert.equal(200, heads[1].status)
          assert.equal(tostring(#DATA), heads[1].headers["content-length"])
        end
        -- An error status too (its body is not fed to the sink).
        events, heads, fields = watch{ sink = true }
        res = get("no-such-key", fields)
        assert.equal(404, res.status)
        assert.same({ "head" }, events)
        assert.equal(404, heads[1].status)
      end)

      it("stops with Aborted when on_head returns false or nil, err, CallbackError when it raises", function()
        for _, ret in ipairs{ { false }, { nil, "not this one" } } do
          local fed = false
          local res, err = t:request(sreq("GET", key_path("large"), { sink = function() fed = true end,
            on_head = function() return ret[1], ret[2] end }))
          assert.is_nil(res)
          check_err(err, "Aborted")
          assert.is_false(fed, "a body byte reached the sink after on_head refused")
          if ret[2] then assert.matches("not this one", err.message, 1, true) end
        end
        local res, err = t:request(sreq("GET", key_path("data"), { on_head = function() error("head blew up") end }))
        assert.is_nil(res)
        check_err(err, "CallbackError")
        assert.matches("head blew up", err.message, 1, true)
        assert.has_error(function() t:request(sreq("GET", key_path("data"), { on_head = "yes" })) end)
      end)
    end)

    describe("error responses", function()
      it("never feed a 404 document to a sink: it is in res.body", function()
        local called = false
        local res = get("no-such-key", { sink = function() called = true end })
        assert.equal(404, res.status)
        assert.is_false(called)
        assert.matches("<Code>NoSuchKey</Code>", res.body, 1, true)
        if caps.file_sink then
          local path = tmpname()
          os.remove(path)
          res = get("no-such-key", { sink = { file = path, offset = 10 } })
          assert.equal(404, res.status)
          assert.matches("<Code>NoSuchKey</Code>", res.body, 1, true)
          assert.is_nil(read_file(path), "an error response created the sink file")
        end
      end)

      it("never feed a 403 document to a sink", function()
        local bad = signer.new { algorithm = "aws4", access_key = AK, secret_key = SK .. "x", region = "us-east-1" }
        local called = false
        local res = ok(t:request(sreq("GET", key_path("data"), { sink = function() called = true end }, bad)))
        assert.equal(403, res.status)
        assert.is_false(called)
        assert.truthy(res.body:find("<Code>SignatureDoesNotMatch</Code>", 1, true), res.body)
        assert.equal(#res.body, res.bytes)
      end)
    end)

    describe("hashes", function()
      it("hashes the response body, whatever the sink", function()
        if not need("hashes") then return end
        local res = get("data", { hashes = ALL })
        for _, alg in ipairs(ALL) do
          assert.is_true(checksum.digest(alg, DATA) == res.hashes[alg], alg .. " differs")
        end
        res = get("data", { hashes = { "crc64nvme", "md5" }, sink = function() end })
        assert.equal(checksum.digest("crc64nvme", DATA), res.hashes.crc64nvme)
        assert.equal(checksum.digest("md5", DATA), res.hashes.md5)
        if caps.file_sink then
          local path = tmpname()
          res = get("data", { headers = { Range = "bytes=1000-1999" }, hashes = { "sha256", "crc32c" },
            sink = { file = path } })
          assert.equal(206, res.status)
          assert.equal(checksum.digest("sha256", DATA:sub(1001, 2000)), res.hashes.sha256)
          assert.equal(checksum.digest("crc32c", DATA:sub(1001, 2000)), res.hashes.crc32c)
        end
      end)

      it("hashes the request body as sent: string, reader, file range", function()
        if not need("body_hashes") then return end
        local body = bytes(77777, 6)
        local res = put("h-string", { body = body, body_hashes = ALL })
        for _, alg in ipairs(ALL) do
          assert.is_true(checksum.digest(alg, body) == res.body_hashes[alg], alg .. " differs")
        end
        local pos = 1
        res = put("h-reader", { body_hashes = { "sha1", "crc32" }, body_length = #body, body = function()
          local c = body:sub(pos, pos + 4999)
          pos = pos + 5000
          if c ~= "" then return c end
        end })
        assert.equal(checksum.digest("sha1", body), res.body_hashes.sha1)
        assert.equal(checksum.digest("crc32", body), res.body_hashes.crc32)
        if caps.file_body then
          local path = tmpname()
          write_file(path, body)
          res = put("h-file", { body = { file = path, offset = 7, length = 1000 }, body_hashes = { "crc64ecma" } })
          assert.equal(checksum.digest("crc64ecma", body:sub(8, 1007)), res.body_hashes.crc64ecma)
        end
      end)
    end)

    describe("results", function()
      it("counts body bytes received and sent, and none for HEAD", function()
        local res = put("c-small", { body = "12345" })
        assert.equal(5, res.sent)
        assert.equal(#(res.body or ""), res.bytes)
        res = ok(t:request(sreq("HEAD", key_path("data"))))
        assert.equal(200, res.status)
        assert.equal(0, res.bytes)
        assert.equal(0, res.sent)
        assert.equal(tostring(#DATA), res.headers["content-length"])
        res = get("data", { headers = { Range = "bytes=10-19" } })
        assert.equal(206, res.status)
        assert.equal(10, res.bytes)
        assert.equal(0, res.sent)
        assert.equal(DATA:sub(11, 20), res.body)
      end)

      it("lower-cases header names and joins repeated headers with \", \"", function()
        local res = get("data")
        local n = 0
        for k, v in pairs(res.headers) do
          n = n + 1
          assert.equal(k:lower(), k)
          assert.is_string(v)
        end
        assert.is_true(n >= 3)
        assert.is_string(res.headers.etag)
        assert.is_string(res.headers["x-amz-request-id"])
        assert.is_nil(res.headers.ETag)
        res = ok(t:request { url = "http://127.0.0.1:" .. helper.canned .. "/", timeout = 10 })
        assert.equal(200, res.status)
        assert.equal("canned", res.body)
        assert.equal("one, two", res.headers["x-repeat"])
        assert.equal("v", res.headers["x-mixed-case"])
      end)
    end)

    describe("errors", function()
      it("gives ConnectFailed, retryable, for a refused connection", function()
        local res, err = t:request { url = "http://127.0.0.1:1/", timeout = 10 }
        assert.is_nil(res)
        check_err(err, "ConnectFailed")
        assert.is_true(err.retryable)
      end)

      it("gives Timeout, retryable, when the answer does not come in time", function()
        local t0 = monotonic()
        local res, err = t:request { url = "http://127.0.0.1:" .. helper.stall .. "/", timeout = 0.5 }
        local dt = monotonic() - t0
        assert.is_nil(res)
        check_err(err, "Timeout")
        assert.is_true(err.retryable)
        assert.is_true(dt >= 0.4 and dt < 5, "took " .. dt .. " s")
      end)

      it("gives Aborted, CallbackError and BodyLengthMismatch for failing readers", function()
        local res, err = t:request(sreq("PUT", key_path("r-fail"), { body_length = 100, body = function()
          return nil, "reader gave up"
        end }))
        assert.is_nil(res)
        check_err(err, "Aborted")
        assert.matches("reader gave up", err.message, 1, true)
        res, err = t:request(sreq("PUT", key_path("r-fail"), { body_length = 100, body = function()
          error("reader blew up")
        end }))
        assert.is_nil(res)
        check_err(err, "CallbackError")
        assert.matches("reader blew up", err.message, 1, true)
        local sent = false
        res, err = t:request(sreq("PUT", key_path("r-fail"), { body_length = 100, body = function()
          if sent then return nil end
          sent = true
          return ("x"):rep(50)
        end }))
        assert.is_nil(res)
        check_err(err, "BodyLengthMismatch")
      end)

      it("gives LocalFileError for a body file that cannot be read", function()
        if not need("file_body") then return end
        local path = tmpname()
        os.remove(path)
        local res, err = t:request(sreq("PUT", key_path("r-nofile"), { body = { file = path } }))
        assert.is_nil(res)
        check_err(err, "LocalFileError")
      end)

      it("returned only codes of transport.CODES, each with its retryable default", function()
        -- check_err checked each one as it came; this makes sure there were some.
        local codes = {}
        for _, e in ipairs(seen) do codes[e.code] = true end
        assert.is_true(codes.ConnectFailed and codes.Timeout and codes.Aborted and true or false)
      end)
    end)

    -- Answers of a broken or hostile server (spec/support/hostile_server.py):
    -- whatever it sends, the transport's memory stays bounded and it
    -- answers with an error within seconds.
    describe("hostile servers", function()
      local hostile
      setup(function() hostile = start_hostile() end)
      teardown(function() if hostile and hostile.pid then os.execute("kill " .. hostile.pid .. " 2>/dev/null") end end)

      local MB = 1024 -- kB
      local function bounded(label, f, grow_kb, seconds)
        collectgarbage()
        local before = rss_kb()
        local t0 = monotonic()
        local res, err = f()
        local dt = monotonic() - t0
        collectgarbage()
        local after = rss_kb()
        assert.is_nil(res, label .. ": a result")
        check_err(err)
        assert.is_true(dt < seconds, label .. ": took " .. dt .. " s")
        if before and after then
          assert.is_true(after - before < grow_kb, label .. ": memory grew by " .. (after - before) .. " kB")
        end
        return err
      end

      it("stops an endless chunked 2xx body at max_body: ResponseTooLarge, not retryable", function()
        local err = bounded("endless-chunked", function()
          return t:request { url = hostile.url .. "/endless-chunked/k", max_body = 2 * 1024 * 1024, timeout = 30 }
        end, 48 * MB, 15)
        assert.equal("ResponseTooLarge", err.code, tostring(err))
        assert.is_false(err.retryable)
        -- a body within the cap is whole
        local res = ok(t:request { url = hostile.url .. "/error-200/k", max_body = 4096, timeout = 10 })
        assert.equal(200, res.status)
        assert.matches("<Code>InternalError</Code>", res.body, 1, true)
      end)

      it("keeps at most 1 MiB of an endless error body, until its timeout", function()
        local err = bounded("endless-error", function()
          return t:request { url = hostile.url .. "/endless-error/k", max_body = 1024, timeout = 2 }
        end, 48 * MB, 10)
        assert.equal("Timeout", err.code, tostring(err))
      end)

      it("refuses a header line that never ends, memory bounded", function()
        local err = bounded("endless-header-line", function()
          return t:request { url = hostile.url .. "/endless-header-line/k", timeout = 30 }
        end, 48 * MB, 15)
        assert.is_true(err.code == "ProtocolError" or err.code == "TransportError", tostring(err))
      end)

      it("ends a request at its timeout when the server trickles a byte a second (head or body)", function()
        for _, mode in ipairs{ "trickle-head", "trickle", "trickle-chunked", "trickle-chunk-size" } do
          local got
          local err = bounded(mode, function()
            return t:request { url = hostile.url .. "/" .. mode .. "/k", timeout = 2, sink = function(c)
              got = (got or 0) + #c
              return true
            end }
          end, 48 * MB, 5)
          assert.equal("Timeout", err.code, mode .. ": " .. tostring(err))
        end
      end)

      it("refuses a chunk-size line that never ends, memory bounded", function()
        local err = bounded("endless-chunk-size", function()
          return t:request { url = hostile.url .. "/endless-chunk-size/k", timeout = 30 }
        end, 48 * MB, 15)
        assert.is_true(err.code == "ProtocolError" or err.code == "TransportError", tostring(err))
      end)
    end)

    describe("run", function()
      -- `count` requests made by make(k) through run(n): on_done must come
      -- once per request; `handed` is the most requests handed out by source
      -- and not yet done.
      local function run_many(count, n, make, check)
        local reqs, done, handed, out, i = {}, {}, 0, 0, 0
        for k = 1, count do reqs[k] = make(k) end
        local results = {}
        local rv, rerr = t:run(function()
          i = i + 1
          local r = reqs[i]
          if r then
            out = out + 1
            if out > handed then handed = out end
          end
          return r
        end, function(req, res, err)
          out = out - 1
          done[req] = (done[req] or 0) + 1
          results[#results + 1] = { res = res, err = err }
        end, n)
        assert.is_true(rv, "run returned " .. tostring(rv) .. ", " .. tostring(rerr))
        for k = 1, count do assert.equal(1, done[reqs[k]], "on_done calls for request " .. k) end
        for _, r in ipairs(results) do
          if not r.res then check_err(r.err) end
          assert.is_table(r.res, tostring(r.err))
          check(r.res)
        end
        return handed
      end

      it("runs up to n requests at once (seen by the server), calling on_done once per request", function()
        if not need("run") then return end
        for _, n in ipairs { 2, 1, 3 } do
          local group = tostring(math.random(1e9))
          local peak = 0
          local t0 = monotonic()
          local handed = run_many(5, n, function()
            return { url = "http://127.0.0.1:" .. helper.canned .. "/delay?ms=200&g=" .. group, timeout = 20 }
          end, function(res)
            assert.equal(200, res.status)
            local p = tonumber(res.headers["x-peak"])
            if p > peak then peak = p end
          end)
          local dt = monotonic() - t0
          assert.equal(n, handed, "most requests out at once")
          assert.equal(n, peak, "most requests the server answered at once")
          -- ceil(5 / n) rounds of 200 ms each
          assert.is_true(dt < math.ceil(5 / n) * 0.2 + 0.5, "n=" .. n .. " took " .. dt .. " s")
        end
      end)

      it("runs several GETs of a large object at once, each whole", function()
        if not need("run") then return end
        local totals = {}
        local handed = run_many(4, 3, function(k)
          totals[k] = 0
          return sreq("GET", key_path("large"), { sink = function(c) totals[k] = totals[k] + #c end })
        end, function(res)
          assert.equal(200, res.status)
          assert.equal(LARGE_N, res.bytes)
        end)
        assert.equal(3, handed)
        for k = 1, 4 do assert.equal(LARGE_N, totals[k]) end
      end)

      it("asks the source again after each completion (pull model)", function()
        if not need("run") then return end
        local log = {}
        local a = sreq("GET", key_path("data"))
        local b = sreq("GET", key_path("no-such-key"))
        local c = { url = "http://127.0.0.1:1/", timeout = 10 }
        local queue, asked = { a }, 0
        local results = {}
        local rv = t:run(function()
          asked = asked + 1
          local r = table.remove(queue, 1)
          if r then log[#log + 1] = "start " .. (r == a and "a" or r == b and "b" or "c") end
          return r
        end, function(req, res, err)
          local id = req == a and "a" or req == b and "b" or req == c and "c" or "?"
          log[#log + 1] = "done " .. id
          results[id] = { res = res, err = err }
          -- Work that appears only once something has completed.
          if id == "a" then queue[#queue + 1] = b end
          if id == "b" then queue[#queue + 1] = c end
        end, 4)
        assert.is_true(rv)
        assert.same({ "start a", "done a", "start b", "done b", "start c", "done c" }, log)
        assert.is_true(asked >= 4)
        assert.equal(200, results.a.res.status)
        assert.equal(DATA, results.a.res.body)
        assert.is_nil(results.a.err)
        assert.equal(404, results.b.res.status)
        assert.is_nil(results.c.res)
        check_err(results.c.err, "ConnectFailed")
      end)

      it("raises what on_done raises", function()
        if not need("run") then return end
        local given = false
        local okr, e = pcall(t.run, t, function()
          if given then return nil end
          given = true
          return sreq("GET", key_path("data"))
        end, function() error("on_done stops here") end, 2)
        assert.is_false(okr)
        assert.matches("on_done stops here", tostring(e), 1, true)
        -- and the transport still works
        assert.equal(200, get("data").status)
      end)
    end)

    describe("sleep and close", function()
      it("sleeps about the time asked", function()
        local t0 = monotonic()
        t:sleep(0.05)
        local dt = monotonic() - t0
        assert.is_true(dt >= 0.045 and dt < 0.5, "slept " .. dt .. " s")
        t0 = monotonic()
        t:sleep(0)
        assert.is_true(monotonic() - t0 < 0.05)
      end)

      it("closes idempotently, and refuses requests once closed", function()
        local t2 = assert(new_transport())
        assert.equal(200, ok(t2:request(sreq("GET", key_path("data")))).status)
        t2:close()
        t2:close()
        assert.is_false(pcall(t2.request, t2, sreq("GET", key_path("data"))))
      end)
    end)
  end)
end

return _M
