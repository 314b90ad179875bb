-- upload_stream of a stream of unknown size: memory bounded by
-- concurrency x part_size (+16 MiB) above the interpreter's baseline,
-- measured from /proc in a child process, and the part limit enforced
-- with TooManyParts (nothing completed, the upload aborted).
local core = require "objstore.core"
local checksum = require "objstore.checksum"
local servers = require "servers"

local MiB = 1024 * 1024

describe("core.buffer", function()
  it("fills from a file handle, appends up to a limit, hashes in place and slices like string.sub", function()
    local path = os.tmpname()
    servers.write_file(path, ("0123456789"):rep(1000))
    local f = assert(io.open(path, "rb"))
    local b = core.buffer.new()
    local len, eof = b:fill(f, 4096)
    assert.equals(4096, len)
    assert.is_false(eof)
    local rest = core.buffer.new()
    len, eof = rest:fill(f, 1e6)
    assert.equals(10000 - 4096, len)
    assert.is_true(eof)
    f:close()
    local all = ("0123456789"):rep(1000)
    assert.equals(all:sub(1, 4096), b:sub(1))
    assert.equals(all:sub(4091, 4096), b:sub(-6))
    assert.equals(core.hash.md5(all:sub(4097)), rest:digest("md5"))
    assert.equals(checksum.new("crc32c"):update(all:sub(1, 4096)):digest(), b:digest("crc32c"))
    assert.equals(checksum.new("crc64nvme"):update(all:sub(1, 4096)):digest(), b:digest("crc64nvme"))
    b:clear()
    assert.equals(3, b:append("abcdef", 3))
    assert.equals(0, b:append("gh", 3))
    assert.equals("abc", b:sub(1))
    assert.is_true(core.buffer.is(b))
    assert.is_false(core.buffer.is("abc"))
    local ok, err = pcall(b.fill, b, f, 10)
    assert.is_false(ok)
    assert.matches("core.buffer.fill: argument #1 %(fh%): the file is closed", err)
    os.remove(path)
  end)
end)

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("upload_stream on " .. srv.name .. " #server", function()
      local c, bucket
      setup(function()
        c = servers.client(srv)
        bucket = servers.bucket_name("h12b-stream")
        assert(c:create_bucket(bucket))
      end)
      teardown(function() servers.cleanup(c, bucket) end)

      local function child(key, mib, part_mib, concurrency, mode)
        local lua = arg and arg[-1] or "lua5.4"
        local cmd = string.format("LUA_PATH=%s LUA_CPATH=%s %s spec/support/stream_rss.lua %s %s %s %s %s %d %d %d %s",
          servers.q(package.path), servers.q(package.cpath), lua, servers.q(srv.endpoint), servers.q(srv.access_key),
          servers.q(srv.secret_key), servers.q(bucket), servers.q(key), mib, part_mib, concurrency, mode)
        local ok, out = servers.sh(cmd)
        assert(ok, out)
        local base, hwm, peak, size, parts = out:match("baseline (%d+) hwm (%d+) peak_rss (%d+) size (%d+) parts (%d+)")
        assert(base, out)
        return tonumber(base), tonumber(hwm), tonumber(peak), tonumber(size), tonumber(parts)
      end

      for _, mode in ipairs{ "pipe", "reader" } do
        it("keeps RSS within concurrency x part_size + 16 MiB piping 208 MiB (" .. mode .. ") #slow", function()
          local base, hwm, peak, size, parts = child("rss-" .. mode, 208, 8, 4, mode)
          assert.equals(208 * MiB, size)
          assert.equals(26, parts)
          local bound = 4 * 8 * MiB + 16 * MiB
          print(string.format("upload_stream %s: baseline %.1f MiB, VmHWM %.1f MiB (+%.1f), peak VmRSS %.1f MiB",
            mode, base / MiB, hwm / MiB, (hwm - base) / MiB, peak / MiB))
          assert(hwm - base <= bound, string.format("VmHWM %.1f MiB above the baseline, bound %.1f MiB",
            (hwm - base) / MiB, bound / MiB))
          local head = assert(c:head_object(bucket, "rss-" .. mode))
          assert.equals(208 * MiB, head.content_length)
        end)
      end

      it("fails with TooManyParts past max_parts, completing nothing and aborting the upload", function()
        local n = 0
        local chunk = ("x"):rep(MiB)
        local reader = function()
          n = n + 1
          if n > 16 then return nil end
          return chunk
        end
        local res, err = c:upload_stream(bucket, "too-many", reader, { part_size = 5 * MiB, max_parts = 3 })
        assert.is_nil(res)
        assert.equals("TooManyParts", err.code)
        assert.matches("longer than 3 parts %(15728640 bytes sent%): give a larger part_size", err.message)
        assert.equals(3, err.max_parts)
        local _, herr = c:head_object(bucket, "too-many")
        assert.equals(404, herr.status)
        assert.equals(0, #assert(c:list_incomplete_uploads(bucket, "too-many")))
        -- Exactly max_parts parts fit.
        n = 1
        local ok = assert(c:upload_stream(bucket, "fits", reader, { part_size = 5 * MiB, max_parts = 3 }))
        assert.equals(3, ok.parts)
        assert.equals(15 * MiB, ok.size)
        local perr = select(2, pcall(c.upload_stream, c, bucket, "k", reader, { max_parts = 10001 }))
        assert.matches("opts.max_parts%): must be a whole number from 1 to 10000", perr)
      end)
    end)
  end
end
