-- objstore.engine.signer: behaviour and bad input. The published vectors run in
-- spec/support/run_vectors.lua; these specs cover what vectors do not.
local signer = require "objstore.engine.signer"
local core = require "objstore.core"
local common = require "vectors.common"
local cjson = require "cjson"

local AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
local TOKEN = "FQoGZXIvYXdzEXAMPLEtokenSECRET"
local T = 1440938160 -- 2015-08-30T12:36:00Z

local function new(extra)
  local o = { access_key = AK, secret_key = SK, region = "us-east-1" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return signer.new(o)
end

local function raises_without_secret(fn, pattern)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  err = tostring(err)
  assert.is_nil(err:find(SK, 1, true), "secret leaked into: " .. err)
  assert.is_nil(err:find(TOKEN, 1, true), "token leaked into: " .. err)
  if pattern then assert.matches(pattern, err) end
  return err
end

describe("signer.new", function()
  local OPT = "objstore%.engine%.signer%.new: argument #1 %(opts%.?"

  it("rejects unknown options by name", function()
    raises_without_secret(function() new{ secret = "x" } end,
      OPT .. "secret%): is not an option of engine%.signer%.new")
    -- of several, the first in sorted order, whatever order pairs() gives
    raises_without_secret(function() new{ servise = "y", regoin = "x" } end, OPT .. "regoin%): is not an option")
  end)

  it("requires credentials and names the missing one", function()
    raises_without_secret(function() signer.new{ access_key = AK } end, OPT .. "secret_key%): is required")
    raises_without_secret(function() signer.new{ secret_key = SK } end, OPT .. "access_key%): is required")
    raises_without_secret(function() signer.new{ access_key = AK, secret_key = "" } end,
      OPT .. "secret_key%): must not be empty")
  end)

  it("rejects wrong types and unknown algorithms", function()
    raises_without_secret(function() new{ region = 5 } end, OPT .. "region%): must be a string, got number")
    raises_without_secret(function() new{ algorithm = "aws2" } end, OPT .. "algorithm%): unknown algorithm 'aws2'")
    raises_without_secret(function() signer.new("aws4") end, OPT .. "%): must be a table, got string")
    raises_without_secret(function() new{ normalize_path = "yes" } end,
      OPT .. "normalize_path%): must be a boolean, got string")
    raises_without_secret(function() new{ session_token = TOKEN .. "\n" } end, OPT .. "session_token%): contains")
  end)

  it("blames the caller's line", function()
    -- not through new(): Lua 5.1 loses the position across its tail call
    local err = raises_without_secret(function() signer.new{ access_key = AK, secret_key = SK, wat = 1 } end)
    assert.matches("^spec/signer_spec%.lua:%d+: objstore%.engine%.signer%.new: ", err)
  end)

  it("never shows the secret or token in tostring", function()
    local s = new{ session_token = TOKEN }
    local str = tostring(s)
    assert.matches("aws4", str)
    assert.matches(AK, str, 1, true)
    assert.is_nil(str:find(SK, 1, true))
    assert.is_nil(str:find(TOKEN, 1, true))
  end)
end)

describe("signer:sign", function()
  it("returns the headers to add and leaves the request alone", function()
    local s = new()
    local req = { method = "GET", url = "https://examplebucket.s3.amazonaws.com/photos/a.jpg", time = T,
      headers = { Range = "bytes=0-9" } }
    local h = assert(s:sign(req))
    assert.equals("20150830T123600Z", h["X-Amz-Date"])
    assert.equals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", h["x-amz-content-sha256"])
    assert.matches("^AWS4%-HMAC%-SHA256 Credential=AKIDEXAMPLE/20150830/us%-east%-1/s3/aws4_request, "
      .. "SignedHeaders=host;range;x%-amz%-content%-sha256;x%-amz%-date, Signature=%x+$", h.Authorization)
    assert.same({ Range = "bytes=0-9" }, req.headers)
    assert.is_nil(req.Authorization)
  end)

  it("hashes a string body into the payload hash", function()
    local s = new()
    local d = s:details({ method = "PUT", url = "https://b.s3.amazonaws.com/k", body = "Welcome to Amazon S3.",
      time = T }, "header")
    assert.matches("\n44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072$", d.canonical_request)
  end)

  it("adds and signs the session token", function()
    local s = new{ session_token = TOKEN }
    local d = s:details({ method = "GET", url = "https://b.s3.amazonaws.com/k", time = T }, "header")
    assert.equals(TOKEN, d.headers["X-Amz-Security-Token"])
    assert.matches("x%-amz%-security%-token:", d.canonical_request)
  end)

  it("is deterministic and the signing-key cache stays correct across dates and regions", function()
    local s = new()
    local seen = {}
    for day = 0, 9 do
      for _, region in ipairs{ "us-east-1", "eu-west-1", "ap-south-1" } do
        local req = { method = "GET", url = "https://b.s3.amazonaws.com/k", time = T + day * 86400, region = region }
        local a = s:sign(req).Authorization
        local fresh = new():sign(req).Authorization
        assert.equals(fresh, a)
        assert.is_nil(seen[a])
        seen[a] = true
      end
    end
  end)

  it("rejects bad request fields with the field's name", function()
    local s = new()
    local SIGN = "objstore%.core%.signer%.sign: argument #1 "
    raises_without_secret(function() s:sign{ method = "GET", url = "https://b/k" } end,
      SIGN .. "%(req%.time%): is required")
    raises_without_secret(function() s:sign{ method = "GET", url = "https://b/k", time = "now" } end,
      SIGN .. "%(req%.time%): must be a number, got string")
    raises_without_secret(function() s:sign{ url = "https://b/k", time = T } end,
      SIGN .. "%(req%.method%): is required")
    raises_without_secret(function() s:sign{ method = "GET", url = "b/k", time = T } end,
      SIGN .. "%(req%.url%): must be an absolute URL")
    raises_without_secret(function() s:sign{ method = "GET", host = "b", key = "a\0b", time = T } end,
      SIGN .. "%(req%.key%): contains a NUL")
    raises_without_secret(function() s:sign{ method = "GET", host = "b", key = "a\255b", time = T } end,
      SIGN .. "%(req%.key%): is not valid UTF%-8")
    raises_without_secret(function() s:sign{ method = "GET", host = "b", key = ("k"):rep(1025), time = T } end,
      SIGN .. "%(req%.key%): is longer than 1024")
    raises_without_secret(function() s:sign{ method = "GET", host = "b", query = ("q"):rep(70000), time = T } end,
      SIGN .. "%(req%.query%): is longer than")
    raises_without_secret(function()
      s:sign{ method = "GET", host = "b", headers = { ["X-Evil"] = "a\r\nInjected: 1" }, time = T }
    end, SIGN .. "%(req%.headers%): value contains CR, LF")
    raises_without_secret(function() s:sign{ method = "GET", host = "b", headers = "x", time = T } end,
      SIGN .. "%(req%.headers%): must be a table, got string")
    raises_without_secret(function() s:sign("GET") end, SIGN .. "%(req%): table expected, got string")
    raises_without_secret(function() s:presign{ method = "GET", url = "https://b/k", time = T } end,
      "objstore%.core%.signer%.presign: argument #1 %(req%.expires%): is required to presign")
    raises_without_secret(function() s:details({ method = "GET", url = "https://b/k", time = T }, "url") end,
      "objstore%.core%.signer%.details: argument #2 %(mode%): must be 'header' or 'query', got 'url'")
    raises_without_secret(function() s:chunk_signature(-1, "x", "y") end,
      "objstore%.core%.signer%.chunk_signature: argument #1 %(time%): must be epoch seconds")
    raises_without_secret(function() s:trailer_signature(T, "x", { "x-amz-checksum-crc32" }) end,
      "objstore%.core%.signer%.trailer_signature: argument #3 %(trailers%): entry 1 must be a {name, value} pair")
    raises_without_secret(function() s:policy_signature("e30=") end,
      "objstore%.core%.signer%.policy_signature: argument #2 %(time%): is required")
    raises_without_secret(function() s:set_credentials(AK, "") end,
      "objstore%.core%.signer%.set_credentials: argument #2 %(secret_key%): must not be empty")
    raises_without_secret(function() core.signer.new("aws2") end,
      "objstore%.core%.signer%.new: argument #1 %(algorithm%): unknown algorithm 'aws2'")
    raises_without_secret(function() signer.new{ algorithm = "oss1", access_key = "a", secret_key = "b" }
      :chunk_signature(T, "x", "y") end,
      "objstore%.core%.signer%.chunk_signature: %(self%): chunk signatures exist only for aws4")
  end)

  it("returns nil, err (SigningError) for a request with no host", function()
    local h, err = new():sign{ method = "GET", path = "/k", time = T }
    assert.is_nil(h)
    assert.equals(core.error_mt, getmetatable(err))
    assert.equals("SigningError", err.code)
    assert.matches("no host", err.message)
    assert.is_false(err.retryable)
    assert.matches("^SigningError", tostring(err))
  end)

  it("refuses to be used once closed", function()
    local s = new()
    s:close()
    s:close() -- idempotent
    raises_without_secret(function() s:sign{ method = "GET", url = "https://b/k", time = T } end,
      "objstore%.core%.signer%.sign: %(self%): the signer is closed")
    raises_without_secret(function() s.sign({}, { method = "GET", url = "https://b/k", time = T }) end,
      "objstore%.core%.signer%.sign: %(self%): objstore%.signer expected, got table")
  end)
end)

describe("signer: the date of each signature", function()
  it("is the request's time whatever the times signed before (same second, same day, other days)", function()
    local s = new()
    -- in order: the second cached, the same day's other seconds, the day
    -- before and after, midnight, the last second of a day, back again
    local times = { T, T, T + 1, T + 59, T + 3600 * 11 + 3599, T - 45360, T - 45361, T + 41039, T + 41040,
      T - 86400, T + 86400 * 400 + 7, T, 0, 59, 86399, 86400, 253402300799, T + 1 }
    for _, t in ipairs(times) do
      local d = assert(s:details({ method = "GET", url = "https://b.s3.amazonaws.com/k", time = t }))
      local want = os.date("!%Y%m%dT%H%M%SZ", t)
      assert.equals(want, d.string_to_sign:match("\n(%d+T%d+Z)\n"), "time " .. t)
      assert.equals(want, d.headers["X-Amz-Date"], "time " .. t)
      assert.equals(want:sub(1, 8), d.authorization:match("Credential=[^/]+/(%d+)/"), "time " .. t)
    end
  end)
end)

describe("signer:presign", function()
  it("limits expiry to 7 days", function()
    local s = new()
    local req = { method = "GET", url = "https://b.s3.amazonaws.com/k", time = T, expires = 604801 }
    local url, err = s:presign(req)
    assert.is_nil(url)
    assert.equals("SigningError", err.code)
    assert.matches("7 days", err.message)
    req.expires = 604800
    assert.is_string((s:presign(req)))
    req.expires = 0
    assert.is_nil((s:presign(req)))
    req.expires = nil
    raises_without_secret(function() s:presign(req) end, "req.expires")
  end)

  it("builds the path from bucket and key, virtual-host or path style", function()
    local s = new()
    local url = s:presign{ method = "GET", host = "b.s3.amazonaws.com", key = "a b/c+d", time = T, expires = 60 }
    assert.matches("^https://b%.s3%.amazonaws%.com/a%%20b/c%%2Bd%?X%-Amz%-Algorithm=", url)
    url = s:presign{ method = "GET", scheme = "http", host = "127.0.0.1:7480", bucket = "bkt", key = "x/y",
      addressing = "path", time = T, expires = 60 }
    assert.matches("^http://127%.0%.0%.1:7480/bkt/x/y%?", url)
  end)

  it("matches boto3's presigned URLs for awkward keys", function()
    local keys = { "plain.txt", "with space.txt", "unicode-\195\169\228\184\173.bin", "plus+sign", "percent%41",
      "q?mark", "hash#tag", "eq=amp&", "double//slash", "trailing/", "tilde~star*(paren)!", "a/b/c.d" }
    local reqs = {}
    for i, k in ipairs(keys) do reqs[i] = { method = (i % 2 == 0) and "PUT" or "GET", bucket = "bkt", key = k } end
    local input = cjson.encode{ access_key = AK, secret_key = SK, region = "us-east-1",
      endpoint = "http://127.0.0.1:7480", time = T, expires = 900, requests = reqs }
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "w"))
    f:write(input)
    f:close()
    local p = assert(io.popen("/usr/bin/python3 spec/support/boto3_presign.py < " .. tmp))
    local out = p:read("*a")
    p:close()
    os.remove(tmp)
    local urls = cjson.decode(out)
    assert.equals(#keys, #urls)
    local s = new()
    for i, r in ipairs(reqs) do
      local mine = s:presign{ method = r.method, scheme = "http", host = "127.0.0.1:7480", bucket = r.bucket,
        key = r.key, addressing = "path", time = T, expires = 900 }
      assert.is_true(common.urls_equal(mine, urls[i]),
        "key " .. r.key .. "\n mine:  " .. mine .. "\n boto3: " .. urls[i])
    end
  end)
end)

