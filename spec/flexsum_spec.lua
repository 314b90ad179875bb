-- Flexible checksums (objstore.ops.flexsum): the `checksum` option sends
-- x-amz-checksum-<alg> (+ x-amz-sdk-checksum-algorithm, and
-- x-amz-checksum-algorithm on CreateMultipartUpload) as botocore computes
-- them, and never reports a checksum as verified unless the server echoed
-- it. rgw 16 and Swift s3api accept any value and echo none: there the
-- option fails with ChecksumNotVerified, or with checksum_policy = "send"
-- succeeds saying verified = false.
local objstore = require "objstore"
local core = require "objstore.core"
local servers = require "servers"

local MiB = 1024 * 1024

local function headers_of(req)
  local h = {}
  for k, v in pairs(req.headers) do h[k:lower()] = v end
  return h
end

describe("checksum option (no server)", function()
  local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "s" }

  it("computes the headers botocore computes (crc32, sha1, sha256) for a few bodies", function()
    local bodies = { "", "hello", "123456789", nil }
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    bodies[4] = table.concat(t):rep(1000)
    local py = [[
import base64, sys
from botocore.httpchecksum import Crc32Checksum, Sha1Checksum, Sha256Checksum
for body in [b'', b'hello', b'123456789', bytes(range(256)) * 1000]:
    out = []
    for C in (Crc32Checksum, Sha1Checksum, Sha256Checksum):
        c = C(); c.update(body); out.append(base64.b64encode(c.digest()).decode())
    print(' '.join(out))
]]
    local ok, out = servers.sh("/usr/bin/python3 -c " .. servers.q(py))
    assert(ok, out)
    local i = 0
    for line in out:gmatch("[^\n]+") do
      i = i + 1
      local want = {}
      for v in line:gmatch("%S+") do want[#want + 1] = v end
      for j, alg in ipairs{ "crc32", "sha1", "sha256" } do
        local h = headers_of(assert(c:prepare("put_object", "b", "k", bodies[i], { checksum = alg })))
        assert.equals(want[j], h["x-amz-checksum-" .. alg], alg .. " of body " .. i)
        assert.equals(alg:upper(), h["x-amz-sdk-checksum-algorithm"])
      end
    end
    assert.equals(4, i)
  end)

  it("computes CRC-32C and CRC-64/NVME from their check values", function()
    local function b64be(hex)
      return core.encode.base64_encode((hex:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)))
    end
    local h = headers_of(assert(c:prepare("put_object", "b", "k", "123456789", { checksum = "crc32c" })))
    assert.equals(b64be("e3069283"), h["x-amz-checksum-crc32c"])
    h = headers_of(assert(c:prepare("put_object", "b", "k", "123456789", { checksum = "crc64nvme" })))
    assert.equals(b64be("ae8b14860a799888"), h["x-amz-checksum-crc64nvme"])
    assert.equals("CRC64NVME", h["x-amz-sdk-checksum-algorithm"])
  end)

  it("hashes files, file ranges and parts the same as strings", function()
    local path = os.tmpname()
    local data = ("abcdefghij"):rep(300000)
    servers.write_file(path, data)
    for _, alg in ipairs{ "crc32c", "sha256" } do
      local want = headers_of(assert(c:prepare("put_object", "b", "k", data:sub(101, 2500100), { checksum = alg })))
      local got = headers_of(assert(c:prepare("upload_part", "b", "k", "id", 2,
        { path = path, offset = 100, length = 2500000 }, { checksum = alg })))
      assert.equals(want["x-amz-checksum-" .. alg], got["x-amz-checksum-" .. alg])
      local buf = core.buffer.new()
      buf:append(data:sub(101, 2500100))
      got = headers_of(assert(c:prepare("upload_part", "b", "k", "id", 2, buf, { checksum = alg })))
      assert.equals(want["x-amz-checksum-" .. alg], got["x-amz-checksum-" .. alg])
    end
    os.remove(path)
    local cr = headers_of(assert(c:prepare("create_multipart_upload", "b", "k", { checksum = "sha1" })))
    assert.equals("SHA1", cr["x-amz-checksum-algorithm"])
    local done = assert(c:prepare("complete_multipart_upload", "b", "k", "id",
      { { part_number = 1, etag = '"e"', checksum = "AAAAAA==" } }, { checksum = "crc32" }))
    assert.truthy(done.body:find("<Part><PartNumber>1</PartNumber><ETag>&quot;e&quot;</ETag>"
      .. "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>", 1, true), done.body)
  end)

  it("raises on misuse", function()
    local function raised(opts)
      local ok, err = pcall(c.put_object, c, "b", "k", "x", opts)
      assert.is_false(ok)
      return err
    end
    assert.matches("opts.checksum%): must be 'crc32', 'crc32c', 'crc64nvme', 'sha1' or 'sha256', got md5",
      raised{ checksum = "md5" })
    assert.matches("opts.checksum_policy%): must be 'require' %(default%) or 'send'",
      raised{ checksum = "crc32", checksum_policy = "maybe" })
    assert.matches("opts.checksum_policy%): is given without opts.checksum", raised{ checksum_policy = "send" })
    local _, err = c:put_object("b", "k", function() return nil end, { length = 0, checksum = "crc32" })
    assert.equals("InvalidArgument", err.code)
    assert.matches("a checksum needs a body that can be read twice", err.message)
  end)
