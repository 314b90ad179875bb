-- A remote->local sync (and so `cp -r`) never writes through a link below
-- the destination root: a key "link/x" where the destination has
-- `link -> /somewhere/else` fails for that file, the directory the link
-- points to stays as it was, and the other files still arrive. Against rgw.
local servers = require "servers"
local objstore = require "objstore"
local lfs = require "lfs"

local q, sh = servers.q, servers.sh

--- The names in dir, sorted.
local function listing(dir)
  local out = {}
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("sync below a destination holding links on " .. srv.name .. " #server", function()
      local c, bucket, root

      setup(function()
        c = servers.client(srv)
        bucket = servers.bucket_name("h17a-links")
        assert(c:create_bucket(bucket))
        root = servers.tmpdir()
        for _, k in ipairs{ "l/a.txt", "l/d/b.txt", "l/link/x", "l/link/y", "l/file/z" } do
          assert(c:put_object(bucket, k, "remote " .. k))
        end
        -- Above multipart_threshold below: the large-file path (download_file).
        assert(c:put_object(bucket, "l/link/big", ("B"):rep(4096)))
        assert(c:put_object(bucket, "m/a.txt", "remote m/a.txt"))
      end)

      teardown(function()
        servers.cleanup(c, bucket)
        sh("rm -rf " .. q(root))
      end)

      it("refuses a directory link and a file in a directory's place, and transfers the rest", function()
        local dst, outside = root .. "/dst", root .. "/outside-dir"
        assert(lfs.mkdir(dst))
        assert(lfs.mkdir(outside))
        servers.write_file(outside .. "/y", "outside y")
        assert(lfs.link(outside, dst .. "/link", true))
        servers.write_file(dst .. "/file", "a file where a directory would go")
        local res, err = objstore.sync(c, { bucket = bucket, prefix = "l" }, dst,
          { state = false, multipart_threshold = 1024 })
        assert.is_nil(res)
        assert.is_table(err)
        local r = err.result
        assert.equals(2, r.transferred)
        assert.equals(4, r.failed)
        local failed = {}
        for _, e in ipairs(r.errors) do failed[#failed + 1] = e.key end
        table.sort(failed)
        assert.same({ "file/z", "link/big", "link/x", "link/y" }, failed)
        for _, e in ipairs(r.errors) do assert.equals("LocalFileError", e.error.code) end
        assert.same({ "y" }, listing(outside))
        assert.equals("outside y", servers.read_file(outside .. "/y"))
        assert.equals("link", lfs.symlinkattributes(dst .. "/link", "mode"))
        assert.equals("remote l/a.txt", servers.read_file(dst .. "/a.txt"))
        assert.equals("remote l/d/b.txt", servers.read_file(dst .. "/d/b.txt"))
        assert.equals("a file where a directory would go", servers.read_file(dst .. "/file"))
        for _, name in ipairs(listing(dst)) do assert.is_nil(name:find("objstore%-tmp"), name) end
      end)

      it("replaces a link in a file's place instead of writing through it", function()
        local dst, outside = root .. "/dst2", root .. "/outside-file"
        assert(lfs.mkdir(dst))
        servers.write_file(outside, "outside file")
        assert(lfs.link(outside, dst .. "/a.txt", true))
        local res, err = objstore.sync(c, { bucket = bucket, prefix = "m" }, dst, { state = false })
        assert(res, err and tostring(err.message))
        assert.equals("file", lfs.symlinkattributes(dst .. "/a.txt", "mode"))
        assert.equals("remote m/a.txt", servers.read_file(dst .. "/a.txt"))
        assert.equals("outside file", servers.read_file(outside))
      end)

      it("never moves a deleted file into a backup through a link below the backup root", function()
        local dst, bkp, outside = root .. "/dst3", root .. "/bkp3", root .. "/outside-bkp"
        assert(lfs.mkdir(dst))
        assert(lfs.mkdir(bkp))
        assert(lfs.mkdir(outside))
        assert(lfs.mkdir(dst .. "/stale"))
        servers.write_file(dst .. "/stale/old.txt", "old")
        assert(lfs.link(outside, bkp .. "/stale", true))
        local res, err = objstore.sync(c, { bucket = bucket, prefix = "m" }, dst, { state = false, delete = true,
          backup = bkp })
        assert.is_nil(res)
        assert.equals(1, err.result.failed)
        assert.equals(0, err.result.deleted)
        assert.same({}, listing(outside))
        assert.equals("old", servers.read_file(dst .. "/stale/old.txt"))
      end)
    end)
  end
end
