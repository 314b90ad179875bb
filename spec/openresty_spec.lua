-- The OpenResty example (examples/openresty: nginx.conf, handlers/*.lua,
-- run.sh) driven with real curl requests inside Debian's nginx with two
-- workers, against radosgw: every location, authentication, Range, a
-- multipart PUT, chunked and HTTP/2 bodies, an aborted upload leaving
-- nothing behind, bad input, credentials fetched once for all workers
-- from an endpoint that counts its calls (spec/support/creds_endpoint.py),
-- /metrics of both workers parsed by the Prometheus client library
-- (spec/support/prom_parse.py), and a store that is down, stalls or cuts
-- a download short (spec/support/faultproxy.sh in front of rgw).
-- Tagged #server (eval "$(bash spec/support/rgw.sh env)").
-- Ports: from OBJSTORE_SPEC_NGX_PORT (default 18095) up: that one the
-- credentials endpoint, +1 (HTTP/1.1) and +2 (HTTP/2) the example, +3 a
-- second instance for faults and missing credentials, +4 the fault proxy,
-- +5 an instance without a token and with a metrics token (FAULTPROXY_PORT
-- and FAULTPROXY_DIR, when set, place the fault proxy). Files under
-- OBJSTORE_SPEC_NGX_DIR (default /tmp/objstore-openresty-spec) and names
-- made from it: two runs at once need both set apart.
local objstore = require "objstore"

local BASE_PORT = tonumber(os.getenv("OBJSTORE_SPEC_NGX_PORT") or "18095")
local CREDS_PORT, PORT, H2PORT, BAD_PORT, PROXY_PORT = BASE_PORT, BASE_PORT + 1, BASE_PORT + 2, BASE_PORT + 3,
  tonumber(os.getenv("FAULTPROXY_PORT") or "") or BASE_PORT + 4
local CHECK_PORT = BASE_PORT + 5
local BUCKET = os.getenv("OBJSTORE_SPEC_NGX_BUCKET") or "h13b-ngx-demo"
local TOKEN = "spec-token-" .. tostring(os.time())
local DIR = os.getenv("OBJSTORE_SPEC_NGX_DIR") or "/tmp/objstore-openresty-spec"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  if type(ok) == "number" then code = ok; ok = code == 0 end -- Lua 5.1
  return ok == true, out, code
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- curl with a bounded time: status, body, curl exit code.
local function curl(args)
  local out_file = os.tmpname()
  -- The exit code printed by the shell: LuaJIT's popen close() has none.
  local _, out = sh("curl -sS --max-time 60 -o " .. out_file .. " -w '%{http_code}' " .. args .. "; printf ' rc=%d' $?")
  local code = tonumber(out:match(" rc=(%d+)$"))
  out = out:gsub(" rc=%d+$", "")
  local f = io.open(out_file, "rb")
  local body = f and f:read("*a") or ""
  if f then f:close() end
  os.remove(out_file)
  return tonumber(out:match("(%d%d%d)$")), body, code or 0
end

local function auth(token) return "-H " .. q("Authorization: Bearer " .. (token or TOKEN)) .. " " end
local function url(path, port) return q("http://127.0.0.1:" .. (port or PORT) .. path) end

-- token: the example's OBJSTORE_DEMO_TOKEN (default TOKEN; "" sets it empty).
local function start(env, port, dir, workers, h2, token)
  -- `env` last: it may name another bucket
  local cmd = string.format("OPENRESTY_DEMO_PORT=%d OPENRESTY_DEMO_H2_PORT=%d OPENRESTY_DEMO_DIR=%s "
    .. "OPENRESTY_DEMO_WORKERS=%d OBJSTORE_DEMO_TOKEN=%s OBJSTORE_DEMO_BUCKET=%s "
    .. "OBJSTORE_DEMO_THRESHOLD=6000000 OBJSTORE_DEMO_PART_SIZE=5242880 %s "
    .. "timeout 60 bash examples/openresty/run.sh start",
    port, h2 or 0, dir, workers, q(token or TOKEN), BUCKET, env)
  local ok, out = sh(cmd)
  assert(ok, "cannot start the example: " .. out)
end

local function stop(dir) sh("OPENRESTY_DEMO_DIR=" .. dir .. " timeout 30 bash examples/openresty/run.sh stop") end

local function error_log(dir)
  local f = io.open(dir .. "/error.log", "rb")
  local s = f and f:read("*a") or ""
  if f then f:close() end
  return s
end

local function no_crash(dir)
  local log = error_log(dir)
  assert.is_nil(log:match("[^\n]*exited on signal[^\n]*"), "a worker crashed")
  assert.is_nil(log:match("[^\n]*%[alert%][^\n]*"), "nginx alert")
end

local function file_of(size, path)
  assert(sh(string.format("head -c %d /dev/urandom > %s", size, path)))
  return path
end

local function md5_of(path) return (select(2, sh("md5sum " .. path)):match("^(%x+)")) end

local rgw = function()
  return objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"), region = "us-east-1", addressing = "path",
    access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY") }
end

describe("OpenResty example #server #nginx", function()
  local creds_job, tmp
  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
    local ok, out = sh("make --no-print-directory -s build LUA=luajit")
    assert(ok, out)
    tmp = os.tmpname()
    os.remove(tmp)
    assert(sh("mkdir -p " .. tmp))
    -- The credentials endpoint: 24-second credentials (a refresh is due
    -- half-way), gone by itself after 10 minutes.
    local p = io.popen("/usr/bin/python3 spec/support/creds_endpoint.py " .. CREDS_PORT
      .. " 24 600 >/dev/null 2>&1 & echo $!")
    creds_job = p:read("*l")
    p:close()
    sh("for i in $(seq 50); do curl -fs http://127.0.0.1:" .. CREDS_PORT
      .. "/count >/dev/null && break; sleep 0.1; done")
    start("OBJSTORE_DEMO_CREDENTIALS_URL=http://127.0.0.1:" .. CREDS_PORT .. "/creds", PORT, DIR, 2, H2PORT)
  end)

  teardown(function()
    stop(DIR)
    if creds_job then sh("kill " .. creds_job) end
    if tmp then sh("rm -rf " .. tmp) end
  end)

  local function creds_calls()
    local _, body = curl(url("/count", CREDS_PORT))
    return tonumber(body)
  end

  it("refuses every location but /metrics without the right Bearer token", function()
    for _, p in ipairs{ "/presign?key=a&method=GET", "/files/a", "/list", "/gateway/a" } do
      assert.equal(401, (curl(url(p))), p)
      assert.equal(401, (curl(auth("wrong") .. url(p))), p)
      assert.equal(401, (curl("-H 'Authorization: Basic eDp5' " .. url(p))), p)
    end
    assert.equal(401, (curl("-X PUT --data-binary x " .. url("/files/a"))))
    assert.equal(200, (curl(url("/metrics"))))
  end)

  it("fetches credentials once for both workers and refreshes them once ahead of expiry", function()
    local before = creds_calls()
    -- 40 requests at once, spread over the two workers.
    local cmd = "seq 40 | xargs -P 20 -I{} curl -s -o /dev/null -w '%{http_code}\\n' --max-time 30 "
      .. auth() .. url("/list?max=1")
    local _, out = sh(cmd)
    local _, n200 = out:gsub("200", "")
    assert.equal(40, n200, out)
    local first = creds_calls()
    assert.is_true(first - before <= 1, "calls " .. before .. " -> " .. first)
    assert.is_true(first >= 1)
    -- After half the credentials' life a refresh is due: still one call.
    sh("sleep 13")
    _, out = sh(cmd)
    _, n200 = out:gsub("200", "")
    assert.equal(40, n200, out)
    sh("sleep 1")
    local second = creds_calls()
    assert.equal(first + 1, second)
  end)

  it("uploads, downloads with Range, lists with pages, and answers 416 out of range", function()
    local small = tmp .. "/small"
    local f = assert(io.open(small, "wb"))
    f:write("0123456789abcdef")
    f:close()
    local st, body = curl(auth() .. "-T " .. small .. " " .. url("/files/dir/small.txt"))
    assert.equal(200, st, body)
    assert.matches('"parts":1', body)
    st, body = curl(auth() .. url("/files/dir/small.txt"))
    assert.equal(200, st)
    assert.equal("0123456789abcdef", body)
    local hdr = tmp .. "/h"
    st, body = curl(auth() .. "-D " .. hdr .. " -H 'Range: bytes=3-6' " .. url("/files/dir/small.txt"))
    assert.equal(206, st)
    assert.equal("3456", body)
    local hf = io.open(hdr):read("*a")
    assert.matches("Content%-Range: bytes 3%-6/16", hf)
    st, body = curl(auth() .. "-H 'Range: bytes=-4' " .. url("/files/dir/small.txt"))
    assert.equal(206, st)
    assert.equal("cdef", body)
    st = curl(auth() .. "-H 'Range: bytes=100-' " .. url("/files/dir/small.txt"))
    assert.equal(416, st)
    assert.equal(404, (curl(auth() .. url("/files/dir/missing"))))
    for i = 1, 3 do
      assert.equal(200, (curl(auth() .. "-T " .. small .. " " .. url("/files/page/" .. i))))
    end
    local cjson = require "cjson"
    st, body = curl(auth() .. url("/list?prefix=page/&max=2"))
    assert.equal(200, st)
    local page = cjson.decode(body)
    assert.equal(2, page.count)
    assert.equal("page/1", page.keys[1].key)
    assert.equal(16, page.keys[1].size)
    assert.is_string(page.next)
    st, body = curl(auth() .. url("/list?prefix=page/&max=2&token=" .. page.next:gsub("[^%w]", function(c)
      return string.format("%%%02X", c:byte()) end)))
    assert.equal(200, st)
    page = cjson.decode(body)
    assert.equal(1, page.count)
    assert.equal("page/3", page.keys[1].key)
    assert.equal(cjson.null, page.next)
    st, body = curl(auth() .. url("/list?prefix=nothing-here/"))
    assert.equal(200, st)
    assert.equal(0, cjson.decode(body).count)
  end)

  it("streams a large PUT into a multipart upload and a chunked or HTTP/2 one through a spooled file", function()
    local big = file_of(20 * 1000 * 1000, tmp .. "/big")
    local sum = md5_of(big)
    local st, body = curl(auth() .. "-T " .. big .. " " .. url("/files/big.bin"))
    assert.equal(200, st, body)
    assert.matches('"parts":4', body)
    assert.matches('"spooled":false', body)
    local out = tmp .. "/out"
    assert(sh("curl -sS --max-time 60 " .. auth() .. url("/files/big.bin") .. " -o " .. out))
    assert.equal(sum, md5_of(out))
    -- chunked (curl -T - reads stdin: no Content-Length)
    st, body = curl(auth() .. "-T - " .. url("/files/chunked.bin") .. " < " .. big)
    assert.equal(200, st, body)
    assert.matches('"spooled":true', body)
    assert.matches('"parts":4', body)
    assert(sh("curl -sS --max-time 60 " .. auth() .. url("/files/chunked.bin") .. " -o " .. out))
    assert.equal(sum, md5_of(out))
    -- HTTP/2 (cleartext, prior knowledge): ngx.req.socket() refuses it too.
    local _, v = sh("curl -sS --max-time 60 --http2-prior-knowledge -o /dev/null -w '%{http_version}' " .. auth()
      .. "-T " .. big .. " " .. url("/files/h2.bin", H2PORT))
    assert.equal("2", v)
    assert(sh("curl -sS --max-time 60 " .. auth() .. url("/files/h2.bin") .. " -o " .. out))
    assert.equal(sum, md5_of(out))
  end)

  it("leaves no object and no multipart upload behind when the client aborts its upload", function()
    local big = file_of(30 * 1000 * 1000, tmp .. "/abort")
    local c = rgw()
    -- 4 MB/s for 3 s: the first multipart part is sent, then curl gives up.
    local _, _, code = curl(auth() .. "--limit-rate 4M --max-time 3 -T " .. big .. " " .. url("/files/aborted.bin"))
    assert.equal(28, code)
    local gone = false
    for _ = 1, 50 do
      local ups = assert(c:list_incomplete_uploads(BUCKET, "aborted.bin"))
      if #ups == 0 then
        gone = true
        break
      end
      sh("sleep 0.2")
    end
    assert.is_true(gone, "a multipart upload of aborted.bin was left")
    local _, err = c:head_object(BUCKET, "aborted.bin")
    assert.equal(404, err.status)
    -- A small single PUT aborted midway: no object either.
    _, _, code = curl(auth() .. "--limit-rate 500K --max-time 2 -T " .. file_of(4000000, tmp .. "/a2") .. " "
      .. url("/files/aborted-small.bin"))
    assert.equal(28, code)
    sh("sleep 1")
    _, err = c:head_object(BUCKET, "aborted-small.bin")
    assert.equal(404, err.status)
    c:close()
  end)

  it("presigns GET and PUT URLs that work with plain curl, and refuses bad input", function()
    local cjson = require "cjson"
    local st, body = curl(auth() .. url("/presign?key=pre/signed.txt&method=PUT&expires=60"))
    assert.equal(200, st, body)
    local put = cjson.decode(body).url
    assert.equal(200, (curl("-X PUT --data-binary presigned-body " .. q(put))))
    st, body = curl(auth() .. url("/presign?key=pre/signed.txt&method=get"))
    assert.equal(200, st)
    st, body = curl(q(cjson.decode(body).url))
    assert.equal(200, st)
    assert.equal("presigned-body", body)
    for _, bad in ipairs{ "/presign?key=a&expires=604801", "/presign?key=a&expires=0", "/presign?key=a&expires=x",
      "/presign?key=a&method=PATCH", "/presign?method=GET", "/presign?key=a%00b", "/presign?key=%FF%FE",
      "/files/a%00b", "/files/%C3%28", "/files/", "/list?max=0", "/list?max=5000" } do
      st, body = curl(auth() .. url(bad))
      assert.equal(400, st, bad .. ": " .. body)
    end
    assert.equal(405, (curl(auth() .. "-X PATCH " .. url("/files/a"))))
    assert.equal(405, (curl(auth() .. "-X DELETE " .. url("/gateway/a"))))
  end)

  it("signs for proxy_pass on /gateway/: GET with Range, PUT, store headers hidden", function()
    local body_file = tmp .. "/gw"
    local f = assert(io.open(body_file, "wb"))
    f:write("gateway body 0123456789")
    f:close()
    -- A caller's x-amz-* header is dropped, not signed nor forwarded.
    local st, body = curl(auth() .. "-H 'x-amz-acl: public-read-write' -T " .. body_file .. " "
      .. url("/gateway/gw.txt"))
    assert.equal(200, st, body)
    local hdr = tmp .. "/gh"
    st, body = curl(auth() .. "-D " .. hdr .. " -H 'Range: bytes=8-11' " .. url("/gateway/gw.txt"))
    assert.equal(206, st)
    assert.equal("body", body)
    local h = io.open(hdr):read("*a"):lower()
    assert.is_nil(h:find("x-amz-request-id", 1, true))
    assert.matches("content%-range: bytes 8%-11/23", h)
    assert.equal(404, (curl(auth() .. url("/gateway/no-such-key"))))
  end)

  it("forwards only signed headers on /gateway/: none smuggled past 100 padding headers", function()
    local c = rgw()
    local other = BUCKET .. "-other"
    local made, cerr = c:create_bucket(other)
    assert(made or (cerr and cerr.code == "BucketAlreadyOwnedByYou"), tostring(cerr))
    assert(c:put_object(other, "secret.txt", "another bucket's secret"))
    for _, k in ipairs{ "smuggle/a", "smuggle/b" } do c:delete_object(BUCKET, k) end
    local body_file = tmp .. "/smuggle"
    local f = assert(io.open(body_file, "wb"))
    f:write("caller body")
    f:close()
    local smuggled = "-H " .. q("x-amz-copy-source: /" .. other .. "/secret.txt") .. " -H 'x-amz-acl: public-read' "
      .. "-H 'x-amz-meta-evil: 1' -H 'X-Amz-Metadata-Directive: REPLACE' "
    local function padding(n)
      local t = {}
      for i = 1, n do t[#t + 1] = "-H 'X-Pad-" .. i .. ": p'" end
      return table.concat(t, " ") .. " "
    end
    local function is_public(key)
      local res = assert(c:send(require("objstore.engine.request").new{ op = "GetObjectAcl", method = "GET",
        bucket = BUCKET, key = key, query = { acl = true } }))
      return res.body:find("AllUsers", 1, true) ~= nil
    end
    -- Past the header limit: refused whole, nothing reaches the store.
    local st, body = curl(auth() .. padding(100) .. smuggled .. "-T " .. body_file .. " " .. url("/gateway/smuggle/a"))
    assert.equal(431, st, body)
    local _, err = c:head_object(BUCKET, "smuggle/a")
    assert.equal(404, err and err.status)
    -- Within it: stored as the caller's body, private, without the metadata.
    st, body = curl(auth() .. padding(40) .. smuggled .. "-T " .. body_file .. " " .. url("/gateway/smuggle/b"))
    assert.equal(200, st, body)
    local got = assert(c:get_object(BUCKET, "smuggle/b"))
    assert.equal("caller body", got.body)
    local h = assert(c:head_object(BUCKET, "smuggle/b"))
    assert.is_nil(h.metadata.evil)
    assert.is_false(is_public("smuggle/b"))
    c:close()
  end)

  it("takes the key from the decoded path after checking the prefix", function()
    local c = rgw()
    for _, k in ipairs{ "zz.bin", "s/zz.bin", "a//b/./c" } do c:delete_object(BUCKET, k) end
    local st, body = curl(auth() .. "-X PUT --data-binary decoded " .. url("/%66iles/zz.bin"))
    assert.equal(200, st, body)
    assert.equal("decoded", assert(c:get_object(BUCKET, "zz.bin")).body)
    local _, err = c:head_object(BUCKET, "s/zz.bin")
    assert.equal(404, err and err.status)
    -- A key keeps what nginx's normalised $uri would change.
    st, body = curl(auth() .. "--path-as-is -X PUT --data-binary slashes " .. url("/files/a//b/./c"))
    assert.equal(200, st, body)
    assert.equal("slashes", assert(c:get_object(BUCKET, "a//b/./c")).body)
    c:close()
  end)

  it("reads a '+' in the path as a plus (only %XX is decoded): PUT /files/a+b is not the key 'a b'", function()
    local c = rgw()
    for _, k in ipairs{ "plus/a+b", "plus/a b" } do c:delete_object(BUCKET, k) end
    local st, body = curl(auth() .. "-X PUT --data-binary plus " .. url("/files/plus/a+b"))
    assert.equal(200, st, body)
    assert.equal("plus", assert(c:get_object(BUCKET, "plus/a+b")).body)
    local _, err = c:head_object(BUCKET, "plus/a b")
    assert.equal(404, err and err.status)
    -- and the same key back through GET and /gateway/
    st, body = curl(auth() .. url("/files/plus/a+b"))
    assert.equal(200, st, body)
    assert.equal("plus", body)
    st, body = curl(auth() .. url("/gateway/plus/a%2Bb"))
    assert.equal(200, st, body)
    assert.equal("plus", body)
    st = curl(auth() .. url("/files/plus/a%20b"))
    assert.equal(404, st)
    c:close()
  end)

  it("does not log a missing key at error level", function()
    assert.equal(404, (curl(auth() .. url("/files/no/such/key-" .. os.time()))))
    assert.equal(404, (curl(auth() .. "-I " .. url("/files/no/such/key-" .. os.time()))))
    sh("sleep 0.5")
    local log = error_log(DIR)
    assert.is_nil(log:match("[^\n]*%[error%][^\n]*no/such/key[^\n]*"))
  end)

  it("reports the requests of both workers together on /metrics", function()
    local cjson = require "cjson"
    local function count(text, op)
      local f = assert(io.open(tmp .. "/m", "wb"))
      f:write(text)
      f:close()
      local ok, out = sh("/usr/bin/python3 spec/support/prom_parse.py < " .. tmp .. "/m")
      assert(ok, out)
      local n = 0
      for line in out:gmatch("[^\n]+") do
        local s = cjson.decode(line)
        if s.name == "objstore_requests_total" and s.labels.operation == op and s.labels.status == "200" then
          n = n + s.value
        end
      end
      return n
    end
    sh("sleep 2.5") -- every worker flushed what it did before
    local _, before = curl(url("/metrics"))
    local n0 = count(before, "ListObjectsV2")
    local _, out = sh("seq 30 | xargs -P 10 -I{} curl -s -D - -o /dev/null --max-time 30 " .. auth()
      .. url("/list?max=1"))
    local workers, served = {}, 0
    for pid in out:gmatch("[Xx]%-[Oo]bjstore%-[Ww]orker: (%d+)") do
      if not workers[pid] then served = served + 1 end
      workers[pid] = true
    end
    assert.equal(2, served, "the 30 requests did not reach both workers")
    sh("sleep 2.5") -- both workers' flush timers (1 s) have run
    local _, after = curl(url("/metrics"))
    assert.equal(n0 + 30, count(after, "ListObjectsV2"))
    no_crash(DIR)
  end)

  describe("configured without a token, with a metrics token", function()
    local CHECK_DIR = DIR .. "-check"
    setup(function()
      start("OBJSTORE_DEMO_METRICS_TOKEN=metrics-secret", CHECK_PORT, CHECK_DIR, 1, nil, "")
    end)
    teardown(function() stop(CHECK_DIR) end)

    it("refuses to serve (503, an error log line), never with a built-in token", function()
      for _, p in ipairs{ "/presign?key=a", "/files/a", "/list", "/gateway/a" } do
        for _, token in ipairs{ "demo-token", "", TOKEN } do
          local st, body = curl(auth(token) .. url(p, CHECK_PORT))
          assert.equal(503, st, p .. " " .. token .. ": " .. body)
        end
        assert.equal(503, (curl(url(p, CHECK_PORT))))
      end
      assert.matches("%[error%][^\n]*OBJSTORE_DEMO_TOKEN is not set", error_log(CHECK_DIR))
    end)

    it("wants the metrics token on /metrics", function()
      assert.equal(401, (curl(url("/metrics", CHECK_PORT))))
      assert.equal(401, (curl(auth("wrong") .. url("/metrics", CHECK_PORT))))
      assert.equal(200, (curl(auth("metrics-secret") .. url("/metrics", CHECK_PORT))))
      no_crash(CHECK_DIR)
    end)
  end)

  describe("with a store that lists keys that are not UTF-8", function()
    local HOSTILE_PORT, LIST_PORT = BASE_PORT + 8, BASE_PORT + 7
    local LIST_DIR = DIR .. "-badlist"
    local hostile_job
    setup(function()
      local p = io.popen("/usr/bin/python3 spec/support/hostile_server.py " .. HOSTILE_PORT
        .. " 120 >/dev/null 2>&1 & echo $!")
      hostile_job = p:read("*l")
      p:close()
      -- curl exit 7: nothing listens yet
      sh("for i in $(seq 50); do curl -s -o /dev/null -m 1 http://127.0.0.1:" .. HOSTILE_PORT
        .. "/ping; [ $? -ne 7 ] && break; sleep 0.1; done")
      start("OBJSTORE_DEMO_BUCKET=bad-utf8-listing AWS_ENDPOINT_URL=http://127.0.0.1:" .. HOSTILE_PORT
        .. " AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK", LIST_PORT, LIST_DIR, 1)
    end)
    teardown(function()
      stop(LIST_DIR)
      if hostile_job then sh("kill " .. hostile_job) end
    end)

    it("answers /list with valid UTF-8 JSON: such keys are left out and counted, not sent raw", function()
      local st, body = curl(auth() .. url("/list", LIST_PORT))
      assert.equal(200, st, body)
      local request = require "objstore.engine.request"
      assert.is_nil(request.key_problem(body), "the JSON is not valid UTF-8: " .. body:sub(1, 300))
      local doc = require("cjson").decode(body)
      assert.equal(1, doc.count)
      assert.equal("good", doc.keys[1].key)
      assert.equal(3, doc.skipped)
      no_crash(LIST_DIR)
    end)
  end)

  describe("with the store down, stalling or cutting a download short", function()
    local FP = "FAULTPROXY_DIR=" .. (os.getenv("FAULTPROXY_DIR") or (DIR .. "-faultproxy")) .. " FAULTPROXY_PORT="
      .. PROXY_PORT
      .. " FAULTPROXY_UPSTREAM=" .. os.getenv("OBJSTORE_TEST_ENDPOINT")
    local BAD_DIR = DIR .. "-faults"
    local control = "http://127.0.0.1:" .. PROXY_PORT .. "/__faults"
    setup(function()
      assert(sh(FP .. " timeout 30 bash spec/support/faultproxy.sh start"))
      start("OBJSTORE_DEMO_DEADLINE=3 AWS_ENDPOINT_URL=http://127.0.0.1:" .. PROXY_PORT, BAD_PORT, BAD_DIR, 1)
      local c = rgw()
      assert(c:put_object(BUCKET, "fault/big.bin", ("x"):rep(8 * 1024 * 1024)))
      c:close()
    end)
    teardown(function()
      stop(BAD_DIR)
      sh(FP .. " timeout 30 bash spec/support/faultproxy.sh stop")
    end)

    it("answers 502 quickly when the store resets, 504/502 bounded when it stalls, never crashes", function()
      assert.equal(200, (curl(auth() .. url("/list?max=1", BAD_PORT))))
      sh("curl -s -X POST --data '{\"reset\":1}' " .. control)
      local t0 = os.time()
      local st, body = curl(auth() .. url("/list?max=1", BAD_PORT))
      assert.equal(502, st, body)
      assert.is_true(os.time() - t0 < 20)
      sh("curl -s -X POST --data '{\"stall\":1,\"stall_seconds\":2}' " .. control)
      t0 = os.time()
      st = curl(auth() .. url("/files/fault/big.bin", BAD_PORT))
      assert.is_true(st == 502 or st == 504, tostring(st))
      assert.is_true(os.time() - t0 < 30, "a stalled store hung the request")
      -- A store that holds every request: the call's deadline (3 s, every
      -- attempt included) answers 504, not the 3 x 60 s of read timeouts.
      sh("curl -s -X POST --data '{\"stall\":1,\"stall_seconds\":100}' " .. control)
      t0 = os.time()
      st, body = curl(auth() .. url("/list?max=1", BAD_PORT))
      assert.equal(504, st, body)
      assert.matches("DeadlineExceeded", body)
      assert.is_true(os.time() - t0 <= 5, "took " .. (os.time() - t0) .. " s")
      -- The connection is cut mid-download: the client sees a short body.
      sh("curl -s -X POST --data '{\"reset_mid\":{\"rate\":1,\"methods\":[\"GET\"]}}' " .. control)
      local _, _, code = curl(auth() .. url("/files/fault/big.bin", BAD_PORT))
      assert.is_true(code == 18 or code == 52 or code == 56, "curl exit " .. tostring(code))
      sh("curl -s -X DELETE " .. control)
      assert.equal(206, (curl(auth() .. "-r 0-9 " .. url("/files/fault/big.bin", BAD_PORT))))
      no_crash(BAD_DIR)
    end)

    it("serves GET /files/ from one store GET: its status and headers, Range, 304, a reset mid-body", function()
      local cjson = require "cjson"
      local c = rgw()
      local data = {}
      for i = 1, 4 * 1024 * 1024 / 64 do data[i] = string.format("%063d\n", i) end
      data = table.concat(data)
      local put = assert(c:put_object(BUCKET, "fault/served.bin", data, { content_type = "text/x-h18h" }))
      local info = assert(c:head_object(BUCKET, "fault/served.bin"))
      c:close()
      local function stats()
        local _, body = curl("http://127.0.0.1:" .. PROXY_PORT .. "/__faults/stats")
        return cjson.decode(body)
      end
      local function header(h, name)
        return h:match("\n" .. name:gsub("%-", "%%-") .. ": ([^\r\n]*)")
      end
      local hdr = tmp .. "/served-h"
      sh("curl -s -X DELETE " .. control)
      sh("curl -s -X DELETE " .. control .. "/stats")
      -- The whole object: the store's head and the exact bytes, from one GET.
      local st, body, code = curl(auth() .. "-D " .. hdr .. " " .. url("/files/fault/served.bin", BAD_PORT))
      assert.equal(0, code)
      assert.equal(200, st)
      assert.is_true(body == data, "the body differs from the object")
      local h = "\n" .. io.open(hdr):read("*a")
      assert.equal(tostring(#data), header(h, "Content-Length"))
      assert.equal(put.etag, header(h, "ETag"))
      assert.equal("text/x-h18h", header(h, "Content-Type"))
      assert.equal(info.last_modified, header(h, "Last-Modified"))
      assert.equal("bytes", header(h, "Accept-Ranges"))
      local s = stats()
      assert.equal(1, s.methods.GET, cjson.encode(s))
      assert.is_nil(s.methods.HEAD, "a HEAD went to the store first: " .. cjson.encode(s))
      -- HEAD: the same head, no body.
      local hst, _, hcode = curl(auth() .. "-I -D " .. hdr .. " " .. url("/files/fault/served.bin", BAD_PORT))
      assert.equal(0, hcode)
      assert.equal(200, hst)
      h = "\n" .. io.open(hdr):read("*a")
      assert.equal(tostring(#data), header(h, "Content-Length"))
      assert.equal(put.etag, header(h, "ETag"))
      -- A range: 206 with the store's Content-Range.
      st, body = curl(auth() .. "-D " .. hdr .. " -r 1000-1999 " .. url("/files/fault/served.bin", BAD_PORT))
      assert.equal(206, st)
      assert.is_true(body == data:sub(1001, 2000), "the range's bytes differ")
      h = "\n" .. io.open(hdr):read("*a")
      assert.equal("bytes 1000-1999/" .. #data, header(h, "Content-Range"))
      assert.equal("1000", header(h, "Content-Length"))
      -- The client's conditions reach the store: 304 and 412 as it answers.
      st, body = curl(auth() .. "-D " .. hdr .. " -H " .. q("If-None-Match: " .. put.etag) .. " "
        .. url("/files/fault/served.bin", BAD_PORT))
      assert.equal(304, st)
      assert.equal("", body)
      st = curl(auth() .. "-H 'If-Match: \"0123456789abcdef0123456789abcdef\"' "
        .. url("/files/fault/served.bin", BAD_PORT))
      assert.equal(412, st)
      -- The store closes mid-body: the client's transfer fails (18: short
      -- of the Content-Length sent, 56: reset), never a short body that
      -- looks whole; the error log says why.
      sh("curl -s -X POST --data '{\"reset_mid\":{\"rate\":1,\"methods\":[\"GET\"]}}' " .. control)
      for _ = 1, 3 do
        st, body, code = curl(auth() .. "-D " .. hdr .. " " .. url("/files/fault/served.bin", BAD_PORT))
        assert.is_true(code == 18 or code == 56, "curl exit " .. tostring(code) .. " with " .. #body .. " bytes")
        assert.is_true(#body < #data)
        assert.equal(200, st)
        assert.equal(tostring(#data), header("\n" .. io.open(hdr):read("*a"), "Content-Length"))
      end
      sh("curl -s -X DELETE " .. control)
      assert.matches("fault/served.bin failed after the response head was sent", error_log(BAD_DIR), 1, true)
      no_crash(BAD_DIR)
    end)

    it("retries GET /files/ when the store fails before the head (503, a reset), then fails cleanly", function()
      local cjson = require "cjson"
      local c = rgw()
      local data = ("0123456789abcdef"):rep(64 * 1024 + 7)
      assert(c:put_object(BUCKET, "fault/retried.bin", data))
      c:close()
      local function faults(doc)
        sh("curl -s -X DELETE " .. control .. "/stats")
        sh("curl -s -X POST --data " .. q(cjson.encode(doc)) .. " " .. control)
      end
      local function gets()
        local _, body = curl("http://127.0.0.1:" .. PROXY_PORT .. "/__faults/stats")
        return cjson.decode(body).methods.GET
      end
      local only = { rate = 1, methods = { "GET" }, match = "retried%.bin" }
      -- One 503 SlowDown (the store never saw it), then the object: whole,
      -- byte for byte, from the second GET.
      faults{ slowdown = { rate = 1, methods = only.methods, match = only.match, max = 1 } }
      local t0 = os.time()
      local st, body, code = curl(auth() .. url("/files/fault/retried.bin", BAD_PORT))
      assert.equal(0, code)
      assert.equal(200, st, body:sub(1, 200))
      assert.is_true(body == data, "the body differs from the object (" .. #body .. " bytes)")
      assert.equal(2, gets())
      -- A connection closed before any answer: the same.
      faults{ reset = { rate = 1, methods = only.methods, match = only.match, max = 1 } }
      st, body, code = curl(auth() .. url("/files/fault/retried.bin", BAD_PORT))
      assert.equal(0, code)
      assert.equal(200, st)
      assert.is_true(body == data, "the body differs from the object after a reset")
      assert.equal(2, gets())
      -- Every GET refused: the client's 3 attempts, then a clean answer
      -- (nothing of a head was sent: a JSON error, curl exit 0).
      faults{ slowdown = only }
      st, body, code = curl(auth() .. url("/files/fault/retried.bin", BAD_PORT))
      assert.equal(0, code)
      assert.equal(502, st, body)
      assert.equal("SlowDown", cjson.decode(body).error)
      assert.equal(3, gets())
      assert.is_true(os.time() - t0 < 30, "took " .. (os.time() - t0) .. " s")
      sh("curl -s -X DELETE " .. control)
      no_crash(BAD_DIR)
    end)

    it("aborts the multipart upload of a client gone while its parts are held (lua_check_client_abort on)",
      function()
      local big = file_of(30 * 1000 * 1000, tmp .. "/held")
      local c = rgw()
      for _, u in ipairs(assert(c:list_incomplete_uploads(BUCKET, "held.bin"))) do
        c:abort_multipart_upload(BUCKET, u.key, u.upload_id)
      end
      sh("curl -s -X DELETE " .. control .. "/stats") -- "max" counts from here
      -- A chunked body: nginx spools it (fast), then the handler uploads
      -- the file; the first two parts are held 4 s by the store, and the
      -- client gives up meanwhile. nginx sees it at once (the body is read)
      -- and, with lua_check_client_abort on, would end the request there.
      sh("curl -s -X POST --data '{\"stall\":{\"rate\":1,\"match\":\"partNumber=[12]&\",\"max\":2},"
        .. "\"stall_seconds\":4}' " .. control)
      local _, _, code = curl(auth() .. "--max-time 2 -T - " .. url("/files/held.bin", BAD_PORT) .. " < " .. big)
      assert.equal(28, code)
      local gone = false
      for _ = 1, 75 do
        local ups = assert(c:list_incomplete_uploads(BUCKET, "held.bin"))
        if #ups == 0 then
          gone = true
          break
        end
        sh("sleep 0.2")
      end
      sh("curl -s -X DELETE " .. control)
      assert.is_true(gone, "a multipart upload of held.bin was left")
      local _, err = c:head_object(BUCKET, "held.bin")
      assert.equal(404, err and err.status)
      c:close()
      no_crash(BAD_DIR)
    end)

    it("answers 502 when nothing listens where the store should be", function()
      assert(sh(FP .. " timeout 30 bash spec/support/faultproxy.sh stop"))
      local st, body = curl(auth() .. url("/list", BAD_PORT))
      assert.equal(502, st, body)
      assert.matches("ConnectFailed", body)
      assert(sh(FP .. " timeout 30 bash spec/support/faultproxy.sh start"))
      no_crash(BAD_DIR)
    end)

    it("answers 503 without credentials", function()
      stop(BAD_DIR)
      start("AWS_ACCESS_KEY_ID=only-an-access-key AWS_SECRET_ACCESS_KEY=", BAD_PORT, BAD_DIR, 1)
      local st, body = curl(auth() .. url("/list", BAD_PORT))
      assert.equal(503, st, body)
      assert.matches("NoCredentials", body)
      st = curl(auth() .. url("/presign?key=a", BAD_PORT))
      assert.equal(503, st)
      no_crash(BAD_DIR)
    end)
  end)
end)
