-- download_file never trusts what it finds beside the destination: a stale
-- part file left by a killed download (larger than the object) or a link
-- planted under a part file's name must never become, or be written
-- through to, the result. Against a real server.
local servers = require "servers"
local lfs = require "lfs"

local MiB = 1024 * 1024
local OBJECT = "twenty-four bytes here!\n"
local OUTSIDE = "outside: must stay as it is\n"

--- The names in dir that look like objstore's part files.
local function part_files(dir)
  local out = {}
  for name in lfs.dir(dir) do
    if name:find("%.objstore%-part") then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

--- A 60 MB file at path whose first bytes are not zero (sparse after them).
local function plant_stale(path)
  servers.write_file(path, ("STALE BYTES "):rep(100))
  assert(servers.sh("truncate -s 60M " .. servers.q(path)))
end

for _, srv in ipairs(servers.list()) do
  describe("download_file beside stale files on " .. srv.name .. " #server", function()
    local c, bucket, dir, outside

    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("dlsafe")
      assert(c:create_bucket(bucket))
      assert(c:put_object(bucket, "small", OBJECT))
      assert(c:put_object(bucket, "empty", ""))
      dir = servers.tmpdir()
      outside = servers.tmpdir()
    end)

    teardown(function()
      servers.cleanup(c, bucket)
      servers.sh("rm -rf " .. servers.q(dir) .. " " .. servers.q(outside))
    end)

    for _, cp in ipairs{ false, true } do
      for _, obj in ipairs{ { key = "small", body = OBJECT }, { key = "empty", body = "" } } do
        local how = obj.key .. (cp and " with a checkpoint" or "")

        it("ignores a 60 MB stale part file (" .. how .. ")", function()
          local out = dir .. "/stale-" .. obj.key .. (cp and "-cp" or "")
          plant_stale(out .. ".objstore-part")
          local res = assert(c:download_file(bucket, obj.key, out, { checkpoint = cp or nil }))
          assert.equals(#obj.body, lfs.symlinkattributes(out, "size"))
          assert.equals(obj.body, servers.read_file(out))
          assert.equals(#obj.body, res.size)
          assert.is_true(res.verified)
          assert.is_nil(lfs.attributes(out .. ".objstore-cp"))
          -- Without a checkpoint the stale file is not objstore's to touch.
          local left = part_files(dir)
          assert.same(cp and {} or { "stale-" .. obj.key .. ".objstore-part" }, left)
          os.remove(out .. ".objstore-part")
        end)

        it("never writes through a link named like the part file (" .. how .. ")", function()
          local out = dir .. "/link-" .. obj.key .. (cp and "-cp" or "")
          local target = outside .. "/target-" .. obj.key .. (cp and "-cp" or "")
          servers.write_file(target, OUTSIDE)
          assert(lfs.link(target, out .. ".objstore-part", true))
          local res = assert(c:download_file(bucket, obj.key, out, { checkpoint = cp or nil }))
          assert.equals(obj.body, servers.read_file(out))
          assert.equals("file", lfs.symlinkattributes(out, "mode"))
          assert.is_true(res.verified)
          assert.equals(OUTSIDE, servers.read_file(target))
          assert.equals(OUTSIDE:len(), lfs.attributes(target, "size"))
          for _, name in ipairs(part_files(dir)) do
            assert.equals("link-" .. obj.key .. ".objstore-part", name) -- only the planted link, if anything
          end
          os.remove(out .. ".objstore-part")
        end)
      end
    end

    it("removes its part file when an interrupt is raised after the ranges, during the verification", function()
      -- core.signal raises wherever Lua runs next: here right after the
      -- MD5 of the whole file (a plain ETag, more than one range).
      local body = ("0123456789abcdef"):rep(6 * MiB / 16) -- 6 MiB
      assert(c:put_object(bucket, "sixmib", body))
      -- The whole-file MD5 goes through objstore.hashjob (core.hash.file
      -- outside nginx): the interrupt is raised there.
      local hashjob = require "objstore.hashjob"
      local real = hashjob.file
      hashjob.file = function() error("interrupted (SIGINT)", 0) end
      local ok, err = pcall(c.download_file, c, bucket, "sixmib", dir .. "/interrupted", { part_size = 5 * MiB })
      hashjob.file = real
      assert.is_false(ok)
      assert.equals("interrupted (SIGINT)", err)
      assert.same({}, part_files(dir))
      assert.is_nil(lfs.attributes(dir .. "/interrupted"))
    end)

    it("replaces a link at the destination itself, never writing through it", function()
      local out = dir .. "/dest-link"
      local target = outside .. "/dest-target"
      servers.write_file(target, OUTSIDE)
      assert(lfs.link(target, out, true))
      assert(c:download_file(bucket, "small", out))
      assert.equals("file", lfs.symlinkattributes(out, "mode"))
      assert.equals(OBJECT, servers.read_file(out))
      assert.equals(OUTSIDE, servers.read_file(target))
    end)

    describe("resuming from a checkpoint", function()
      local body

      setup(function()
        local t = {}
        for i = 1, 11 * MiB / 1024 do t[i] = string.format("%-99d", i):rep(10) .. ("x"):rep(33) .. "\n" end
        body = table.concat(t)
        assert(c:put_object(bucket, "eleven", body))
      end)

      --- A checkpointed download of "eleven" stopped after its first range:
      -- the checkpoint and "<out>.objstore-part" stay for the next run.
      local function stopped(out)
        local res, err = c:download_file(bucket, "eleven", out, { checkpoint = true, part_size = 5 * MiB,
          concurrency = 1, on_part = function() return false end })
        assert.is_nil(res)
        assert.equals("Aborted", err.code)
        assert.equals("file", lfs.symlinkattributes(out .. ".objstore-part", "mode"))
      end

      it("cuts a part file grown beyond the object back to its size", function()
        local out = dir .. "/grown"
        stopped(out)
        assert(servers.sh("truncate -s 60M " .. servers.q(out .. ".objstore-part")))
        local res = assert(c:download_file(bucket, "eleven", out, { checkpoint = true, part_size = 5 * MiB,
          concurrency = 1 }))
        assert.is_true(res.resumed_from > 0)
        assert.equals(#body, lfs.attributes(out, "size"))
        assert.is_true(servers.read_file(out) == body)
        assert.is_true(res.verified)
      end)

      it("starts over rather than resume through a link put in the part file's place", function()
        local out = dir .. "/relinked"
        local target = outside .. "/relinked-target"
        servers.write_file(target, OUTSIDE)
        stopped(out)
        assert(os.remove(out .. ".objstore-part"))
        assert(lfs.link(target, out .. ".objstore-part", true))
        local res = assert(c:download_file(bucket, "eleven", out, { checkpoint = true, part_size = 5 * MiB,
          concurrency = 1 }))
        assert.equals(0, res.resumed_from)
        assert.is_true(servers.read_file(out) == body)
        assert.equals(OUTSIDE, servers.read_file(target))
        assert.is_nil(lfs.symlinkattributes(out .. ".objstore-part"))
      end)
    end)
  end)
end

describe("get_object{file=} temporary names", function()
  local ops = require "objstore.ops.object"

  it("are created exclusively as <file>.objstore-tmp-<16 lowercase hex>, differing every time", function()
    local dir = servers.tmpdir()
    local seen = {}
    for _ = 1, 3 do
      local req = {}
      local tmp = assert(ops.get_object.to_temp(req, dir .. "/f"))
      assert.matches("^" .. (dir:gsub("%p", "%%%0")) .. "/f%.objstore%-tmp%-%x+$", tmp)
      assert.equals(16, #tmp:match("%-(%x+)$"))
      assert.is_nil(tmp:match("%-(%x+)$"):find("%u"))
      assert.equals("file", lfs.symlinkattributes(tmp, "mode"))
      assert.same({ file = tmp, offset = 0 }, req.sink)
      assert.is_nil(seen[tmp])
      seen[tmp] = true
    end
    servers.sh("rm -rf " .. servers.q(dir))
  end)
end)
