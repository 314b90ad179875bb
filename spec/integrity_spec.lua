-- Whole-object integrity and the C checkpoint against real servers: every
-- object objstore uploads carries its CRC-64/NVME (x-amz-meta-objstore-
-- crc64nvme, base64 of 8 big-endian bytes) and downloads check it in any
-- range layout; the checkpoint is locked, survives a torn record, and a
-- transfer killed at the moments around CreateMultipartUpload and
-- CompleteMultipartUpload leaves no orphan and re-sends nothing.
local servers = require "servers"
local core = require "objstore.core"
local checksum = require "objstore.checksum"
local lfs = require "lfs"

local MiB = 1024 * 1024
local P = 5 * MiB

local function make_file(path, n)
  assert(servers.sh(string.format("head -c %d /dev/urandom > %s", n, servers.q(path))))
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local function b64crc(data)
  return checksum.tobase64(checksum.digest("crc64nvme", data))
end

describe("multipart state (core.mpu)", function()
  it("plans 10,000 parts in one allocation and writes one fixed-size record per part", function()
    local m = assert(core.mpu.new{ size = 10000 * P, part_size = P })
    local _, _, count, bytes = m:info()
    assert.equals(10000, count)
    assert.is_true(bytes < 1024 * 1024, "state is " .. bytes .. " bytes")
    local dir = servers.tmpdir()
    local ck = assert(core.mpu.checkpoint(dir .. "/cp"))
    assert(ck:reset{ kind = "upload", bucket = "b", key = "k", upload_id = "u", part_size = P,
      object_size = 10000 * P })
    local start = ck:bytes_written()
    local md5 = ("\1"):rep(16)
    for _ = 1, 10000 do
      local n = m:next()
      assert(m:done(n, nil, md5))
      assert(ck:append(m, n))
    end
    assert.equals(10000 * core.mpu.RECORD_SIZE, ck:bytes_written() - start)
    assert.equals(10000, select(2, m:count()))
    ck:remove()
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  it("refuses a part ETag that is not its MD5, in any case", function()
    local m = assert(core.mpu.new{ size = 3, part_size = 3 })
    local md5 = checksum.md5("abc")
    local hex = checksum.tohex(md5)
    local _, err = m:done(1, '"' .. ("0"):rep(32) .. '"', md5)
    assert.equals("BadDigest", err.code)
    assert.equals(getmetatable(err), core.error_mt)
    assert(m:done(1, '"' .. hex:upper() .. '"', md5))
    assert.equals(checksum.multipart_etag({ md5 }), m:etag())
    assert.matches("<ETag>&quot;" .. hex:upper() .. "&quot;</ETag>", m:complete_body())
  end)
end)

for _, srv in ipairs(servers.list()) do
  describe("whole-object integrity on " .. srv.name .. " #server", function()
    local c, bucket, dir

    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("h12i")
      assert(c:create_bucket(bucket))
      dir = servers.tmpdir()
    end)

    teardown(function()
      servers.cleanup(c, bucket)
      servers.sh("rm -rf " .. servers.q(dir))
    end)

    it("stores the CRC on multipart and single uploads and verifies every download of them", function()
      local data = make_file(dir .. "/mp", 3 * P + 777)
      local r = assert(c:upload_file(bucket, "i/mp", dir .. "/mp", { part_size = P }))
      assert.equals(4, r.parts)
      local h = assert(c:head_object(bucket, "i/mp"))
      assert.equals(b64crc(data), h.metadata["objstore-crc64nvme"])
      -- ranges that do not follow the object's parts
      local d = assert(c:download_file(bucket, "i/mp", dir .. "/mp.back", { part_size = 6 * MiB }))
      assert.is_true(d.verified)
      assert.is_nil(d.notices)

      local small = make_file(dir .. "/one", 1000)
      assert(c:upload_file(bucket, "i/one", dir .. "/one"))
      assert.equals(b64crc(small), assert(c:head_object(bucket, "i/one")).metadata["objstore-crc64nvme"])
      assert.is_true(assert(c:download_file(bucket, "i/one", dir .. "/one.back")).verified)

      assert(c:upload_stream(bucket, "i/stream", function() local s = small; small = nil; return s end))
      assert.is_true(assert(c:download_file(bucket, "i/stream", dir .. "/stream.back")).verified)
    end)

    it("keeps the earlier checks for objects other tools uploaded, and says when nothing was checked", function()
      local data = make_file(dir .. "/foreign", 2 * P + 3)
      local up = assert(c:create_multipart_upload(bucket, "i/foreign"))
      local parts = {}
      for i = 1, 3 do
        local piece = data:sub((i - 1) * P + 1, i * P)
        parts[i] = { part_number = i, etag = assert(c:upload_part(bucket, "i/foreign", up.upload_id, i, piece)).etag }
      end
      assert(c:complete_multipart_upload(bucket, "i/foreign", up.upload_id, parts))
      local d = assert(c:download_file(bucket, "i/foreign", dir .. "/foreign.back", { part_size = P }))
      -- Neither radosgw 16 (HEAD ?partNumber=1 answers with the whole object)
      -- nor Swift reports the part layout, so the multipart ETag cannot be
      -- rebuilt: not verified, and said so.
      assert.is_false(d.verified)
      assert.matches("not verified", d.notices[1])
      assert(c:put_object(bucket, "i/foreign1", data))
      assert.is_true(assert(c:download_file(bucket, "i/foreign1", dir .. "/foreign1.back")).verified)
    end)

    it("detects an object whose bytes changed under the same metadata", function()
      local data = make_file(dir .. "/bad", 2 * P + 5)
      assert(c:upload_file(bucket, "i/bad", dir .. "/bad", { part_size = P }))
      local crc = assert(c:head_object(bucket, "i/bad")).metadata["objstore-crc64nvme"]
      -- one byte flipped, the stored CRC kept: what a corrupting server would serve
      local flipped = data:sub(1, P + 9) .. string.char((data:byte(P + 10) + 1) % 256) .. data:sub(P + 11)
      assert(c:put_object(bucket, "i/bad", flipped, { metadata = { ["objstore-crc64nvme"] = crc } }))
      local out = dir .. "/bad.back"
      local _, err = c:download_file(bucket, "i/bad", out, { part_size = P })
      assert.equals("BadDigest", err.code)
      assert.matches("CRC%-64/NVME", err.message)
      assert.is_nil(lfs.attributes(out))
      assert.is_nil(lfs.attributes(out .. ".objstore-part"))
    end)

    it("ignores a torn checkpoint record and resends only the parts it cannot prove", function()
      make_file(dir .. "/torn", 4 * P)
      local cp = dir .. "/torn.cp"
      local _, err = c:upload_file(bucket, "i/torn", dir .. "/torn", { part_size = P, concurrency = 1, checkpoint = cp,
        on_part = function(_, n) return n < 3 end })
      assert.equals("Aborted", err.code)
      local size = lfs.attributes(cp, "size")
      assert(servers.sh(string.format("truncate -s %d %s", size - 7, servers.q(cp))))
      local sent = {}
      local r = assert(c:upload_file(bucket, "i/torn", dir .. "/torn", { part_size = P, checkpoint = cp,
        on_part = function(n) sent[#sent + 1] = n end }))
      assert.matches("torn", table.concat(r.notices, "\n"))
      -- part 3 is on the server: ListParts and its MD5 prove it, so only 4 is sent
      assert.same({ 4 }, sent)
      assert.equals(3 * P, r.resumed_from)
      assert.is_true(assert(c:download_file(bucket, "i/torn", dir .. "/torn.back")).verified)
    end)

    it("refuses at once a checkpoint another process holds, naming it", function()
      make_file(dir .. "/busy", 2 * P)
      local cp = dir .. "/busy.cp"
      local pidfile = dir .. "/busy.pid"
      assert(servers.sh(string.format("(flock -x %s sleep 5 >/dev/null 2>&1 & echo $! > %s)", servers.q(cp),
        servers.q(pidfile))))
      local pid
      for _ = 1, 50 do
        local f = io.open(pidfile)
        pid = f and f:read("*n")
        if f then f:close() end
        if pid then break end
        servers.sh("sleep 0.1")
      end
      servers.sh("sleep 0.3")
      local t0 = os.time()
      local _, err = c:upload_file(bucket, "i/busy", dir .. "/busy", { part_size = P, checkpoint = cp })
      assert.equals("CheckpointInUse", err.code)
      assert.matches("process " .. pid, err.message)
      assert.equals(pid, err.pid)
      assert.is_true(os.time() - t0 <= 1)
      servers.sh("kill " .. pid .. " 2>/dev/null")
    end)
  end)
end

for _, srv in ipairs(servers.list()) do
  describe("upload_file survives kill -9 around Create and Complete on " .. srv.name .. " #server #slow",
    function()
    local c, bucket, dir
    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("h12k")
      assert(c:create_bucket(bucket))
      dir = servers.tmpdir()
    end)
    teardown(function()
      servers.cleanup(c, bucket)
      servers.sh("rm -rf " .. servers.q(dir))
    end)

    local function child(crash_after, key, path, log)
      local lua = arg and arg[-1] or "lua5.4"
      local cmd = string.format("%sLUA_PATH=%s LUA_CPATH=%s %s spec/support/crash_upload.lua %s %s %s %s %s %s %s",
        crash_after and ("CRASH_AFTER=" .. crash_after .. " ") or "", servers.q(package.path),
        servers.q(package.cpath), lua, servers.q(srv.endpoint), servers.q(srv.access_key),
        servers.q(srv.secret_key), servers.q(bucket), key, servers.q(path), servers.q(log))
      return servers.sh(cmd .. " >/dev/null 2>&1")
    end
    local function count(text, word)
      local n = 0
      for _ in text:gmatch(word) do n = n + 1 end
      return n
    end

    it("adopts the upload a run killed right after Create made, and leaves no orphan", function()
      local path = dir .. "/create"
      local data = make_file(path, 4 * P)
      local log = dir .. "/create.log"
      assert.is_false(child("CreateMultipartUpload", "k/create", path, log))
      assert.equals(1, #assert(c:list_incomplete_uploads(bucket, "k/create")))
      assert.is_true(child(nil, "k/create", path, log))
      local text = servers.read_file(log)
      assert.matches("adopted upload", text)
      assert.equals(4, count(text, "send")) -- every part exactly once
      assert.equals(0, #assert(c:list_incomplete_uploads(bucket, "k/create")))
      assert.equals(b64crc(data), assert(c:head_object(bucket, "k/create")).metadata["objstore-crc64nvme"])
      assert.is_nil(lfs.attributes(path .. ".objstore-cp"))
    end)

    it("sends nothing again when the run was killed right after Complete", function()
      local path = dir .. "/complete"
      make_file(path, 3 * P + 1)
      local log = dir .. "/complete.log"
      assert.is_false(child("CompleteMultipartUpload", "k/complete", path, log))
      assert.is_truthy(lfs.attributes(path .. ".objstore-cp"))
      assert.is_true(child(nil, "k/complete", path, log))
      local text = servers.read_file(log)
      assert.equals(4, count(text, "send"))
      assert.matches("sent 0", text)
      assert.is_nil(lfs.attributes(path .. ".objstore-cp"))
      assert.is_true(assert(c:download_file(bucket, "k/complete", dir .. "/complete.back")).verified)
    end)

    it("download_file survives kill -9 at random moments, fetching at most (concurrency + 1) ranges again", function()
      if srv.name ~= "rgw" then return pending("run once, on rgw") end
      local src = dir .. "/down.src"
      local data = make_file(src, 100 * MiB)
      assert(c:upload_file(bucket, "k/down", src, { part_size = P }))
      local out, log = dir .. "/down.back", dir .. "/down.log"
      local lua = arg and arg[-1] or "lua5.4"
      local cmd = string.format("LUA_PATH=%s LUA_CPATH=%s %s spec/support/crash_download.lua %s %s %s %s %s %s %s",
        servers.q(package.path), servers.q(package.cpath), lua, servers.q(srv.endpoint), servers.q(srv.access_key),
        servers.q(srv.secret_key), servers.q(bucket), "k/down", servers.q(out), servers.q(log))
      math.randomseed(os.time())
      local kills = 0
      for _ = 1, 3 do
        local wait = 0.1 + math.random() * 0.3
        assert.is_true(servers.sh("(" .. cmd .. " >/dev/null 2>&1 & pid=$!; sleep " .. string.format("%.2f", wait)
          .. "; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; true)"))
        if (servers.read_file(log) or ""):find("done") then break end
        kills = kills + 1
      end
      local text = servers.read_file(log) or ""
      if not text:find("done") then
        assert.is_true(servers.sh(cmd .. " >/dev/null 2>&1"))
        text = servers.read_file(log)
      end
      local resent = count(text:match("^(.-)done"), "send") - 20
      assert.is_true(resent <= kills * (4 + 1), ("fetched %d ranges again over %d crashes:\n%s"):format(resent, kills,
        text))
      assert.matches("done true", text)
      print(("\n    download crash test: %d kills, %d ranges fetched again"):format(kills, resent))
      local f = assert(io.open(out, "rb"))
      assert.is_true(f:read("*a") == data)
      f:close()
    end)
  end)
end
