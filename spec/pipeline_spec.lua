-- The request pipeline: request records, the one attempt step and retry
-- loop, and what it does for every part of a transfer (Retry-After,
-- ExpiredToken refresh, fail-over, per-endpoint signing), against the real
-- rgw (through the fault proxy where a fault is needed).
local objstore = require "objstore"
local request = require "objstore.engine.request"
local pipeline = require "objstore.engine.pipeline"
local errors = require "objstore.errors"
local transport = require "objstore.transport"
local checksum = require "objstore.checksum"
local servers = require "servers"
local lfs = require "lfs"

local MiB = 1024 * 1024

local function rgw_server()
  for _, s in ipairs(servers.list()) do
    if s.name == "rgw" then return s end
  end
  error("rgw is required")
end

--- A transport over the curl one that records every request it sends
-- (and can refuse some without sending them, as a dead network would).
local function recording(refuse)
  local curl = assert(require("objstore.transport.curl").new{ connect_timeout = 2 })
  local seen = {}
  local caps = {}
  for k, v in pairs(curl.capabilities) do caps[k] = v end
  caps.run = false -- one request at a time, each seen here
  local t = { capabilities = caps, seen = seen }
  function t.request(_, req)
    seen[#seen + 1] = req
    if refuse and refuse(req, #seen) then return nil, transport.error("ConnectionReset", "refused") end
    return curl:request(req)
  end
  function t.sleep(_, s) return curl:sleep(s) end
  function t.close() return curl:close() end
  return t
end

local function scope(req)
  local auth = req.headers.Authorization or req.headers.authorization or ""
  return auth:match("Credential=[^/]+/%d+/([^/]+)/")
end

local function make_file(dir, name, size)
  local path = dir .. "/" .. name
  assert(servers.sh(string.format("head -c %d /dev/urandom > %s", size, servers.q(path))))
  return path
end

describe("request records", function()
  it("name the bad field", function()
    local function fails(t, pattern)
      local ok, err = pcall(request.new, t)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    fails({ method = "GET" }, "objstore%.engine%.request%.new: argument #1 %(req%.op%): is required")
    fails({ op = "X", method = "get" }, "%(req%.method%): must be an upper%-case HTTP method")
    fails({ op = "X", method = "GET", bucket = "" }, "%(req%.bucket%)")
    fails({ op = "X", method = "GET", bucket = "b", key = "a\0b" }, "%(req%.key%): contains a NUL byte")
    fails({ op = "X", method = "PUT", bucket = "b", key = "k", body = 42 }, "%(req%.body%)")
    fails({ op = "X", method = "PUT", bucket = "b", key = "k", body = { offset = 1 } }, "%(req%.body%.file%)")
    fails({ op = "X", method = "GET", bucket = "b", key = "k", sink = "nowhere" }, "%(req%.sink%)")
    fails({ op = "X", method = "GET", headers = { ["X-A"] = {} } }, "%(req%.headers%.X%-A%)")
    fails({ op = "X", method = "GET", colour = "red" }, "%(req%.colour%): is not a request field")
    fails({ op = "X", method = "HEAD", bucket = "b", key = "k", body = "x" }, "cannot have a body")
  end)

  it("accept every field of the documented shape", function()
    local req = request.new{ op = "X", method = "PUT", bucket = "b", key = "k", query = { uploads = true },
      headers = { ["X-A"] = 1 }, body = { file = "/etc/hostname", offset = 0, length = 1 }, body_length = 1,
      sink = { file = "/tmp/x", offset = 4 }, hashes = { "md5" }, body_hashes = { "crc32c" }, timeout = 5,
      ok_status = { [304] = true }, context = { n = 1 }, copy_source = { bucket = "s", key = "k2" } }
    assert.is_true(request.is(req))
    assert.is_true(req:rewindable())
    local reader = request.new{ op = "X", method = "PUT", bucket = "b", key = "k", body = function() end }
    assert.is_false(reader:rewindable())
  end)

  it("retry a reader body the transport never called, and only that one", function()
    -- a fake transport: the first attempt fails (reading `touch` pieces of
    -- the body first), the second one reads the body whole
    local function client_with(touch)
      local attempts = 0
      return objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
        retry = { max_attempts = 3, base_delay = 0.001, max_delay = 0.002 },
        transport = { request = function(_, r)
          attempts = attempts + 1
          if attempts == 1 then
            for _ = 1, touch do r.body() end
            return nil, errors.new{ code = touch == 0 and "ConnectFailed" or "ConnectionReset", retryable = true,
              message = "failed" }
          end
          local got = {}
          while true do
            local piece = r.body()
            if piece == nil then break end
            got[#got + 1] = piece
          end
          return { status = 200, headers = { etag = '"' .. table.concat(got) .. '"' }, body = "" }
        end } }, function() return attempts end
    end
    local function reader()
      local pieces = { "ab", "cd" }
      return function() return table.remove(pieces, 1) end
    end
    local c, attempts = client_with(0)
    local res = assert(c:put_object("b", "k", reader(), { length = 4, content_md5 = false }))
    assert.equals(2, attempts())
    assert.equals('"abcd"', res.etag)
    c, attempts = client_with(1)
    local _, err = c:put_object("b", "k", reader(), { length = 4, content_md5 = false })
    assert.equals("ConnectionReset", err.code)
    assert.equals(1, attempts())
  end)

  it("make a local failure a completed request that is never sent", function()
    local sent = 0
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
      transport = { request = function() sent = sent + 1 end } }
    local res, err = c:send(request.failed("UploadPart", errors.failure(nil, "LocalFileError", "gone")))
    assert.is_nil(res)
    assert.equals("LocalFileError", err.code)
    assert.equals("UploadPart", err.op)
    assert.equals(0, sent)
  end)
end)

describe("operations", function()
  it("are one table, and objstore.client alone has a method for each", function()
    local Client = require "objstore.client"
    local ops = require "objstore.operations"
    local n = 0
    for name, entry in pairs(ops) do
      n = n + 1
      assert.is_function(Client[name], name)
      assert.is_true(entry.build ~= nil or entry.call ~= nil, name)
    end
    assert.is_true(n >= 35)
    for _, name in ipairs{ "put_object", "get_object", "upload_file", "download_file", "copy_large" } do
      assert.is_table(ops[name], name)
    end
  end)

  it("build request records without sending, and prepare signs them", function()
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
      transport = { request = function() error("nothing may be sent") end } }
    local req = c:build_request("copy_object", "dst", "k", { bucket = "src", key = "a b" })
    assert.is_true(request.is(req))
    assert.same({ bucket = "src", key = "a b" }, req.copy_source)
    local signed = c:prepare("copy_object", "dst", "k", { bucket = "src", key = "a b" })
    assert.equals("/src/a%20b", signed.headers["x-amz-copy-source"])
    assert.matches("^AWS4%-HMAC%-SHA256 Credential=a/", signed.headers.Authorization)
    local ok, err = pcall(c.prepare, c, "upload_file", "b", "k", "/etc/hostname")
    assert.is_false(ok)
    assert.matches("objstore%.client%.prepare: argument #1 %(name%): 'upload_file' is not an operation of one request",
      err)
  end)

  it("takes a copy's destination first and its source as a table, and refuses the old source-first call", function()
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
      transport = { request = function() error("nothing may be sent") end } }
    local req = c:build_request("upload_part_copy", "dst", "k", "id", 2,
      { bucket = "src", key = "s", version_id = "v1" }, { copy_source_if_match = '"e"' })
    assert.same({ bucket = "src", key = "s", version_id = "v1" }, req.copy_source)
    assert.equals("dst", req.bucket)
    assert.equals('"e"', req.headers["x-amz-copy-source-if-match"])
    -- Written for the old order (source bucket, source key, destination
    -- bucket, destination key) the call raises: no copy the wrong way round.
    for _, call in ipairs{
      function() c:copy_object("src", "s", "dst", "k") end,
      function() c:copy_large("src", "s", "dst", "k") end,
      function() c:upload_part_copy("dst", "k", "id", 1, "src", "s") end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("%(source%): must be a table { bucket =, key =, version_id = }, got string", err)
    end
    for _, bad in ipairs{
      { { bucket = "src", key = "s", versionId = "v" }, "%(source%.versionId%): is not an option" },
      { { bucket = "src", key = "s", version_id = "" }, "%(source%.version_id%): must be a non%-empty string" },
      { { bucket = "src" }, "%(source%.key%)" },
      { { bucket = "src", key = "s" }, "%(opts%.source_version_id%): is not an option", { source_version_id = "v" } },
      { { bucket = "src", key = "s" }, "%(opts%.if_match%): is not an option", { if_match = '"e"' } },
    } do
      local ok, err = pcall(c.copy_object, c, "dst", "k", bad[1], bad[3])
      assert.is_false(ok)
      assert.matches(bad[2], err)
    end
  end)
end)