end)

for _, srv in ipairs(servers.list()) do
  describe("checksum option on " .. srv.name .. " #server", function()
    local c, bucket, dir
    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("h12b-sum")
      assert(c:create_bucket(bucket))
      dir = servers.tmpdir()
    end)
    teardown(function()
      servers.cleanup(c, bucket)
      os.execute("rm -rf " .. servers.q(dir))
    end)

    it("the server stores a body whose x-amz-checksum is wrong: it does not verify them", function()
      for _, alg in ipairs{ "crc32", "crc32c", "crc64nvme", "sha1", "sha256" } do
        local wrong = headers_of(assert(c:prepare("put_object", bucket, "w", "other", { checksum = alg })))
        local r = assert(c:put_object(bucket, "wrong-" .. alg, "hello", { headers = {
          ["x-amz-checksum-" .. alg] = wrong["x-amz-checksum-" .. alg],
          ["x-amz-sdk-checksum-algorithm"] = alg:upper() } }))
        assert.truthy(r.etag, alg)
        assert.equals("hello", assert(c:get_object(bucket, "wrong-" .. alg)).body)
      end
    end)

    it("so put_object with checksum fails with ChecksumNotVerified, and 'send' says verified = false", function()
      local _, err = c:put_object(bucket, "req", "hello", { checksum = "crc32c" })
      assert.equals("ChecksumNotVerified", err.code)
      assert.matches("did not confirm the crc32c checksum sent %(no x%-amz%-checksum%-crc32c in its answer%)",
        err.message)
      assert.is_false(err.checksum.verified)
      local r = assert(c:put_object(bucket, "sent", "hello", { checksum = "sha256", checksum_policy = "send" }))
      assert.same({ algorithm = "sha256", verified = false,
        value = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=" }, r.checksum)
    end)

    it("multipart transfers: aborted with ChecksumNotVerified, or completed unverified with 'send'", function()
      local path = dir .. "/f"
      local block = {}
      for i = 1, 4096 do block[i] = string.char(i % 251) end
      servers.write_file(path, table.concat(block):rep(11 * 256 + 10))
      local _, err = c:upload_file(bucket, "mp", path, { part_size = 5 * MiB, checksum = "crc32" })
      assert.equals("ChecksumNotVerified", err.code)
      assert.equals(0, #assert(c:list_incomplete_uploads(bucket, "mp")))
      local r = assert(c:upload_file(bucket, "mp", path, { part_size = 5 * MiB, checksum = "crc32",
        checksum_policy = "send" }))
      assert.equals(3, r.parts)
      assert.same({ algorithm = "crc32", verified = false }, r.checksum)
      local f = assert(io.open(path, "rb"))
      local s = assert(c:upload_stream(bucket, "st", f, { part_size = 5 * MiB, checksum = "crc64nvme",
        checksum_policy = "send" }))
      f:close()
      assert.equals(3, s.parts)
      assert.same({ algorithm = "crc64nvme", verified = false }, s.checksum)
      f = assert(io.open(path, "rb"))
      local _, serr = c:upload_stream(bucket, "st2", f, { part_size = 5 * MiB, checksum = "sha1" })
      f:close()
      assert.equals("ChecksumNotVerified", serr.code)
      assert.equals(0, #assert(c:list_incomplete_uploads(bucket, "st2")))
    end)
  end)
end
