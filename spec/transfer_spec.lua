-- Large and resumable transfers against real servers: multipart upload and
-- download of awkward sizes, unknown-size streams, resume after a failure
-- and after kill -9, server-side copy, incomplete-upload housekeeping.
local servers = require "servers"
local plan = require "objstore.transfer.plan"
local core = require "objstore.core"
local lfs = require "lfs"

local MiB = 1024 * 1024

local tmpdir = servers.tmpdir

--- Writes n pseudo-random bytes (deterministic per seed) with dd from urandom
-- for big files, Lua for small ones; returns the path and its MD5 hex.
local function make_file(dir, name, n)
  local path = dir .. "/" .. name
  if n >= MiB then
    assert(servers.sh(string.format("head -c %d /dev/urandom > %s", n, servers.q(path))))
  else
    local t = {}
    for i = 1, n do t[i] = string.char((i * 131 + n) % 256) end
    servers.write_file(path, table.concat(t))
  end
  return path, core.hash.tohex(core.hash.file("md5", path, 0, n))
end

local function file_md5(path)
  local size = lfs.attributes(path, "size")
  return core.hash.tohex(core.hash.file("md5", path, 0, size))
end

describe("part sizing", function()
  it("keeps within the part limit and the provider minimum", function()
    assert.equals(8 * MiB, plan.part_size(100 * MiB, "s3"))
    assert.equals(5 * MiB, plan.part_size(100 * MiB, "s3", 1 * MiB))
    assert.equals(100 * 1024, plan.part_size(100 * MiB, "oss", 1024))
    local tb = 1024 * 1024 * MiB
    local ps = plan.part_size(tb, "s3")
    assert.is_true(math.ceil(tb / ps) <= 10000)
    assert.equals(0, ps % MiB)
    assert.is_nil((plan.part_size(6 * tb, "s3")))
    assert.equals(1, #plan.parts(0, 5 * MiB))
    local parts = plan.parts(11 * MiB + 1, 5 * MiB)
    assert.equals(3, #parts)
    assert.equals(MiB + 1, parts[3].length)
    assert.equals(10 * MiB, parts[3].offset)
  end)

  it("grows stream parts so 10,000 of them hold the largest object", function()
    local total = 0
    for n = 1, 10000 do total = total + plan.stream_part_size(n - 1, "s3") end
    assert.is_true(total >= 5 * 1024 * 1024 * MiB)
  end)
end)

for _, srv in ipairs(servers.list()) do
  describe("transfers on " .. srv.name .. " #server", function()
    local c, bucket, dir

    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("tr")
      assert(c:create_bucket(bucket))
      dir = tmpdir()
    end)

    teardown(function()
      servers.cleanup(c, bucket)
      servers.sh("rm -rf " .. servers.q(dir))
    end)

    local P = 5 * MiB
    for _, case in ipairs{ { "empty", 0 }, { "one byte", 1 }, { "exactly one part", P }, { "a part and a byte", P + 1 },
      { "three parts with a short tail", 2 * P + 12345 } } do
      it("uploads and downloads " .. case[1] .. " intact", function()
        local name, size = case[1]:gsub(" ", "-"), case[2]
        local path, md5 = make_file(dir, name, size)
        local up = assert(c:upload_file(bucket, "sizes/" .. name, path, { part_size = P, multipart_threshold = 1,
          concurrency = 3 }))
        assert.equals(size, up.size)
        assert.equals(math.max(1, math.ceil(size / P)), up.parts)
        local out = dir .. "/" .. name .. ".back"
        local down = assert(c:download_file(bucket, "sizes/" .. name, out, { part_size = P, concurrency = 3 }))
        assert.equals(size, down.size)
        assert.equals(md5, file_md5(out))
        assert.is_nil(lfs.attributes(out .. ".objstore-part"))
        -- A single-PUT ETag is an MD5 and always checked; a multipart one only
        -- where the server reports the part layout.
        if not down.etag:find("-", 1, true) then assert.is_true(down.verified) end
      end)
    end

    it("is read back byte-identical by awscli", function()
      local path, md5 = make_file(dir, "for-aws", 2 * P + 7)
      assert(c:upload_file(bucket, "aws/obj", path, { part_size = P }))
      local env = "AWS_ACCESS_KEY_ID=" .. servers.q(srv.access_key) .. " AWS_SECRET_ACCESS_KEY="
        .. servers.q(srv.secret_key) .. " AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null "
        .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null "
      local ok, out = servers.sh(env .. "/usr/bin/aws --endpoint-url " .. servers.q(srv.endpoint) .. " s3 cp "
        .. servers.q("s3://" .. bucket .. "/aws/obj") .. " " .. servers.q(dir .. "/aws.back"))
      assert.is_true(ok, out)
      assert.equals(md5, file_md5(dir .. "/aws.back"))
    end)

    it("uploads a stream of unknown size in bounded parts", function()
      local chunks, sent = 0, 0
      local total = 2 * P + 999
      local function reader()
        if sent >= total then return nil end
        local n = math.min(65536 + chunks % 7, total - sent)
        chunks = chunks + 1
        sent = sent + n
        return string.rep(string.char(chunks % 256), n)
      end
      local r = assert(c:upload_stream(bucket, "stream/obj", reader, { part_size = P, concurrency = 2 }))
      assert.equals(total, r.size)
      assert.equals(3, r.parts)
      local h = assert(c:head_object(bucket, "stream/obj"))
      assert.equals(total, h.content_length)
      -- a short stream becomes a single PUT
      local done = false
      local s = assert(c:upload_stream(bucket, "stream/small", function()
        if done then return nil end
        done = true
        return "tiny"
      end))
      assert.equals(1, s.parts)
      assert.equals("tiny", assert(c:get_object(bucket, "stream/small")).body)
    end)

    it("resumes an upload from its checkpoint and sends only the missing parts", function()
      local path, md5 = make_file(dir, "resume-up", 5 * P + 100)
      local _, err = c:upload_file(bucket, "resume/up", path, { part_size = P, concurrency = 1, checkpoint = true,
        on_part = function(_, n) return n < 2 end })
      assert.equals("Aborted", err.code)
      assert.is_truthy(lfs.attributes(path .. ".objstore-cp"))
      local sent = {}
      local r = assert(c:upload_file(bucket, "resume/up", path, { part_size = P, concurrency = 2, checkpoint = true,
        on_part = function(number) sent[#sent + 1] = number end }))
      assert.equals(4, #sent) -- parts 3..6 only
      assert.equals(2 * P, r.resumed_from)
      assert.is_nil(lfs.attributes(path .. ".objstore-cp"))
      assert(c:download_file(bucket, "resume/up", dir .. "/resume-up.back"))
      assert.equals(md5, file_md5(dir .. "/resume-up.back"))
    end)

    it("starts clean, and says so, when the checkpoint's upload is gone or its file changed", function()
      local path = make_file(dir, "stale", 2 * P + 1)
      local _, err = c:upload_file(bucket, "stale/up", path, { part_size = P, concurrency = 1, checkpoint = true,
        on_part = function() return false end })
      assert.equals("Aborted", err.code)
      local ups = assert(c:list_incomplete_uploads(bucket, "stale/"))
      assert.equals(1, #ups)
      assert(c:abort_multipart_upload(bucket, "stale/up", ups[1].upload_id))
      local r = assert(c:upload_file(bucket, "stale/up", path, { part_size = P, checkpoint = true }))
      assert.matches("no longer exists", r.notices[1])
      assert.equals(0, r.resumed_from)
      -- a checkpoint for another file (left by an interrupted upload of it)
      local other = make_file(dir, "stale-other", 2 * P + 1)
      c:upload_file(bucket, "stale/up", other, { part_size = P, concurrency = 1, checkpoint = path .. ".objstore-cp",
        on_part = function() return false end })
      r = assert(c:upload_file(bucket, "stale/up", path, { part_size = P, checkpoint = true }))
      assert.matches("another file", r.notices[1])
      -- whose upload no run will resume: aborted, not left behind
      assert.matches("aborted upload", r.notices[2])
      assert.equals(0, #assert(c:list_incomplete_uploads(bucket, "stale/")))
      -- a checkpoint of the old JSON format
      servers.write_file(path .. ".objstore-cp", '{"version":1,"kind":"upload","bucket":"x","key":"y","size":1,'
        .. '"mtime":1,"part_size":1,"upload_id":"u","parts":[]}')
      r = assert(c:upload_file(bucket, "stale/up", path, { part_size = P, checkpoint = true }))
      assert.matches("unreadable", r.notices[1])
      -- a corrupt one
      servers.write_file(path .. ".objstore-cp", "{not json")
      r = assert(c:upload_file(bucket, "stale/up", path, { part_size = P, checkpoint = true }))
      assert.matches("unreadable", r.notices[1])
    end)

    it("resumes a download and never stitches two versions of an object", function()
      local path, md5 = make_file(dir, "resume-down", 4 * P + 3)
      assert(c:put_object(bucket, "resume/down", { path = path }))
      local out = dir .. "/resume-down.back"
      local _, err = c:download_file(bucket, "resume/down", out, { part_size = P, concurrency = 1, checkpoint = true,
        on_part = function(_, n) return n < 2 end })
      assert.equals("Aborted", err.code)
      assert.is_nil(lfs.attributes(out))
      local got = {}
      local r = assert(c:download_file(bucket, "resume/down", out, { part_size = P, checkpoint = true,
        on_part = function(number) got[#got + 1] = number end }))
      assert.equals(3, #got)
      assert.equals(2 * P, r.resumed_from)
      assert.is_true(r.verified)
      assert.equals(md5, file_md5(out))
      -- changed on the server between the two runs: start over, never mix
      os.remove(out)
      c:download_file(bucket, "resume/down", out, { part_size = P, concurrency = 1, checkpoint = true,
        on_part = function(_, n) return n < 2 end })
      local path2, md52 = make_file(dir, "resume-down2", 4 * P + 3)
      assert(c:put_object(bucket, "resume/down", { path = path2 }))
      r = assert(c:download_file(bucket, "resume/down", out, { part_size = P, checkpoint = true }))
      assert.matches("another object version", r.notices[1])
      assert.equals(md52, file_md5(out))
    end)

    it("copies large objects part by part on the server", function()
      if srv.skip.copy_if_match then
        return pending("Swift s3api answers 412 to x-amz-copy-source-if-match on a multipart source")
      end
      local path, md5 = make_file(dir, "copy-src", 2 * P + 77)
      assert(c:upload_file(bucket, "copy/src", path, { part_size = P }))
      local r = assert(c:copy_large(bucket, "copy/dst", { bucket = bucket, key = "copy/src" }, { part_size = P,
        multipart_threshold = 1 }))
      assert.equals(3, r.parts)
      assert(c:download_file(bucket, "copy/dst", dir .. "/copy.back"))
      assert.equals(md5, file_md5(dir .. "/copy.back"))
    end)

    it("works over a transport that has only request() (one part at a time)", function()
      local curl = require("objstore.transport.curl").new{}
      local plain = { request = function(_, req) return curl:request(req) end }
      local c2 = servers.client(srv, { transport = plain })
      local path, md5 = make_file(dir, "plain-transport", 2 * P + 5)
      local up = assert(c2:upload_file(bucket, "plain/obj", path, { part_size = P }))
      assert.equals(3, up.parts)
      assert(c2:download_file(bucket, "plain/obj", dir .. "/plain.back", { part_size = P }))
      assert.equals(md5, file_md5(dir .. "/plain.back"))
      curl:close()
    end)

    it("lists and aborts incomplete uploads", function()
      for i = 1, 3 do assert(c:create_multipart_upload(bucket, "junk/" .. i)) end
      local list = assert(c:list_incomplete_uploads(bucket, "junk/"))
      assert.equals(3, #list)
      local none = assert(c:abort_incomplete_uploads(bucket, { prefix = "junk/", older_than = 3600 }))
      assert.equals(0, none.aborted)
      local all = assert(c:abort_incomplete_uploads(bucket, { prefix = "junk/" }))
      assert.equals(3, all.aborted)
      assert.equals(0, #assert(c:list_incomplete_uploads(bucket, "junk/")))
    end)

    it("survives kill -9 at random moments and re-sends at most (concurrency + 1) parts per crash #slow", function()
      if srv.name ~= "rgw" then return pending("run once, on rgw") end
      local size = 200 * MiB
      local path, md5 = make_file(dir, "crash", size)
      local log = dir .. "/crash.log"
      local lua = arg and arg[-1] or "lua5.4"
      local cmd = string.format("LUA_PATH=%s LUA_CPATH=%s %s spec/support/crash_upload.lua %s %s %s %s %s %s %s",
        servers.q(package.path), servers.q(package.cpath), lua, servers.q(srv.endpoint), servers.q(srv.access_key),
        servers.q(srv.secret_key), servers.q(bucket), "crash/obj", servers.q(path), servers.q(log))
      math.randomseed(os.time())
      local kills = 0
      for _ = 1, 4 do
        local wait = 0.3 + math.random() * 1.2
        local ok = servers.sh("(" .. cmd .. " >/dev/null 2>&1 & pid=$!; sleep " .. string.format("%.2f", wait)
          .. "; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; true)")
        assert.is_true(ok)
        if (servers.read_file(log) or ""):find("done") then break end -- finished before the kill
        kills = kills + 1
      end
      local text = servers.read_file(log) or ""
      if not text:find("done") then
        local ok, out = servers.sh(cmd)
        assert.is_true(ok, out)
        text = servers.read_file(log)
      end
      local sends = 0
      for _ in text:match("^(.-)done"):gmatch("send") do sends = sends + 1 end
      local nparts = size / P
      local resent = sends - nparts
      assert.is_true(resent <= kills * (4 + 1), ("re-sent %d parts over %d crashes:\n%s"):format(resent, kills, text))
      assert.matches("done", text)
      local h = assert(c:head_object(bucket, "crash/obj"))
      assert.equals(size, h.content_length)
      assert(c:download_file(bucket, "crash/obj", dir .. "/crash.back"))
      assert.equals(md5, file_md5(dir .. "/crash.back"))
      print(("\n    crash test: %d kills, %d part requests for %d parts, %d re-sent"):format(kills, sends, nparts,
        resent))
    end)
  end)
end

for _, srv in ipairs(servers.list()) do
  -- copy_large with a checkpoint: kill -9 in a child process (spec/support/
  -- crash_upload.lua with COPY_SOURCE), a source changed between two runs,
  -- a second use of a checkpoint while the first runs.
  describe("copy_large checkpoints (it survives kill -9: child processes) on " .. srv.name .. " #server", function()
    local c, bucket, dir
    local P = 5 * MiB
    local checksum = require "objstore.checksum"

    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("cpk15")
      assert(c:create_bucket(bucket))
      dir = tmpdir()
    end)

    teardown(function()
      servers.cleanup(c, bucket)
      servers.sh("rm -rf " .. servers.q(dir))
    end)

    local function unsupported()
      if srv.skip.copy_if_match then
        pending("Swift s3api answers 412 to x-amz-copy-source-if-match on a multipart source")
        return true
      end
    end

    --- Runs the child copying src to dst with checkpoint cp, logging to log;
    -- env: extra variables (CRASH_AFTER=...). Returns whether it succeeded
    -- and its output.
    local function child(env, src, dst, cp, log)
      local lua = arg and arg[-1] or "lua5.4"
      return servers.sh(string.format("%sCOPY_SOURCE=%s CONCURRENCY=2 LUA_PATH=%s LUA_CPATH=%s %s "
        .. "spec/support/crash_upload.lua %s %s %s %s %s %s %s", env and (env .. " ") or "", servers.q(src),
        servers.q(package.path), servers.q(package.cpath), lua, servers.q(srv.endpoint), servers.q(srv.access_key),
        servers.q(srv.secret_key), servers.q(bucket), servers.q(dst), servers.q(cp), servers.q(log)))
    end
    local function count(text, word)
      local n = 0
      for _ in text:gmatch(word) do n = n + 1 end
      return n
    end
    local function object_md5(key)
      return checksum.hex("md5", assert(c:get_object(bucket, key)).body)
    end
    local function uploads(key)
      local n = 0
      for _, u in ipairs(assert(c:list_incomplete_uploads(bucket, key))) do
        if u.key == key then n = n + 1 end
      end
      return n
    end

    it("resumes a copy killed with kill -9 mid-way, copying at most concurrency + 1 parts again", function()
      if unsupported() then return end
      local path, md5 = make_file(dir, "kill-src", 5 * P)
      assert(c:put_object(bucket, "src/kill", { path = path }))
      local cp, log = dir .. "/kill.cp", dir .. "/kill.log"
      -- killed as soon as the second part is copied, before it is recorded
      local ok, out = child("CRASH_AFTER=part:2", "src/kill", "dst/kill", cp, log)
      assert.is_false(ok, out)
      assert.matches("crash after part:2", servers.read_file(log))
      assert.is_truthy(lfs.attributes(cp))
      assert.equals(1, uploads("dst/kill"))
      ok, out = child(nil, "src/kill", "dst/kill", cp, log)
      assert.is_true(ok, out)
      local text = servers.read_file(log)
      local resent = count(text, "send") - 5
      assert.is_true(resent <= 2 + 1, ("copied %d parts again:\n%s"):format(resent, text))
      -- both parts the server answered were kept (the second found by ListParts)
      local resumed, sent = text:match("done %S+ (%d+) sent (%d+)")
      assert.is_true(tonumber(resumed) >= 2 * P, text)
      assert.equals(5 - tonumber(resumed) / P, tonumber(sent))
      assert.equals(md5, object_md5("dst/kill"))
      assert.equals(0, uploads("dst/kill"))
      assert.is_nil(lfs.attributes(cp))
      print(("\n    copy crash test: %d part copies for 5 parts, %d again, resumed from %d MiB"):format(
        count(text, "send"), resent, resumed / MiB))
    end)

    it("adopts the upload a copy killed right after Create made, and leaves no orphan", function()
      if unsupported() then return end
      local path, md5 = make_file(dir, "create-src", 3 * P + 17)
      assert(c:put_object(bucket, "src/create", { path = path }))
      local cp, log = dir .. "/create.cp", dir .. "/create.log"
      assert.is_false((child("CRASH_AFTER=CreateMultipartUpload", "src/create", "dst/create", cp, log)))
      assert.equals(1, uploads("dst/create"))
      local ok, out = child(nil, "src/create", "dst/create", cp, log)
      assert.is_true(ok, out)
      local text = servers.read_file(log)
      assert.matches("adopted upload", text)
      assert.equals(4, count(text, "send")) -- every part exactly once
      assert.equals(0, uploads("dst/create"))
      assert.equals(md5, object_md5("dst/create"))
    end)

    it("copies nothing again when the copy was killed right after Complete", function()
      if unsupported() then return end
      local path, md5 = make_file(dir, "complete-src", 3 * P)
      assert(c:put_object(bucket, "src/complete", { path = path }))
      local cp, log = dir .. "/complete.cp", dir .. "/complete.log"
      assert.is_false((child("CRASH_AFTER=CompleteMultipartUpload", "src/complete", "dst/complete", cp, log)))
      assert.is_truthy(lfs.attributes(cp))
      local ok, out = child(nil, "src/complete", "dst/complete", cp, log)
      assert.is_true(ok, out)
      local text = servers.read_file(log)
      assert.equals(3, count(text, "send"))
      assert.matches("done %S+ " .. 3 * P .. " sent 0", text)
      assert.is_nil(lfs.attributes(cp))
      assert.equals(md5, object_md5("dst/complete"))
    end)

    it("starts clean, and says so, when the source changed since the checkpoint", function()
      if unsupported() then return end
      local size = 3 * P + 11
      local path = make_file(dir, "changed-src", size)
      assert(c:put_object(bucket, "src/changed", { path = path }))
      local cp = dir .. "/changed.cp"
      local opts = { part_size = P, multipart_threshold = 1, concurrency = 1, checkpoint = cp,
        on_part = function(_, n) return n < 2 end }
      local _, err = c:copy_large(bucket, "dst/changed", { bucket = bucket, key = "src/changed" }, opts)
      assert.equals("Aborted", err.code)
      assert.is_truthy(lfs.attributes(cp))
      assert.equals(1, uploads("dst/changed"))
      -- overwritten with other bytes of the same size
      local path2, md52 = make_file(dir, "changed-src2", size)
      assert(c:put_object(bucket, "src/changed", { path = path2 }))
      opts.on_part = nil
      local r = assert(c:copy_large(bucket, "dst/changed", { bucket = bucket, key = "src/changed" }, opts))
      assert.matches("checkpoint is for another source object %(or the source changed%)", r.notices[1])
      assert.equals(0, r.resumed_from)
      assert.equals(4, r.sent)
      assert.equals(md52, object_md5("dst/changed"))
      -- the earlier copy's upload was aborted, not left behind
      assert.equals(0, uploads("dst/changed"))
      assert.is_nil(lfs.attributes(cp))
    end)

    it("resumes with the same source, sending only the missing parts", function()
      if unsupported() then return end
      local path, md5 = make_file(dir, "same-src", 3 * P + 11)
      assert(c:put_object(bucket, "src/same", { path = path }))
      local cp = dir .. "/same.cp"
      local _, err = c:copy_large(bucket, "dst/same", { bucket = bucket, key = "src/same" }, { part_size = P,
        multipart_threshold = 1,
        concurrency = 1, checkpoint = cp, on_part = function(_, n) return n < 2 end })
      assert.equals("Aborted", err.code)
      local sent = {}
      local r = assert(c:copy_large(bucket, "dst/same", { bucket = bucket, key = "src/same" }, { part_size = P,
        multipart_threshold = 1,
        concurrency = 2, checkpoint = cp, on_part = function(n) sent[#sent + 1] = n end }))
      table.sort(sent)
      assert.same({ 3, 4 }, sent)
      assert.equals(2 * P, r.resumed_from)
      assert.is_nil(r.notices)
      assert.equals(md5, object_md5("dst/same"))
      assert.equals(0, uploads("dst/same"))
    end)

    it("refuses a second use of a checkpoint while a copy runs with it", function()
      if unsupported() then return end
      local path, md5 = make_file(dir, "busy-src", 2 * P + 5)
      assert(c:put_object(bucket, "src/busy", { path = path }))
      local cp, log = dir .. "/busy.cp", dir .. "/busy.log"
      local f = assert(io.open("/proc/self/stat"))
      local pid = f:read("*n")
      f:close()
      local second
      local r = assert(c:copy_large(bucket, "dst/busy", { bucket = bucket, key = "src/busy" }, { part_size = P,
        multipart_threshold = 1,
        concurrency = 1, checkpoint = cp, on_part = function(n)
          -- another process, same checkpoint, while this copy holds it
          if n == 1 then second = { child(nil, "src/busy", "dst/busy", cp, log) } end
        end }))
      assert.is_false(second[1])
      assert.matches("CheckpointInUse", second[2])
      assert.matches("in use by process " .. pid, second[2])
      assert.equals(3, r.sent)
      assert.equals(md5, object_md5("dst/busy"))
      assert.equals(0, uploads("dst/busy"))
      assert.is_nil(lfs.attributes(cp))
    end)

    it("refuses a checkpoint option that is neither a path nor true", function()
      assert.has_error(function() c:copy_large(bucket, "b", { bucket = bucket, key = "a" }, { checkpoint = 5 }) end,
        "objstore.client.copy_large: argument #4 (opts.checkpoint): must be a path or true, got number")
    end)
  end)
end
