-- objstore.front.aws_chunked: decoding and verifying aws-chunked bodies.
-- The S3 doc example (chunked-upload.json) is fed in pieces of several
-- sizes; the trailer variants are built with the C signer's own chunk and
-- trailer signatures, an implementation independent of the decoder's.
local sigv4 = require "objstore.front.sigv4"
local aws_chunked = require "objstore.front.aws_chunked"
local signer = require "objstore.engine.signer"
local checksum = require "objstore.checksum"
local errors = require "objstore.errors"
local common = require "vectors.common"
local cjson = require "cjson"

local function load_json(path)
  local f = assert(io.open(path, "rb"))
  local d = cjson.decode(f:read("*a"))
  f:close()
  return d
end

local V = load_json("spec/fixtures/vectors/s3-examples/chunked-upload.json").cases[1]
local T = common.parse_time(V.datetime)
local function lookup(ak)
  if ak == V.credentials.access_key then return V.credentials.secret_key end
end

--- The vector's request as its client sent it.
local function vector_auth()
  local h = common.headers_array(V.request.headers)
  h[#h + 1] = { "Authorization", V.expected.authorization }
  local auth, err = sigv4.verify({ method = V.request.method, path = V.request.path, query = V.request.query,
    headers = h, now = T }, lookup, { region = V.region })
  assert(auth, tostring(err))
  return auth
end

--- The body per the vector's chunk_wire_format: hex size ";chunk-signature=" sig CRLF data CRLF.
local function vector_body(chunks)
  local parts, payload = {}, {}
  for _, c in ipairs(chunks or V.expected.chunks) do
    local data = string.rep(c.byte, c.size)
    payload[#payload + 1] = data
    parts[#parts + 1] = string.format("%x", c.size) .. ";chunk-signature=" .. c.signature .. "\r\n" .. data .. "\r\n"
  end
  return table.concat(parts), table.concat(payload)
end

--- Feeds `body` in pieces of `size` bytes; returns the decoded bytes and
-- the first error (and how many bytes were out before it).
local function feed_all(dec, body, size)
  local out = {}
  for i = 1, #body, size do
    local data, err = dec:feed(body:sub(i, i + size - 1))
    if not data then return table.concat(out), err end
    out[#out + 1] = data
  end
  local res, err = dec:finish()
  if not res then return table.concat(out), err end
  return table.concat(out), nil, res
end

describe("front.aws_chunked on the S3 streaming example", function()
  local body, payload = vector_body()

  it("the verified request carries what the decoder needs", function()
    local auth = vector_auth()
    assert.equals("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", auth.payload)
    assert.equals(V.expected.seed_signature, auth.seed_signature)
    assert.equals(66560, auth.decoded_content_length)
    assert.equals(#body, V.expected.total_content_length)
    -- the aws-c-auth trailer signature, from the same chain
    local lines = {}
    for i, t in ipairs(V.trailer_extension.trailing_headers) do lines[i] = t[1] .. ":" .. t[2] .. "\n" end
    assert.equals(V.trailer_extension.expected_signature, auth.chunk_signer:trailer(
      V.trailer_extension.previous_signature, checksum.sha256_hex(table.concat(lines))))
    assert.equals("objstore.front.sigv4 chunk signer", tostring(auth.chunk_signer))
  end)

  for _, size in ipairs{ 1, 7, 8192, 65539, #body } do
    it("decodes and verifies every chunk, fed " .. size .. " bytes at a time", function()
      local dec = aws_chunked.new(vector_auth())
      local got, err, res = feed_all(dec, body, size)
      assert.is_nil(err, tostring(err))
      assert.equals(#payload, #got)
      assert.is_true(got == payload)
      assert.same({ length = 66560, trailers = {}, chunks = 3 }, res)
    end)
  end

  it("refuses a flipped payload byte before returning that chunk", function()
    local first = body:find("\r\n", 1, true) + 2                  -- first chunk's data
    local second = body:find("\r\n", first + 65536 + 2, true) + 2  -- second chunk's data
    for _, at in ipairs{ first + 100, second + 100 } do
      local pos = at - first
      local bad = body:sub(1, at - 1) .. "b" .. body:sub(at + 1)
      -- fed a byte at a time, so that a verified chunk has its own call:
      -- only verified chunks come out (none, or the first one whole)
      local got, err = feed_all(aws_chunked.new(vector_auth()), bad, 1)
      assert.equals("SignatureDoesNotMatch", err.code)
      assert.equals(403, err.status)
      assert.equals(pos < 65536 and 0 or 65536, #got)
      -- a call that ends in a failure returns nothing, not even verified bytes
      got, err = feed_all(aws_chunked.new(vector_auth()), bad, 100000)
      assert.equals("SignatureDoesNotMatch", err.code)
      assert.equals("", got)
    end
  end)

  it("refuses a flipped chunk signature, the final one included", function()
    for i = 1, 3 do
      local chunks = {}
      for k, c in ipairs(V.expected.chunks) do
        chunks[k] = { size = c.size, byte = c.byte, signature = c.signature }
      end
      local s = chunks[i].signature
      chunks[i].signature = s:sub(1, -2) .. (s:sub(-1) == "0" and "1" or "0")
      local _, err = feed_all(aws_chunked.new(vector_auth()), (vector_body(chunks)), 1000)
      assert.equals("SignatureDoesNotMatch", err.code)
      assert.equals(i, err.chunk)
    end
  end)

  it("refuses a truncated body with IncompleteBody", function()
    for _, cut in ipairs{ 10, 100, 65536, #body - 3, #body - 1 } do
      local dec = aws_chunked.new(vector_auth())
      assert.is_string(dec:feed(body:sub(1, cut)))
      local res, err = dec:finish()
      assert.is_nil(res)
      assert.equals("IncompleteBody", err.code, "cut at " .. cut)
      assert.equals(err, select(2, dec:feed("x")))
    end
  end)

  it("refuses bad chunk-size lines without buffering them", function()
    local cases = {
      "zz;chunk-signature=" .. V.expected.chunks[1].signature .. "\r\n",
      "10000\r\n",
      "10000;chunk-signature=abc\r\n",
      string.rep("1", 2000),
      "fffffffffffffff;chunk-signature=" .. V.expected.chunks[1].signature .. "\r\n",
      "1000000;chunk-signature=" .. V.expected.chunks[1].signature .. "\r\n",
    }
    for _, line in ipairs(cases) do
      local dec = aws_chunked.new(vector_auth())
      local got, err = feed_all(dec, line, 64)
      assert.equals("", got)
      assert.equals("InvalidRequest", err.code, line:sub(1, 40))
      assert.is_true(#dec.rest <= 1024 + 2)
    end
    -- a long line fed a byte at a time stops at the limit, not at the end
    local dec = aws_chunked.new(vector_auth(), { max_line = 100 })
    local n = 0
    repeat
      n = n + 1
      local ok = dec:feed("1")
    until not ok or n > 10000
    assert.is_true(n <= 102)
  end)

  it("enforces S3's minimum chunk size but for the last chunk", function()
    local auth = vector_auth()
    local s = assert(signer.new{ access_key = V.credentials.access_key, secret_key = V.credentials.secret_key,
      region = V.region })
    local prev, parts = auth.seed_signature, {}
    for _, d in ipairs{ "abc", "defgh", "" } do
      local sig = s:chunk_signature(T, prev, d)
      parts[#parts + 1] = string.format("%x;chunk-signature=%s\r\n%s\r\n", #d, sig, d)
      prev = sig
    end
    auth.decoded_content_length = 8
    local _, err = feed_all(aws_chunked.new(auth), table.concat(parts), 5)
    assert.equals("InvalidChunkSizeError", err.code)
    local got, err2 = feed_all(aws_chunked.new(auth, { min_chunk_size = 0 }), table.concat(parts), 5)
    assert.is_nil(err2)
    assert.equals("abcdefgh", got)
  end)

  it("checks x-amz-decoded-content-length", function()
    local auth = vector_auth()
    auth.decoded_content_length = 66561
    local _, err = feed_all(aws_chunked.new(auth), body, 9000)
    assert.equals("IncompleteBody", err.code)
    auth.decoded_content_length = 1000
    local got
    got, err = feed_all(aws_chunked.new(auth), body, 9000)
    assert.equals("IncompleteBody", err.code)
    assert.equals("", got)
  end)

  it("refuses data after the end and raises on misuse", function()
    local _, err = feed_all(aws_chunked.new(vector_auth()), body .. "x", 70000)
    assert.equals("InvalidRequest", err.code)
    assert.has_error(function() aws_chunked.new({ payload = "UNSIGNED-PAYLOAD" }) end)
    assert.has_error(function() aws_chunked.new(vector_auth()):feed(nil) end)
    assert.has_error(function() aws_chunked.new(vector_auth(), { max_lien = 1 }) end)
  end)
end)

describe("front.aws_chunked trailer variants", function()
  local AK, SK, REGION = "AKIDTRAILER", "trailer/secret+key", "us-east-1"
  local NOW = 1700000000
  local s = assert(signer.new{ access_key = AK, secret_key = SK, region = REGION })

  --- A request signed by the C signer with the given payload declaration,
  -- verified: the decoder's input.
  local function auth_for(payload, trailer, decoded)
    local headers = { { "Host", "bkt.example" }, { "Content-Encoding", "aws-chunked" },
      { "x-amz-decoded-content-length", tostring(decoded) }, { "x-amz-content-sha256", payload },
      { "x-amz-trailer", trailer } }
    local add = assert(s:sign{ method = "PUT", path = "/bkt/obj", host = "bkt.example", headers = headers, time = NOW,
      payload_hash = payload })
    for k, v in pairs(add) do headers[#headers + 1] = { k, v } end
    local auth, err = sigv4.verify({ method = "PUT", path = "/bkt/obj", query = "", headers = headers, now = NOW },
      function(ak) return ak == AK and SK or nil end, { region = REGION })
    assert(auth, tostring(err))
    return auth
  end

  local DATA = { string.rep("x", 9000), string.rep("y", 8192), "tail" }

  local function signed_trailer_body(auth, trailer_value, tamper_sig)
    local prev, parts = auth.seed_signature, {}
    for _, d in ipairs(DATA) do
      local sig = s:chunk_signature(NOW, prev, d)
      parts[#parts + 1] = string.format("%x;chunk-signature=%s\r\n%s\r\n", #d, sig, d)
      prev = sig
    end
    local final = s:chunk_signature(NOW, prev, "")
    parts[#parts + 1] = "0;chunk-signature=" .. final .. "\r\n"
    local tsig = s:trailer_signature(NOW, final, { { "x-amz-checksum-crc32c", trailer_value } })
    if tamper_sig then tsig = tsig:sub(1, -2) .. (tsig:sub(-1) == "0" and "1" or "0") end
    parts[#parts + 1] = "x-amz-checksum-crc32c:" .. trailer_value .. "\r\n"
      .. "x-amz-trailer-signature:" .. tsig .. "\r\n\r\n"
    return table.concat(parts)
  end

  local payload = table.concat(DATA)
  local crc = checksum.crc32c_base64(payload)

  it("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: chunks, checksum and trailer signature", function()
    local auth = auth_for("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "x-amz-checksum-crc32c", #payload)
    for _, size in ipairs{ 1, 7, 100000 } do
      local got, err, res = feed_all(aws_chunked.new(auth), signed_trailer_body(auth, crc), size)
      assert.is_nil(err, tostring(err))
      assert.is_true(got == payload)
      assert.equals(crc, res.trailers["x-amz-checksum-crc32c"])
    end
    local _, err = feed_all(aws_chunked.new(auth), signed_trailer_body(auth, crc, true), 100)
    assert.equals("SignatureDoesNotMatch", err.code)
    -- a wrong checksum, correctly signed: the data does not match it
    _, err = feed_all(aws_chunked.new(auth), signed_trailer_body(auth, "AAAAAA=="), 100)
    assert.equals("BadDigest", err.code)
    assert.equals(400, err.status)
  end)

  local function unsigned_body(trailers, data)
    local parts = {}
    for _, d in ipairs(data or DATA) do parts[#parts + 1] = string.format("%x\r\n%s\r\n", #d, d) end
    parts[#parts + 1] = "0\r\n" .. trailers .. "\r\n"
    return table.concat(parts)
  end

  it("STREAMING-UNSIGNED-PAYLOAD-TRAILER: the trailer checksum decides", function()
    local auth = auth_for("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32c", #payload)
    local got, err, res = feed_all(aws_chunked.new(auth), unsigned_body("x-amz-checksum-crc32c:" .. crc .. "\r\n"), 3)
    local _
    assert.is_nil(err, tostring(err))
    assert.is_true(got == payload)
    assert.equals(crc, res.trailers["x-amz-checksum-crc32c"])
    _, err = feed_all(aws_chunked.new(auth), unsigned_body("x-amz-checksum-crc32c:" .. crc .. "\r\n",
      { DATA[1], DATA[2]:sub(2) .. "z", DATA[3] }), 3)
    assert.equals("BadDigest", err.code)
    _, err = feed_all(aws_chunked.new(auth), unsigned_body(""), 3)
    assert.equals("MalformedTrailerError", err.code)
    _, err = feed_all(aws_chunked.new(auth), unsigned_body("x-amz-checksum-sha256:abc=\r\n"), 3)
    assert.equals("MalformedTrailerError", err.code)
    _, err = feed_all(aws_chunked.new(auth), unsigned_body("x-amz-checksum-crc32c:" .. crc .. "\r\n"
      .. string.rep("y", 2000) .. "\r\n"), 3)
    assert.equals("InvalidRequest", err.code)
  end)

  for _, alg in ipairs{ "crc32", "crc32c", "crc64nvme", "sha1", "sha256" } do
    it("checks an x-amz-checksum-" .. alg .. " trailer", function()
      local name = "x-amz-checksum-" .. alg
      local auth = auth_for("STREAMING-UNSIGNED-PAYLOAD-TRAILER", name, #payload)
      local h = checksum.new(alg)
      h:update(payload)
      local value = h:base64digest()
      local _, err, res = feed_all(aws_chunked.new(auth), unsigned_body(name .. ":" .. value .. "\r\n"), 4096)
      assert.is_nil(err, tostring(err))
      assert.equals(value, res.trailers[name])
      _, err = feed_all(aws_chunked.new(auth), unsigned_body(name .. ":" .. value:sub(2) .. "A\r\n"), 4096)
      assert.equals("BadDigest", err.code)
      assert.is_true(errors.is(err))
    end)
  end
end)
