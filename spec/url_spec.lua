-- One URL module (issue 20): objstore.url parses every URL objstore reads
-- (endpoints, the ngx transport's request URLs and proxy, credential URLs,
-- presigned forms) and encodes and decodes every query, so they all read
-- a URL the same way.
local url = require "objstore.url"
local endpoint = require "objstore.engine.endpoint"
local fetch = require "objstore.credentials.fetch"
local metadata = require "objstore.credentials.metadata"

describe("objstore.url", function()
  it("splits an absolute URL into its parts, as written", function()
    local p = assert(url.parse("HTTP://User:pw@Host.Example:8080/a%20b/c?x=1&y#frag?z"))
    assert.same({ scheme = "http", userinfo = "User:pw", host = "Host.Example", port = 8080, path = "/a%20b/c",
      query = "x=1&y", fragment = "frag?z", authority = "User:pw@Host.Example:8080" }, p)
    p = assert(url.parse("https://[::1]:9000"))
    assert.same({ scheme = "https", host = "::1", ipv6 = true, port = 9000, path = "", authority = "[::1]:9000" }, p)
    assert.equals("[::1]:9000", url.hostport(p))
    assert.equals("h", url.hostport(assert(url.parse("https://h:443/"))))
    -- "?" and "#" with nothing after them are kept apart from none at all
    assert.equals("", url.parse("http://h/?").query)
    assert.is_nil(url.parse("http://h/").query)
    assert.equals("", url.parse("http://h#").fragment)
  end)

  it("takes the last @ of the authority as the end of the user information", function()
    local p = assert(url.parse("http://127.0.0.1@evil.example/creds"))
    assert.equals("127.0.0.1", p.userinfo)
    assert.equals("evil.example", p.host)
    p = assert(url.parse("http://a@b@evil.example/"))
    assert.equals("a@b", p.userinfo)
    assert.equals("evil.example", p.host)
    -- a "@" after the authority is no user information
    p = assert(url.parse("http://evil.example#@127.0.0.1/"))
    assert.is_nil(p.userinfo)
    assert.equals("evil.example", p.host)
  end)

  it("refuses what is not an absolute URL with a host and a valid port", function()
    for u, why in pairs{ ["127.0.0.1/x"] = "not an absolute URL", ["http://"] = "no host", ["http:///x"] = "no host",
      ["http://h:"] = "malformed port", ["http://h:80x"] = "malformed port", ["http://h:0"] = "port out of range",
      ["http://h:65536"] = "port out of range", ["http://[zz]/"] = "malformed IPv6 host",
      ["http://[::1%25eth0]/"] = "malformed IPv6 host", ["http://u@:80/"] = "no host" } do
      local p, err = url.parse(u)
      assert.is_nil(p, u)
      assert.matches(why, err, 1, true)
    end
    assert.is_nil(url.parse(5))
  end)

  it("encodes query tables sorted, and decodes query strings in order", function()
    assert.equals("", url.encode_query(nil))
    assert.equals("a&b=x%20y&c=%2F", url.encode_query{ c = "/", b = "x y", a = true, d = false })
    assert.equals("k=2&uploads", url.encode_query{ { "uploads", true }, { "k", 2 } })
    assert.same({ { "a", "1 2" }, { "b", true }, { "c", "" }, { "d/", "/" } },
      url.decode_query("a=1%202&b&c=&&d%2F=%2F"))
    assert.same({ { "a", "1%202" }, { "b", "" } }, url.decode_query("a=1%202&b", true))
    assert.same({}, url.decode_query(nil))
    assert.equals("Action=AssumeRole&RoleSessionName=a+b%2Fc", url.encode_form{ { "Action", "AssumeRole" },
      { "RoleSessionName", "a b/c" } })
    -- what encode_query writes, decode_query reads back
    local q = { ["x y"] = "1&2=3", plain = "v", flag = true }
    local back = {}
    for _, kv in ipairs(url.decode_query(url.encode_query(q))) do back[kv[1]] = kv[2] end
    assert.same(q, back)
  end)
end)

describe("the modules that read URLs through objstore.url", function()
  it("endpoint.parse keeps its rules and messages", function()
    local ep = assert(endpoint.parse("HTTPS://S3.Example.COM:443/"))
    assert.same({ scheme = "https", host = "s3.example.com", port = 443, hostport = "s3.example.com",
      url = "https://s3.example.com" }, ep)
    ep = assert(endpoint.parse("http://[::1]:7480"))
    assert.same({ scheme = "http", host = "[::1]", port = 7480, hostport = "[::1]:7480", url = "http://[::1]:7480" },
      ep)
    assert.equals("https://minio.local:9000", assert(endpoint.parse("minio.local:9000")).url)
    for u, why in pairs{ ["ftp://h"] = "scheme must be http or https", ["http://h/x"] = "must not have a path",
      ["http://h?x"] = "must not have a path",
      ["http://h:99999"] = "invalid port", ["http://h:x"] = "invalid port",
      ["http://user@h"] = "no valid host", ["http://h_x"] = "no valid host", ["http://"] = "is not a URL",
      ["http://:80"] = "no valid host",
      ["a b"] = "is not a URL", [""] = "is not a URL" } do
      local r, err = endpoint.parse(u)
      assert.is_nil(r, u)
      assert.matches(why, err, 1, true)
    end
  end)

  it("credential URLs split into an endpoint and a request", function()
    local base, fields = fetch.split_url("http://169.254.169.254/latest/meta-data/iam/x%2By?a=1&b")
    assert.equals("http://169.254.169.254", base)
    assert.same({ bucket = "latest", key = "meta-data/iam/x+y", query = { { "a", "1" }, { "b", true } } }, fields)
    assert.is_nil(fetch.split_url("169.254.169.254/latest"))
    -- the container-credentials check stays strict (a port out of range is
    -- now refused here too, before any request)
    for _, u in ipairs{ "http://127.0.0.1\\@evil.example/", "http://@127.0.0.1/", "http://127.0.0.1:/x",
      "http://127.0.0.1:99999/", "http://[::1%25eth0]/" } do
      assert.is_false(metadata.container_url_allowed(u), u)
    end
    assert.is_true(metadata.container_url_allowed("HTTP://[::1]:9000/x"))
  end)
end)
