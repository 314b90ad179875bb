-- Gateway signing (client:sign_for_proxy): what it returns, sent by plain
-- curl as a proxy would send it, is accepted by rgw for GET (with Range),
-- HEAD and a streamed PUT; a caller's x-amz-* header never reaches the
-- store; the OSS shape equals ali-oss's signature of the same request.
local servers = require "servers"
local ali = require "ali_oss_run"

local q = servers.q

--- The curl arguments that send `p.headers` exactly (curl adds none we
-- did not give: Accept and User-Agent are unsigned, Expect is turned off).
local function curl_headers(p)
  local args = { "-H 'Expect:'" }
  for k, v in pairs(p.headers) do args[#args + 1] = "-H " .. q(k .. ": " .. v) end
  return table.concat(args, " ")
end

local srv = servers.list()[1]

describe("sign_for_proxy on " .. (srv and srv.name or "no server") .. " #server", function()
  local c, bucket, dir
  local body = string.rep("0123456789abcdef", 4096) -- 64 KiB

  setup(function()
    c = servers.client(srv)
    bucket = servers.bucket_name("h13a-gw")
    assert(c:create_bucket(bucket))
    dir = servers.tmpdir()
    assert(c:put_object(bucket, "dir/file name+1.bin", body))
  end)

  teardown(function()
    servers.cleanup(c, bucket)
    servers.sh("rm -rf " .. q(dir))
  end)

  it("GET with Range: curl gets the range", function()
    local p = assert(c:sign_for_proxy("GET", bucket, "dir/file name+1.bin",
      { headers = { range = "bytes=16-47", ["user-agent"] = "browser", accept = "*/*" } }))
    assert.equals("bytes=16-47", p.headers.Range)
    assert.equals("UNSIGNED-PAYLOAD", p.headers["x-amz-content-sha256"])
    assert.equals("127.0.0.1:7480", p.headers.Host)
    local ok, out = servers.sh("curl -sS -f " .. curl_headers(p) .. " " .. q(p.url))
    assert.is_true(ok, out)
    assert.equals(body:sub(17, 48), out)
  end)

  it("HEAD and a conditional GET pass through", function()
    local head = assert(c:head_object(bucket, "dir/file name+1.bin"))
    local p = assert(c:sign_for_proxy("HEAD", bucket, "dir/file name+1.bin"))
    local ok, out = servers.sh("curl -sS -f -I " .. curl_headers(p) .. " " .. q(p.url))
    assert.is_true(ok, out)
    assert.matches("[Cc]ontent%-[Ll]ength: 65536", out)
    p = assert(c:sign_for_proxy("get", bucket, "dir/file name+1.bin", { headers = { ["If-None-Match"] = head.etag } }))
    ok, out = servers.sh("curl -sS -o /dev/null -w '%{http_code}' " .. curl_headers(p) .. " " .. q(p.url))
    assert.is_true(ok, out)
    assert.equals("304", out)
  end)

  it("PUT streams a file; the caller's Authorization and x-amz-* headers are dropped", function()
    local path = dir .. "/up.bin"
    local data = string.rep("streamed-", 30000)
    servers.write_file(path, data)
    local incoming = { Authorization = "Bearer caller-token", ["X-Amz-Acl"] = "public-read-write",
      ["x-amz-meta-smuggled"] = "yes", ["x-amz-copy-source"] = "/other/secret", ["Content-Type"] = "text/x-test",
      ["Content-Length"] = tostring(#data), ["x-oss-meta-other"] = "no", Cookie = "session=1",
      ["x-forwarded-for"] = "10.0.0.1", ["Cache-Control"] = "bad\0value", Expect = "100-continue",
      Host = "gateway.example" }
    local p = assert(c:sign_for_proxy("PUT", bucket, "up/put.bin",
      { headers = incoming, extra_headers = { ["x-amz-meta-by-gateway"] = "1" } }))
    -- An allow-list: every header of the caller that is not signed is
    -- cleared (a passed name with an unusable value too), Host and the
    -- framing nginx rewrites (Content-Length, Expect) are left alone.
    assert.same({ "Authorization", "Cache-Control", "Cookie", "X-Amz-Acl", "x-amz-copy-source", "x-amz-meta-smuggled",
      "x-forwarded-for", "x-oss-meta-other" }, p.clear)
    for k in pairs(p.headers) do
      local lk = k:lower()
      assert.is_true(lk ~= "x-amz-acl" and lk ~= "x-amz-meta-smuggled" and lk ~= "x-amz-copy-source"
        and lk ~= "content-length", k)
    end
    assert.matches("^AWS4%-HMAC%-SHA256 ", p.headers.Authorization)
    for k, v in pairs(p.headers) do assert.is_nil(v:find(srv.secret_key, 1, true), k) end
    local ok, out = servers.sh("curl -sS -f -T " .. q(path) .. " " .. curl_headers(p) .. " " .. q(p.url))
    assert.is_true(ok, out)
    local got = assert(c:get_object(bucket, "up/put.bin"))
    assert.equals(data, got.body)
    local h = assert(c:head_object(bucket, "up/put.bin"))
    assert.equals("text/x-test", h.content_type)
    assert.equals("1", h.metadata["by-gateway"])
    assert.is_nil(h.metadata.smuggled)
    -- The smuggled public-read-write ACL was not applied: anonymous reads fail.
    local aok, code = servers.sh("curl -sS -o /dev/null -w '%{http_code}' "
      .. q(srv.endpoint .. "/" .. bucket .. "/up/put.bin"))
    assert.is_true(aok, code)
    assert.equals("403", code)
  end)

  it("a caller header forwarded anyway, once signed, is refused", function()
    -- What clear protects from: a proxy that forwarded a signed name with
    -- another value breaks the signature.
    local p = assert(c:sign_for_proxy("GET", bucket, "dir/file name+1.bin", { headers = { range = "bytes=0-1" } }))
    p.headers.Range = "bytes=0-9999"
    local ok, out = servers.sh("curl -sS -o /dev/null -w '%{http_code}' " .. curl_headers(p) .. " " .. q(p.url))
    assert.is_true(ok, out)
    assert.equals("403", out)
  end)

  it("names the store's response headers to hide", function()
    local p = assert(c:sign_for_proxy("HEAD", bucket, "dir/file name+1.bin"))
    local ok, out = servers.sh("curl -sS -f -I " .. curl_headers(p) .. " " .. q(p.url))
    assert.is_true(ok, out)
    local headers = {}
    for name, value in out:gmatch("\n([%w%-]+):%s*([^\r\n]*)") do headers[name] = value end
    local hidden = c:hidden_response_headers(headers)
    local set = {}
    for _, n in ipairs(hidden) do set[n:lower()] = true end
    assert.is_true(set["x-amz-request-id"])
    assert.is_nil(set["content-length"])
    assert.is_nil(set["etag"])
    local kept = c:hidden_response_headers(headers, { "x-amz-request-id" })
    assert.equals(#hidden - 1, #kept)
    assert.same({ "x-amz-meta-a" }, c:hidden_response_headers({ ["x-amz-meta-a"] = "1", ["x-oss-x"] = "2", etag = "e" },
      { "x-oss-*" }))
  end)

  it("raises on misuse", function()
    assert.has_error(function() c:sign_for_proxy("DELETE", bucket, "k") end,
      "objstore.client.sign_for_proxy: argument #1 (method): must be GET, HEAD or PUT, got DELETE")
    assert.has_error(function() c:sign_for_proxy("GET", bucket, "k", { header = {} }) end,
      "objstore.client.sign_for_proxy: argument #4 (opts.header): is not an option of client.sign_for_proxy")
    assert.has_error(function() c:sign_for_proxy("GET", bucket, "a\0b") end,
      "objstore.client.sign_for_proxy: argument #3 (key): contains a NUL byte")
  end)
end)

describe("sign_for_proxy for OSS equals ali-oss", function()
  local T = 1735689599
  local cases = {}
  for _, sig in ipairs{ "v1", "v4" } do
    cases[#cases + 1] = { id = sig .. "-get-range", sig = sig, time = T, op = "get_object", bucket = "objstore-shape",
      key = "dir/with space+plus", opts = { range = "bytes=0-99", if_match = "\"abc\"" },
      mine = { "GET", { range = "bytes=0-99", ["if-match"] = "\"abc\"", ["x-oss-meta-evil"] = "1" } } }
    cases[#cases + 1] = { id = sig .. "-head", sig = sig, time = T, op = "head_object", bucket = "objstore-shape",
      key = "unicode-\195\169\228\184\173", opts = {}, mine = { "HEAD", {} } }
    cases[#cases + 1] = { id = sig .. "-put", sig = sig, time = T, op = "put_object", bucket = "objstore-shape",
      key = "up/file.bin", body = "", opts = { content_type = "application/x-test" },
      -- ali-oss sends the Content-MD5 of its buffered (empty) body; the
      -- caller's Content-MD5 passes through a proxy and is signed.
      mine = { "PUT", { ["content-type"] = "application/x-test", authorization = "Bearer t",
        ["content-md5"] = "1B2M2Y8AsgTpgAmY7PhCfg==" } } }
  end
  local results

  setup(function()
    results = ali.run(cases)
  end)

  for _, k in ipairs(cases) do
    it(k.id, function()
      local c = ali.client(k.sig, k.time)
      local p = assert(c:sign_for_proxy(k.mine[1], k.bucket, k.key, { headers = k.mine[2] }))
      local r = results[k.id]
      local theirs = r.aligned or r.native
      local want = k.sig == "v1" and theirs.v1_date_authorization or theirs.headers.authorization
      assert.equals(want, p.headers.Authorization)
      assert.equals(theirs.url, p.url)
      if k.sig == "v4" then
        assert.equals(theirs.headers["x-oss-date"], p.headers["x-oss-date"])
        assert.equals("UNSIGNED-PAYLOAD", p.headers["x-oss-content-sha256"])
      end
    end)
  end
end)