describe("oss signers", function()
  it("oss1 header auth adds Date when none is given", function()
    local s = signer.new{ algorithm = "oss1", access_key = "ak", secret_key = "sk" }
    local h = assert(s:sign{ method = "GET", url = "http://b.oss-cn-hangzhou.aliyuncs.com/k", bucket = "b", key = "k",
      time = 1702743657 })
    assert.equals("Sat, 16 Dec 2023 16:20:57 GMT", h.Date)
    assert.matches("^OSS ak:[%w+/=]+$", h.Authorization)
  end)

  it("oss4 requires a region", function()
    local s = signer.new{ algorithm = "oss4", access_key = "ak", secret_key = "sk" }
    local h, err = s:sign{ method = "GET", url = "http://b.oss-cn-hangzhou.aliyuncs.com/k", bucket = "b",
      time = 1702743657 }
    assert.is_nil(h)
    assert.equals(core.error_mt, getmetatable(err))
    assert.equals("SigningError", err.code)
    assert.matches("region is required", err.message)
  end)

  it("oss4 signs the STS token in the query of a presigned URL", function()
    local s = signer.new{ algorithm = "oss4", access_key = "ak", secret_key = "sk", session_token = TOKEN,
      region = "cn-hangzhou" }
    local url = assert(s:presign{ method = "GET", scheme = "https", host = "b.oss-cn-hangzhou.aliyuncs.com",
      bucket = "b", key = "k", time = 1702743657, expires = 60 })
    assert.matches("x%-oss%-security%-token=", url)
    local d = s:details({ method = "GET", host = "b.oss-cn-hangzhou.aliyuncs.com", bucket = "b", key = "k",
      time = 1702743657, expires = 60 }, "query")
    assert.matches("x%-oss%-security%-token=", d.canonical_request)
  end)
end)
