-- Logging (objstore.log: the `log`/`log_level` options, debug mode, the
-- OpenResty helper) and the secret-hygiene rule: with marker secrets (a
-- secret key, a session token, an SSE-C key), everything objstore produces
-- - the client itself, every error, every event, every log line and its
-- fields, misuse raises and their tracebacks, checkpoint and journal files,
-- metrics - is searched for them. Access keys may appear; secret keys,
-- session tokens and SSE-C keys never. The rgw parts carry the tag server.
local objstore = require "objstore"
local log = require "objstore.log"
local errors = require "objstore.errors"
local metrics = require "objstore.metrics"
local signer = require "objstore.engine.signer"
local checksum = require "objstore.checksum"
local core = require "objstore.core"
local servers = require "servers"

math.randomseed(os.time() + math.floor(os.clock() * 1e6))

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local function random_chars(n)
  local t = {}
  for i = 1, n do
    local k = math.random(1, #B64)
    t[i] = B64:sub(k, k)
  end
  return table.concat(t)
end

local SECRET = "SECRET-MARKER-" .. random_chars(12)
local TOKEN = "TOKEN-MARKER-" .. random_chars(12)
-- A real SSE-C key (base64 of 32 bytes) that starts with a marker.
local SSEC = "SSECMARKER" .. random_chars(32) .. "A="
local SSEC_RAW = core.encode.base64_decode(SSEC)
local SSEC_HEADERS = {
  ["x-amz-server-side-encryption-customer-algorithm"] = "AES256",
  ["x-amz-server-side-encryption-customer-key"] = SSEC,
  ["x-amz-server-side-encryption-customer-key-MD5"] = checksum.md5_base64(SSEC_RAW),
}

local function hex(s, sep)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) .. (sep or "") end))
end

