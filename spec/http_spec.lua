-- Specs for core.http (csrc/os_http.c, csrc/l_http.c) and objstore.transport.curl.
--
-- The transfers run against a small HTTP server written by this spec to a
-- temporary directory and started on an ephemeral 127.0.0.1 port (python3);
-- it exits by itself after a few minutes even if the spec dies. Tests that
-- need radosgw on 127.0.0.1:7480 are tagged #server and are pending when it
-- is not up.
local core = require "objstore.core"
local curl = require "objstore.transport.curl"

local http = core.http

local SERVER_PY = [=[
import hashlib, os, socket, ssl, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

BLOCK = bytes(i % 251 for i in range(1 << 20))
conn_counter = [0]
conn_lock = threading.Lock()


def pattern(start, n):
    out = bytearray()
    pos = start
    while n > 0:
        off = pos % 251
        take = min(n, len(BLOCK) - off)
        out += BLOCK[off:off + take]
        pos += take
        n -= take
    return bytes(out)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        with conn_lock:
            conn_counter[0] += 1
            self.conn_id = conn_counter[0]

    def q(self, k, d=None):
        v = self.qs.get(k)
        return v[0] if v else d

    def read_body(self, hasher=None, keep=False):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        kept = bytearray()
        total = 0
        def take(data):
            nonlocal total
            total += len(data)
            if hasher:
                hasher.update(data)
            if keep:
                kept.extend(data)
        if te == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 20))
                    if not d:
                        raise ConnectionError("eof")
                    take(d)
                    left -= len(d)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                d = self.rfile.read(min(left, 1 << 20))
                if not d:
                    raise ConnectionError("eof")
                take(d)
                left -= len(d)
        return total, bytes(kept)

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("X-Conn", str(self.conn_id))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        u = urlsplit(self.path)
        self.qs = parse_qs(u.query)
        route = u.path
        if route == "/bytes":
            n = int(self.q("n", "0"))
            start, end = 0, n - 1
            code = 200
            rng = self.headers.get("Range")
            extra = []
            if rng and rng.startswith("bytes="):
                a, b = rng[6:].split("-")
                start, end = int(a), min(int(b), n - 1)
                code = 206
                extra.append(("Content-Range", "bytes %d-%d/%d" % (start, end, n)))
            length = end - start + 1
            self.send_response(code)
            for k, v in extra:
                self.send_header(k, v)
            self.send_header("X-Conn", str(self.conn_id))
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command == "HEAD":
                return
            pos = start
            while pos <= end:
                take = min(end - pos + 1, 1 << 20)
                off = pos % 251
                if off + take <= len(BLOCK):
                    self.wfile.write(BLOCK[off:off + take])
                else:
                    self.wfile.write(pattern(pos, take))
                pos += take
        elif route == "/file":
            path = self.q("path")
            size = os.path.getsize(path)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            with open(path, "rb") as f:
                off = 0
                while off < size:
                    off += os.sendfile(self.connection.fileno(), f.fileno(), off, size - off)
        elif route == "/echo":
            h = None if self.q("nohash") else hashlib.md5()
            total, kept = self.read_body(h, keep=bool(self.q("echo")))
            hdrs = [("X-Method", self.command), ("X-Body-Length", str(total)),
                    ("X-Body-Md5", h.hexdigest() if h else "-"),
                    ("X-Content-Type", self.headers.get("Content-Type", "<none>")),
                    ("X-Expect", self.headers.get("Expect", "<none>")),
                    ("X-Transfer-Encoding", self.headers.get("Transfer-Encoding", "<none>")),
                    ("X-Content-Length", self.headers.get("Content-Length", "<none>")),
                    ("X-User-Agent", self.headers.get("User-Agent", "<none>")),
                    ("X-Test", self.headers.get("X-Test", "<none>")),
                    ("X-Empty", "<present>" if "X-Empty" in self.headers else "<none>"),
                    ("X-Path", u.path + ("?" + u.query if u.query else ""))]
            self.send(200, kept, hdrs)
        elif route == "/status":
            code = int(self.q("code", "500"))
            if self.q("read", "1") == "1":
                self.read_body()
            body = b"<Error><Code>Test</Code></Error>"
            self.send(code, body, [("Content-Type", "application/xml")])
            if self.q("read", "1") != "1":
                # Like radosgw: answer before reading the body and keep the
                # connection; the unread body is then read as the next request.
                pass
        elif route == "/truncate":
            n, send = int(self.q("n")), int(self.q("send"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(pattern(0, send))
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif route == "/stall":
            n, send = int(self.q("n")), int(self.q("send"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(pattern(0, send))
            self.wfile.flush()
            time.sleep(float(self.q("sleep", "20")))
            self.close_connection = True
        elif route == "/hang":
            self.read_body()
            time.sleep(float(self.q("sleep", "20")))
            self.close_connection = True
        elif route == "/reset":
            self.read_body()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif route == "/headers":
            self.send_response(200)
            self.send_header("X-Multi", "a")
            self.send_header("X-Multi", "b")
            self.send_header("X-Mixed-Case", "Value")
            self.send_header("X-Space", "   padded   ")
            self.send_header("Content-Length", "2")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(b"ok")
        elif route == "/rawhead":
            # Regressions found by csrc/fuzz/fuzz_http_headers.c: a header
            # holding a NUL byte, a status code too long for a long.
            self.close_connection = True
            if self.q("kind") == "nul":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-A: 1\x00\r\nX-B: 2\r\nContent-Length: 2\r\n\r\nok")
            else:
                self.wfile.write(b"HTTP/1.1 99999999999999999999999 OK\r\nContent-Length: 2\r\n\r\nok")
        elif route == "/slow":
            self.read_body()
            time.sleep(float(self.q("delay", "0.5")))
            self.send(200, b"slow")
        elif route == "/chunked":
            n = int(self.q("n", "0"))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pos = 0
            while pos < n:
                take = min(n - pos, 7000)
                self.wfile.write(b"%x\r\n" % take + pattern(pos, take) + b"\r\n")
                pos += take
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send(404, b"no such route")

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any


def main():
    portfile, lifetime = sys.argv[1], float(sys.argv[2])
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    srv.handle_error = lambda *a: None
    if len(sys.argv) > 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Timer(lifetime, lambda: os._exit(0)).start()
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


main()
]=]

local PY = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function writefile(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function sleep(s)
  os.execute("sleep " .. s)
end

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*a"))
  p:close()
  return t
end

-- Sessions for loopback servers: ignore any *_proxy environment variables.
local function session(opts)
  opts = opts or {}
  if opts.proxy == nil then opts.proxy = "" end
  return http.session(opts)
end

-- A list of requests through session:run, at most maxc at a time: results
-- in list order (false where it failed, with errs[i] the error).
local function perform(s, reqs, maxc)
  local results, errs, at, index = {}, {}, 0, {}
  for i, r in ipairs(reqs) do index[r] = i end
  assert(s:run(function()
    at = at + 1
    return reqs[at]
  end, function(req, res, err)
    local i = index[req]
    results[i], errs[i] = res or false, err
  end, maxc))
  return results, errs
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- The server's body pattern: byte i is i % 251.
local function pattern(n)
  local block = {}
  for i = 0, 250 do block[#block + 1] = string.char(i) end
  block = table.concat(block)
  local reps = math.floor(n / 251) + 1
  return block:rep(reps):sub(1, n)
end

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p))
  return p
end

-- Starts the test server (TLS when cert and key are given); returns
-- { url = "http://127.0.0.1:port", pid = n }.
local function start_server(dir, name, cert, key)
  local script = dir .. "/server.py"
  writefile(script, SERVER_PY)
  local portfile = dir .. "/" .. name .. ".port"
  local cmd = string.format("%s %s %s 240 %s %s > %s/%s.log 2>&1 & echo $! > %s/%s.pid", PY, script,
    portfile, cert or "", key or "", dir, name, dir, name)
  os.execute(cmd)
  for _ = 1, 200 do
    local port = readfile(portfile)
    if port and port ~= "" then
      local scheme = cert and "https" or "http"
      return { url = scheme .. "://127.0.0.1:" .. port, pid = tonumber(readfile(dir .. "/" .. name .. ".pid")) }
    end
    sleep(0.05)
  end
  error("test server did not start: " .. tostring(readfile(dir .. "/" .. name .. ".log")))
end

local function stop_server(srv)
  if srv and srv.pid then os.execute("kill " .. srv.pid .. " 2>/dev/null") end
end

-- A port nothing listens on: bound by python, then released.
local function closed_port()
  local p = io.popen(PY .. [[ -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); ]]
    .. [[print(s.getsockname()[1]); s.close()"]])
  local port = p:read("*l")
  p:close()
  return port
end

describe("core.http", function()
  it("is a table inside objstore.core", function()
    assert.is_table(http)
    assert.is_function(http.session)
    assert.matches("libcurl/", http.curl_version)
  end)

  it("exports the transport error codes with their retryable defaults (core.http.errors)", function()
    local codes = http.errors
    assert.is_table(codes)
    assert.is_true(codes.Timeout)
    assert.is_true(codes.ConnectFailed)
    assert.is_false(codes.TLSError)
    assert.is_false(codes.LocalFileError)
    assert.is_false(codes.TransportError)
    assert.is_nil(codes.OK)
    local n = 0
    for k, v in pairs(codes) do
      assert.is_string(k)
      assert.is_boolean(v)
      n = n + 1
    end
    assert.is_false(codes.ResponseTooLarge)
    assert.equal(17, n) -- every code of OS_HTTP_ERRORS in csrc/os_http.h but OK
  end)

  it("returns a connection refused as an error value with the shared metatable", function()
    local s = http.session { connect_timeout = 5, proxy = "" }
    local res, err = s:request { url = "http://127.0.0.1:1/" }
    s:close()
    assert.is_nil(res)
    assert.equal(core.error_mt, getmetatable(err))
    assert.equal("ConnectFailed", err.code)
    assert.is_string(err.message)
    assert.is_true(err.retryable)
    assert.equal(http.errors.ConnectFailed, err.retryable)
    assert.is_number(err.curl_code)
    local t = assert(curl.new { connect_timeout = 5, proxy = "" })
    res, err = t:request { url = "http://127.0.0.1:1/" }
    t:close()
    assert.is_nil(res)
    assert.equal(core.error_mt, getmetatable(err))
    assert.equal("ConnectFailed", err.code)
    assert.is_string(err.message)
    assert.is_true(err.retryable)
  end)

  describe("session options", function()
    it("accepts no options and the documented ones", function()
      local s = http.session()
      s:close()
      s = assert(http.session {
        connect_timeout = 1.5, timeout = 0, low_speed_limit = 1, low_speed_time = 30, insecure = false,
        user_agent = "x/1", max_connections = 4, verbose = false, proxy = "",
      })
      s:close()
    end)

    it("raises naming an unknown option", function()
      assert.has_error(function() http.session { conect_timeout = 1 } end)
      local ok, err = pcall(http.session, { conect_timeout = 1 })
      assert.is_false(ok)
      assert.matches("^objstore%.core%.http%.session: argument #1 %(opts%): unknown field 'conect_timeout'", err)
    end)

    it("raises naming an option of the wrong type", function()
      local P = "^objstore%.core%.http%.session: argument #1 "
      local ok, err = pcall(http.session, { timeout = "10" })
      assert.is_false(ok)
      assert.matches(P .. "%(opts%.timeout%): number of seconds expected, got string", err)
      ok, err = pcall(http.session, { insecure = 1 })
      assert.is_false(ok)
      assert.matches(P .. "%(opts%.insecure%): boolean expected, got number", err)
      ok, err = pcall(http.session, { max_connections = 0 })
      assert.is_false(ok)
      assert.matches(P .. "%(opts%.max_connections%): must be between 1 and 65536", err)
      ok, err = pcall(http.session, "fast")
      assert.is_false(ok)
      assert.matches(P .. "%(opts%): table expected, got string", err)
    end)

    it("closes idempotently and refuses use after close", function()
      local s = http.session()
      s:close()
      s:close()
      local ok, err = pcall(s.request, s, { url = "http://127.0.0.1:1/" })
      assert.is_false(ok)
      assert.matches("^objstore%.core%.http%.request: %(self%): the session is closed$", err)
      ok, err = pcall(s.run, s, function() end, function() end)
      assert.is_false(ok)
      assert.matches("^objstore%.core%.http%.run: %(self%): the session is closed$", err)
      assert.is_nil(s.perform) -- removed before 1.0: run is the one way to go several at once
      ok, err = pcall(s.request, {}, {})
      assert.is_false(ok)
      assert.matches("^objstore%.core%.http%.request: %(self%): objstore%.http%.session expected, got table", err)
      assert.matches("closed", tostring(s))
    end)

    if _VERSION == "Lua 5.4" then
      it("closes as a to-be-closed variable", function()
        local f = assert(load([[
          local http, box = ...
          do
            local s <close> = http.session()
            box.s = s
          end
        ]]))
        local box = {}
        f(http, box)
        local ok, err = pcall(box.s.request, box.s, { url = "http://127.0.0.1:1/" })
        assert.is_false(ok)
        assert.matches("the session is closed", err)
      end)
    end

    it("is collected without close", function()
      do
        local s = http.session()
        assert.truthy(s)
      end
      collectgarbage("collect")
      collectgarbage("collect")
    end)
  end)

  describe("request checks", function()
    local s
    setup(function() s = http.session() end)
    teardown(function() s:close() end)

    local function raises(req, pat)
      local ok, err = pcall(s.request, s, req)
      assert.is_false(ok, "expected an error matching " .. pat)
      assert.matches("^objstore%.core%.http%.request: argument #1 " .. pat, err)
    end

    it("names the field at fault", function()
      raises({}, "%(req%.url%): non%-empty string expected")
      raises({ url = "" }, "%(req%.url%): non%-empty string expected")
      raises({ url = "http://x/", metod = "GET" }, "%(req%): unknown field 'metod'")
      raises({ url = "http://x/", method = "G ET" }, "%(req%.method%): invalid method 'G ET'")
      raises({ url = "http://x/", headers = { ["bad name"] = "v" } }, "%(req%.headers%): invalid header name")
      raises({ url = "http://x/", headers = { X = "a\r\nInjected: 1" } },
        "%(req%.headers%): value of 'X' contains CR, LF or NUL")
      raises({ url = "http://x/", headers = { { "X" } } }, "%(req%.headers%): value of 'X' must be a string")
      raises({ url = "http://x/", headers = "X: y" }, "%(req%.headers%): table expected, got string")
      raises({ url = "http://x/", hashes = { "md4" } }, "%(req%.hashes%[1%]%): unknown hash 'md4'")
      raises({ url = "http://x/", body_hashes = { 5 } }, "%(req%.body_hashes%[1%]%): string expected, got number")
      raises({ url = "http://x/", method = "HEAD", body = "x" }, "%(req%.body%): a HEAD request cannot have a body")
      raises({ url = "http://x/", body = "abc", body_length = 4 }, "%(req%.body_length%): 4 differs")
      raises({ url = "http://x/", body = 42 }, "%(req%.body%): string, buffer, table or function expected")
      raises({ url = "http://x/", body = { path = "/x" } }, "%(req%.body%): unknown field 'path'")
      raises({ url = "http://x/", body = { file = "/x", offset = -1 } },
        "%(req%.body%.offset%): non%-negative integer expected")
      raises({ url = "http://x/", sink = "file" }, "%(req%.sink%): function or table expected")
      raises({ url = "http://x/", sink = { file = 1 } }, "%(req%.sink%.file%): string expected, got number")
      raises({ url = "http://x/", timeout = -1 }, "%(req%.timeout%): must be between 0 and 2147483")
      raises({ url = "http://x/", expect_100 = "yes" }, "%(req%.expect_100%): boolean expected, got string")
      raises("GET", "%(req%): table expected, got string")
    end)

    it("checks the arguments of run", function()
      local ok, err = pcall(s.run, s, function() end, function() end, -1)
      assert.is_false(ok)
      assert.matches("^objstore%.core%.http%.run: argument #3 %(max_concurrent%): integer between", err)
      ok, err = pcall(s.run, s, function() end, "done")
      assert.is_false(ok)
      assert.matches("^objstore%.core%.http%.run: argument #2 %(on_done%): function expected, got string", err)
    end)
  end)

  describe("against a local test server", function()
    local dir, srv, base, s

    setup(function()
      dir = tmpdir()
      srv = start_server(dir, "plain")
      base = srv.url
      s = session { connect_timeout = 5, timeout = 60 }
    end)

    teardown(function()
      if s then s:close() end
      stop_server(srv)
      os.execute("rm -rf " .. dir)
    end)

    it("collects a body, with status, headers and counters", function()
      local res = assert(s:request { url = base .. "/bytes?n=100000" })
      assert.equal(200, res.status)
      assert.equal(100000, res.bytes)
      assert.equal(pattern(100000), res.body)
      assert.equal("100000", res.headers["content-length"])
      assert.equal(0, res.sent)
      assert.is_number(res.total_time)
      assert.is_nil(res.hashes)
    end)

    it("lower-cases header names, trims values and joins repeats", function()
      local res = assert(s:request { url = base .. "/headers" })
      assert.equal("a, b", res.headers["x-multi"])
      assert.equal("Value", res.headers["x-mixed-case"])
      assert.equal("padded", res.headers["x-space"])
      assert.is_nil(res.headers["X-Mixed-Case"])
    end)

    it("refuses header lines with a NUL byte and long status codes without harm", function()
      -- Either curl or the header parser refuses them; neither may raise,
      -- misread the header list or overflow the status code.
      for _, kind in ipairs { "nul", "status" } do
        local res, err = s:request { url = base .. "/rawhead?kind=" .. kind }
        if res then
          assert.is_true(res.status >= 0 and res.status < 10000, kind)
          for name in pairs(res.headers) do assert.truthy(name:match("^[%w%-]+$"), kind .. ": " .. name) end
        else
          assert.is_string(err.code, kind)
        end
      end
    end)

    it("hashes the response body in C as it streams", function()
      local names = { "md5", "sha1", "sha256", "crc32", "crc32c", "crc64ecma", "crc64nvme" }
      local res = assert(s:request { url = base .. "/bytes?n=300001", hashes = names })
      local body = pattern(300001)
      assert.equal(hex(core.hash.md5(body)), hex(res.hashes.md5))
      assert.equal(hex(core.hash.sha1(body)), hex(res.hashes.sha1))
      assert.equal(hex(core.hash.sha256(body)), hex(res.hashes.sha256))
      for _, k in ipairs { "crc32", "crc32c", "crc64ecma", "crc64nvme" } do
        assert.equal(hex(core.crc.compute(k, body)), hex(res.hashes[k]), k)
      end
    end)

    it("decodes a chunked response", function()
      local res = assert(s:request { url = base .. "/chunked?n=50000", hashes = { "md5" } })
      assert.equal(50000, res.bytes)
      assert.equal(hex(core.hash.md5(pattern(50000))), hex(res.hashes.md5))
    end)

    it("does HEAD without waiting for a body", function()
      local res = assert(s:request { method = "HEAD", url = base .. "/bytes?n=5000", timeout = 5 })
      assert.equal(200, res.status)
      assert.equal("5000", res.headers["content-length"])
      assert.equal(0, res.bytes)
      assert.equal("", res.body)
    end)

    it("PUTs a string body without Expect or Content-Type, with body hashes", function()
      local body = ("0123456789"):rep(20000)
      local res = assert(s:request {
        method = "PUT", url = base .. "/echo", body = body, body_hashes = { "md5", "crc32c" },
        headers = { { "X-Test", "one" } },
      })
      assert.equal("PUT", res.headers["x-method"])
      assert.equal("200000", res.headers["x-body-length"])
      assert.equal(hex(core.hash.md5(body)), res.headers["x-body-md5"])
      assert.equal(hex(core.hash.md5(body)), hex(res.body_hashes.md5))
      assert.equal(hex(core.crc.compute("crc32c", body)), hex(res.body_hashes.crc32c))
      assert.equal("<none>", res.headers["x-expect"])
      assert.equal("<none>", res.headers["x-content-type"])
      assert.equal("one", res.headers["x-test"])
      assert.equal("objstore/" .. core._VERSION, res.headers["x-user-agent"])
      assert.equal(200000, res.sent)
    end)

    it("sends Expect: 100-continue only when asked", function()
      local res = assert(s:request { method = "PUT", url = base .. "/echo", body = "abc", expect_100 = true })
      assert.equal("100-continue", res.headers["x-expect"])
      assert.equal("3", res.headers["x-body-length"])
      assert.equal(200, res.status)
    end)

    it("POSTs without a form Content-Type unless one is given", function()
      local res = assert(s:request { method = "POST", url = base .. "/echo", body = "<Delete/>" })
      assert.equal("POST", res.headers["x-method"])
      assert.equal("<none>", res.headers["x-content-type"])
      assert.equal("9", res.headers["x-body-length"])
      res = assert(s:request {
        method = "POST", url = base .. "/echo", body = "x", headers = { ["Content-Type"] = "application/xml" },
      })
      assert.equal("application/xml", res.headers["x-content-type"])
      res = assert(s:request { method = "POST", url = base .. "/echo" })
      assert.equal("0", res.headers["x-body-length"])
      assert.equal("0", res.headers["x-content-length"])
    end)

    it("sends an empty header value as an empty header", function()
      local res = assert(s:request { url = base .. "/echo", headers = { ["X-Empty"] = "" } })
      assert.equal("<present>", res.headers["x-empty"])
    end)

    it("sends other methods, with and without a body, and keeps the path as given", function()
      local res = assert(s:request { method = "DELETE", url = base .. "/echo" })
      assert.equal("DELETE", res.headers["x-method"])
      res = assert(s:request { method = "PATCH", url = base .. "/echo", body = "abcd" })
      assert.equal("PATCH", res.headers["x-method"])
      assert.equal("4", res.headers["x-body-length"])
      res = assert(s:request { url = base .. "/echo/../echo?a=b" })
      assert.equal(404, res.status) -- not normalised to /echo
      res = assert(s:request { method = "PUT", url = base .. "/echo" })
      assert.equal("0", res.headers["x-content-length"])
    end)

    it("PUTs from a reader function, chunked or with body_length", function()
      local parts = { "a", "bb", "", "ccc" }
      local i = 0
      local function reader()
        i = i + 1
        return parts[i]
      end
      local res = assert(s:request { method = "PUT", url = base .. "/echo", body = reader, body_hashes = { "md5" } })
      assert.equal("chunked", res.headers["x-transfer-encoding"])
      assert.equal("6", res.headers["x-body-length"])
      assert.equal(hex(core.hash.md5("abbccc")), hex(res.body_hashes.md5))
      i = 0
      res = assert(s:request { method = "PUT", url = base .. "/echo", body = reader, body_length = 6 })
      assert.equal("<none>", res.headers["x-transfer-encoding"])
      assert.equal("6", res.headers["x-content-length"])
      assert.equal(hex(core.hash.md5("abbccc")), res.headers["x-body-md5"])
    end)

    it("fails a reader whose length differs from body_length", function()
      local function reader_of(...)
        local parts, i = { ... }, 0
        return function()
          i = i + 1
          return parts[i]
        end
      end
      local res, err = s:request { method = "PUT", url = base .. "/echo", body = reader_of("abc"), body_length = 5 }
      assert.is_nil(res)
      assert.equal("BodyLengthMismatch", err.code)
      assert.is_false(err.retryable)
      res, err = s:request { method = "PUT", url = base .. "/echo", body = reader_of("abc", "def"), body_length = 4 }
      assert.is_nil(res)
      assert.equal("BodyLengthMismatch", err.code)
      -- the connection was not left half-written: the next request works
      assert(s:request { url = base .. "/echo" })
    end)

    it("reports reader aborts and errors as this transfer's error", function()
      local res, err = s:request {
        method = "PUT", url = base .. "/echo", body = function() return nil, "disk gone" end,
      }
      assert.is_nil(res)
      assert.equal("Aborted", err.code)
      assert.matches("disk gone", err.message)
      res, err = s:request { method = "PUT", url = base .. "/echo", body = function() error("reader boom") end }
      assert.is_nil(res)
      assert.equal("CallbackError", err.code)
      assert.matches("reader boom", err.message)
      res, err = s:request { method = "PUT", url = base .. "/echo", body = function() return 42 end }
      assert.is_nil(res)
      assert.equal("CallbackError", err.code)
      assert.matches("returned a number", err.message)
    end)

    it("PUTs a file range read with pread", function()
      local path = dir .. "/body.bin"
      local data = ("0123456789"):rep(100000)
      writefile(path, data)
      local res = assert(s:request {
        method = "PUT", url = base .. "/echo", body = { file = path, offset = 10, length = 500000 },
        body_hashes = { "md5" },
      })
      local want = hex(core.hash.md5(data:sub(11, 500010)))
      assert.equal("500000", res.headers["x-body-length"])
      assert.equal(want, res.headers["x-body-md5"])
      assert.equal(want, hex(res.body_hashes.md5))
      -- without length: to the end of the file
      res = assert(s:request { method = "PUT", url = base .. "/echo", body = { file = path, offset = 999990 } })
      assert.equal("10", res.headers["x-body-length"])
    end)

    it("returns LocalFileError for unreadable or short body files", function()
      local res, err = s:request { method = "PUT", url = base .. "/echo", body = { file = dir .. "/missing" } }
      assert.is_nil(res)
      assert.equal("LocalFileError", err.code)
      assert.is_false(err.retryable)
      assert.matches("missing", err.message)
      writefile(dir .. "/short.bin", "12345")
      res, err = s:request {
        method = "PUT", url = base .. "/echo", body = { file = dir .. "/short.bin", offset = 2, length = 4 },
      }
      assert.is_nil(res)
      assert.equal("LocalFileError", err.code)
    end)

    it("writes ranged GETs into one file at their offsets, concurrently, without truncating", function()
      local path = dir .. "/sink.bin"
      writefile(path, ("#"):rep(1200000)) -- longer than the object: the tail must survive
      local reqs = {}
      for i = 0, 3 do
        reqs[#reqs + 1] = {
          url = base .. "/bytes?n=1000000",
          headers = { Range = ("bytes=%d-%d"):format(i * 250000, i * 250000 + 249999) },
          sink = { file = path, offset = i * 250000 },
          hashes = { "md5" },
        }
      end
      local results, errs = perform(s, reqs)
      assert.is_nil(next(errs))
      for i = 1, 4 do
        assert.equal(206, results[i].status)
        assert.equal(250000, results[i].bytes)
        assert.is_nil(results[i].body)
      end
      local got = readfile(path)
      assert.equal(1200000, #got)
      assert.equal(pattern(1000000), got:sub(1, 1000000))
      assert.equal(("#"):rep(200000), got:sub(1000001))
      assert.equal(hex(core.hash.md5(pattern(250000))), hex(results[1].hashes.md5))
    end)

    it("creates the sink file for an empty 2xx body and never for an error", function()
      local res = assert(s:request { url = base .. "/bytes?n=0", sink = { file = dir .. "/empty.bin" } })
      assert.equal(200, res.status)
      assert.equal("", readfile(dir .. "/empty.bin"))
      res = assert(s:request { url = base .. "/status?code=404", sink = { file = dir .. "/err.bin" } })
      assert.equal(404, res.status)
      assert.is_nil(readfile(dir .. "/err.bin"))
      assert.matches("<Code>Test</Code>", res.body)
      local res2, err = s:request { url = base .. "/bytes?n=10", sink = { file = dir .. "/no/such/dir" } }
      assert.is_nil(res2)
      assert.equal("LocalFileError", err.code)
    end)

    it("feeds a sink function and collects error documents instead", function()
      local chunks = {}
      local res = assert(s:request {
        url = base .. "/bytes?n=1000000",
        sink = function(c) chunks[#chunks + 1] = c end, -- returning nothing goes on
      })
      assert.equal(pattern(1000000), table.concat(chunks))
      assert.is_nil(res.body)
      assert.equal(1000000, res.bytes)
      chunks = {}
      res = assert(s:request { url = base .. "/status?code=403", sink = function(c) chunks[#chunks + 1] = c end })
      assert.equal(403, res.status)
      assert.equal(0, #chunks)
      assert.matches("<Error>", res.body)
    end)

    it("aborts a transfer whose sink says so", function()
      local res, err = s:request { url = base .. "/bytes?n=100000", sink = function() return false end }
      assert.is_nil(res)
      assert.equal("Aborted", err.code)
      assert.is_false(err.retryable)
      res, err = s:request { url = base .. "/bytes?n=100000", sink = function() return nil, "no room" end }
      assert.is_nil(res)
      assert.equal("Aborted", err.code)
      assert.matches("no room", err.message)
    end)

    it("reports BodyTruncated when the body is shorter than Content-Length", function()
      local res, err = s:request { url = base .. "/truncate?n=1000&send=500" }
      assert.is_nil(res)
      assert.equal("BodyTruncated", err.code)
      assert.is_true(err.retryable)
      assert.equal(18, err.curl_code)
      -- also into a file sink and a function sink
      res, err = s:request { url = base .. "/truncate?n=1000&send=500", sink = { file = dir .. "/trunc.bin" } }
      assert.is_nil(res)
      assert.equal("BodyTruncated", err.code)
      res, err = s:request { url = base .. "/truncate?n=1000&send=500", sink = function() return true end }
      assert.is_nil(res)
      assert.equal("BodyTruncated", err.code)
    end)

    it("times out a stalled response (overall and low-speed)", function()
      local t0 = now()
      local res, err = s:request { url = base .. "/stall?n=1000&send=100&sleep=10", timeout = 1 }
      assert.is_nil(res)
      assert.equal("Timeout", err.code)
      assert.is_true(err.retryable)
      assert.is_true(now() - t0 < 5)
      local slow = session { low_speed_limit = 1, low_speed_time = 1 }
      t0 = now()
      res, err = slow:request { url = base .. "/hang?sleep=10" }
      slow:close()
      assert.is_nil(res)
      assert.equal("Timeout", err.code)
      assert.is_true(now() - t0 < 5)
    end)

    it("classifies connection failures", function()
      local res, err = s:request { url = "http://127.0.0.1:" .. closed_port() .. "/" }
      assert.is_nil(res)
      assert.equal("ConnectFailed", err.code)
      assert.is_true(err.retryable)
      assert.equal(7, err.curl_code)
      res, err = s:request { url = base .. "/reset" }
      assert.is_nil(res)
      assert.equal("ConnectionReset", err.code)
      assert.is_true(err.retryable)
      res, err = s:request { url = "http://nonexistent.invalid/", timeout = 10 }
      assert.is_nil(res)
      assert.equal("ResolveFailed", err.code)
      res, err = s:request { url = "ftp://127.0.0.1/" }
      assert.is_nil(res)
      assert.equal("InvalidURL", err.code)
      assert.is_false(err.retryable)
    end)

    it("reuses one keep-alive connection for sequential requests", function()
      local connects, conn_ids = 0, {}
      for _ = 1, 50 do
        local res = assert(s:request { url = base .. "/echo" })
        connects = connects + res.connects
        conn_ids[res.headers["x-conn"]] = true
      end
      assert.is_true(connects <= 1)
      local n = 0
      for _ in pairs(conn_ids) do n = n + 1 end
      assert.equal(1, n)
    end)

    it("does not reuse a connection after an error answered before the upload was read", function()
      -- regression: radosgw answers e.g. 404 to a PUT without reading the
      -- body and then hangs the keep-alive connection; here the unread body
      -- would be parsed as the next request.
      assert(s:request { url = base .. "/echo" })
      local res = assert(s:request {
        method = "PUT", url = base .. "/status?code=403&read=0", body = ("x"):rep(65536), timeout = 10,
      })
      assert.equal(403, res.status)
      local res2 = assert(s:request { url = base .. "/echo", timeout = 10 })
      assert.equal(200, res2.status)
      assert.equal(1, res2.connects)
      assert.are_not.equal(res.headers["x-conn"], res2.headers["x-conn"])
      -- a GET error does not cost the connection
      local res3 = assert(s:request { url = base .. "/status?code=404" })
      local res4 = assert(s:request { url = base .. "/echo" })
      assert.equal(0, res4.connects)
      assert.equal(res3.headers["x-conn"], res4.headers["x-conn"])
    end)

    it("runs a list concurrently and returns results in order", function()
      local reqs = {}
      for i = 1, 8 do reqs[i] = { url = base .. "/slow?delay=0.4&id=" .. i } end
      local t0 = now()
      local results, errs = perform(s, reqs)
      local took = now() - t0
      assert.is_nil(next(errs))
      assert.is_true(took < 1.6, "8 x 0.4 s took " .. took .. " s")
      for i = 1, 8 do assert.equal(200, results[i].status) end
      -- order: ids echoed back
      for i = 1, 8 do reqs[i] = { url = base .. "/echo?id=" .. i } end
      results = perform(s, reqs)
      for i = 1, 8 do assert.equal("/echo?id=" .. i, results[i].headers["x-path"]) end
      -- max_concurrent bounds the parallelism
      for i = 1, 4 do reqs[i] = { url = base .. "/slow?delay=0.3" } end
      for i = 5, 8 do reqs[i] = nil end
      t0 = now()
      perform(s, reqs, 2)
      took = now() - t0
      assert.is_true(took >= 0.55, "4 x 0.3 s two at a time took " .. took .. " s")
    end)

    it("reports a failure in one transfer without disturbing the others", function()
      local got = {}
      local results, errs = perform(s, {
        { url = base .. "/bytes?n=200000", sink = function(c) got[1] = (got[1] or "") .. c end },
        { url = base .. "/bytes?n=200000", sink = function() error("sink boom") end },
        { url = "http://127.0.0.1:" .. closed_port() .. "/" },
        { method = "PUT", url = base .. "/echo", body = { file = dir .. "/missing" } },
        { url = base .. "/bytes?n=1000" },
      })
      assert.equal(200, results[1].status)
      assert.equal(pattern(200000), got[1])
      assert.is_false(results[2])
      assert.equal("CallbackError", errs[2].code)
      assert.matches("sink boom", errs[2].message)
      assert.is_false(results[3])
      assert.equal("ConnectFailed", errs[3].code)
      assert.is_false(results[4])
      assert.equal("LocalFileError", errs[4].code)
      assert.equal(pattern(1000), results[5].body)
      assert.is_nil(errs[1])
      assert.is_nil(errs[5])
    end)

    it("keeps callback values alive through garbage collection, and lets them go after", function()
      local weak = setmetatable({}, { __mode = "k" })
      local function make_reqs()
        local reqs = {}
        for i = 1, 6 do
          local req
          local sent, got = 0, {}
          local body = ("b"):rep(1000) .. i
          local reader = function()
            collectgarbage("collect")
            req.body = nil -- C must not rely on the request table for what it points into
            if sent >= 3 then return nil end
            sent = sent + 1
            return body
          end
          local sink = function(c)
            req.sink = nil
            req.url = nil
            collectgarbage("collect")
            got[#got + 1] = c
            return true
          end
          req = { method = "PUT", url = base .. "/echo?echo=1", body = reader, sink = sink, body_hashes = { "md5" } }
          weak[reader] = true
          weak[sink] = true
          reqs[i] = req
          reqs["got" .. i] = got
          reqs["want" .. i] = body:rep(3)
        end
        return reqs
      end
      local reqs = make_reqs()
      local list = {}
      for i = 1, 6 do list[i] = reqs[i] end
      local results, errs = perform(s, list, 3)
      assert.is_nil(next(errs))
      for i = 1, 6 do
        assert.equal(reqs["want" .. i], table.concat(reqs["got" .. i]))
        assert.equal(hex(core.hash.md5(reqs["want" .. i])), hex(results[i].body_hashes.md5))
      end
      reqs, list, results = nil, nil, nil -- luacheck: ignore 311
      collectgarbage("collect")
      collectgarbage("collect")
      assert.is_nil(next(weak), "the session still anchors callback values after perform")
    end)

    it("keeps body strings alive when the request table drops them mid-run", function()
      local list, wants = {}, {}
      for i = 1, 5 do
        wants[i] = (("%d-"):format(i)):rep(40000)
        -- an equal but distinct string, referenced only by the request
        list[i] = { method = "PUT", url = base .. "/echo", body = (("%d-"):format(i)):rep(40000) }
      end
      -- All five are pulled before any transfer starts; the first one's sink
      -- drops every other body and collects while they are in flight.
      list[1] = {
        url = base .. "/bytes?n=100",
        sink = function()
          for i = 2, 5 do list[i].body = nil end
          collectgarbage("collect")
          collectgarbage("collect")
        end,
      }
      local results, errs = perform(s, list, 5)
      assert.is_nil(next(errs))
      for i = 2, 5 do assert.equal(hex(core.hash.md5(wants[i])), results[i].headers["x-body-md5"]) end
    end)

    it("refuses re-entry and close from inside a callback", function()
      local res, err = s:request {
        url = base .. "/bytes?n=10",
        sink = function() s:request { url = base .. "/echo" } end,
      }
      assert.is_nil(res)
      assert.equal("CallbackError", err.code)
      assert.matches("busy", err.message)
      res, err = s:request { url = base .. "/bytes?n=10", sink = function() s:close() end }
      assert.is_nil(res)
      assert.equal("CallbackError", err.code)
      assert.matches("cannot close", err.message)
      assert(s:request { url = base .. "/echo" }) -- still usable
    end)

    it("turns a yield from a callback into that transfer's error", function()
      local co = coroutine.wrap(function()
        return s:request { url = base .. "/bytes?n=10", sink = function() coroutine.yield(1) end }
      end)
      local res, err = co()
      assert.is_nil(res)
      assert.equal("CallbackError", err.code)
    end)

    it("runs from inside a coroutine", function()
      local co = coroutine.wrap(function()
        local got = {}
        local res = assert(s:request { url = base .. "/bytes?n=5000", sink = function(c) got[#got + 1] = c end })
        return res.status, table.concat(got)
      end)
      local status, body = co()
      assert.equal(200, status)
      assert.equal(pattern(5000), body)
    end)

    describe("objstore.transport.curl", function()
      it("is a module with _VERSION and no globals", function()
        local before = {}
        for k in pairs(_G) do before[k] = true end
        package.loaded["objstore.transport.curl"] = nil
        local m = require "objstore.transport.curl"
        for k in pairs(_G) do assert.is_true(before[k] ~= nil, "new global " .. tostring(k)) end
        assert.equal(core._VERSION, m._VERSION)
      end)

      it("requests, runs several and closes", function()
        local t = assert(curl.new { connect_timeout = 5, proxy = "" })
        local res = assert(t:request { url = base .. "/bytes?n=10" })
        assert.equal(pattern(10), res.body)
        local reqs = { { url = base .. "/bytes?n=20" }, { url = "http://127.0.0.1:" .. closed_port() .. "/" } }
        local results, errs, i = {}, {}, 0
        assert(t:run(function()
          i = i + 1
          return reqs[i]
        end, function(req, r, e)
          local k = req == reqs[1] and 1 or 2
          results[k], errs[k] = r or false, e
        end, 2))
        assert.is_nil(t.request_many) -- removed before 1.0
        assert.is_nil(curl.error_mt)
        assert.equal(pattern(20), results[1].body)
        assert.is_false(results[2])
        assert.equal("ConnectFailed", errs[2].code)
        assert.equal(core.error_mt, getmetatable(errs[2])) -- the shared one: "Code - message"
        assert.matches("^ConnectFailed %- ", tostring(errs[2]))
        local r, err = t:request { url = base .. "/truncate?n=10&send=5" }
        assert.is_nil(r)
        assert.equal(core.error_mt, getmetatable(err))
        assert.matches("^BodyTruncated %- transfer closed", tostring(err))
        t:close()
        t:close()
        assert.has_error(function() t:request { url = base } end)
      end)

      it("raises on misuse", function()
        assert.has_error(function() curl.new { bogus = true } end)
        local t = curl.new { proxy = "" }
        assert.has_error(function() t:request { url = 1 } end)
        t:close()
      end)
    end)
  end)

  describe("TLS", function()
    local dir, srv, cert
    setup(function()
      dir = tmpdir()
      cert = dir .. "/cert.pem"
      local ok = os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
        .. "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s >/dev/null 2>&1"):format(dir, cert))
      if ok == true or ok == 0 then srv = start_server(dir, "tls", cert, dir .. "/key.pem") end
    end)
    teardown(function()
      stop_server(srv)
      os.execute("rm -rf " .. dir)
    end)

    it("verifies certificates by default and says so when it fails", function()
      if not srv then return pending("openssl CLI not available") end
      local s = session { connect_timeout = 5, timeout = 20 }
      local res, err = s:request { url = srv.url .. "/bytes?n=10" }
      assert.is_nil(res)
      assert.equal("TLSError", err.code)
      assert.is_false(err.retryable)
      s:close()
      s = session { ca_file = cert, timeout = 20 }
      res = assert(s:request { url = srv.url .. "/bytes?n=10" })
      assert.equal(pattern(10), res.body)
      s:close()
      s = session { insecure = true, timeout = 20 }
      res = assert(s:request { url = srv.url .. "/bytes?n=10" })
      assert.equal(200, res.status)
      s:close()
    end)
  end)

  describe("#server radosgw", function()
    local RGW = "http://127.0.0.1:7480"
    local s, down

    setup(function()
      s = session { connect_timeout = 2, timeout = 30 }
      local res, err = s:request { url = RGW .. "/" }
      if not res then down = "radosgw not reachable on 127.0.0.1:7480: " .. tostring(err.message) end
    end)
    teardown(function() s:close() end)

    it("reuses one connection for 200 anonymous GETs of /", function()
      if down then return pending(down) end
      local connects = 0
      for _ = 1, 200 do
        local r = assert(s:request { url = RGW .. "/" })
        assert.equal(200, r.status)
        assert.matches("ListAllMyBucketsResult", r.body)
        connects = connects + r.connects
      end
      assert.equal(0, connects)
    end)

    it("opens a new connection after an error answered to an upload", function()
      if down then return pending(down) end
      local r = assert(s:request {
        method = "PUT", url = RGW .. "/objstore-http-spec-no-such-bucket/key", body = ("x"):rep(100), timeout = 10,
      })
      assert.is_true(r.status >= 400)
      assert.matches("<Error>", r.body)
      local r2 = assert(s:request { url = RGW .. "/", timeout = 10 })
      assert.equal(200, r2.status)
      assert.equal(1, r2.connects)
    end)
  end)
end)
