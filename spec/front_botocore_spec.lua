-- objstore.front.sigv4 against a real client: requests signed offline by
-- Debian's python3-botocore/boto3 (spec/support/botocore_front.py, clock
-- frozen, nothing sent) are verified, and a tampered copy of each refused.
local sigv4 = require "objstore.front.sigv4"
local cjson = require "cjson"

local AK, SK, REGION = "AKIDFRONTBOTO", "front/secret+key=boto", "us-east-1"
local T = 1700000000
local PATH_EP, VHOST_EP = "http://127.0.0.1:9/", "http://s3.front.test:9/"

local function have_botocore()
  local p = io.popen("/usr/bin/python3 -c 'import boto3, botocore' 2>/dev/null && echo yes")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  return out:find("yes") ~= nil
end

local KEYS = { "plain.txt", "with space.txt", "unicode-\195\169\228\184\173.bin", "plus+sign", "percent%41",
  "tilde~x", "eq=amp&", "a b/c+d/e%f~g=h", "trailing/", "q?mark" }

--- Every call of the run: per key a PUT (path and virtual host), a GET
-- presigned both ways; then the query-carrying operations.
local function calls()
  local list = {}
  for _, k in ipairs(KEYS) do
    list[#list + 1] = { kind = "client", addressing = "path", operation = "put_object",
      params = { Bucket = "bkt", Key = k, Body = "hello " .. k } }
    list[#list + 1] = { kind = "client", addressing = "virtual", endpoint = VHOST_EP, operation = "put_object",
      params = { Bucket = "bkt", Key = k, Body = "hello", Metadata = { note = "a  b" } } }
    list[#list + 1] = { kind = "presign", addressing = "path", operation = "get_object",
      params = { Bucket = "bkt", Key = k }, expires = 600 }
    list[#list + 1] = { kind = "presign", addressing = "virtual", endpoint = VHOST_EP, operation = "put_object",
      params = { Bucket = "bkt", Key = k }, expires = 604800, method = "PUT" }
  end
  for _, addressing in ipairs{ "path", "virtual" } do
    local ep = addressing == "path" and PATH_EP or VHOST_EP
    list[#list + 1] = { kind = "client", addressing = addressing, endpoint = ep, operation = "create_multipart_upload",
      params = { Bucket = "bkt", Key = "big file+1" } }
    list[#list + 1] = { kind = "client", addressing = addressing, endpoint = ep, operation = "upload_part",
      params = { Bucket = "bkt", Key = "big file+1", PartNumber = 1, UploadId = "x", Body = "part" } }
    list[#list + 1] = { kind = "client", addressing = addressing, endpoint = ep, operation = "list_objects_v2",
      params = { Bucket = "bkt", Prefix = "a b", Delimiter = "/" } }
    list[#list + 1] = { kind = "client", addressing = addressing, endpoint = ep, operation = "get_object",
      params = { Bucket = "bkt", Key = "r=1", Range = "bytes=0-9", ResponseContentType = "text/plain; x=1" } }
    list[#list + 1] = { kind = "presign", addressing = addressing, endpoint = ep, operation = "upload_part",
      params = { Bucket = "bkt", Key = "big file+1", PartNumber = 2, UploadId = "x/y=z" }, expires = 3600,
      method = "PUT" }
  end
  list[#list + 1] = { kind = "auth", method = "GET", url = "http://127.0.0.1:9/bkt/k%20k?versionId=3%2B4",
    headers = { Range = "bytes=0-1", ["x-amz-meta-a"] = " spaced   value " } }
  list[#list + 1] = { kind = "auth", method = "PUT", url = "http://127.0.0.1:9/bkt/%E2%9C%93?tagging",
    headers = { ["Content-Type"] = "text/plain" }, body = "tags" }
  return list
end

local function run_botocore(list)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(cjson.encode{ access_key = AK, secret_key = SK, region = REGION, time = T, endpoint = PATH_EP,
    calls = list })
  f:close()
  local p = assert(io.popen("timeout 120 /usr/bin/python3 spec/support/botocore_front.py < " .. tmp))
  local out = p:read("*a")
  p:close()
  os.remove(tmp)
  return cjson.decode(out)
end

--- A captured request as a front would see it: raw path and query from the
-- request line, the headers, the client's host.
local function incoming(r, now)
  local host, pq = r.url:match("^%a+://([^/]+)(.*)$")
  local path, query = pq:match("^([^?]*)%??(.*)$")
  local headers, has_host = {}, false
  for _, h in ipairs(r.headers) do
    headers[#headers + 1] = { h[1], h[2] }
    if h[1]:lower() == "host" then has_host = true end
  end
  if not has_host then headers[#headers + 1] = { "Host", host } end
  return { method = r.method, path = path, query = query, headers = headers, now = now or T }
end

local function lookup(ak)
  if ak == AK then return SK end
end

describe("front.sigv4 verifies botocore's requests", function()
  if not have_botocore() then
    pending("python3-botocore/boto3 missing (apt-get install python3-boto3): botocore interop not run")
    return
  end
  local list = calls()
  local captured = run_botocore(list)

  it("captured one request per call", function()
    assert.equals(#list, #captured)
  end)

  for i, call in ipairs(list) do
    local what = call.kind .. " " .. (call.operation or call.method) .. " " .. (call.addressing or "")
      .. " " .. ((call.params or {}).Key or call.url or "")
    it(what, function()
      local r = captured[i]
      local req = incoming(r)
      local res, err = sigv4.verify(req, lookup, { region = REGION })
      assert.is_table(res, tostring(err) .. "\n" .. r.url .. "\n" .. tostring(err and err.canonical_request))
      assert.equals(AK, res.access_key)
      assert.equals(call.kind == "presign", res.presigned)
      if call.kind == "presign" then
        assert.equals("UNSIGNED-PAYLOAD", res.payload)
        assert.equals(call.expires, res.expires)
        -- expired one second after its lifetime
        local _, e = sigv4.verify(incoming(r, T + call.expires + 1), lookup, { region = REGION })
        assert.equals("AccessDenied", e.code)
      else
        local ck = sigv4.payload_checker(res)
        local body = r.body_hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
        assert.is_true(ck:update(body):finish())
        local _, bad_body = sigv4.payload_checker(res):update(body .. "!"):finish()
        assert.equals("XAmzContentSHA256Mismatch", bad_body.code)
        local _, e = sigv4.verify(incoming(r, T + 1000), lookup, { region = REGION })
        assert.equals("RequestTimeTooSkewed", e.code)
      end
      -- the path changed by one byte, the query by one parameter
      local bad = incoming(r)
      bad.path = bad.path:gsub("k", "K", 1)
      if bad.path == req.path then bad.path = bad.path .. "x" end
      local _, e = sigv4.verify(bad, lookup, { region = REGION })
      assert.equals("SignatureDoesNotMatch", e.code)
      bad = incoming(r)
      bad.query = bad.query == "" and "uploads" or (bad.query .. "&x-id=1")
      _, e = sigv4.verify(bad, lookup, { region = REGION })
      assert.equals("SignatureDoesNotMatch", e.code)
      _, e = sigv4.verify(req, lookup, { region = "eu-central-1" })
      assert.is_truthy(e.code == "AuthorizationHeaderMalformed" or e.code == "AuthorizationQueryParametersError")
    end)
  end
end)
