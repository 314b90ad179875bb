-- Bucket CORS (put_bucket_cors / get_bucket_cors / delete_bucket_cors):
-- on rgw, the rules put come back equal, a browser's OPTIONS preflight
-- (curl) gets the Access-Control-* headers they allow (a form POST from
-- a wildcard sub-domain included) and none they do not, and delete
-- removes them. The OSS XML shape is checked against the rules.
local servers = require "servers"
local objstore = require "objstore"
local xml = require "objstore.xml"

local q = servers.q

local RULES = {
  { id = "uploads", allowed_origins = { "https://app.example.com", "https://*.example.org" },
    allowed_methods = { "PUT", "POST", "GET" }, allowed_headers = { "content-type", "x-amz-*" },
    expose_headers = { "ETag", "x-amz-request-id" }, max_age_seconds = 600 },
  { id = "read", allowed_origins = { "*" }, allowed_methods = { "GET", "HEAD" }, allowed_headers = {},
    expose_headers = {}, max_age_seconds = 60 },
}

local function headers_of(out)
  local h = {}
  for name, value in out:gmatch("\n([%w%-]+):%s*([^\r\n]*)") do h[name:lower()] = value end
  return h, out:match("^HTTP/[%d.]+ (%d+)")
end

--- Rules with each list sorted: a server may keep them in another order
-- (rgw sorts origins and methods); they are sets.
local function normalized(rules)
  local out = {}
  for i, r in ipairs(rules) do
    local n = {}
    for k, v in pairs(r) do
      if type(v) == "table" then
        local l = {}
        for j, x in ipairs(v) do l[j] = x end
        table.sort(l)
        n[k] = l
      else
        n[k] = v
      end
    end
    out[i] = n
  end
  return out
end

local srv = servers.list()[1]

describe("bucket CORS on " .. (srv and srv.name or "no server") .. " #server", function()
  local c, bucket

  setup(function()
    c = servers.client(srv, { addressing = "path" })
    bucket = servers.bucket_name("h13a-cors")
    assert(c:create_bucket(bucket))
  end)

  teardown(function()
    servers.cleanup(c, bucket)
  end)

  local function preflight(origin, method, req_headers)
    local ok, out = servers.sh("curl -sS -D - -o /dev/null -X OPTIONS -H " .. q("Origin: " .. origin)
      .. " -H " .. q("Access-Control-Request-Method: " .. method)
      .. (req_headers and (" -H " .. q("Access-Control-Request-Headers: " .. req_headers)) or "")
      .. " " .. q(srv.endpoint .. "/" .. bucket .. "/some/key"))
    assert.is_true(ok, out)
    return headers_of(out)
  end

  it("puts rules, gets them back equal, answers preflights, deletes", function()
    local _, err = c:get_bucket_cors(bucket)
    assert.equals("NoSuchCORSConfiguration", err.code)
    assert(c:put_bucket_cors(bucket, RULES))
    local got = assert(c:get_bucket_cors(bucket))
    assert.same(normalized(RULES), normalized(got.rules))

    local h, status = preflight("https://app.example.com", "PUT", "content-type")
    assert.equals("200", status)
    assert.equals("https://app.example.com", h["access-control-allow-origin"])
    assert.matches("PUT", h["access-control-allow-methods"])
    assert.matches("content%-type", h["access-control-allow-headers"]:lower())
    assert.equals("600", h["access-control-max-age"])
    assert.matches("ETag", h["access-control-expose-headers"])

    -- A wildcard sub-domain origin, and the read-only rule for any origin.
    h = preflight("https://cdn.example.org", "POST")
    assert.equals("https://cdn.example.org", h["access-control-allow-origin"])
    h = preflight("https://elsewhere.test", "GET")
    -- "*" (AWS) or the origin echoed (rgw): both allow it.
    local allow = h["access-control-allow-origin"]
    assert.is_true(allow == "*" or allow == "https://elsewhere.test", allow)
    assert.equals("60", h["access-control-max-age"])
    -- Not allowed: PUT from an origin only the read rule covers.
    h, status = preflight("https://elsewhere.test", "PUT")
    assert.is_nil(h["access-control-allow-origin"])
    assert.equals("403", status)

    -- An actual GET from an allowed origin carries the CORS headers too.
    assert(c:put_object(bucket, "some/key", "x"))
    local url = assert(c:presign("GET", bucket, "some/key"))
    local ok, out = servers.sh("curl -sS -D - -o /dev/null -H 'Origin: https://app.example.com' " .. q(url))
    assert.is_true(ok, out)
    h = headers_of(out)
    assert.equals("https://app.example.com", h["access-control-allow-origin"])

    assert(c:delete_bucket_cors(bucket))
    _, err = c:get_bucket_cors(bucket)
    assert.equals("NoSuchCORSConfiguration", err.code)
    h, status = preflight("https://app.example.com", "PUT", "content-type")
    assert.is_nil(h["access-control-allow-origin"])
    assert.equals("403", status)
  end)

  it("raises on misuse", function()
    assert.has_error(function() c:put_bucket_cors(bucket, {}) end,
      "objstore.client.put_bucket_cors: argument #2 (rules): must be a non-empty list of CORS rules")
    assert.has_error(function() c:put_bucket_cors(bucket, { { allowed_origins = { "*" } } }) end,
      "objstore.client.put_bucket_cors: argument #2 (rules[1].allowed_methods): must be a non-empty list of strings")
    assert.has_error(function()
      c:put_bucket_cors(bucket, { { allowed_origins = { "*" }, allowed_methods = { "PATCH" } } })
    end, "objstore.client.put_bucket_cors: argument #2 (rules[1].allowed_methods[1]): must be GET, PUT, POST, "
      .. "DELETE or HEAD, got PATCH")
    assert.has_error(function()
      c:put_bucket_cors(bucket, { { allowed_origins = { "*" }, allowed_methods = { "GET" }, max_age = 1 } })
    end, "objstore.client.put_bucket_cors: argument #2 (rules[1].max_age): is not a field of a CORS rule")
  end)
end)

describe("bucket CORS request shape for OSS", function()
  it("writes OSS's CORSConfiguration (no namespace, no ID, ResponseVary) with Content-MD5", function()
    local c = objstore.new{ provider = "oss", region = "cn-hangzhou", access_key = "ak", secret_key = "sk",
      transport = { request = function() error("no request may be sent") end } }
    local rules = { { allowed_origins = { "*" }, allowed_methods = { "PUT", "POST" }, allowed_headers = { "*" },
      expose_headers = { "ETag", "x-oss-request-id" }, max_age_seconds = 100 } }
    local req = assert(c:prepare("put_bucket_cors", "objstore-shape", rules, { response_vary = true }))
    assert.equals("PUT", req.method)
    assert.equals("https://objstore-shape.oss-cn-hangzhou.aliyuncs.com/?cors", req.url)
    assert.truthy(req.headers["Content-MD5"])
    assert.is_nil(req.body:find("xmlns", 1, true))
    assert.truthy(req.body:find("<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>"
      .. "<AllowedMethod>POST</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
      .. "<ExposeHeader>x-oss-request-id</ExposeHeader><MaxAgeSeconds>100</MaxAgeSeconds></CORSRule>"
      .. "<ResponseVary>true</ResponseVary></CORSConfiguration>", 1, true), req.body)
    local parsed = assert(xml.parse(req.body))
    assert.equals(100, parsed.cors_rule[1].max_age_seconds)
    assert.has_error(function() c:prepare("put_bucket_cors", "objstore-shape", { { id = "x", allowed_origins = { "*" },
      allowed_methods = { "GET" } } }) end)
  end)
end)