describe("the attempt step", function()
  it("reads Retry-After as seconds and as an HTTP date", function()
    assert.equals(3, pipeline.retry_after({ ["retry-after"] = "3" }, 0))
    local date = "Tue, 01 Dec 2026 10:00:00 GMT"
    assert.equals(7, pipeline.retry_after({ ["retry-after"] = "Tue, 01 Dec 2026 10:00:07 GMT", date = date }, 0))
    assert.equals(0, pipeline.retry_after({ ["retry-after"] = "Tue, 01 Dec 2026 09:59:00 GMT", date = date }, 0))
    assert.is_nil(pipeline.retry_after({ ["retry-after"] = "soon" }, 0))
    assert.is_nil(pipeline.retry_after({}, 0))
  end)

  it("waits with the transport's sleeper and honours Retry-After", function()
    local slept, calls = {}, 0
    local t = { capabilities = {} }
    function t.request()
      calls = calls + 1
      if calls == 1 then
        return { status = 503, headers = { ["retry-after"] = "2" },
          body = "<Error><Code>SlowDown</Code><Message>m</Message></Error>" }
      end
      return { status = 200, headers = {}, body = "" }
    end
    function t.sleep(_, s) slept[#slept + 1] = s end
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
      retry = { base_delay = 0.001 } }
    assert(c:put_object("b", "k", "x"))
    assert.equals(2, calls)
    assert.equals(1, #slept)
    assert.near(2, slept[1], 0.01)
  end)

  it("holds attempts back for the adaptive limiter with the transport's sleeper, within the concurrency", function()
    local slept, calls = 0, 0
    local t = { capabilities = {} }
    function t.request()
      calls = calls + 1
      if calls <= 3 then
        return { status = 503, headers = {}, body = "<Error><Code>SlowDown</Code><Message>m</Message></Error>" }
      end
      return { status = 200, headers = {}, body = "" }
    end
    function t.sleep(_, s) slept = slept + s end
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
      retry = { mode = "adaptive", max_attempts = 5, base_delay = 0.001 } }
    local pulled, finished, most_ahead = 0, 0, 0
    assert(c:run{ concurrency = 2,
      next = function()
        if pulled == 20 then return nil end
        pulled = pulled + 1
        if pulled - finished > most_ahead then most_ahead = pulled - finished end
        return c:build_request("put_object", "b", "k" .. pulled, "x")
      end,
      done = function(_, res, err)
        assert(res, err)
        finished = finished + 1
        return true
      end })
    assert.equals(20, finished)
    assert.equals(23, calls)
    assert.is_true(slept > 0) -- the limiter's delays, waited by the transport
    -- requests waiting for their retry count against the concurrency
    assert.is_true(most_ahead <= 2, "pulled " .. most_ahead .. " requests ahead")
  end)

  it("raises events from one place and survives a hook that raises", function()
    local events, hook_errors = {}, 0
    local calls = 0
    local t = { request = function()
      calls = calls + 1
      if calls == 1 then return nil, errors.new{ code = "ConnectionReset", message = "x", retryable = true } end
      return { status = 200, headers = { ["x-amz-request-id"] = "RID" }, body = "" }
    end, sleep = function() end }
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
      hooks = {
        on_request = function(e) events[#events + 1] = "request " .. e.op .. " " .. e.attempt; error("boom") end,
        on_response = function(e)
          events[#events + 1] = "response " .. tostring(e.status) .. " " .. tostring(e.request_id)
        end,
        on_retry = function(e) events[#events + 1] = "retry " .. e.reason end,
        on_hook_error = function() hook_errors = hook_errors + 1 end,
      } }
    assert(c:delete_object("b", "k"))
    assert.same({ "request DeleteObject 1", "response nil nil", "retry ConnectionReset", "request DeleteObject 2",
      "response 200 RID" }, events)
    assert.equals(1, hook_errors) -- reported once, never breaking the request
  end)

  it("reports a bucket in another region clearly", function()
    local t = { request = function()
      return { status = 400, headers = {}, body = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region "
        .. "'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>" }
    end }
    local c = objstore.new{ endpoint = "https://s3.amazonaws.com", access_key = "a", secret_key = "b", transport = t }
    local _, err = c:head_object("b", "k")
    assert.equals("AuthorizationHeaderMalformed", err.code)
    assert.equals("eu-west-1", err.region)
    assert.is_false(err.retryable)
    assert.matches("is in region 'eu%-west%-1' but endpoint https://s3%.amazonaws%.com is configured for region "
      .. "'us%-east%-1'", err.message)
  end)

  it("computes the digests a transport cannot", function()
    local curl = assert(require("objstore.transport.curl").new{})
    local body = "hello digests"
    local t = { request = function(_, req)
      assert.is_nil(req.hashes) -- taken over by the layer above
      return { status = 200, headers = {}, body = body, bytes = #body }
    end }
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t }
    local res = assert(c:get_object("b", "k", { hashes = { "md5", "crc32c" } }))
    assert.equals(checksum.md5(body), res.hashes.md5)
    assert.equals(checksum.digest("crc32c", body), res.hashes.crc32c)
    curl:close()
  end)
end)

describe("OSS multipart (the response shapes OSS documents)", function()
  -- OSS answers part ETags in upper-case hex; objstore computes lower-case
  -- MD5s. Replayed here: the XML of the OSS samples in the vectors, with
  -- the ETags OSS would give for the bytes sent.
  local function read(p) return assert(servers.read_file("spec/fixtures/vectors/xml/oss/" .. p)) end

  it("completes an upload whose part ETags are upper case", function()
    local dir = servers.tmpdir()
    local size = 250 * 1024
    local path = make_file(dir, "oss-src", size)
    local data = assert(servers.read_file(path))
    local md5s, complete_body = {}, nil
    local t = { capabilities = {} }
    function t.request(_, req)
      if req.url:find("?uploads", 1, true) then
        return { status = 200, headers = {}, body = read("initiate-multipart-upload.xml") }
      elseif req.method == "PUT" then
        local n = tonumber(req.url:match("partNumber=(%d+)"))
        -- this transport declares no capability: the file range comes as a reader
        assert.is_function(req.body)
        local chunks = {}
        for chunk in req.body do chunks[#chunks + 1] = chunk end
        local part = table.concat(chunks)
        assert.equals(req.body_length, #part)
        assert.equals(data:sub((n - 1) * 100 * 1024 + 1, n * 100 * 1024), part)
        md5s[n] = checksum.md5(part)
        return { status = 200, headers = { etag = '"' .. checksum.tohex(md5s[n]):upper() .. '"' }, body = "",
          sent = #part }
      elseif req.method == "POST" then
        complete_body = req.body
        local etag = checksum.multipart_etag(md5s):upper()
        return { status = 200, headers = {}, body = '<?xml version="1.0" encoding="UTF-8"?>\n'
          .. "<CompleteMultipartUploadResult><Bucket>oss-example</Bucket><Key>k</Key><ETag>\"" .. etag
          .. "\"</ETag></CompleteMultipartUploadResult>" }
      end
      error("unexpected " .. req.method .. " " .. req.url)
    end
    local c = objstore.new{ provider = "oss", region = "cn-hangzhou", access_key = "a", secret_key = "b",
      transport = t }
    local up = assert(c:upload_file("oss-example", "multipart.data", path, { part_size = 100 * 1024 }))
    assert.equals(3, up.parts)
    assert.is_true(up.verified)
    -- the part ETags go back as OSS gave them
    assert.truthy(complete_body:find(checksum.tohex(md5s[1]):upper(), 1, true))
    os.remove(path)
    os.remove(dir)
  end)
end)

describe("pipeline on rgw #server", function()
  local srv, c, bucket, dir
  setup(function()
    srv = rgw_server()
    c = servers.client(srv)
    bucket = servers.bucket_name("pipe")
    assert(c:create_bucket(bucket))
    dir = servers.tmpdir()
  end)
  teardown(function()
    servers.cleanup(c, bucket)
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  it("signs each endpoint for its own region", function()
    local t = recording(function(req) return req.url:find("127.0.0.1:9/", 1, true) ~= nil end)
    local fc = servers.client(srv, { endpoint = false, transport = t, endpoints = {
      { url = "http://127.0.0.1:9", region = "eu-west-1" }, { url = srv.endpoint, region = srv.region } } })
    assert(fc:put_object(bucket, "regions", "x"))
    assert.equals(2, #t.seen)
    assert.equals("eu-west-1", scope(t.seen[1]))
    assert.equals(srv.region, scope(t.seen[2]))
  end)

  it("presigns for the healthy endpoint", function()
    local fc = servers.client(srv, { endpoint = false, connect_timeout = 1, failover = { threshold = 1, cooldown = 60 },
      endpoints = { "http://127.0.0.1:9", srv.endpoint } })
    assert.equals(1, assert(fc:presign("GET", bucket, "k")):find("http://127.0.0.1:9/", 1, true))
    assert(fc:put_object(bucket, "presigned", "p")) -- the first endpoint fails once: its breaker opens
    local url = assert(fc:presign("GET", bucket, "presigned"))
    assert.equals(1, url:find(srv.endpoint .. "/", 1, true))
    local r = assert(require("objstore.transport.curl").new{}):request{ url = url }
    assert.equals(200, r.status)
    assert.equals("p", r.body)
  end)

  it("maps a bucket to its name on another endpoint", function()
    local t = recording(function(req) return req.url:find("127.0.0.1:9/", 1, true) ~= nil end)
    local fc = servers.client(srv, { endpoint = false, transport = t, endpoints = {
      { url = "http://127.0.0.1:9", region = "eu-west-1" }, { url = srv.endpoint, bucket = { primary = bucket } } } })
    assert(fc:put_object("primary", "mapped", "m"))
    assert.matches("/primary/mapped$", t.seen[1].url)
    assert.equals(srv.endpoint .. "/" .. bucket .. "/mapped", t.seen[2].url)
    assert.equals("m", assert(c:get_object(bucket, "mapped")).body)
  end)

  it("returns LocalFileError when the file shrinks during upload_file", function()
    local path = make_file(dir, "shrinks", 3 * 5 * MiB)
    local res, err = c:upload_file(bucket, "shrinks", path, { part_size = 5 * MiB, concurrency = 1,
      on_part = function() assert(servers.sh("truncate -s " .. 6 * MiB .. " " .. servers.q(path))) end })
    assert.is_nil(res)
    assert.equals("LocalFileError", err.code)
    assert.equals("UploadFile", err.op)
    assert.equals(0, #assert(c:list_incomplete_uploads(bucket, "shrinks")))
  end)

  it("returns every deleted key when a later delete batch fails", function()
    local keys = {}
    for i = 1, 1005 do keys[i] = "del/" .. i end
    for i = 1, 3 do assert(c:put_object(bucket, keys[i], "x")) end
    local posts = 0
    local t = recording(function(req)
      if req.method == "POST" then posts = posts + 1 end
      return req.method == "POST" and posts == 2
    end)
    local dc = servers.client(srv, { transport = t, retry = { max_attempts = 1 } })
    local none, err = dc:delete_objects(bucket, keys)
    assert.is_nil(none) -- the partial-failure rule: nil, err, what was done in err.result
    assert.equals("ConnectionReset", err.code) -- every failure had this one code
    assert.is_true(err.retryable)
    local out = err.result
    assert.equals(1000, #out.deleted) -- S3 reports keys that were not there as deleted too
    assert.equals(5, #out.errors)
    assert.equals("del/1001", out.errors[1].key)
    assert.equals("ConnectionReset", out.errors[1].code)
    assert.is_false(c:object_exists(bucket, "del/1"))
  end)

  it("sends per-part headers on every part", function()
    local t = recording()
    local pc = servers.client(srv, { transport = t })
    local path = make_file(dir, "part-headers", 2 * 5 * MiB + 10)
    assert(pc:upload_file(bucket, "part-headers", path, { part_size = 5 * MiB,
      part_headers = function(n) return { ["x-amz-meta-part"] = tostring(n) } end }))
    local parts = 0
    for _, req in ipairs(t.seen) do
      local n = req.url:match("partNumber=(%d+)")
      if n then
        parts = parts + 1
        assert.equals(n, req.headers["x-amz-meta-part"])
      end
    end
    assert.equals(3, parts)
  end)
end)

describe("pipeline through the fault proxy #server #slow", function()
  local faults = require "faults"
  local srv, fp, c, bucket, dir
  setup(function()
    srv = rgw_server()
    fp = assert(faults.start(srv.endpoint))
    c = servers.client(srv)
    bucket = servers.bucket_name("pipef")
    assert(c:create_bucket(bucket))
    dir = servers.tmpdir()
  end)
  teardown(function()
    if fp then
      fp:clear()
      fp:stop()
    end
    servers.cleanup(c, bucket)
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  local function events_client(extra)
    local ev = { retries = {}, failovers = {}, requests = {} }
    local opts = { endpoint = fp.endpoint, hooks = {
      on_retry = function(e) ev.retries[#ev.retries + 1] = e end,
      on_failover = function(e) ev.failovers[#ev.failovers + 1] = e end,
      on_request = function(e) ev.requests[#ev.requests + 1] = e end,
    } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return servers.client(srv, opts), ev
  end

  it("honours Retry-After (seconds and HTTP date) on throttled parts", function()
    for _, form in ipairs{ "seconds", "date" } do
      local after = form == "seconds" and "2" or os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 3)
      assert(fp:set{ retry_after = after, slowdown = { rate = 1, methods = { "PUT" }, match = "partNumber", max = 2 } })
      assert(fp:reset_stats())
      local tc, ev = events_client{ retry = { base_delay = 0.001, max_delay = 10 } }
      local path = make_file(dir, "throttled-" .. form, 2 * 5 * MiB)
      local up = assert(tc:upload_file(bucket, "throttled-" .. form, path, { part_size = 5 * MiB }))
      assert.equals(2, up.parts)
      assert.equals(2, #ev.retries)
      for _, r in ipairs(ev.retries) do
        assert.equals("SlowDown", r.reason)
        assert.equals("UploadPart", r.op)
        -- the backoff alone would be about a millisecond
        assert.is_true(r.delay >= 1 and r.delay <= 4, form .. ": delay " .. r.delay)
      end
      assert.equals(2, assert(fp:stats()).faults.slowdown)
    end
  end)

  it("refreshes expired credentials in the middle of a multipart upload", function()
    assert(fp:set{ expired = { rate = 1, methods = { "PUT" }, match = "partNumber=2", max = 1 } })
    assert(fp:reset_stats())
    local fetched = 0
    local tc, ev = events_client{ access_key = false, secret_key = false, credentials = function()
      fetched = fetched + 1
      return { access_key = srv.access_key, secret_key = srv.secret_key, expiration = os.time() + 3600 }
    end, retry = { base_delay = 0.001 } }
    local path = make_file(dir, "expired", 3 * 5 * MiB)
    local up = assert(tc:upload_file(bucket, "expired", path, { part_size = 5 * MiB, concurrency = 2 }))
    assert.equals(3, up.parts)
    assert.equals(1, assert(fp:stats()).faults.expired)
    assert.equals(1, #ev.retries)
    assert.equals("ExpiredToken", ev.retries[1].reason)
    assert.equals(2, fetched) -- the first credentials, then one refresh
  end)

  it("fails a part over to another endpoint at once", function()
    assert(fp:set{ internal = { rate = 1, methods = { "PUT" }, match = "partNumber=1&", max = 1 } })
    assert(fp:reset_stats())
    local tc, ev = events_client{ endpoint = false, endpoints = { fp.endpoint, srv.endpoint },
      retry = { max_attempts = 1 } }
    local path = make_file(dir, "failover", 2 * 5 * MiB)
    local up = assert(tc:upload_file(bucket, "failover", path, { part_size = 5 * MiB, concurrency = 1 }))
    assert.equals(2, up.parts)
    assert.equals(1, #ev.failovers)
    assert.equals(fp.endpoint, ev.failovers[1].from)
    assert.equals(srv.endpoint, ev.failovers[1].to)
    local retried
    for _, r in ipairs(ev.requests) do
      if r.op == "UploadPart" and r.attempt == 2 then retried = r end
    end
    assert.equals(srv.endpoint, assert(retried, "the part was sent again").endpoint)
    local back = dir .. "/failover.back"
    assert(c:download_file(bucket, "failover", back))
    assert.equals(lfs.attributes(path, "size"), lfs.attributes(back, "size"))
  end)
end)