-- Each marker as text, and as the hex forms servers echo (StringToSignBytes).
local NEEDLES = {}
-- (The SSE-C needle is the key's first 30 characters: a slightly wrong key
-- sent below must not leak either.)
for name, m in pairs{ secret_key = SECRET, session_token = TOKEN, sse_c_key = SSEC:sub(1, 30) } do
  NEEDLES[#NEEDLES + 1] = { name, m }
  NEEDLES[#NEEDLES + 1] = { name .. " (hex)", hex(m) }
  NEEDLES[#NEEDLES + 1] = { name .. " (spaced hex)", hex(m, " "):sub(1, -2) }
  NEEDLES[#NEEDLES + 1] = { name .. " (HEX)", hex(m):upper() }
end
NEEDLES[#NEEDLES + 1] = { "sse_c_key (raw bytes)", SSEC_RAW }

--- A recursive dump of a value: strings, numbers and booleans (keys too),
-- tostring of tables that have one; functions, userdata and threads are
-- skipped, cycles followed once.
local function dump(v, out, seen)
  out, seen = out or {}, seen or {}
  local t = type(v)
  if t == "string" or t == "number" or t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" and not seen[v] then
    seen[v] = true
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__tostring then
      local ok, s = pcall(tostring, v)
      if ok then out[#out + 1] = s end
    end
    for k, x in pairs(v) do
      dump(k, out, seen)
      dump(x, out, seen)
    end
  end
  return out
end

local function text_of(v)
  if type(v) == "string" then return v end
  return table.concat(dump(v), "\n")
end

--- Asserts that nothing in v (a string, or anything dump walks) holds a
-- marker; returns how many bytes were searched.
local function no_secret(label, v)
  local s = text_of(v)
  for _, n in ipairs(NEEDLES) do
    local at = s:find(n[2], 1, true)
    assert(not at, label .. " leaks the " .. n[1] .. ": ..." .. s:sub(math.max(1, (at or 1) - 60), (at or 1) + 80))
  end
  return #s
end

--- A log function that keeps every line: { level, message, fields }.
local function recorder()
  local lines = {}
  return lines, function(level, message, fields)
    lines[#lines + 1] = { level = level, message = message, fields = fields }
  end
end

local function find_line(lines, pattern, level)
  for _, l in ipairs(lines) do
    if (not level or l.level == level) and l.message:find(pattern) then return l end
  end
  return nil
end

local function levels(lines)
  local out = {}
  for _, l in ipairs(lines) do out[#out + 1] = l.level end
  return out
end

--- A transport answering from a list of canned responses (a response
-- table, or a { nil, err } pair), one per request, the last one again
-- when the list is over. (It keeps no request: the client is searched.)
local function canned(list)
  local t, n = {}, 0
  function t.request()
    n = n + 1
    local r = list[math.min(n, #list)]
    if r[1] == nil and r[2] then return nil, r[2] end
    return r
  end
  function t.sleep() end
  return t
end

describe("log.redact", function()
  it("replaces signatures, session tokens and SSE-C keys, and nothing else", function()
    local cases = {
      { "Authorization: AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
        .. "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=0123abcd",
        "Authorization: AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
        .. "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=<redacted>" },
      { "OSS4-HMAC-SHA256 Credential=AK/20260101/cn-hangzhou/oss/aliyun_v4_request,Signature=ff00",
        "OSS4-HMAC-SHA256 Credential=AK/20260101/cn-hangzhou/oss/aliyun_v4_request,Signature=<redacted>" },
      { "Authorization: OSS AKID:c2lnbmF0dXJl+/=", "Authorization: OSS AKID:<redacted>" },
      { "/b/k?X-Amz-Credential=AK%2F20260101&X-Amz-Security-Token=" .. TOKEN .. "&X-Amz-Signature=beef&x=1",
        "/b/k?X-Amz-Credential=AK%2F20260101&X-Amz-Security-Token=<redacted>&X-Amz-Signature=<redacted>&x=1" },
      { "?OSSAccessKeyId=AK&Signature=abc%2B&security-token=" .. TOKEN,
        "?OSSAccessKeyId=AK&Signature=<redacted>&security-token=<redacted>" },
      { "host:h\nx-amz-security-token:" .. TOKEN .. "\nx-amz-server-side-encryption-customer-key:" .. SSEC
        .. "\nx-amz-server-side-encryption-customer-key-md5:MD5VALUE\n\nhost;x-amz-security-token\nUNSIGNED-PAYLOAD",
        "host:h\nx-amz-security-token:<redacted>\nx-amz-server-side-encryption-customer-key:<redacted>"
        .. "\nx-amz-server-side-encryption-customer-key-md5:MD5VALUE\n\nhost;x-amz-security-token\nUNSIGNED-PAYLOAD" },
      { "X-Oss-Security-Token: " .. TOKEN .. "\r\nx-amz-copy-source-server-side-encryption-customer-key: " .. SSEC,
        "X-Oss-Security-Token: <redacted>\r\nx-amz-copy-source-server-side-encryption-customer-key: <redacted>" },
      { "GetObject b/k: NoSuchKey (HTTP 404)", "GetObject b/k: NoSuchKey (HTTP 404)" },
    }
    for _, c in ipairs(cases) do
      assert.equals(c[2], log.redact(c[1]))
      no_secret("redact(" .. c[1] .. ")", log.redact(c[1]))
    end
    assert.equals(42, log.redact(42))
  end)
end)

describe("logging", function()
  it("is off unless a log function is given, and checks its options", function()
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b" }
    assert.is_nil(c.logger)
    local function fails(opts, pattern)
      opts.endpoint, opts.access_key, opts.secret_key = "http://127.0.0.1:9", "a", "b"
      local ok, err = pcall(objstore.new, opts)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    fails({ log = "yes" }, "objstore%.client%.new: argument #1 %(opts%.log%): must be a function, got string")
    fails({ log = print, log_level = "verbose" },
      "objstore%.client%.new: argument #1 %(opts%.log_level%): must be one of 'error', 'warn', 'info', 'debug', "
      .. "got 'verbose'")
    fails({ log = print, log_level = 3 }, "opts%.log_level%): must be a string, got number")
  end)

  it("logs outcomes at info, retries and fail-overs at warn, failures and a raising hook at error", function()
    local lines, fn = recorder()
    local t = canned{
      { nil, errors.new{ code = "ConnectionReset", message = "reset", retryable = true } },
      { status = 503, headers = { ["x-amz-request-id"] = "RID1" },
        body = "<Error><Code>SlowDown</Code><Message>slow</Message><RequestId>RID1</RequestId></Error>" },
      { status = 200, headers = { ["x-amz-request-id"] = "RID2" }, body = "" },
      { status = 404, headers = { ["x-amz-request-id"] = "RID3" }, body = "" },
    }
    local raised = 0
    local c = objstore.new{ endpoints = { "http://127.0.0.1:9", "http://127.0.0.1:10" }, access_key = "a",
      secret_key = "b", transport = t, log = fn, log_level = "info",
      hooks = { on_response = function() raised = raised + 1; error("hook boom") end },
      retry = { max_attempts = 3, base_delay = 0.001 } }
    assert(c:put_object("bkt", "some/key", "v"))
    local _, err = c:head_object("bkt", "missing")
    assert.equals("NoSuchKey", err.code)
    assert.equals(4, raised)
    -- The fail-over after the reset, the SlowDown retry, three outcomes and
    -- the 404; the hook that raised, once; the failure that reached the caller.
    local ok = find_line(lines,
      "^objstore: PutObject PUT bkt/some/key: 200 in %d+%.%d+ s %(attempt 3%) %[request RID2%]$", "info")
    assert.truthy(ok, table.concat(levels(lines), ","))
    assert.same({ op = "PutObject", method = "PUT", bucket = "bkt", key = "some/key", status = 200,
      request_id = "RID2", attempt = 3, endpoint = ok.fields.endpoint, latency = ok.fields.latency,
      bytes_in = 0, bytes_out = 0, event = "on_response" }, ok.fields)
    assert.is_number(ok.fields.latency)
    assert.truthy(find_line(lines, "^objstore: PutObject PUT bkt/some/key: ConnectionReset in ", "info"))
    assert.truthy(find_line(lines, "PutObject PUT bkt/some/key: failing over from http://127%.0%.0%.1:9 to "
      .. "http://127%.0%.0%.1:10 %(attempt 2%)", "warn"))
    local retry = find_line(lines, "PutObject PUT bkt/some/key: SlowDown, retrying in %d+%.%d+ s %(attempt 2 failed%) "
      .. "%[request RID1%]", "warn")
    assert.truthy(retry)
    assert.equals("SlowDown", retry.fields.code)
    assert.equals(503, retry.fields.status)
    local hook = find_line(lines, "^objstore: hook on_response raised: .*hook boom", "error")
    assert.truthy(hook)
    local n_hook = 0
    for _, l in ipairs(lines) do
      if l.fields.event == "on_hook_error" then n_hook = n_hook + 1 end
    end
    assert.equals(1, n_hook)
    local failed = find_line(lines, "^objstore: HeadObject bkt/missing: NoSuchKey %(HTTP 404%) .*%[request RID3%] "
      .. "%(after 1 attempt%)$", "error")
    assert.truthy(failed)
    assert.equals("NoSuchKey", failed.fields.code)
    assert.is_nil(find_line(lines, "sending", "debug")) -- not at info
  end)

  it("logs only what its level lets through, and survives a log function that raises", function()
    local lines, fn = recorder()
    local t = canned{ { status = 503, headers = {}, body = "" }, { status = 200, headers = {}, body = "" },
      { status = 403, headers = {}, body = "<Error><Code>AccessDenied</Code><Message>no</Message></Error>" } }
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
      log = fn, log_level = "warn", retry = { base_delay = 0.001 } }
    assert(c:delete_object("b", "k"))
    assert.is_nil(c:delete_object("b", "k"))
    assert.same({ "warn", "error" }, levels(lines))
    local raised = {}
    local c2 = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
      log = function(level) raised[#raised + 1] = { level = level, message = "" }; error("logger boom") end }
    local _, err = c2:delete_object("b", "k")
    assert.equals("AccessDenied", err.code)
    assert.same({ "error" }, levels(raised)) -- default level: warn
    for i = #lines, 1, -1 do lines[i] = nil end
    local c3 = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
      log = fn, log_level = "debug" }
    c3:delete_object("b", "k")
    assert.truthy(find_line(lines,
      "^objstore: DeleteObject DELETE b/k: sending to http://127%.0%.0%.1:9 %(attempt 1%)$", "debug"))
  end)

  it("logs a failure that never reached the server (no credentials)", function()
    local lines, fn = recorder()
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", transport = canned{ { status = 200, headers = {} } },
      credentials = function() return nil, "vault is sealed" end, log = fn, log_level = "error" }
    local _, err = c:list_buckets()
    assert.equals("NoCredentials", err.code)
    assert.truthy(find_line(lines, "^objstore: ListBuckets: NoCredentials %- vault is sealed$", "error"))
  end)

  it("has an OpenResty helper that loads anywhere and maps levels to ngx's", function()
    package.loaded["objstore.log"] = nil
    local fresh = require "objstore.log"
    assert.is_function(fresh.ngx)
    local ok, err = pcall(fresh.ngx)
    assert.is_false(ok)
    assert.matches("objstore%.log%.ngx: needs OpenResty's ngx", err)
    local got = {}
    _G.ngx = { ERR = 4, WARN = 5, INFO = 7, DEBUG = 8, log = function(lvl, msg) got[#got + 1] = { lvl, msg } end }
    local fn = fresh.ngx()
    _G.ngx = nil
    fn("error", "e")
    fn("warn", "w")
    fn("info", "i")
    fn("debug", "d")
    assert.same({ { 4, "e" }, { 5, "w" }, { 7, "i" }, { 8, "d" } }, got)
  end)
end)

describe("debug mode", function()
  it("logs both sides of a SignatureDoesNotMatch, redacted, and the error keeps no secret", function()
    -- An AWS-like answer: the server's canonical request (with the session
    -- token and the SSE-C key in it), its string to sign and their bytes.
    local server_cr = "PUT\n/bkt/k\n\nhost:127.0.0.1:9\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"
      .. "x-amz-date:20260101T000000Z\nx-amz-security-token:" .. TOKEN .. "\n"
      .. "x-amz-server-side-encryption-customer-key:" .. SSEC .. "\n\nhost;x-amz-content-sha256;x-amz-date;"
      .. "x-amz-security-token;x-amz-server-side-encryption-customer-key\nUNSIGNED-PAYLOAD"
    local server_sts = "AWS4-HMAC-SHA256\n20260101T000000Z\n20260101/us-east-1/s3/aws4_request\nabcdef"
    local body = "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not "
      .. "match the signature you provided.</Message><AWSAccessKeyId>AKMARK</AWSAccessKeyId><StringToSign>"
      .. server_sts .. "</StringToSign><SignatureProvided>deadbeef</SignatureProvided><StringToSignBytes>"
      .. hex(server_sts, " "):sub(1, -2) .. "</StringToSignBytes><CanonicalRequest>" .. server_cr
      .. "</CanonicalRequest><CanonicalRequestBytes>" .. hex(server_cr, " "):sub(1, -2)
      .. "</CanonicalRequestBytes><RequestId>RIDX</RequestId></Error>"
    local lines, fn = recorder()
    local events = {}
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", transport = canned{ { status = 403, headers = {},
      body = body } }, credentials = function()
        return { access_key = "AKMARK", secret_key = SECRET, session_token = TOKEN, expiration = os.time() + 3600 }
      end, log = fn, log_level = "debug", hooks = { on_error = function(e) events[#events + 1] = e end } }
    local _, err = c:put_object("bkt", "k", "v", { headers = SSEC_HEADERS })
    assert.equals("SignatureDoesNotMatch", err.code)
    local d = find_line(lines, "^objstore: PutObject PUT bkt/k: SignatureDoesNotMatch %[request RIDX%]\n", "debug")
    assert.truthy(d, "no debug dump")
    local m = d.message
    -- objstore's side: the canonical request really is there, redacted.
    assert.truthy(m:find("objstore's canonical request:\nPUT\n/bkt/k\n\ncontent-md5:", 1, true), m)
    assert.truthy(m:find("\nhost:127.0.0.1:9\n", 1, true), m)
    assert.truthy(m:find("\nx-amz-security-token:<redacted>\n", 1, true), m)
    assert.truthy(m:find("\nx-amz-server-side-encryption-customer-key:<redacted>\n", 1, true), m)
    assert.truthy(m:find("objstore's string to sign:\nAWS4-HMAC-SHA256\n", 1, true), m)
    -- The server's side, as its error gave it.
    assert.truthy(m:find("server's canonical request:\nPUT\n/bkt/k\n", 1, true), m)
    assert.truthy(m:find("server's string to sign:\n" .. server_sts, 1, true), m)
    assert.truthy(d.fields.canonical_request:find("x-amz-security-token:<redacted>", 1, true))
    assert.truthy(d.fields.server_canonical_request:find("x-amz-security-token:<redacted>", 1, true))
    -- The error keeps the server's strings, redacted, bytes included.
    assert.truthy(err.canonical_request:find("x-amz-server-side-encryption-customer-key:<redacted>", 1, true))
    assert.equals("<redacted>", err.signature_provided)
    assert.equals(server_sts, err.string_to_sign)
    no_secret("the error", err)
    no_secret("tostring(err)", tostring(err))
    no_secret("the events", events)
    assert.equals(1, #events)
    no_secret("the log", lines)
    no_secret("the client", c)

    -- Only the bytes forms (as AWS sends them for some requests): decoded
    -- in the log, and redacted in the error as bytes.
    for i = #lines, 1, -1 do lines[i] = nil end
    local bytes_only = "<Error><Code>SignatureDoesNotMatch</Code><StringToSignBytes>" .. hex(server_sts, " "):sub(1, -2)
      .. "</StringToSignBytes><CanonicalRequestBytes>" .. hex(server_cr, " "):sub(1, -2)
      .. "</CanonicalRequestBytes></Error>"
    local c2 = objstore.new{ endpoint = "http://127.0.0.1:9", transport = canned{ { status = 403, headers = {},
      body = bytes_only } }, access_key = "AKMARK", secret_key = SECRET, session_token = TOKEN, log = fn,
      log_level = "debug" }
    _, err = c2:put_object("bkt", "k", "v", { headers = SSEC_HEADERS })
    d = find_line(lines, "SignatureDoesNotMatch\n", "debug")
    assert.truthy(d)
    assert.truthy(d.message:find("server's canonical request:\nPUT\n/bkt/k\n", 1, true), d.message)
    assert.truthy(d.message:find("\nx-amz-security-token:<redacted>\nx-amz-server-side-encryption-customer-key:"
      .. "<redacted>\n\nhost;", 1, true), d.message)
    assert.truthy(d.message:find("server's string to sign:\n" .. server_sts, 1, true), d.message)
    assert.truthy(err.canonical_request_bytes:find(hex("x-amz-security-token:<redacted>", " "), 1, true))
    no_secret("the error", err)
    no_secret("the log", lines)
    -- What prepare returns is the request as it would be sent: token included.
    assert.equals(TOKEN, c2:prepare("list_buckets").headers["X-Amz-Security-Token"])
  end)

  it("is off below debug: nothing is kept, nothing dumped", function()
    local lines, fn = recorder()
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", log = fn,
      log_level = "info", transport = canned{ { status = 403, headers = {},
        body = "<Error><Code>SignatureDoesNotMatch</Code></Error>" } } }
    assert.is_nil(c:list_buckets())
    assert.is_nil(find_line(lines, "canonical request"))
    assert.truthy(find_line(lines, "SignatureDoesNotMatch", "error"))
  end)
end)

describe("secret hygiene against rgw #server", function()
  local rgw
  for _, s in ipairs(servers.list()) do
    if s.name == "rgw" then rgw = s end
  end

  local lines, events, errs, searched = {}, {}, {}, 0
  local registry = metrics.new()
  local function logfn(level, message, fields)
    lines[#lines + 1] = { level = level, message = message, fields = fields }
  end
  local function hook(name)
    return function(e) events[#events + 1] = { name = name, event = e } end
  end
  local hooks = { on_request = hook("on_request"), on_response = hook("on_response"), on_retry = hook("on_retry"),
    on_failover = hook("on_failover"), on_error = hook("on_error") }
  local clients = {}
  -- Real temporary credentials from rgw's STS (which refuses a token it
  -- did not issue): their secret and session token are needles too.
  local temp
  --- A client to rgw with those credentials, logging everything.
  local function client(extra)
    local o = { endpoint = rgw.sts_endpoint, access_key = false, secret_key = false, log = logfn,
      log_level = "debug", hooks = hooks,
      metrics = registry, retry = { max_attempts = 2, base_delay = 0.01 },
      credentials = function()
        return { access_key = temp.access_key, secret_key = temp.secret_key, session_token = temp.session_token,
          expiration = temp.expiration }
      end }
    for k, v in pairs(extra or {}) do o[k] = v end
    local c = servers.client(rgw, o)
    clients[#clients + 1] = c
    return c
  end
  local function check(label, v)
    searched = searched + no_secret(label, v)
  end
  local function failed(label, res, err)
    assert.is_nil(res, label .. " should fail")
    assert.truthy(errors.is(err), label)
    errs[#errs + 1] = err
    check(label .. ": error", err)
    check(label .. ": tostring(error)", tostring(err))
    return err
  end

  local bucket = servers.bucket_name("sec")
  local dir = servers.tmpdir()
  local c

  setup(function()
    assert(servers.sh("bash spec/support/rgw.sh sts-setup"))
    temp = assert(require("objstore.sts").assume_role{ endpoint = rgw.sts_endpoint, region = rgw.region,
      access_key = rgw.access_key, secret_key = rgw.secret_key, session_name = "secrets-spec", duration = 3600,
      role_arn = os.getenv("OBJSTORE_TEST_STS_ROLE_ARN") or "arn:aws:iam:::role/objstore-sts-test" })
    NEEDLES[#NEEDLES + 1] = { "STS secret key", temp.secret_key }
    NEEDLES[#NEEDLES + 1] = { "STS session token", temp.session_token }
    NEEDLES[#NEEDLES + 1] = { "STS session token (start)", temp.session_token:sub(1, 24) }
    c = client()
    assert(c:create_bucket(bucket))
  end)

  teardown(function()
    servers.cleanup(servers.client(rgw), bucket)
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  it("a workload with a session token and SSE-C keys", function()
    local r = assert(c:put_object(bucket, "sse/one", "secret bytes", { headers = SSEC_HEADERS }))
    check("put_object result", r)
    r = assert(c:get_object(bucket, "sse/one", { headers = SSEC_HEADERS }))
    assert.equals("secret bytes", r.body)
    check("get_object result", r)
    check("head_object result", assert(c:head_object(bucket, "sse/one", { headers = SSEC_HEADERS })))
    check("list_objects result", assert(c:list_objects(bucket)))
    failed("get without the key", c:get_object(bucket, "sse/one"))
    failed("get with a wrong key", c:get_object(bucket, "sse/one", { headers = {
      ["x-amz-server-side-encryption-customer-algorithm"] = "AES256",
      ["x-amz-server-side-encryption-customer-key"] = SSEC:sub(1, -3) .. "Q=",
      ["x-amz-server-side-encryption-customer-key-MD5"] = SSEC_HEADERS["x-amz-server-side-encryption-customer-key-MD5"],
    } }))
    failed("missing key", c:get_object(bucket, "no/such/key"))
    local url = c:presign("GET", bucket, "sse/one", { expires_in = 60 })
    assert.truthy(url:find("X-Amz-Security-Token=", 1, true)) -- a presigned URL carries its token: by design
    check("delete_objects result", assert(c:delete_objects(bucket, { "sse/one", "nothing" })))
  end)

  it("an upload_file stopped after its first part leaves a checkpoint without secrets, and resumes", function()
    local path = dir .. "/big"
    assert(servers.sh("head -c " .. (11 * 1024 * 1024) .. " /dev/urandom > " .. servers.q(path)))
    -- rgw answers a resumed Complete without an ETag: the HEAD that asks
    -- for it carries the SSE-C headers of the parts.
    local opts = { part_size = 5 * 1024 * 1024, concurrency = 1, checkpoint = true, headers = SSEC_HEADERS,
      part_headers = SSEC_HEADERS, on_part = function() return false end }
    local err = failed("stopped upload", c:upload_file(bucket, "big", path, opts))
    assert.equals("Aborted", err.code)
    local cp = servers.read_file(path .. ".objstore-cp")
    assert.truthy(cp, "no checkpoint file")
    assert.truthy(err.upload_id and cp:find(err.upload_id, 1, true), "no upload id in the checkpoint")
    check("checkpoint file", cp)
    opts.on_part = nil
    local res, rerr = c:upload_file(bucket, "big", path, opts)
    assert(res, tostring(rerr))
    assert.equals(5 * 1024 * 1024, res.resumed_from) -- part 1 was kept
    check("upload_file result", res)
    assert.is_nil(servers.read_file(path .. ".objstore-cp"))
  end)

  it("a wrong secret key: SignatureDoesNotMatch, with the debug dump", function()
    local before = #lines
    local bad = client{ credentials = function()
      return { access_key = temp.access_key, secret_key = SECRET, session_token = temp.session_token,
        expiration = os.time() + 3600 }
    end }
    local err = failed("wrong secret", bad:put_object(bucket, "x", "y", { headers = SSEC_HEADERS }))
    assert.equals("SignatureDoesNotMatch", err.code)
    local dumped
    for i = before + 1, #lines do
      local l = lines[i]
      if l.level == "debug" and l.message:find("SignatureDoesNotMatch", 1, true) then dumped = l end
    end
    assert.truthy(dumped, "no debug dump of the signature mismatch")
    local m = dumped.message
    assert.truthy(m:find("objstore's canonical request:\nPUT\n/" .. bucket .. "/x\n", 1, true), m)
    assert.truthy(m:find("\nx-amz-security-token:<redacted>\n", 1, true), m)
    assert.truthy(m:find("\nx-amz-server-side-encryption-customer-key:<redacted>\n", 1, true), m)
    assert.truthy(m:find("objstore's string to sign:\nAWS4-HMAC-SHA256\n", 1, true), m)
    -- radosgw sends neither its canonical request nor its string to sign.
    assert.truthy(m:find("server's canonical request:\n(not given)\nserver's string to sign:\n(not given)", 1, true), m)
    failed("wrong secret, signed payload", bad:list_buckets())
  end)

  it("a session token rgw did not issue: refused, and nothing leaks", function()
    local bad = client{ credentials = function()
      return { access_key = "AKMARKERUNKNOWN", secret_key = SECRET, session_token = TOKEN,
        expiration = os.time() + 3600 }
    end }
    -- rgw with STS enabled decodes every token: one it cannot is InvalidArgument
    local err = failed("unknown token", bad:list_buckets())
    assert.equals("InvalidArgument", err.code)
    failed("unknown token, again", bad:head_object(bucket, "k"))
  end)

  it("credentials.assume_role: renewals, a refused renewal and its report hold no secret", function()
    local reported = {}
    local role = os.getenv("OBJSTORE_TEST_STS_ROLE_ARN") or "arn:aws:iam:::role/objstore-sts-test"
    local p = require("objstore.credentials").assume_role{ endpoint = rgw.sts_endpoint, region = rgw.region,
      access_key = rgw.access_key, secret_key = rgw.secret_key, role_arn = role, session_name = "secrets",
      duration = 900 }
    local rc = client{ credentials = p }
    assert(rc:put_object(bucket, "sts/one", "v"))
    local held = p:current()
    NEEDLES[#NEEDLES + 1] = { "renewed STS secret key", held.secret_key }
    NEEDLES[#NEEDLES + 1] = { "renewed STS session token", held.session_token }
    check("provider", p)
    -- the renewal is refused (a wrong caller secret), the held keys still work
    p.fetch = function()
      return require("objstore.sts").assume_role{ endpoint = rgw.sts_endpoint, region = rgw.region,
        access_key = rgw.access_key, secret_key = SECRET, session_token = TOKEN, role_arn = role,
        session_name = "secrets" }
    end
    p.on_error = function(e) reported[#reported + 1] = e end
    -- the held session 100 s from its end, its renewal due (as 800 s after
    -- it was issued)
    p.creds.expiration, rc.creds.expiration = os.time() + 100, os.time() + 100
    p.creds.refresh_at = os.time()
    assert(rc:put_object(bucket, "sts/two", "v"))
    assert.equals(1, #reported)
    check("refused renewal", reported[1])
    check("refused renewal (text)", tostring(reported[1]))
    check("provider after the refusal", p)
  end)

  it("a replica that cannot be reached: the journal and the quorum error", function()
    local objstore_replicated = objstore.replicated
    local dead = client{ endpoint = "http://127.0.0.1:9", connect_timeout = 1, retry = { max_attempts = 1 },
      credentials = function()
        return { access_key = rgw.access_key, secret_key = SECRET, session_token = TOKEN }
      end }
    local jpath = dir .. "/journal.json"
    local r = assert(objstore_replicated{ clients = { c, dead }, write_quorum = 1, journal = jpath })
    check("replicated put result", assert(r:put_object(bucket, "rep-one", "v", { headers = SSEC_HEADERS })))
    local j = servers.read_file(jpath)
    assert.truthy(j and j:find("rep-one", 1, true), "no journal entry")
    check("journal file", j)
    check("replicated object", r)
    local r2 = assert(objstore_replicated{ clients = { dead, c }, write_quorum = 2, journal = dir .. "/j2.json" })
    local err = failed("quorum", r2:put_object(bucket, "rep-two", "v", { headers = SSEC_HEADERS }))
    assert.equals("QuorumNotReached", err.code)
    check("repair result", r:repair())
  end)

  it("misuse raises: messages and tracebacks", function()
    local raised = 0
    local function raises(label, f)
      local ok, tb = xpcall(f, debug.traceback)
      assert.is_false(ok, label .. " should raise")
      raised = raised + 1
      check(label .. ": traceback", tostring(tb))
      local ok2, msg = pcall(f)
      assert.is_false(ok2)
      check(label .. ": message", tostring(msg))
    end
    raises("unknown option", function()
      return objstore.new{ endpoint = rgw.endpoint, access_key = "a", secret_key = SECRET, session_token = TOKEN,
        bogus = SECRET }
    end)
    raises("token of a wrong type", function()
      return objstore.new{ endpoint = rgw.endpoint, access_key = "a", secret_key = SECRET, session_token = { TOKEN } }
    end)
    raises("secret key with a newline", function()
      return objstore.new{ endpoint = rgw.endpoint, access_key = "a", secret_key = SECRET .. "\n",
        session_token = TOKEN }:list_buckets()
    end)
    raises("token with a NUL", function()
      return objstore.new{ endpoint = rgw.endpoint, access_key = "a", secret_key = SECRET,
        session_token = TOKEN .. "\0" }:list_buckets()
    end)
    raises("signer secret with a CR", function()
      return signer.new{ access_key = "a", secret_key = SECRET .. "\r", session_token = TOKEN }
    end)
    raises("SSE-C header of a wrong type", function()
      return c:put_object(bucket, "k", "v", { headers = { ["x-amz-server-side-encryption-customer-key"] = { SSEC } } })
    end)
    raises("SSE-C header with a NUL", function()
      return c:put_object(bucket, "k", "v",
        { headers = { ["x-amz-server-side-encryption-customer-key"] = SSEC .. "\0" } })
    end)
    servers.write_file(dir .. "/small", "small")
    raises("part headers of a wrong type", function()
      return c:upload_file(bucket, "k", dir .. "/small", { part_headers = {
        ["x-amz-server-side-encryption-customer-key"] = { SSEC } } })
    end)
    raises("log level", function()
      return objstore.new{ endpoint = rgw.endpoint, access_key = "a", secret_key = SECRET, session_token = TOKEN,
        log = print, log_level = "verbose" }
    end)
    assert.equals(9, raised)
  end)

  it("everything the run produced: clients, events, log lines, metrics", function()
    -- Not vacuous: the run produced events, log lines at every level and
    -- metrics, and the debug log really holds a redacted canonical request.
    assert.is_true(#events > 20, "only " .. #events .. " events")
    local seen = {}
    for _, l in ipairs(lines) do seen[l.level] = true end
    assert.same({ error = true, info = true, debug = true }, { error = seen.error, info = seen.info,
      debug = seen.debug })
    assert.truthy(find_line(lines, "x%-amz%-security%-token:<redacted>", "debug"))
    local quoted = bucket:gsub("%-", "%%-")
    assert.truthy(find_line(lines, "^objstore: GetObject GET " .. quoted .. "/sse/one: 200 in ", "info"))
    assert.is_true(#errs >= 8)
    for i, cl in ipairs(clients) do
      check("tostring(client " .. i .. ")", tostring(cl))
      check("client " .. i, cl)
    end
    check("events", events)
    for _, l in ipairs(lines) do
      check("log line", l.message)
      check("log fields", l.fields)
    end
    local prom = registry:prometheus()
    assert.truthy(prom:find("objstore_requests_total{", 1, true))
    check("prometheus", prom)
    check("all errors", errs)
    assert.is_true(searched > 50000, "searched only " .. searched .. " bytes")
    for _, cl in ipairs(clients) do cl:close() end
  end)
end)

describe("the sse_customer_key option against rgw and Swift #server", function()
  -- The key given as an option (raw bytes) becomes headers inside objstore
  -- only: results, errors, log lines, events, checkpoints and misuse
  -- messages never hold it. (A client without a session token: this rgw
  -- runs STS and refuses an unknown one.)
  local lines, events, errs, searched = {}, {}, {}, 0
  local function hook(name)
    return function(e) events[#events + 1] = { name = name, event = e } end
  end
  local hooks = { on_request = hook("on_request"), on_response = hook("on_response"), on_retry = hook("on_retry"),
    on_error = hook("on_error") }
  local function client(srv)
    return servers.client(srv, { log = function(level, message, fields)
      lines[#lines + 1] = { level = level, message = message, fields = fields }
    end, log_level = "debug", hooks = hooks, retry = { max_attempts = 2, base_delay = 0.01 } })
  end
  local function check(label, v) searched = searched + no_secret(label, v) end
  local function failed(label, res, err)
    assert.is_nil(res, label .. " should fail")
    assert.truthy(errors.is(err), label)
    errs[#errs + 1] = err
    check(label .. ": error", err)
    check(label .. ": tostring(error)", tostring(err))
    return err
  end
  local dir = servers.tmpdir()
  local used = {}

  teardown(function()
    for _, u in ipairs(used) do servers.cleanup(u[1], u[2]) end
    servers.sh("rm -rf " .. servers.q(dir))
    for i, l in ipairs(lines) do
      check("log line " .. i, l.message)
      check("log fields " .. i, l.fields)
    end
    for i, e in ipairs(events) do check("event " .. i .. " (" .. e.name .. ")", e.event) end
    for _, u in ipairs(used) do check("client", u[1]) end
    assert(#lines > 0 and #events > 0 and #errs > 0 and searched > 0)
  end)

  for _, srv in ipairs(servers.list()) do
    it("on " .. srv.name .. ": single, multipart, stream, download, wrong key, checkpoint, misuse", function()
      local c = client(srv)
      local bucket = servers.bucket_name("h12b-sec")
      assert(c:create_bucket(bucket))
      used[#used + 1] = { c, bucket }
      local opts = { sse_customer_key = SSEC_RAW }
      if srv.name == "swift" then
        -- Swift ignores SSE-C: the error that says so holds no key.
        failed("swift SSE-C put", c:put_object(bucket, "k", "v", opts))
        return
      end
      check("put result", assert(c:put_object(bucket, "one", "secret bytes", opts)))
      check("get result", assert(c:get_object(bucket, "one", opts)))
      check("head result", assert(c:head_object(bucket, "one", opts)))
      failed("get without key", c:get_object(bucket, "one"))
      failed("get with a wrong key", c:get_object(bucket, "one", { sse_customer_key = SSEC_RAW:sub(1, 31) .. "!" }))
      failed("copy of an SSE-C source", c:copy_object(bucket, "two", { bucket = bucket, key = "one" },
        { copy_source_sse_customer_key = SSEC_RAW, sse_customer_key = SSEC_RAW }))
      local path = dir .. "/big"
      assert(servers.sh("head -c " .. (11 * 1024 * 1024) .. " /dev/urandom > " .. servers.q(path)))
      local uopts = { part_size = 5 * 1024 * 1024, concurrency = 1, checkpoint = true, sse_customer_key = SSEC_RAW,
        on_part = function() return false end }
      failed("stopped upload", c:upload_file(bucket, "big", path, uopts))
      check("checkpoint file", assert(servers.read_file(path .. ".objstore-cp")))
      uopts.on_part = nil
      check("upload_file result", assert(c:upload_file(bucket, "big", path, uopts)))
      local f = assert(io.open(path, "rb"))
      check("upload_stream result", assert(c:upload_stream(bucket, "stream", f,
        { part_size = 5 * 1024 * 1024, sse_customer_key = SSEC_RAW })))
      f:close()
      check("download_file result", assert(c:download_file(bucket, "big", dir .. "/back",
        { sse_customer_key = SSEC_RAW, part_size = 5 * 1024 * 1024 })))
      failed("download with a wrong key", c:download_file(bucket, "big", dir .. "/back2",
        { sse_customer_key = ("k"):rep(32) }))
      for label, bad in pairs{ ["a 31-byte key"] = SSEC_RAW:sub(1, 31), ["a base64 key"] = SSEC,
        ["a key in a table"] = { SSEC } } do
        local ok, tb = xpcall(function() return c:put_object(bucket, "k", "v", { sse_customer_key = bad }) end,
          debug.traceback)
        assert.is_false(ok, label)
        check(label .. ": traceback", tostring(tb))
      end
      check("presigned URL", c:presign("GET", bucket, "one", opts))
    end)
  end
end)
