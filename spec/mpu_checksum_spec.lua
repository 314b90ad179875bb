-- The flexible checksum (opts.checksum) and SSE in the C transfer state:
-- core.mpu keeps each part's checksum and whether the server verified it,
-- the checkpoint record (format 3) carries both across a crash, C writes
-- them into the CompleteMultipartUpload body, and a state made for
-- SSE-KMS/SSE-C (etag_md5 = false) never compares ETags with MD5s, so its
-- checkpoint resumes. Against rgw for the transfers (rgw 16 echoes no
-- checksum, so checksum_policy = "send" gives verified = false there).
local core = require "objstore.core"
local checksum = require "objstore.checksum"
local xml = require "objstore.xml"
local servers = require "servers"

local b64 = core.encode.base64_encode
local MiB = 1024 * 1024
local P = 5 * MiB

math.randomseed(os.time() + math.floor(os.clock() * 1e6))

local HEADER = { kind = "upload", bucket = "b", key = "k", upload_id = "u-1", part_size = 1024, object_size = 3000,
  file_size = 3000, file_mtime = 1, file_inode = 2 }

local function state(extra)
  local o = { size = 3000, part_size = 1024 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(core.mpu.new(o))
end

describe("flexible checksums in the multipart state (core.mpu)", function()
  it("records each part's checksum and verified flag, and costs nothing until one is recorded", function()
    local m = state()
    local before = select(4, m:info())
    assert(m:done(1, nil, checksum.md5("a")))
    assert.is_nil(m:part(1).checksum)
    local v = checksum.digest("crc32c", "a")
    m:checksum(1, "crc32c", v, true)
    local p = m:part(1)
    assert.equals("crc32c", p.checksum_algorithm)
    assert.equals(v, p.checksum)
    assert.is_true(p.checksum_verified)
    assert.is_true(select(4, m:info()) > before)
    m:checksum(1, nil)
    assert.is_nil(m:part(1).checksum)
    local big = assert(core.mpu.new{ size = 10000 * P, part_size = P })
    assert.is_true(select(4, big:info()) < 1024 * 1024)
  end)

  it("refuses a checksum of the wrong size or an unknown algorithm", function()
    local m = state()
    assert.has_error(function() m:checksum(1, "sha256", "short", true) end)
    assert.has_error(function() m:checksum(1, "md5", ("x"):rep(16), true) end)
    assert.has_error(function() m:complete_body(nil, "md5") end)
  end)

  it("writes Checksum<ALG> into the Complete body only when asked, and only when every part has one", function()
    local m = state()
    local sums = {}
    for n = 1, 3 do
      assert(m:done(n, '"etag-' .. n .. '"'))
      sums[n] = checksum.digest("sha256", "part " .. n)
    end
    m:checksum(1, "sha256", sums[1], true)
    m:checksum(2, "sha256", sums[2], false)
    local _, err = m:complete_body(nil, "sha256")
    assert.matches("part 3 has no sha256 checksum", err.message)
    local plain = assert(m:complete_body(nil))
    assert.is_nil(plain:find("Checksum", 1, true))
    m:checksum(3, "sha256", sums[3], true)
    local body = assert(m:complete_body("http://s3.amazonaws.com/doc/2006-03-01/", "sha256"))
    local doc = assert(xml.parse_tree(body))
    assert.equals("CompleteMultipartUpload", doc.name)
    local parts = {}
    for _, part in ipairs(doc) do
      local f = {}
      for _, el in ipairs(part) do f[el.name] = el.text end
      parts[#parts + 1] = f
    end
    assert.equals(3, #parts)
    for n = 1, 3 do
      assert.equals(tostring(n), parts[n].PartNumber)
      assert.equals('"etag-' .. n .. '"', parts[n].ETag)
      assert.equals(b64(sums[n]), parts[n].ChecksumSHA256)
    end
    -- Another algorithm than the parts': refused, not mislabelled.
    local _, aerr = m:complete_body(nil, "crc32")
    assert.matches("has no crc32 checksum", aerr.message)
  end)

  it("keeps checksum and verified flag across a checkpoint (format 3 records of RECORD_SIZE bytes)", function()
    local dir = servers.tmpdir()
    local path = dir .. "/cp"
    local m = state()
    local ck = assert(core.mpu.checkpoint(path))
    assert(ck:reset(HEADER))
    local algs = { "crc32", "crc64nvme", "sha1" }
    for n = 1, 3 do
      assert(m:done(n, nil, checksum.md5("p" .. n)))
      if n < 3 then m:checksum(n, algs[n], checksum.digest(algs[n], "p" .. n), n == 1) end
      assert(ck:append(m, n))
    end
    ck:close()
    local f = assert(io.open(path, "rb"))
    local img = f:read("*a")
    f:close()
    assert.equals(144, core.mpu.RECORD_SIZE)
    assert.equals(3, string.byte(img, 13)) -- format version, little-endian u32 after the magic
    local back = state()
    local ck2 = assert(core.mpu.checkpoint(path))
    assert.equals("resume", (ck2:load(back, HEADER)))
    ck2:close()
    local p1, p2, p3 = back:part(1), back:part(2), back:part(3)
    assert.equals("crc32", p1.checksum_algorithm)
    assert.equals(checksum.digest("crc32", "p1"), p1.checksum)
    assert.is_true(p1.checksum_verified)
    assert.equals("crc64nvme", p2.checksum_algorithm)
    assert.is_false(p2.checksum_verified)
    assert.is_nil(p3.checksum)
    assert.equals("done", p3.state)
    -- A format 2 file (records of 112 bytes) is another format: a clean start, said why.
    local v2 = img:sub(1, 12) .. "\2" .. img:sub(14)
    f = assert(io.open(path, "wb"))
    f:write(v2)
    f:close()
    local ck3 = assert(core.mpu.checkpoint(path))
    local status, why = ck3:load(state(), HEADER)
    ck3:close()
    assert.equals("foreign", status)
    assert.matches("another format version", why)
    os.execute("rm -rf " .. servers.q(dir))
  end)

  it("with etag_md5 = false (SSE-KMS/SSE-C) accepts ETags that look like another MD5, and reloads them", function()
    local dir = servers.tmpdir()
    local path = dir .. "/cp"
    local md5 = checksum.md5("bytes")
    local other = '"' .. ("ab"):rep(16) .. '"'
    local strict = state()
    local _, err = strict:done(1, other, md5)
    assert.equals("BadDigest", err.code)
    local m = state{ etag_md5 = false }
    assert(m:done(1, other, md5))
    local ck = assert(core.mpu.checkpoint(path))
    assert(ck:reset(HEADER))
    assert(ck:append(m, 1))
    ck:close()
    local back = state{ etag_md5 = false }
    local ck2 = assert(core.mpu.checkpoint(path))
    local status, _, torn = ck2:load(back, HEADER)
    ck2:close()
    assert.equals("resume", status)
    assert.is_false(torn)
    assert.equals(other, back:part(1).etag)
    os.execute("rm -rf " .. servers.q(dir))
  end)
end)

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("checksums and SSE through resumed transfers on rgw #server", function()
      local c, bucket, dir
      setup(function()
        c = servers.client(srv)
        bucket = servers.bucket_name("hm-mpusum")
        assert(c:create_bucket(bucket))
        dir = servers.tmpdir()
      end)
      teardown(function()
        servers.cleanup(c, bucket)
        os.execute("rm -rf " .. servers.q(dir))
      end)

      local function random_file(name, size)
        local path = dir .. "/" .. name
        assert(servers.sh("head -c " .. size .. " /dev/urandom > " .. servers.q(path)))
        return path, servers.read_file(path)
      end

      local function stopped(key, path, opts)
        opts.on_part = function() return false end
        local _, err = c:upload_file(bucket, key, path, opts)
        assert.equals("Aborted", err.code)
        opts.on_part = nil
      end

      it("upload_file with checksum: the checkpoint keeps part 1's crc32, the resumed upload completes", function()
        local path, data = random_file("sum", 2 * P + 1000)
        local opts = { part_size = P, concurrency = 1, checkpoint = true, checksum = "crc32",
          checksum_policy = "send" }
        stopped("sum", path, opts)
        local m = assert(core.mpu.new{ size = #data, part_size = P })
        local ck = assert(core.mpu.checkpoint(path .. ".objstore-cp"))
        local attr = require("lfs").attributes(path)
        local status = ck:load(m, { kind = "upload", bucket = bucket, key = "sum", file_size = #data,
          file_mtime = math.floor(attr.modification), file_inode = attr.ino, part_size = P, object_size = #data })
        ck:close()
        assert.equals("resume", status)
        local p1 = m:part(1)
        assert.equals("crc32", p1.checksum_algorithm)
        assert.equals(checksum.digest("crc32", data:sub(1, P)), p1.checksum)
        assert.is_false(p1.checksum_verified) -- rgw 16 echoes nothing
        local res = assert(c:upload_file(bucket, "sum", path, opts))
        assert.equals(P, res.resumed_from)
        assert.same({ algorithm = "crc32", verified = false }, res.checksum)
        assert.is_true(assert(c:get_object(bucket, "sum")).body == data)
        assert.is_nil(servers.read_file(path .. ".objstore-cp"))
      end)

      it("upload_file with SSE-KMS resumes from its checkpoint and download_file verifies it by the stored CRC",
        function()
        local path, data = random_file("kms", 2 * P + 77)
        local opts = { part_size = P, concurrency = 1, checkpoint = true, sse = "aws:kms",
          sse_kms_key_id = "testkey-1" }
        stopped("kms", path, opts)
        local res = assert(c:upload_file(bucket, "kms", path, opts))
        assert.equals(P, res.resumed_from) -- the record with a non-MD5 ETag was loaded
        assert.equals(2, res.sent)
        assert.equals("testkey-1", assert(c:head_object(bucket, "kms")).kms_key_id)
        local down = assert(c:download_file(bucket, "kms", dir .. "/kms-back", { part_size = P }))
        assert.is_true(down.verified)
        assert.is_true(servers.read_file(dir .. "/kms-back") == data)
        -- Bytes changed under the same metadata: the CRC catches it although the ETag cannot.
        local h = assert(c:head_object(bucket, "kms"))
        assert(c:put_object(bucket, "kms", data:sub(2) .. "x", { sse = "aws:kms", sse_kms_key_id = "testkey-1",
          metadata = h.metadata }))
        local _, err = c:download_file(bucket, "kms", dir .. "/kms-bad")
        assert.equals("BadDigest", err.code)
        assert.is_nil(servers.read_file(dir .. "/kms-bad"))
      end)
    end)
  end
end
