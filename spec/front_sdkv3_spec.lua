-- objstore.front against @aws-sdk/client-s3 v3: spec/support/sdkv3_front.js
-- captures the SDK's requests on 127.0.0.1 (an upload streamed as
-- aws-chunked with STREAMING-UNSIGNED-PAYLOAD-TRAILER and a CRC32 trailer,
-- plain PUTs, UploadPart, ListObjectsV2, GetObject); each is verified with
-- the time the SDK signed at, its body decoded and checked, and a tampered
-- copy refused. The SDK is one of package.json's devDependencies
-- (servers.node_package runs `npm ci` when node_modules lacks it).
local sigv4 = require "objstore.front.sigv4"
local aws_chunked = require "objstore.front.aws_chunked"
local common = require "vectors.common"
local servers = require "servers"
local cjson = require "cjson"

local AK, SK = "AKIDSDKV3", "sdk/v3+secret"

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function incoming(r)
  local path, query = r.target:match("^([^?]*)%??(.*)$")
  local date
  for _, h in ipairs(r.headers) do
    if h[1]:lower() == "x-amz-date" then date = h[2] end
  end
  return { method = r.method, path = path, query = query, headers = r.headers, now = common.parse_time(date) }
end

local function lookup(ak)
  if ak == AK then return SK end
end

describe("front verifies @aws-sdk/client-s3 v3 requests", function()
  servers.node_package("@aws-sdk/client-s3")
  -- bounded: a client that never finishes must not hold the run
  local p = assert(io.popen("timeout 120 node spec/support/sdkv3_front.js 2>/dev/null"))
  local captured = cjson.decode(p:read("*a"))
  p:close()

  it("captured the five requests", function()
    assert.equals(5, #captured)
  end)

  it("a streamed upload: STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer", function()
    local r = captured[1]
    local auth, err = sigv4.verify(incoming(r), lookup, { region = "us-east-1" })
    assert(auth, tostring(err))
    assert.equals("STREAMING-UNSIGNED-PAYLOAD-TRAILER", auth.payload)
    assert.equals("x-amz-checksum-crc32", auth.trailer)
    assert.equals(70000, auth.decoded_content_length)
    local body = unhex(r.body_hex)
    for _, size in ipairs{ 1, 4096, #body } do
      local dec = aws_chunked.new(auth)
      local out = {}
      for i = 1, #body, size do out[#out + 1] = assert(dec:feed(body:sub(i, i + size - 1))) end
      local res = assert(dec:finish())
      assert.is_true(table.concat(out) == string.rep("z", 70000))
      assert.is_string(res.trailers["x-amz-checksum-crc32"])
    end
    -- one payload byte changed: the trailer checksum no longer matches
    local at = body:find("zzz", 1, true) + 10
    local dec = aws_chunked.new(auth)
    local _, e = dec:feed(body:sub(1, at - 1) .. "y" .. body:sub(at + 1))
    if not e then _, e = dec:finish() end
    assert.equals("BadDigest", e.code)
  end)

  it("the other requests verify, their bodies match, and tampering is refused", function()
    for i = 2, #captured do
      local r = captured[i]
      local req = incoming(r)
      local auth, err = sigv4.verify(req, lookup, { region = "us-east-1" })
      assert(auth, r.target .. ": " .. tostring(err))
      assert.is_true(sigv4.payload_checker(auth):update(unhex(r.body_hex)):finish())
      local _, e = sigv4.payload_checker(auth):update(unhex(r.body_hex) .. "x"):finish()
      assert.equals("XAmzContentSHA256Mismatch", e.code)
      req.path = req.path .. "x"
      _, e = sigv4.verify(req, lookup, { region = "us-east-1" })
      assert.equals("SignatureDoesNotMatch", e.code)
    end
  end)
end)
