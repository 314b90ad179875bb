-- Byte progress inside a transfer's requests (issue 19): upload_file and
-- download_file report the bytes of a single PUT / GET and of each part as
-- they move (the transport contract's on_progress), and a request that
-- fails after it moved bytes is counted again from 0 when retried, so the
-- count never exceeds the size nor counts a byte twice. Against rgw, the
-- failures from the fault proxy (spec/support/faultproxy.sh) in front of
-- it: a PUT stalled with its body half sent, a GET cut mid-body.
local servers = require "servers"
local faults = require "faults"
local core = require "objstore.core"

local monotonic = core.time.monotonic
local MiB = 1024 * 1024

--- A progress callback that records { done, total, t } per call.
local function recorder()
  local calls = {}
  return calls, function(done, total)
    calls[#calls + 1] = { done = done, total = total, t = monotonic() }
  end
end

local function show(calls)
  local t = {}
  for i, c in ipairs(calls) do t[i] = string.format("%.1f", c.done / MiB) end
  return table.concat(t, " ")
end

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("transfer byte progress on rgw #server", function()
      local c, bucket, dir, fp
      local SIZE = 24 * MiB
      local path

      setup(function()
        c = servers.client(srv)
        bucket = servers.bucket_name("progress")
        assert(c:create_bucket(bucket))
        dir = servers.tmpdir()
        path = dir .. "/src.bin"
        assert(servers.sh("head -c " .. SIZE .. " /dev/urandom > " .. servers.q(path)))
        fp = assert(faults.start(srv.endpoint))
        assert(fp:clear())
      end)

      teardown(function()
        if fp then
          fp:clear()
          fp:stop()
        end
        if c and bucket then servers.cleanup(c, bucket) end
        if dir then servers.sh("rm -rf " .. servers.q(dir)) end
      end)

      -- Grows, stays within the size, ends at it, and moved inside a request.
      local function check(calls, size, parts)
        assert.is_true(#calls >= 3, show(calls))
        local inside = 0
        for i, k in ipairs(calls) do
          assert.equals(size, k.total)
          assert.is_true(k.done <= size, show(calls))
          if i > 1 then assert.is_true(k.done >= calls[i - 1].done, "went back: " .. show(calls)) end
          -- strictly inside one part: not a sum of whole parts
          if k.done > 0 and k.done % parts ~= 0 then inside = inside + 1 end
        end
        assert.equals(size, calls[#calls].done)
        assert.is_true(inside >= 2, "no count inside a request: " .. show(calls))
      end

      it("counts the bytes of a single PUT and a single GET as they move", function()
        local calls, fn = recorder()
        -- one request of 24 MiB at 8 MiB/s: about 3 s
        local res = assert(c:upload_file(bucket, "single", path, { part_size = 64 * MiB, bwlimit = 8 * MiB,
          progress = fn }))
        assert.equals(1, res.parts)
        check(calls, SIZE, SIZE)
        calls, fn = recorder()
        res = assert(c:download_file(bucket, "single", dir .. "/single.out", { part_size = 64 * MiB,
          bwlimit = 8 * MiB, progress = fn }))
        assert.equals(SIZE, res.size)
        check(calls, SIZE, SIZE)
      end)

      it("counts the bytes inside each part of a multipart upload and a ranged download", function()
        local calls, fn = recorder()
        local res = assert(c:upload_file(bucket, "multi", path, { part_size = 8 * MiB, concurrency = 2,
          bwlimit = 8 * MiB, progress = fn }))
        assert.equals(3, res.parts)
        check(calls, SIZE, 8 * MiB)
        calls, fn = recorder()
        assert(c:download_file(bucket, "multi", dir .. "/multi.out", { part_size = 8 * MiB, concurrency = 2,
          bwlimit = 8 * MiB, progress = fn }))
        check(calls, SIZE, 8 * MiB)
      end)

      it("counts the bytes of a whole-file sync upload and download as they move", function()
        local objstore = require "objstore"
        local tree = dir .. "/tree"
        assert(servers.sh("mkdir -p " .. servers.q(tree) .. " && cp " .. servers.q(path) .. " "
          .. servers.q(tree .. "/f.bin")))
        for _, way in ipairs{ "up", "down" } do
          local calls = {}
          local src, dst = tree, { bucket = bucket, prefix = "synced/" }
          if way == "down" then src, dst = dst, dir .. "/back" end
          local res = assert(objstore.sync(c, src, dst, { state = false, bwlimit = 8 * MiB,
            progress = function(key, done, total)
              assert.equals("f.bin", key)
              calls[#calls + 1] = { done = done, total = total }
            end }))
          assert.equals(1, res.transferred)
          local inside = 0
          for i, k in ipairs(calls) do
            assert.equals(SIZE, k.total)
            assert.is_true(k.done <= SIZE, show(calls))
            if i > 1 then assert.is_true(k.done >= calls[i - 1].done, "went back: " .. show(calls)) end
            if k.done > 0 and k.done < SIZE then inside = inside + 1 end
          end
          assert.is_true(inside >= 2, way .. ": no count inside the file: " .. show(calls))
        end
      end)

      -- A retried request starts again from 0: the count drops back by
      -- what the failed attempt had sent, and it never passes the size.
      local function check_retried(calls, size)
        local peak, dropped = 0, false
        for i, k in ipairs(calls) do
          assert.is_true(k.done <= size, show(calls))
          if k.done < peak then dropped = true end
          if k.done > peak then peak = k.done end
          -- Counted twice, the bytes would reach the size (capped there)
          -- while the retry was still sending: only the end may show it.
          if i < #calls - 1 then assert.is_true(k.done < size, "at the size too early: " .. show(calls)) end
        end
        assert.is_true(dropped, "the failed attempt's bytes were not taken back: " .. show(calls))
        assert.equals(size, calls[#calls].done)
      end

      it("takes back the bytes of a PUT that failed mid-body and counts its retry from 0", function()
        local pc = servers.client(srv, { endpoint = fp.endpoint, timeout = 30, connect_timeout = 2,
          retry = { max_attempts = 3, base_delay = 0.05, max_delay = 0.2 } })
        assert(fp:reset_stats())
        -- The proxy holds the first PUT 2 s (its body fills the socket
        -- buffers meanwhile), then closes it; the retry goes through.
        assert(fp:set{ stall = { rate = 1, methods = { "PUT" }, max = 1 }, stall_seconds = 2 })
        local calls, fn = recorder()
        local res = assert(pc:upload_file(bucket, "retried", path, { part_size = 64 * MiB, bwlimit = 6 * MiB,
          progress = fn }))
        assert(fp:clear())
        assert.equals(1, assert(fp:stats()).faults.stall)
        assert.equals(SIZE, res.size)
        check_retried(calls, SIZE)
      end)

      it("takes back the bytes of a GET cut mid-body and counts its retry from 0", function()
        local pc = servers.client(srv, { endpoint = fp.endpoint, timeout = 30, connect_timeout = 2,
          retry = { max_attempts = 3, base_delay = 0.05, max_delay = 0.2 } })
        assert(c:upload_file(bucket, "to-cut", path, { part_size = 64 * MiB }))
        assert(fp:reset_stats())
        -- Cut past the first quarter (6 MiB, about a second in): a cut in
        -- the first few hundred KiB left nothing reported to take back.
        assert(fp:set{ reset_mid = { rate = 1, methods = { "GET" }, max = 1 }, cut_from = 0.25 })
        local calls, fn = recorder()
        local res = assert(pc:download_file(bucket, "to-cut", dir .. "/cut.out", { part_size = 64 * MiB,
          bwlimit = 6 * MiB, progress = fn }))
        assert(fp:clear())
        assert.equals(1, assert(fp:stats()).faults.reset_mid)
        assert.equals(SIZE, res.size)
        check_retried(calls, SIZE)
      end)
    end)
  end
end

describe("transfer progress counter", function()
  local progress_mod = require "objstore.transfer.progress"

  it("reports a count that went back (a retry from 0) at once, not at the next tick", function()
    local seen = {}
    -- 1 report a second: only the first and the drop may come out here.
    local _, moving = progress_mod.new(function(done) seen[#seen + 1] = done end, 1000, 0, 1)
    moving(1, 100)
    moving(1, 400)
    moving(1, 700)
    moving(1, 30) -- the retry's first bytes
    moving(1, 200)
    assert.same({ 100, 30 }, seen)
  end)
end)
