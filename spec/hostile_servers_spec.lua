-- Hostile or broken servers (issue 18): what a server sends is bounded
-- before objstore keeps it, and nothing it says changes objstore's own
-- state, fields, logs or metrics beyond what it is entitled to. The answers
-- come from spec/support/hostile_server.py (mode = the bucket name), on
-- OBJSTORE_TEST_HOSTILE_PORT or a free port; the cases marked #server also
-- talk to radosgw (eval "$(bash spec/support/rgw.sh env)"). The transport
-- level (both transports, curl and cosockets inside nginx) is in
-- spec/support/transport_contract.lua ("hostile servers").
local objstore = require "objstore"
local errors = require "objstore.errors"
local servers = require "servers"
local core = require "objstore.core"
local log = require "objstore.log"
local metrics = require "objstore.metrics"
local metadata = require "objstore.credentials.metadata"

local monotonic = core.time.monotonic

-- Marker secrets: long enough to be redacted by value, distinct enough to
-- be found in any output.
local SECRET = "hostileSecretKey/0123456789+ABCDEFxyz"
local TOKEN = "FwoGZXIvYXdzEHostileSessionToken/+=0123456789abcdefQQQ=="
local SSEC_KEY = "0123456789abcdefHOSTILE-SSEC-KEY" -- 32 raw bytes
local SSEC_B64 = core.encode.base64_encode(SSEC_KEY)

local function rss_kb()
  local s = servers.read_file("/proc/self/status")
  return s and tonumber(s:match("VmRSS:%s*(%d+)")) or nil
end

