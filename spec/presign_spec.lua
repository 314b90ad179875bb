-- Presigned URLs (client:presign): every method works with plain curl on
-- rgw, path and virtual-host addressing, UploadPart then Complete; a
-- tampered or expired URL is refused; the URLs equal boto3's
-- generate_presigned_url and ali-oss's signatureUrl / signatureUrlV4 at a
-- fixed clock, awkward keys, session tokens, response overrides and
-- content constraints included.
local servers = require "servers"
local cjson = require "cjson"
local ali = require "ali_oss_run"
local vcommon = require "vectors.common"
local objstore = require "objstore"

local q = servers.q

local function curl(args, url)
  return servers.sh("curl -sS -o /dev/null -w '%{http_code}' " .. args .. " " .. q(url))
end

local function curl_body(args, url)
  return servers.sh("curl -sS " .. args .. " " .. q(url))
end

local srv = servers.list()[1]

describe("presigned URLs on " .. (srv and srv.name or "no server") .. " #server", function()
  local c, bucket, dir

  setup(function()
    c = servers.client(srv, { addressing = "path" })
    bucket = servers.bucket_name("h13a-ps")
    assert(c:create_bucket(bucket))
    dir = servers.tmpdir()
  end)

  teardown(function()
    servers.cleanup(c, bucket)
    servers.sh("rm -rf " .. q(dir))
  end)

  it("PUT, GET, HEAD and DELETE work with curl; constraints are enforced", function()
    local key = "dir/a key+with&odd=chars~\195\169.txt"
    local path = dir .. "/put.txt"
    servers.write_file(path, "presigned body")
    local md5 = require("objstore.checksum").md5_base64("presigned body")
    local put = assert(c:presign("PUT", bucket, key, { content_type = "text/x-presigned", content_md5 = md5 }))
    assert.matches("X%-Amz%-SignedHeaders=content%-md5%%3Bcontent%-type%%3Bhost", put)
    -- Without the signed Content-Type the URL does not work.
    local ok, code = curl("-T " .. q(path) .. " -H 'Content-MD5: " .. md5 .. "'", put)
    assert.is_true(ok, code)
    assert.equals("403", code)
    ok, code = curl("-T " .. q(path) .. " -H 'Content-MD5: " .. md5 .. "' -H 'Content-Type: text/x-presigned'", put)
    assert.is_true(ok, code)
    assert.equals("200", code)
    local h = assert(c:head_object(bucket, key))
    assert.equals("text/x-presigned", h.content_type)

    local get = assert(c:presign("GET", bucket, key, { expires_in = 300,
      response = { content_type = "application/x-override",
        content_disposition = "attachment; filename=\"x y.txt\"" } }))
    local out
    ok, out = curl_body("-D -", get)
    assert.is_true(ok, out)
    assert.matches("[Cc]ontent%-[Tt]ype: application/x%-override", out)
    assert.matches("[Cc]ontent%-[Dd]isposition: attachment; filename=\"x y.txt\"", out)
    assert.matches("presigned body$", out)

    ok, out = curl_body("-f -I", assert(c:presign("HEAD", bucket, key)))
    assert.is_true(ok, out)
    assert.matches("[Cc]ontent%-[Ll]ength: 14", out)

    ok, code = curl("-X DELETE", assert(c:presign("DELETE", bucket, key, { expires_in = 60 })))
    assert.is_true(ok, code)
    assert.equals("204", code)
    assert.is_false((c:object_exists(bucket, key)))
  end)

  it("UploadPart URLs, then Complete", function()
    local key = "mp/big object"
    local up = assert(c:create_multipart_upload(bucket, key))
    local parts = {}
    local sizes = { 5 * 1024 * 1024, 1000 }
    local all = {}
    for n, size in ipairs(sizes) do
      local data = string.rep(string.char(64 + n), size)
      all[n] = data
      local path = dir .. "/part" .. n
      servers.write_file(path, data)
      local url = assert(c:presign("PUT", bucket, key, { upload_id = up.upload_id, part_number = n }))
      assert.matches("partNumber=" .. n, url)
      local ok, out = curl_body("-f -D - -o /dev/null -T " .. q(path), url)
      assert.is_true(ok, out)
      parts[n] = { part_number = n, etag = assert(out:match("[Ee][Tt]ag: *([^\r\n]+)")) }
    end
    assert(c:complete_multipart_upload(bucket, key, up.upload_id, parts))
    assert.equals(table.concat(all), assert(c:get_object(bucket, key)).body)
  end)

  it("virtual-host addressing", function()
    local domain = os.getenv("OBJSTORE_TEST_VHOST_DOMAIN") or "s3.localhost"
    local port = srv.endpoint:match(":(%d+)$")
    local cv = servers.client(srv, { endpoint = "http://" .. domain .. ":" .. port, addressing = "virtual" })
    assert(c:put_object(bucket, "v/hosted key", "vhost"))
    local url = assert(cv:presign("GET", bucket, "v/hosted key"))
    assert.equals(1, url:find("http://" .. bucket .. "." .. domain .. ":" .. port .. "/v/hosted%20key?", 1, true))
    local ok, out = curl_body("-f", url)
    assert.is_true(ok, out)
    assert.equals("vhost", out)
  end)

  it("refuses tampered and expired URLs", function()
    assert(c:put_object(bucket, "t/one", "one"))
    assert(c:put_object(bucket, "t/two", "two"))
    local url = assert(c:presign("GET", bucket, "t/one", { response = { content_type = "text/plain" } }))
    local ok, code = curl("", url)
    assert.is_true(ok, code)
    assert.equals("200", code)
    local tampered = {
      key = url:gsub("/t/one%?", "/t/two?"),
      query = url:gsub("response%-content%-type=text%%2Fplain", "response-content-type=text%%2Fhtml"),
      expiry = url:gsub("X%-Amz%-Expires=3600", "X-Amz-Expires=7200"),
      signature = url:gsub("X%-Amz%-Signature=(%x)", function(ch)
        return "X-Amz-Signature=" .. (ch == "0" and "1" or "0")
      end),
    }
    for what, t in pairs(tampered) do
      assert.are_not.equal(url, t, what)
      ok, code = curl("", t)
      assert.is_true(ok, code)
      assert.equals("403", code, what)
    end
    local expired = assert(c:presign("GET", bucket, "t/one", { time = os.time() - 120, expires_in = 60 }))
    local body
    ok, body = curl_body("", expired)
    assert.is_true(ok, body)
    assert.matches("AccessDenied", body)
  end)

  it("raises on misuse: expiry, method, part numbers", function()
    assert.has_error(function() c:presign("GET", bucket, "k", { expires_in = 604801 }) end,
      "objstore.client.presign: argument #4 (opts.expires_in): must be a whole number of seconds from 1 to 604800 "
      .. "(7 days), got 604801")
    assert.has_error(function() c:presign("GET", bucket, "k", { expires_in = 0 }) end)
    assert.has_error(function() c:presign("GET", bucket, "k", { expires_in = 1.5 }) end)
    assert.has_error(function() c:presign("POST", bucket, "k") end,
      "objstore.client.presign: argument #1 (method): must be GET, PUT, HEAD or DELETE, got POST")
    assert.has_error(function() c:presign("GET", bucket, "k", { upload_id = "u", part_number = 1 }) end,
      "objstore.client.presign: argument #1 (method): must be PUT for an UploadPart URL")
    assert.has_error(function() c:presign("PUT", bucket, "k", { upload_id = "u", part_number = 10001 }) end)
    assert.has_error(function() c:presign("GET", bucket, "k", { response = { content_typo = "x" } }) end)
    assert.has_error(function() c:presign("GET", bucket, "a\0b") end,
      "objstore.client.presign: argument #3 (key): contains a NUL byte")
    assert.has_error(function() c:presign("GET", bucket, "bad\255utf8") end,
      "objstore.client.presign: argument #3 (key): is not valid UTF-8")
    assert.has_error(function() c:presign("GET", bucket, "k", { expires_in = "60" }) end)
    assert.is_truthy(c:presign("GET", bucket, "k", { expires_in = 604800 }))
    -- The lifetime is expires_in (issue 20's rename); `expires` is the stored
    -- header's name elsewhere and no option of presign.
    assert.has_error(function() c:presign("GET", bucket, "k", { expires = 60 }) end,
      "objstore.client.presign: argument #4 (opts.expires): is not an option of client.presign")
    assert.matches("X%-Amz%-Expires=3600&", c:presign("GET", bucket, "k"))
  end)
end)

local AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
local TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/token+with=chars"
local T = 1735689599
local KEYS = { "plain.txt", "with space.txt", "unicode-\195\169\228\184\173.bin", "plus+sign", "percent%41",
  "q?mark", "hash#tag", "eq=amp&", "double//slash", "trailing/", "tilde~star*(paren)!" }

local function boto3(spec)
  local tmp = os.tmpname()
  servers.write_file(tmp, cjson.encode(spec))
  local ok, out = servers.sh("/usr/bin/python3 spec/support/boto3_presign.py < " .. q(tmp))
  os.remove(tmp)
  assert(ok, out)
  return cjson.decode(out)
end

describe("presigned URLs equal boto3's generate_presigned_url", function()
  for _, addressing in ipairs{ "path", "virtual" } do
    for _, token in ipairs{ false, true } do
      it(addressing .. " addressing" .. (token and ", session token" or ""), function()
        local endpoint = addressing == "path" and "http://127.0.0.1:7480" or "https://s3.eu-west-1.amazonaws.com"
        local reqs, mine = {}, {}
        local c = objstore.new{ endpoint = endpoint, region = "eu-west-1", access_key = AK, secret_key = SK,
          session_token = token and TOKEN or nil, addressing = addressing,
          transport = { request = function() error("no request may be sent") end } }
        local function add(r, opts)
          reqs[#reqs + 1] = r
          mine[#mine + 1] = assert(c:presign(r.method, r.bucket, r.key, opts))
        end
        for i, k in ipairs(KEYS) do
          local m = ({ "GET", "PUT", "HEAD", "DELETE" })[i % 4 + 1]
          add({ method = m, bucket = "bkt-h13a", key = k }, { time = T, expires_in = 900 })
        end
        add({ method = "GET", bucket = "bkt-h13a", key = "r/report.pdf", params = {
          ResponseContentType = "application/pdf", ResponseContentDisposition = "attachment; filename=\"r e.pdf\"",
          ResponseCacheControl = "no-cache", VersionId = "v1+/=" } },
          { time = T, expires_in = 900, version_id = "v1+/=", response = { content_type = "application/pdf",
            content_disposition = "attachment; filename=\"r e.pdf\"", cache_control = "no-cache" } })
        add({ method = "PUT", bucket = "bkt-h13a", key = "up/img.png", params = { ContentType = "image/png",
          ContentMD5 = "XrY7u+Ae7tCTyyK7j1rNww==" } },
          { time = T, expires_in = 900, content_type = "image/png", content_md5 = "XrY7u+Ae7tCTyyK7j1rNww==" })
        add({ method = "PUT", bucket = "bkt-h13a", key = "mp/part", operation = "upload_part",
          params = { UploadId = "2~abc/def+", PartNumber = 7 } },
          { time = T, expires_in = 900, upload_id = "2~abc/def+", part_number = 7 })
        local theirs = boto3{ access_key = AK, secret_key = SK, session_token = token and TOKEN or nil,
          region = "eu-west-1", endpoint = endpoint, time = T, expires = 900, addressing = addressing,
          requests = reqs }
        assert.equals(#reqs, #theirs)
        for i, r in ipairs(reqs) do
          local msg = r.method .. " " .. r.key .. "\n mine:  " .. mine[i] .. "\n boto3: " .. theirs[i]
          assert.equals(theirs[i]:match("X%-Amz%-Signature=(%x+)"), mine[i]:match("X%-Amz%-Signature=(%x+)"), msg)
          assert.is_true(vcommon.urls_equal(mine[i], theirs[i]), msg)
        end
      end)
    end
  end
end)

describe("presigned URLs equal ali-oss signatureUrl / signatureUrlV4", function()
  local cases = {}
  for _, sig in ipairs{ "v1", "v4" } do
    for _, sts in ipairs{ false, true } do
      for i, k in ipairs(KEYS) do
        local m = ({ "GET", "PUT", "HEAD", "DELETE" })[i % 4 + 1]
        cases[#cases + 1] = { id = sig .. (sts and "-sts-" or "-") .. i, sig = sig, sts = sts and ali.TOKEN or nil,
          time = T, op = "presign", bucket = "objstore-shape", key = k, opts = { method = m, expires = 900 },
          mine = { method = m, opts = { expires_in = 900 } } }
      end
      cases[#cases + 1] = { id = sig .. (sts and "-sts-" or "-") .. "response", sig = sig,
        sts = sts and ali.TOKEN or nil, time = T, op = "presign", bucket = "objstore-shape", key = "r/report.pdf",
        opts = { method = "GET", expires = 600, query = { ["response-content-type"] = "application/pdf",
          ["response-cache-control"] = "no-cache" } },
        mine = { method = "GET", opts = { expires_in = 600, response = { content_type = "application/pdf",
          cache_control = "no-cache" } } } }
      cases[#cases + 1] = { id = sig .. (sts and "-sts-" or "-") .. "content-type", sig = sig,
        sts = sts and ali.TOKEN or nil, time = T, op = "presign", bucket = "objstore-shape", key = "up/file.bin",
        opts = { method = "PUT", expires = 600, headers = { ["Content-Type"] = "image/png" } },
        mine = { method = "PUT", opts = { expires_in = 600, content_type = "image/png" } } }
      cases[#cases + 1] = { id = sig .. (sts and "-sts-" or "-") .. "upload-part", sig = sig,
        sts = sts and ali.TOKEN or nil, time = T, op = "presign", bucket = "objstore-shape", key = "mp/part",
        opts = { method = "PUT", expires = 600, query = { uploadId = "0004B9895DBBB6EC98E36A2E6BD4E5E7",
          partNumber = "3" } },
        mine = { method = "PUT", opts = { expires_in = 600, upload_id = "0004B9895DBBB6EC98E36A2E6BD4E5E7",
          part_number = 3 } } }
    end
  end
  local results

  setup(function()
    results = ali.run(cases)
  end)

  for _, k in ipairs(cases) do
    it(k.id, function()
      local c = ali.client(k.sig, k.time, k.sts)
      local o = {}
      for name, v in pairs(k.mine.opts) do o[name] = v end
      o.time = k.time
      local mine = assert(c:presign(k.mine.method, k.bucket, k.key, o))
      local theirs = results[k.id].native.url
      local sig_of = function(u) return u:match("[?&]Signature=([^&]+)") or u:match("x%-oss%-signature=([^&]+)") end
      local msg = "\n mine:   " .. mine .. "\n ali-oss: " .. theirs
      assert.is_truthy(sig_of(theirs), msg)
      assert.equals(sig_of(theirs), sig_of(mine), msg)
      assert.is_true(vcommon.urls_equal(mine, theirs), msg)
    end)
  end
end)

describe("presign's short path (no server)", function()
  local function client(o)
    local opts = { endpoint = "http://127.0.0.1:7480", region = "us-east-1", access_key = AK, secret_key = SK,
      addressing = "path", transport = { request = function() error("no request may be sent") end } }
    for k, v in pairs(o or {}) do opts[k] = v end
    return objstore.new(opts)
  end

  it("a plain URL after URLs with headers, query or a refused time is a fresh client's URL", function()
    local c, fresh = client(), client()
    local plain = assert(fresh:presign("GET", "bkt-h13", "a/b c.txt", { time = T, expires_in = 60 }))
    assert.matches("X%-Amz%-SignedHeaders=host&", plain)
    assert.is_nil(plain:find("response-content-type", 1, true))
    assert.matches("^http://127%.0%.0%.1:7480/bkt%-h13/a/b%%20c%.txt%?", plain)
    local put = assert(c:presign("PUT", "bkt-h13", "x", { time = T, content_type = "text/plain",
      headers = { ["x-amz-meta-a"] = "1" }, response = { content_type = "text/plain" } }))
    assert.matches("SignedHeaders=content%-type%%3Bhost%%3Bx%-amz%-meta%-a&", put)
    assert.matches("response%-content%-type=text%%2Fplain", put)
    assert.equals(plain, c:presign("GET", "bkt-h13", "a/b c.txt", { time = T, expires_in = 60 }))
    assert.has_error(function() c:presign("GET", "bkt-h13", "k", { time = "soon" }) end,
      "objstore.core.signer.presign: argument #1 (req.time): must be a number, got string")
    assert.equals(plain, c:presign("GET", "bkt-h13", "a/b c.txt", { time = T, expires_in = 60 }))
    -- no opts: the default expiry, the client's clock
    assert.matches("X%-Amz%-Expires=3600&", c:presign("GET", "bkt-h13", "k"))
    c:close()
    fresh:close()
  end)

  it("checks every bucket as before: names found valid are remembered per client only", function()
    local c = client()
    for i = 1, 300 do assert(c:presign("GET", "bkt-" .. i, "k", { time = T })) end
    assert.has_error(function() c:presign("GET", "a/b", "k") end,
      "objstore.client.presign: argument #2 (bucket): 'a/b' is not a valid bucket name")
    assert.has_error(function() c:presign("GET", "", "k") end,
      "objstore.client.presign: argument #2 (bucket): must be a non-empty string, got ''")
    -- valid for an S3 client, not for an OSS one
    assert(c:presign("GET", "Upper_Case", "k", { time = T }))
    local oss = client{ provider = "oss", endpoint = "https://oss-cn-hangzhou.aliyuncs.com", region = "cn-hangzhou",
      addressing = "virtual" }
    assert.has_error(function() oss:presign("GET", "Upper_Case", "k") end,
      "objstore.client.presign: argument #2 (bucket): 'Upper_Case' is not a valid OSS bucket name")
    c:close()
    oss:close()
  end)

  it("follows the endpoint's addressing choice: virtual host, or path for a dotted bucket on https", function()
    local c = client{ endpoint = "https://s3.eu-west-1.amazonaws.com", region = "eu-west-1", addressing = "virtual" }
    assert.matches("^https://bkt%-h13%.s3%.eu%-west%-1%.amazonaws%.com/k%%2Bplus%?",
      c:presign("GET", "bkt-h13", "k+plus", { time = T }))
    assert.matches("^https://s3%.eu%-west%-1%.amazonaws%.com/my%.dotted%.bucket/d/k%?",
      c:presign("GET", "my.dotted.bucket", "d/k", { time = T }))
    c:close()
  end)

  it("URLs are printable ASCII without quotes, backslashes, angle brackets or spaces (JSON-safe as they are)",
    function()
    local awkward = "k\"\\\1\127\195\169<>{}|^` '&?#%/\t"
    local cases = {
      client{ session_token = "to\"k\\en<>" },
      client{ endpoint = "https://s3.amazonaws.com", addressing = "virtual", session_token = "t\"" },
      client{ provider = "oss", endpoint = "https://oss-cn-hangzhou.aliyuncs.com", region = "cn-hangzhou",
        addressing = "virtual", session_token = "t\"\\" },
    }
    for i, c in ipairs(cases) do
      local bucket = i == 3 and "bkt-h13" or "b\"k\\t<"
      for _, opts in ipairs{ false, { time = T }, { query = { ["a\""] = "\\\"" }, response = { content_type = "\"" } },
        { headers = { ["x-amz-meta-q"] = "\"" } } } do
        local url = assert(c:presign("GET", bucket, awkward, opts or nil))
        assert.matches("^[!#-;=?-Z%[%]^-~]+$", url)
        assert.equals(url, cjson.decode('{"url":"' .. url .. '"}').url)
      end
      c:close()
    end
  end)

  it("checks caller headers and query with request.new's messages", function()
    local c = client()
    assert.has_error(function() c:presign("GET", "bkt-h13", "k", { headers = { X = {} } }) end,
      "objstore.engine.request.new: argument #1 (req.headers.X): must be a string, number or boolean, got table")
    assert.has_error(function() c:presign("GET", "bkt-h13", "k", { query = { a = {} } }) end,
      "objstore.engine.request.new: argument #1 (req.query.a): must be a string, number or boolean, got table")
    c:close()
  end)
end)