local function percent(v)
  return (v:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- Every form of every secret that must not appear anywhere.
local NEEDLES = {
  { "secret key", SECRET }, { "secret key, url-encoded", percent(SECRET) },
  { "secret key, JSON-escaped", (SECRET:gsub("/", "\\/")) },
  { "secret key, base64", core.encode.base64_encode(SECRET) },
  { "session token", TOKEN }, { "session token, url-encoded", percent(TOKEN) },
  { "session token, JSON-escaped", (TOKEN:gsub("/", "\\/")) },
  { "session token, base64", core.encode.base64_encode(TOKEN) },
  { "SSE-C key (base64)", SSEC_B64 }, { "SSE-C key (raw)", SSEC_KEY },
}

local function dump(v, out, seen)
  out, seen = out or {}, seen or {}
  local t = type(v)
  if t == "string" or t == "number" or t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" and not seen[v] then
    seen[v] = true
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__tostring then out[#out + 1] = tostring(v) end
    for k, x in pairs(v) do
      dump(k, out, seen)
      dump(x, out, seen)
    end
  end
  return out
end

local function no_secret(label, v)
  local s = type(v) == "string" and v or table.concat(dump(v), "\n")
  for _, n in ipairs(NEEDLES) do
    local at = s:find(n[2], 1, true)
    assert(not at, label .. " leaks the " .. n[1] .. ": ..." .. s:sub(math.max(1, (at or 1) - 60), (at or 1) + 80))
  end
end

describe("hostile servers", function()
  local hostile, stop

  setup(function()
    local port = tonumber(os.getenv("OBJSTORE_TEST_HOSTILE_PORT") or "") or 0
    hostile, stop = servers.hostile_server(port, 300, SECRET)
  end)

  teardown(function()
    if stop then stop() end
  end)

  local function client(extra)
    local o = { endpoint = hostile, access_key = "AKIDHOSTILE", secret_key = SECRET, session_token = TOKEN,
      region = "us-east-1", timeout = 20, retry = { max_attempts = 1 } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return objstore.new(o)
  end

  describe("unbounded memory", function()
    it("stops an endless chunked ListObjects body at the XML cap: ResponseTooLarge within seconds", function()
      local c = client{ timeout = 5 }
      collectgarbage()
      local before = rss_kb()
      local t0 = monotonic()
      local r, err = c:list_objects("endless-chunked")
      local dt = monotonic() - t0
      collectgarbage()
      local grew = before and (rss_kb() - before) or 0
      c:close()
      assert.is_nil(r)
      assert.is_true(errors.is(err))
      assert.equal("ResponseTooLarge", err.code, tostring(err))
      assert.is_false(err.retryable)
      assert.is_true(dt < 10, "took " .. dt .. " s")
      -- the cap is 32 MiB: what was kept never went much beyond it
      assert.is_true(grew < 160 * 1024, "memory grew by " .. grew .. " kB")
    end)

    it("refuses a header line that never ends within seconds", function()
      local c = client{ timeout = 5 }
      local t0 = monotonic()
      local r, err = c:list_objects("endless-header-line")
      c:close()
      assert.is_nil(r)
      assert.equal("ProtocolError", err.code, tostring(err))
      assert.is_true(monotonic() - t0 < 10)
    end)

    it("keeps the 2xx body of a GetObject into a string whole (no cap there)", function()
      local c = client()
      local r = assert(c:get_object("error-200", "k"))
      c:close()
      assert.matches("<Code>InternalError</Code>", r.body, 1, true)
    end)
  end)

  describe("quadratic XML", function()
    it("refuses 80,000 attributes (0.9 MB) in well under a second of CPU", function()
      local c = client()
      local cpu = os.clock()
      local r, err = c:list_objects("many-attributes")
      cpu = os.clock() - cpu
      c:close()
      assert.is_nil(r)
      assert.equal("MalformedResponse", err.code, tostring(err))
      assert.matches("attributes", err.message, 1, true)
      assert.is_true(cpu < 1, "took " .. cpu .. " s of CPU")
    end)

    it("refuses 2,000,000 elements (8 MB) before building them: no 300 MB tree, no seconds of CPU", function()
      local c = client()
      collectgarbage()
      local before = rss_kb()
      local cpu = os.clock()
      local r, err = c:list_objects("many-elements")
      cpu = os.clock() - cpu
      collectgarbage()
      local grew = before and (rss_kb() - before) or 0
      c:close()
      assert(r == nil, "the document was parsed") -- not is_nil: printing 2,000,000 entries takes minutes
      assert.equal("MalformedResponse", err.code, tostring(err))
      assert.matches("elements", err.message, 1, true)
      assert.is_true(cpu < 0.5, "took " .. cpu .. " s of CPU")
      assert.is_true(grew < 64 * 1024, "memory grew by " .. grew .. " kB")
      -- the cap can be raised by a caller that expects more, and a real
      -- answer's 15,000 elements are far below it
      local xml = require "objstore.xml"
      local doc = "<R>" .. ("<a/>"):rep(20) .. "</R>"
      assert.equal("MalformedResponse", select(2, xml.parse(doc, { max_elements = 20 })).code)
      assert(xml.parse(doc, { max_elements = 21 }))
      assert(xml.parse("<R>" .. ("<V><K>k</K><E>e</E><S>1</S></V>"):rep(15000) .. "</R>"))
    end)

    it("still reads an ACL's attributes (namespaces, xsi:type)", function()
      local xml = require "objstore.xml"
      local t = assert(xml.parse('<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        .. '<AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        .. 'xsi:type="CanonicalUser"><ID>a=b</ID></Grantee><Permission>READ</Permission></Grant>'
        .. '</AccessControlList></AccessControlPolicy>'))
      assert.equal("CanonicalUser", t.access_control_list.grant[1].grantee.type)
      local many = {}
      for i = 1, 65 do many[i] = ('a%d="x"'):format(i) end
      local _, err = xml.parse("<R " .. table.concat(many, " ") .. "/>")
      assert.equal("MalformedResponse", err.code)
      assert.is_false(err.retryable)
      -- '=' inside values, comments and CDATA is no attribute
      assert(xml.parse('<R a="=====" b=\'==\'><!-- = = = --><![CDATA[= = =]]><K>x=y</K></R>'))
    end)
  end)

  describe("clock", function()
    local presign_date = function(c)
      local url = assert(c:presign("GET", "b", "k", { expires_in = 60 }))
      local y, mo, d, h, mi, s = url:match("X%-Amz%-Date=(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z")
      return require("objstore.clock").epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
        tonumber(s))
    end

    it("adopts no Date of 1969 or 9999, from an error or a success", function()
      local c = client()
      for _, mode in ipairs{ "date-1969", "date-9999", "date-1969-ok", "date-9999-ok" } do
        c:list_objects(mode)
        assert.equal(0, c.clock_skew, mode)
        assert.is_true(math.abs(presign_date(c) - os.time()) < 120, "presign after " .. mode)
      end
      c:close()
    end)

    it("adopts a bounded skew only from a time-skew error", function()
      local clock = require "objstore.clock"
      local now = 1700000000
      local date = function(t) return os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end
      assert.is_nil(clock.skew_from(date(now - 86400 * 400), now, true))
      assert.is_nil(clock.skew_from(date(now + 86400 * 2), now, true))
      assert.equal(-3600, clock.skew_from(date(now - 3600), now, true))
      assert.is_true(clock.SKEW_CODES.RequestTimeTooSkewed)
      assert.is_nil(clock.SKEW_CODES.AccessDenied)
    end)

    it("#server keeps working against radosgw after 1969 and 9999 answers", function()
      local srv = servers.list()[1]
      assert(srv and srv.endpoint, "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
      -- One client: requests for the date-* buckets go to the hostile server,
      -- everything else to radosgw.
      local curl = require("objstore.transport.curl").new{}
      local route = { request = function(_, req)
        local mode = req.url:match("^https?://[^/]+/(date%-[%w%-]+)")
        if mode then
          req.url = hostile .. "/" .. mode .. "?list-type=2"
          req.headers = { Host = hostile:match("//(.*)$") }
        end
        return curl:request(req)
      end, close = function() curl:close() end }
      local c = servers.client(srv, { transport = route, addressing = "path", retry = { max_attempts = 2 } })
      for _, mode in ipairs{ "date-1969-ok", "date-1969", "date-9999-ok", "date-9999" } do
        c:list_objects(mode)
        assert(c:list_buckets(), "a request to radosgw after " .. mode)
        assert.is_true(math.abs(presign_date(c) - os.time()) < 120, "presign after " .. mode)
      end
      c:close()
    end)
  end)

  describe("secrets echoed in another form", function()
    it("reach neither tostring(err), the log nor the on_error event", function()
      local lines, events = {}, {}
      local c = client{ log_level = "debug", log = function(level, msg, fields)
        lines[#lines + 1] = level .. " " .. msg
        lines[#lines + 1] = table.concat(dump(fields), "\n")
      end, hooks = { on_error = function(e) events[#events + 1] = e end,
        on_response = function(e) events[#events + 1] = e end } }
      local r, err = c:get_object("echo-secrets", "k", { sse_customer_key = SSEC_KEY })
      assert.is_nil(r)
      assert.equal("InvalidArgument", err.code)
      -- the server did echo them: the redaction is what keeps them out
      assert.matches("you sent", err.message, 1, true)
      assert.matches("<redacted>", err.message, 1, true)
      no_secret("tostring(err)", tostring(err))
      no_secret("the error's fields", err)
      no_secret("the log", table.concat(lines, "\n"))
      assert.is_true(#events >= 2)
      no_secret("the events", events)
      -- ListObjects too (no SSE-C), through the default log
      lines = {}
      local _, e2 = c:list_objects("echo-secrets")
      no_secret("tostring(err) of a listing", tostring(e2))
      no_secret("the log of a listing", table.concat(lines, "\n"))
      c:close()
    end)

    it("value_redactor replaces each form, and leaves short values alone", function()
      local red = log.value_redactor({ SECRET, "short" }, { SSEC_B64 })
      local s = red("a " .. SECRET .. " b " .. percent(SECRET) .. " c " .. core.encode.base64_encode(SECRET)
        .. " d " .. SSEC_KEY .. " e " .. SSEC_B64 .. " short")
      no_secret("value_redactor", s)
      assert.matches("short$", s)
    end)

    it("value_redactor also replaces base64 inside longer base64 text, unpadded, base64url, and hex", function()
      local red = log.value_redactor({ SECRET, TOKEN }, { SSEC_B64 })
      local b64 = core.encode.base64_encode
      local function hex(v) return (v:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end)) end
      for _, v in ipairs{ SECRET, TOKEN, SSEC_KEY } do
        local forms = {
          ["Basic base64(ak:secret)"] = b64("AKIDHOSTILE:" .. v), -- 12 bytes before: aligned
          ["base64 after 1 byte"] = b64("x" .. v), ["base64 after 2 bytes"] = b64("xy" .. v),
          ["base64 after 4 bytes, then more"] = b64("AKID:" .. v .. ":trailing"),
          ["unpadded base64"] = (b64(v):gsub("=+$", "")),
          ["base64url"] = (b64("xy" .. v):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" })),
          ["hex"] = hex(v), ["HEX"] = hex(v):upper(),
        }
        for name, form in pairs(forms) do
          local out = red("the server said: " .. form .. " (end)")
          -- what remains of the encoded value: at most 2 bytes at either end
          local b64_core = b64(v:sub(3, #v - (#v - 2) % 3))
          assert(not out:find(b64_core:sub(5, -5), 1, true) and not out:find(hex(v):sub(5, -5), 1, true),
            name .. " of " .. v:sub(1, 12) .. "... leaks: " .. out)
          assert.matches("<redacted>", out, 1, true)
        end
      end
    end)
  end)

  describe("container credentials URL", function()
    it("allows http only to loopback and the ECS/EKS agent, parsed properly", function()
      local cases = {
        { "http://127.0.0.1:8080/creds", true }, { "http://127.1.2.3/creds", true },
        { "HTTP://127.0.0.1/creds", true }, { "http://localhost/x", true }, { "http://LOCALHOST:80/x", true },
        { "http://[::1]:9000/x", true }, { "http://169.254.170.2/v2", true }, { "http://169.254.170.23/v1", true },
        { "http://[fd00:ec2::23]/v1", true }, { "https://creds.example.com/x", true },
        { "HTTPS://creds.example.com/x", true },
        { "http://127.0.0.1.evil.example/creds", false }, { "HTTP://127.0.0.1.evil.example/creds", false },
        { "http://127.0.0.1@evil.example/creds", false }, { "http://evil.example#@127.0.0.1/", false },
        { "http://localhost.evil.example/", false }, { "http://127.0.0.256/", false },
        { "http://0127.0.0.1/", false }, { "http://198.51.100.7/creds", false }, { "http://[::2]/", false },
        { "http://127.0.0.1:80x/", false }, { "ftp://127.0.0.1/", false }, { "127.0.0.1/creds", false },
        { "file:///etc/passwd", false },
      }
      for _, c in ipairs(cases) do
        local ok = metadata.container_url_allowed(c[1])
        assert.equal(c[2], ok, c[1])
      end
      -- and the provider refuses before any request
      local creds = require "objstore.credentials"
      for _, u in ipairs{ "HTTP://127.0.0.1.evil.example/creds", "http://127.0.0.1.evil.example/creds" } do
        local r, err = creds.container{ env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = u } }()
        assert.is_nil(r)
        assert.matches("plain http is only allowed", err.message, 1, true)
      end
    end)
  end)

  describe("log and terminal injection", function()
    it("escapes control characters in log lines; the error keeps the server's text", function()
      local lines = {}
      local c = client{ log_level = "info", log = function(_, msg) lines[#lines + 1] = msg end }
      local _, err = c:get_object("log-injection", "k")
      c:close()
      assert.matches("\n", err.message, 1, true)
      assert.is_true(#lines >= 2)
      for _, l in ipairs(lines) do
        assert.is_nil(l:find("[%z\1-\31\127]"), "a control character in: " .. l)
      end
      assert.matches("\\x1b[2J", table.concat(lines, "\n"), 1, true)
      assert.matches("denied\\nobjstore: PutObject", table.concat(lines, "\n"), 1, true)
    end)

    it("escape_control writes every control character out", function()
      assert.equal("a\\nb\\r\\t\\x1b[31m\\x00\\x7f\\xc2\\x9bz é",
        log.escape_control("a\nb\r\t\27[31m\0\127\194\155z é"))
      assert.equal("a\nb\\r", log.escape_control("a\nb\r", true))
      assert.equal(5, log.escape_control(5))
      -- Bidirectional controls reorder what follows them on the line
      -- ("\u{202E}fdp.exe" shows as "exe.pdf"); other UTF-8 stays as it is.
      assert.equal("\\xe2\\x80\\xaefdp.exe \\xe2\\x81\\xa6x\\xe2\\x81\\xa9 \\xd8\\x9c é – €",
        log.escape_control("\226\128\174fdp.exe \226\129\166x\226\129\169 \216\156 é – €"))
    end)
  end)

  describe("metric labels", function()
    it("fold server-chosen error codes into 'other'", function()
      local reg = metrics.new()
      local c = client{ metrics = reg }
      for _ = 1, 40 do c:list_objects("random-codes") end
      c:close()
      local text = reg:prometheus()
      local codes = {}
      for code in text:gmatch('objstore_errors_total{[^}]*code="([^"]*)"') do codes[code] = true end
      assert.same({ other = true }, codes)
      assert.is_nil(text:find("Invented", 1, true))
      assert.equal("NoSuchKey", metrics.code_label("NoSuchKey"))
      assert.equal("Timeout", metrics.code_label("Timeout"))
      assert.equal("other", metrics.code_label("Invented123"))
    end)
  end)

  describe("server <Error> fields", function()
    it("never overwrite objstore's own fields; they are kept under err.server", function()
      local c = client()
      local r, err = c:list_objects("error-fields")
      c:close()
      assert.is_nil(r)
      assert.equal("AccessDenied", err.code)
      assert.equal("Access Denied", err.message)
      assert.equal("hostile-1", err.request_id)
      assert.equal(403, err.status)
      assert.is_false(err.retryable)
      assert.equal("error-fields", err.bucket)
      assert.is_nil(err.key)
      assert.equal(1, err.attempts)
      assert.not_equal("http://evil.example", err.endpoint)
      assert.is_nil(err.retry_after)
      assert.matches("^ListObjects", err.op)
      assert.equal("false", err.server.retryable)
      assert.equal("Forged", err.server.op)
    end)
  end)
  describe("GetObjectTagging answers", function()
    it("takes only a <Tagging> of string keys and values: anything else is MalformedResponse, never tags", function()
      local body
      local c = objstore.new{ endpoint = "http://127.0.0.1:9", region = "us-east-1", access_key = "AK",
        secret_key = SECRET,
        transport = { request = function() return { status = 200, headers = {}, body = body } end } }
      for _, b in ipairs({
        -- another document: not "no tags"
        "<ListBucketResult><Name>x</Name></ListBucketResult>",
        -- a Value or Key that is not text (its table's address was the value)
        "<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value><Value>2</Value></Tag></TagSet></Tagging>",
        "<Tagging><TagSet><Tag><Key><x>1</x></Key><Value>1</Value></Tag></TagSet></Tagging>",
        "<Tagging><TagSet><Tag><Value>1</Value></Tag></TagSet></Tagging>",
        -- a key twice: which value is the object's is unknown
        "<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag></TagSet>"
          .. "</Tagging>",
        -- two tag sets
        "<Tagging><TagSet/><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>",
      }) do
        body = b
        local r, err = c:get_object_tagging("b", "k")
        assert.is_nil(r, b)
        assert.equal("MalformedResponse", err.code, b)
        assert.no_match(SECRET, tostring(err.message), 1, true)
      end
      body = "<Tagging><TagSet><Tag><Key>a</Key><Value/></Tag><Tag><Key>b</Key><Value>2</Value></Tag></TagSet>"
        .. "</Tagging>"
      assert.same({ a = "", b = "2" }, assert(c:get_object_tagging("b", "k")).tags)
      body = "<Tagging><TagSet/></Tagging>"
      assert.same({}, assert(c:get_object_tagging("b", "k")).tags)
    end)
  end)

  describe("download_file against a server that lies in its answers", function()
    local dir
    setup(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(servers.sh("mkdir -p " .. servers.q(dir)))
    end)
    teardown(function()
      if dir then servers.sh("rm -rf " .. servers.q(dir)) end
    end)
    local function leftovers()
      local ok, out = servers.sh("ls -A " .. servers.q(dir))
      assert(ok, out)
      return out
    end

    it("refuses a range answered with another Content-Range, or with the whole object: BadRange, nothing written",
      function()
      for _, mode in ipairs{ "range-shifted", "range-whole" } do
        for _, verify in ipairs{ true, false } do
          local c = client{ retry = { max_attempts = 3 } }
          local path = dir .. "/" .. mode .. ".bin"
          local r, err = c:download_file(mode, "obj", path, { part_size = 5 * 1024 * 1024, concurrency = 2,
            verify = verify })
          c:close()
          assert.is_nil(r, mode .. ": a download with a wrong range succeeded")
          assert.equal("BadRange", err.code, mode .. ": " .. tostring(err))
          assert.is_false(err.retryable)
          assert.matches(mode == "range-whole" and "status 200" or "Content%-Range bytes", err.message)
          assert.matches("nothing of it was written", err.message, 1, true)
          assert.equal(1, err.attempts or 1)
          assert.is_nil(io.open(path, "rb"), mode .. ": the destination exists")
          assert.equal("", leftovers(), mode .. ": files were left behind")
        end
      end
    end)

    it("verifies a single-part MD5 given as an unquoted uppercase ETag, and refuses a wrong one (BadDigest)",
      function()
      local want = {}
      for i = 0, 999 do want[#want + 1] = string.char((i * 7 + 3) % 256) end
      want = table.concat(want)
      local c = client()
      local path = dir .. "/upper.bin"
      local r, err = c:download_file("etag-upper", "obj", path)
      assert.is_table(r, tostring(err))
      assert.is_true(r.verified)
      assert.equal(1000, r.size)
      local f = assert(io.open(path, "rb"))
      assert.is_true(f:read("*a") == want, "the file differs from the object")
      f:close()
      os.remove(path)
      r, err = c:download_file("etag-upper-bad", "obj", path)
      c:close()
      assert.is_nil(r)
      assert.equal("BadDigest", err.code, tostring(err))
      assert.is_nil(io.open(path, "rb"), "a file that failed its check was left")
      assert.equal("", leftovers())
    end)
  end)
end)
