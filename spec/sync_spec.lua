-- objstore.sync and objstore.check against rgw: the three directions, the
-- compare modes, the sync state (a no-op run sends only LISTs), deletes
-- and their guards, filters, dry runs, hostile keys written by boto3,
-- names (byte order, NFC/NFD, a and a/b, markers, p vs p2/), and the
-- flat memory of a streamed listing.
local servers = require "servers"
local objstore = require "objstore"
local names = require "objstore.sync.names"
local filter = require "objstore.sync.filter"
local remote = require "objstore.sync.remote"
local lfs = require "lfs"

local q, sh = servers.q, servers.sh

local function write(path, data, mtime)
  local dir = path:match("^(.*)/")
  sh("mkdir -p " .. q(dir))
  servers.write_file(path, data)
  if mtime then lfs.touch(path, mtime, mtime) end
end

local function ops_of(log)
  local t = {}
  for _, op in ipairs(log) do t[op] = (t[op] or 0) + 1 end
  return t
end

local function only_lists(log)
  for _, op in ipairs(log) do
    if op ~= "ListObjectsV2" then return false, op end
  end
  return true
end

describe("sync names and filters", function()
  it("refuses keys that would escape a local root", function()
    for _, k in ipairs{ "../x", "a/../../x", "/etc/passwd", "a\\b", "C:evil", "a\0b", "a//b", "./x" } do
      assert.is_string(names.hostile(k), k)
    end
    assert.is_nil(names.hostile("a/b.c/d e"))
    assert.is_nil(names.hostile("..foo"))
  end)

  it("composes NFD names to NFC", function()
    assert.equals("caf\195\169", names.nfc("cafe\204\129"))
    assert.equals("\225\187\135", names.nfc("e\204\163\204\130")) -- e + dot below + circumflex
    assert.equals("plain/ascii", names.nfc("plain/ascii"))
  end)

  it("keeps a prefix from matching its siblings", function()
    assert.equals("p/", names.prefix("p"))
    assert.equals("p/", names.prefix("p/"))
    assert.equals("", names.prefix(nil))
  end)

  it("applies ordered rules, the first match winning", function()
    local keep = filter.new{ { "include", "logs/keep*" }, { "exclude", "logs/**" }, { "exclude", "*.tmp" } }
    assert.is_true(keep("logs/keep-1"))
    assert.is_false(keep("logs/other"))
    assert.is_false(keep("a/b.tmp"))
    assert.is_false(keep("c.txt")) -- an include list means "only these"
    local ex = filter.new{ { "exclude", "*.tmp" } }
    assert.is_true(ex("c.txt"))
    assert.is_false(ex("deep/er/x.tmp"))
  end)

  it("raises on misuse in the one format", function()
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", region = "us-east-1" }
    assert.has_error(function() objstore.sync(c, "", { bucket = "b" }) end,
      "objstore.sync: argument #2 (src): must be a directory path or {bucket=, prefix=}")
    assert.has_error(function() objstore.sync(c, "/tmp", "/tmp") end,
      "objstore.sync: argument #3 (dst): one side must be remote ({bucket=, prefix=})")
    assert.has_error(function() objstore.check(c, "/tmp", { bucket = "b" }, { compare = "magic" }) end,
      "objstore.check: argument #4 (opts.compare): must be 'size_mtime', 'checksum' or 'size_only'")
    assert.has_error(function() objstore.sync(c, "/tmp", { bucket = "b" }, { colour = 1 }) end,
      "objstore.sync: argument #4 (opts.colour): is not an option of sync")
  end)

  it("parses listing times and HTTP dates alike", function()
    assert.equals(1700000000, names.parse_time("2023-11-14T22:13:20.000Z"))
    assert.equals(1700000000, names.parse_time("Tue, 14 Nov 2023 22:13:20 GMT"))
  end)
end)

describe("sync memory", function()
  it("stays flat over a 1,000,000-entry listing streamed page by page", function()
    local dir = servers.tmpdir()
    local total, per_page = 1000000, 1000
    local function pages(token)
      local first = (tonumber(token) or 0)
      local contents = {}
      for i = first + 1, math.min(first + per_page, total) do
        contents[#contents + 1] = { key = string.format("m/k%07d", i), size = "10", etag = '"x"',
          last_modified = "2024-01-01T00:00:00.000Z" }
      end
      local last = first + per_page
      return { contents = contents, is_truncated = last < total, next_continuation_token = tostring(last) }
    end
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", region = "us-east-1" }
    local seen, mem = 0, {}
    collectgarbage("collect")
    local base = collectgarbage("count")
    local res = assert(objstore.sync(c, { bucket = "b", prefix = "m" }, dir, { dry_run = true, actions = false,
      state = false, pages = pages, on_action = function()
        seen = seen + 1
        if seen == 100000 or seen == total then
          collectgarbage("collect")
          mem[#mem + 1] = collectgarbage("count") - base
        end
      end }))
    assert.equals(total, seen)
    assert.equals(0, res.transferred) -- a dry run transfers nothing
    assert.equals(1000, res.listing_pages)
    -- The growth from 100,000 to 1,000,000 entries: an entry kept costs over
    -- 100 bytes (900,000 of them over 85 MiB); what may grow is per page
    -- (the continuation tokens seen, remembered to refuse a repeated one)
    -- and the interpreter's own tables (its string table's buckets grow
    -- with the keys made and shrink only when a collection finds them a
    -- quarter used), which under the whole suite grew by 1 to 2.1 MiB
    -- (Lua 5.2, 5.4): 8 MiB at most, a tenth of one entry kept per entry.
    assert.is_true(mem[2] - mem[1] < 8192, string.format("%.0f KiB -> %.0f KiB", mem[1], mem[2]))
    sh("rm -rf " .. q(dir))
  end)

  it("skips archived objects with a notice", function()
    local dir = servers.tmpdir()
    local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", region = "us-east-1" }
    local res = assert(objstore.sync(c, { bucket = "b" }, dir, { dry_run = true, state = false,
      pages = function()
        return { contents = { { key = "cold", size = "1", etag = '"e"', storage_class = "GLACIER",
          last_modified = "2024-01-01T00:00:00.000Z" }, { key = "warm", size = "1", etag = '"e"',
          last_modified = "2024-01-01T00:00:00.000Z" } } }
      end }))
    assert.equals(1, res.skipped)
    assert.matches("GLACIER", res.notices[1])
    assert.equals("download", res.actions[2].action)
    sh("rm -rf " .. q(dir))
  end)

  it("streams a listing without holding consumed entries", function()
    local page = { contents = { { key = "x/a", size = "1" }, { key = "x/b/", size = "0" },
      { key = "x/c", size = "2" } } }
    local stats = {}
    local it = remote.stream(function() return page end, "x/", stats)
    assert.equals("a", it().rel)
    assert.is_nil(page.contents[1])
    assert.equals("c", it().rel)
    assert.is_nil(it())
    assert.equals(1, stats.markers)
  end)
end)

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("sync on " .. srv.name .. " #server", function()
      local c, bucket, root
      local log = {}

      setup(function()
        c = servers.client(srv, { hooks = { on_request = function(e) log[#log + 1] = e.op end } })
        bucket = servers.bucket_name("h10-sync")
        assert(c:create_bucket(bucket))
        root = servers.tmpdir()
      end)

      teardown(function()
        servers.cleanup(c, bucket)
        sh("rm -rf " .. q(root))
      end)

      before_each(function()
        for i = #log, 1, -1 do log[i] = nil end
      end)

      local function reset()
        for i = #log, 1, -1 do log[i] = nil end
      end

      it("uploads with mtime and checksum metadata, then a second run sends only LISTs", function()
        local src = root .. "/up"
        write(src .. "/a.txt", "alpha", 1600000000)
        write(src .. "/d/b.json", "{}", 1600000100)
        write(src .. "/big.bin", string.rep("z", 3 * 1024 * 1024), 1600000200)
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "up" }))
        assert.equals(3, res.transferred)
        assert.equals(5 + 2 + 3 * 1024 * 1024, res.bytes)
        local ops = ops_of(log)
        assert.equals(3, ops.PutObject) -- one request per file, no HEAD after
        assert.is_nil(ops.HeadObject)
        local h = assert(c:head_object(bucket, "up/a.txt"))
        assert.equals("1600000000", h.metadata.mtime)
        assert.equals("text/plain", h.content_type)
        assert.equals("application/json", assert(c:head_object(bucket, "up/d/b.json")).content_type)
        -- The whole-object CRC-64/NVME, as x-amz-checksum-crc64nvme encodes it.
        local crc = require("objstore.checksum").new("crc64nvme"):update("alpha"):base64digest()
        assert.equals(crc, h.metadata["objstore-crc64nvme"])
        reset()
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "up" }))
        assert.equals(0, res.transferred)
        assert.equals(3, res.skipped)
        assert.is_true(only_lists(log))
        assert.is_true(#log >= 1)
      end)

      it("is a client method too: client:sync and client:check", function()
        local src = root .. "/method"
        write(src .. "/one.txt", "one", 1600000000)
        write(src .. "/two/three.txt", "three", 1600000100)
        local res = assert(c:sync(src, { bucket = bucket, prefix = "method" }, { state = false }))
        assert.equals(2, res.transferred)
        assert.equals("three", assert(c:get_object(bucket, "method/two/three.txt")).body)
        local report = assert(c:check(src, { bucket = bucket, prefix = "method" }))
        assert.is_true(report.ok)
        assert.equals(2, report.matched)
        write(src .. "/one.txt", "ONE!", 1600000900)
        report = assert(c:check(src, { bucket = bucket, prefix = "method" }))
        assert.is_false(report.ok)
        assert.same({ "one.txt" }, report.differ)
        -- Misuse names the method and counts its arguments as written.
        local ok, err = pcall(c.sync, c, src, { bucket = bucket }, { bogus = true })
        assert.is_false(ok)
        assert.matches("objstore%.client%.sync: argument #3 %(opts%.bogus%): is not an option", err)
      end)

      it("without a state file decides with HEADs and still transfers nothing", function()
        local src = root .. "/up"
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "up" }, { state = false }))
        assert.equals(0, res.transferred)
        assert.equals(3, ops_of(log).HeadObject)
      end)

      it("detects a same-size change by mtime, and by checksum when the mtime is kept", function()
        local src = root .. "/up"
        write(src .. "/a.txt", "ALPHA", 1600000500)
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "up" }))
        assert.equals(1, res.transferred)
        assert.equals("ALPHA", c:get_object(bucket, "up/a.txt").body)
        -- Same size, same mtime, other bytes: only checksum mode sees it.
        write(src .. "/a.txt", "omega", 1600000500)
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "up" }))
        assert.equals(0, res.transferred)
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "up" }, { compare = "checksum" }))
        assert.equals(1, res.transferred)
        local reasons = {}
        for _, a in ipairs(res.actions) do reasons[a.key] = a.reason end
        assert.equals("checksum differs", reasons["a.txt"])
        assert.equals("omega", c:get_object(bucket, "up/a.txt").body)
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "up" }, { compare = "size_only" }))
        assert.equals(0, res.transferred)
      end)

      it("downloads restoring mtimes, and a second run sends only LISTs", function()
        local dst = root .. "/down"
        local res = assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, dst))
        assert.equals(3, res.transferred)
        assert.equals("omega", servers.read_file(dst .. "/a.txt"))
        assert.equals(1600000500, lfs.attributes(dst .. "/a.txt", "modification"))
        assert.equals(1600000100, lfs.attributes(dst .. "/d/b.json", "modification"))
        assert.equals(3 * 1024 * 1024, lfs.attributes(dst .. "/big.bin", "size"))
        reset()
        res = assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, dst))
        assert.equals(0, res.transferred)
        assert.is_true(only_lists(log))
        -- Without the state: same size, the stored mtime equals the file's.
        res = assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, dst, { state = false }))
        assert.equals(0, res.transferred)
        assert.is_true(objstore.check(c, { bucket = bucket, prefix = "up" }, dst).ok)
      end)

      it("copies server-side between prefixes, keeping metadata", function()
        local res = assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, { bucket = bucket, prefix = "copy" }))
        assert.equals(3, res.transferred)
        assert.equals(3, ops_of(log).CopyObject)
        assert.is_nil(ops_of(log).GetObject)
        assert.equals("1600000500", assert(c:head_object(bucket, "copy/a.txt")).metadata.mtime)
        reset()
        res = assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, { bucket = bucket, prefix = "copy" }))
        assert.equals(0, res.transferred)
        assert.is_true(only_lists(log))
      end)

      it("streams a copy between two clients, keeping mtime metadata", function()
        local other_log = {}
        local c2 = servers.client(srv, { hooks = { on_request = function(e) other_log[#other_log + 1] = e.op end } })
        local res = assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, { bucket = bucket, prefix = "across",
          client = c2 }))
        assert.equals(3, res.transferred)
        assert.is_nil(ops_of(log).CopyObject)
        assert.is_truthy(ops_of(log).GetObject)
        assert.is_truthy(ops_of(other_log).PutObject or ops_of(other_log).UploadPart)
        assert.equals("1600000500", assert(c2:head_object(bucket, "across/a.txt")).metadata.mtime)
        assert.equals("omega", c2:get_object(bucket, "across/a.txt").body)
      end)

      it("skips the second of two local spellings of one name (NFC and NFD)", function()
        local src = root .. "/spell"
        write(src .. "/caf\195\169", "composed")
        write(src .. "/cafe\204\129", "decomposed")
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "spell" }))
        assert.equals(1, res.transferred)
        assert.matches("Unicode composition", table.concat(res.notices, "\n"))
      end)

      it("moves deleted local files into a backup directory", function()
        local dst = root .. "/bdown"
        assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, dst))
        write(dst .. "/stale/old.txt", "old")
        local res = assert(objstore.sync(c, { bucket = bucket, prefix = "up" }, dst, { delete = true,
          backup = root .. "/bkp" }))
        assert.equals(1, res.deleted)
        assert.is_nil(lfs.attributes(dst .. "/stale/old.txt"))
        assert.equals("old", servers.read_file(root .. "/bkp/stale/old.txt"))
      end)

      it("follows a stated rule for objects other tools wrote (no mtime metadata)", function()
        local src = root .. "/other"
        write(src .. "/o.txt", "12345", 1600000000) -- older than the upload below
        write(src .. "/n.txt", "12345", os.time() + 3600) -- newer than it
        assert(c:put_object(bucket, "other/o.txt", "abcde"))
        assert(c:put_object(bucket, "other/n.txt", "abcde"))
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "other" }))
        assert.equals(1, res.transferred)
        assert.equals("12345", c:get_object(bucket, "other/n.txt").body)
        assert.equals("abcde", c:get_object(bucket, "other/o.txt").body)
      end)

      it("plans a dry run with reasons and sends no write", function()
        local src = root .. "/dry"
        write(src .. "/new.txt", "n")
        assert(c:put_object(bucket, "dry/gone.txt", "g"))
        reset()
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "dry" },
          { dry_run = true, delete = true }))
        local by = {}
        for _, a in ipairs(res.actions) do by[a.key] = a end
        assert.equals("upload", by["new.txt"].action)
        assert.equals("missing on destination", by["new.txt"].reason)
        assert.equals("delete", by["gone.txt"].action)
        assert.equals("not in source", by["gone.txt"].reason)
        for _, op in ipairs(log) do assert.is_truthy(op == "ListObjectsV2" or op == "HeadObject", op) end
        assert.is_true(c:object_exists(bucket, "dry/gone.txt"))
      end)

      it("deletes after transfers, keeping excluded entries unless delete_excluded", function()
        local src = root .. "/del"
        write(src .. "/keep.txt", "k")
        for _, k in ipairs{ "extra.txt", "skip.tmp" } do assert(c:put_object(bucket, "del/" .. k, "x")) end
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "del" }, { delete = true,
          exclude = "*.tmp" }))
        assert.equals(1, res.deleted)
        assert.is_false(c:object_exists(bucket, "del/extra.txt"))
        assert.is_true(c:object_exists(bucket, "del/skip.tmp"))
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "del" }, { delete = true, exclude = "*.tmp",
          delete_excluded = true }))
        assert.equals(1, res.deleted)
        assert.is_false(c:object_exists(bucket, "del/skip.tmp"))
      end)

      it("keeps max_delete, a missing source and a backup prefix", function()
        local src = root .. "/del"
        for i = 1, 3 do assert(c:put_object(bucket, "del/x" .. i, "x")) end
        local res, err = objstore.sync(c, src, { bucket = bucket, prefix = "del" }, { delete = true, max_delete = 2 })
        assert.is_nil(res)
        assert.equals("MaxDeleteExceeded", err.code)
        assert.is_true(c:object_exists(bucket, "del/x1"))
        -- a missing local source is an error of its own, before any request
        res, err = objstore.sync(c, root .. "/nowhere", { bucket = bucket, prefix = "del" }, { delete = true })
        assert.is_nil(res)
        assert.equals("LocalFileError", err.code)
        assert.matches("source directory .*/nowhere does not exist", err.message)
        assert.is_true(c:object_exists(bucket, "del/keep.txt"))
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "del" }, { delete = true,
          backup = "trash" }))
        assert.equals(3, res.deleted)
        assert.is_false(c:object_exists(bucket, "del/x1"))
        assert.is_true(c:object_exists(bucket, "trash/x1"))
      end)

      it("refuses hostile keys written by boto3 and then deletes nothing", function()
        local py = [[
import boto3,sys
s3=boto3.client('s3',endpoint_url=sys.argv[1],aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3],
  region_name='us-east-1')
for k in ['h/../escape','h//abs','h/back\\slash','h/C:drive','h/ok.txt','h/Case','h/CASE','h/a','h/a/b']:
  s3.put_object(Bucket=sys.argv[4],Key=k,Body=b'v')
]]
        local f = root .. "/mk.py"
        servers.write_file(f, py)
        local ok, out = sh("/usr/bin/python3 " .. q(f) .. " " .. q(srv.endpoint) .. " " .. q(srv.access_key) .. " "
          .. q(srv.secret_key) .. " " .. q(bucket))
        assert(ok, out)
        local dst = root .. "/hostile"
        write(dst .. "/stale.txt", "s")
        local res, err = objstore.sync(c, { bucket = bucket, prefix = "h" }, dst, { delete = true,
          case_insensitive = true })
        assert.is_nil(res)
        local r = err.result
        local refused = {}
        for _, a in ipairs(r.actions) do
          if a.action == "refuse_failed" then refused[a.key] = a.reason end
        end
        assert.is_string(refused["../escape"])
        assert.is_string(refused["/abs"])
        assert.is_string(refused["back\\slash"])
        assert.is_string(refused["C:drive"])
        assert.is_string(refused["Case"]) -- after "CASE" in byte order, same name folded
        assert.is_string(refused["a/b"]) -- "a" is a file there
        assert.equals("v", servers.read_file(dst .. "/ok.txt"))
        assert.is_nil(lfs.attributes(root .. "/escape"))
        assert.equals("s", servers.read_file(dst .. "/stale.txt")) -- a failure present: nothing deleted
        assert.is_nil(lfs.attributes(dst .. "/back\\slash"))
      end)

      it("compares in byte order, composes NFD names, and keeps p from p2/", function()
        local src = root .. "/order"
        for _, n in ipairs{ "a-b", "a/b", "a.b", "a0", "A", "cafe\204\129" } do write(src .. "/" .. n, n) end
        assert(c:put_object(bucket, "order2/sibling", "s"))
        assert(c:put_object(bucket, "order/dir/", "")) -- a directory marker
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "order" }, { delete = true }))
        assert.equals(6, res.transferred)
        assert.equals(0, res.deleted)
        assert.is_true(c:object_exists(bucket, "order/caf\195\169"))
        assert.is_true(c:object_exists(bucket, "order2/sibling"))
        reset()
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "order" }, { delete = true }))
        assert.equals(0, res.transferred)
        assert.equals(0, res.deleted)
        assert.is_true(only_lists(log))
        local dst = root .. "/order-back"
        res = assert(objstore.sync(c, { bucket = bucket, prefix = "order" }, dst))
        assert.equals(6, res.transferred)
        assert.equals(1, res.markers)
        assert.equals("a/b", servers.read_file(dst .. "/a/b"))
      end)

      it("skips symlinks and special files with a notice, detects a loop when following", function()
        local src = root .. "/links"
        write(src .. "/real/f.txt", "f")
        assert(sh("ln -s ../real " .. q(src .. "/real/loop") .. " && ln -s real " .. q(src .. "/alias")
          .. " && mkfifo " .. q(src .. "/fifo")))
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "links" }))
        assert.equals(1, res.transferred)
        local text = table.concat(res.notices, "\n")
        assert.matches("symlink", text)
        assert.matches("special file", text)
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "links2" }, { follow_symlinks = true }))
        assert.equals(2, res.transferred) -- real/f.txt and alias/f.txt
        assert.matches("loop", table.concat(res.notices, "\n"))
      end)

      it("never replaces a good file with a failed download", function()
        local dst = root .. "/good"
        write(dst .. "/a.txt", "good and old", 1500000000)
        assert(c:put_object(bucket, "fail/a.txt", "newer bytes"))
        -- A client whose GETs are refused (wrong key) but whose listing comes from the good one.
        local bad = servers.client(srv, { secret_key = "wrong" })
        local good_pages = remote.pager(c, bucket, "fail/")
        local res, err = objstore.sync(bad, { bucket = bucket, prefix = "fail" }, dst, { pages = good_pages })
        assert.is_nil(res)
        assert.equals(1, err.result.failed)
        assert.equals("good and old", servers.read_file(dst .. "/a.txt"))
        for name in lfs.dir(dst) do assert.is_nil(name:find("objstore%-tmp")) end
      end)

      it("lists in concurrent ranges cut at the local names, and still sees every difference", function()
        local src = root .. "/many"
        sh("mkdir -p " .. q(src))
        for i = 1, 2100 do servers.write_file(string.format("%s/f%04d", src, i), "m") end
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "many" }))
        assert.equals(2100, res.transferred)
        reset()
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "many" }))
        assert.equals(2100, res.skipped)
        assert.is_true(only_lists(log))
        assert.equals(3, #log) -- ranges (, f1000] (f1000, f2000] (f2000, ): one page each
        -- Differences inside ranges and at their bounds.
        assert(c:put_object(bucket, "many/f0500x", "extra"))   -- remote only, inside the first range
        assert(c:put_object(bucket, "many/f2100z", "extra"))   -- remote only, after the last name
        os.remove(src .. "/f1000")                              -- a bound itself, gone locally
        servers.write_file(src .. "/f1500b", "new")             -- local only
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "many" }, { delete = true, dry_run = true }))
        local plan = {}
        for _, a in ipairs(res.actions) do if a.action ~= "skip" then plan[a.key] = a.action end end
        assert.same({ f0500x = "delete", f2100z = "delete", f1000 = "delete", f1500b = "upload" }, plan)
        assert.equals(2099, res.skipped)
      end)

      it("stops at once on a full disk", function()
        local mnt = root .. "/full"
        sh("mkdir -p " .. q(mnt))
        local mounted = sh("mount -t tmpfs -o size=1m tmpfs " .. q(mnt))
        if not mounted then
          pending("mounting a 1 MiB tmpfs needs root")
          return
        end
        local ok, err = pcall(function()
          for i = 1, 6 do assert(c:put_object(bucket, "full/f" .. i, string.rep("f", 400 * 1024))) end
          local res, serr = objstore.sync(c, { bucket = bucket, prefix = "full" }, mnt, { concurrency = 1 })
          assert.is_nil(res)
          local r = serr.result
          assert.is_true(r.failed >= 1)
          assert.is_true(r.transferred <= 2)
          assert.is_true(r.transferred + r.failed < 6, "went on after the disk was full")
          assert.matches("space", tostring(r.errors[1].error.message))
          for name in lfs.dir(mnt) do assert.is_nil(name:find("objstore%-tmp"), name) end
        end)
        sh("umount " .. q(mnt))
        assert(ok, err)
      end)

      it("honours bwlimit byte by byte, up and down, and a Content-Type override", function()
        local monotonic = require("objstore.core").time.monotonic
        local src = root .. "/bw"
        -- Two files at once at 400 KiB/s in all: 200 KiB/s each, 3 s for
        -- 1200 KiB (the start of each file alone used to be paced, so one
        -- batch of files went out at full speed).
        write(src .. "/one.txt", string.rep("b", 600 * 1024))
        write(src .. "/two.txt", string.rep("c", 600 * 1024))
        local t0 = monotonic()
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "bw" }, { bwlimit = 400 * 1024,
          content_type = "application/x-custom", concurrency = 4 }))
        local dt = monotonic() - t0
        assert.equals(2, res.transferred)
        assert.is_true(dt >= 2.2 and dt < 30, "upload took " .. dt)
        assert.equals("application/x-custom", assert(c:head_object(bucket, "bw/one.txt")).content_type)
        local down = root .. "/bw-down"
        t0 = monotonic()
        res = assert(objstore.sync(c, { bucket = bucket, prefix = "bw" }, down, { bwlimit = 400 * 1024 }))
        dt = monotonic() - t0
        assert.equals(2, res.transferred)
        assert.is_true(dt >= 2.2 and dt < 30, "download took " .. dt)
        assert.equals(string.rep("c", 600 * 1024), servers.read_file(down .. "/two.txt"))
        -- a large file (multipart, parts in parallel) shares it too
        write(src .. "/big.bin", string.rep("d", 6 * 1024 * 1024))
        t0 = monotonic()
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "bw" }, { bwlimit = 2 * 1024 * 1024,
          multipart_threshold = 5 * 1024 * 1024, part_size = 5 * 1024 * 1024 }))
        dt = monotonic() - t0
        assert.equals(1, res.transferred)
        assert.is_true(dt >= 2.2 and dt < 30, "multipart upload took " .. dt)
      end)

      it("tells a progress display the plan's totals before the transfers, and each file's bytes", function()
        local src = root .. "/plan"
        write(src .. "/a.txt", "aaaa")
        write(src .. "/b.txt", "bb")
        write(src .. "/big.bin", string.rep("p", 11 * 1024 * 1024))
        local events, planned, last = {}, { files = 0, bytes = 0 }, nil
        local opts = { multipart_threshold = 5 * 1024 * 1024, part_size = 5 * 1024 * 1024,
          on_plan = function(a)
            if a then
              planned.files, planned.bytes = planned.files + 1, planned.bytes + a.size
              events[#events + 1] = "plan"
            else
              events[#events + 1] = "planned"
            end
          end,
          -- whole-file transfers (as the transport moves them) and multipart ones
          progress = function(key, done, total)
            local size = ({ ["a.txt"] = 4, ["b.txt"] = 2, ["big.bin"] = 11 * 1024 * 1024 })[key]
            assert.equals(size, total, key)
            assert.is_true(done <= total)
            if key == "big.bin" then
              last = { done, total }
              events[#events + 1] = "bytes"
            end
          end,
          on_action = function(a) if a.action == "upload" then events[#events + 1] = "done" end end }
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "plan" }, opts))
        assert.equals(3, res.transferred)
        assert.same({ files = 3, bytes = 6 + 11 * 1024 * 1024 }, planned)
        assert.same({ "plan", "plan", "plan", "planned" }, { events[1], events[2], events[3], events[4] })
        local bytes = 0
        for _, e in ipairs(events) do if e == "bytes" then bytes = bytes + 1 end end
        assert.is_true(bytes >= 2, "multipart progress reports: " .. bytes) -- at most 4 a second, and the last
        assert.same({ 11 * 1024 * 1024, 11 * 1024 * 1024 }, last)
        -- A dry run plans too; a no-op run plans nothing but still says the plan is complete.
        events = {}
        planned = { files = 0, bytes = 0 }
        assert(objstore.sync(c, src, { bucket = bucket, prefix = "plan" }, opts))
        assert.same({ "planned" }, events)
      end)
    end)
  end
end

-- Issue 17: data safety of sync, check and move.

describe("sync option and argument checks (issue 17)", function()
  local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", region = "us-east-1" }

  it("refuses bad numbers before any request, in the one misuse format", function()
    local bad = {
      concurrency = { 0, -1, 2.5, 0 / 0, math.huge, 1025, 1e6, "8" },
      max_delete = { -1, 2.5, 0 / 0, math.huge },
      bwlimit = { -1, 0 / 0, math.huge, -math.huge, 2 ^ 53, 1e300 },
      modify_window = { -1, 0 / 0, math.huge },
      part_size = { 1024, 5 * 1024 * 1024 - 1, 5 * 1024 * 1024 + 0.5, 6 * 1024 * 1024 * 1024, 0 / 0, math.huge },
      multipart_threshold = { -1, 2.5, 0 / 0, math.huge, 6 * 1024 * 1024 * 1024 },
    }
    for _, fname in ipairs{ "sync", "check" } do
      for k, values in pairs(bad) do
        for _, v in ipairs(values) do
          local ok, err = pcall(objstore[fname], c, "/tmp", { bucket = "b" }, { [k] = v })
          assert.is_false(ok, fname .. " " .. k .. " = " .. tostring(v))
          assert.is_string(err)
          assert.is_truthy(err:find("objstore." .. fname .. ": argument #4 (opts." .. k .. "): must be ", 1, true),
            err)
        end
      end
    end
    -- good values still pass the checks (the run then fails on the closed port, as a runtime error)
    local res, err = objstore.sync(c, "/tmp", { bucket = "b" }, { concurrency = 1024, max_delete = 0, bwlimit = 0,
      modify_window = 2.5, part_size = 5 * 1024 * 1024, multipart_threshold = 0, dry_run = true })
    assert.is_nil(res)
    assert.is_table(err)
  end)

  it("refuses a bwlimit the transport cannot hold (2^53, 1e300) in upload_file and download_file, before any "
    .. "request", function()
    local sent = 0
    local c2 = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
      region = "us-east-1", hooks = { on_request = function() sent = sent + 1 end } }
    for _, v in ipairs{ 2 ^ 53, 2 ^ 60, 1e300 } do
      local ok, err = pcall(c2.upload_file, c2, "b", "k", "/etc/hostname", { bwlimit = v })
      assert.is_false(ok)
      assert.matches("argument #4 (opts.bwlimit)", err, 1, true)
      ok, err = pcall(c2.download_file, c2, "b", "k", "/tmp/never-written-h17f", { bwlimit = v })
      assert.is_false(ok)
      assert.matches("argument #4 (opts.bwlimit)", err, 1, true)
    end
    assert.equals(0, sent)
  end)

  it("fails on a local source that does not exist or is not a directory, before any request", function()
    local sent = 0
    local c2 = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
      region = "us-east-1", hooks = { on_request = function() sent = sent + 1 end } }
    local res, err = objstore.sync(c2, "/nonexistent-h17b/dir", { bucket = "b" })
    assert.is_nil(res)
    assert.equals("LocalFileError", err.code)
    assert.matches("source directory /nonexistent%-h17b/dir does not exist", err.message)
    local dir = servers.tmpdir()
    servers.write_file(dir .. "/file", "x")
    res, err = objstore.sync(c2, dir .. "/file", { bucket = "b" })
    assert.is_nil(res)
    assert.equals("LocalFileError", err.code)
    assert.matches("not a directory", err.message)
    assert.equals(0, sent)
    sh("rm -rf " .. q(dir))
  end)

  it("fails a remote key that is not UTF-8 alone and goes on (remote -> local)", function()
    local dir = servers.tmpdir()
    local res, err = objstore.sync(c, { bucket = "b", prefix = "u" }, dir, { dry_run = true, state = false,
      pages = function()
        return { contents = {
          { key = "u/a.txt", size = "1", etag = '"e"', last_modified = "2024-01-01T00:00:00.000Z" },
          { key = "u/bad\255.txt", size = "1", etag = '"e"', last_modified = "2024-01-01T00:00:00.000Z" },
          { key = "u/c.txt", size = "1", etag = '"e"', last_modified = "2024-01-01T00:00:00.000Z" } } }
      end })
    assert.is_nil(res)
    local r = err.result
    assert.equals(1, r.failed)
    assert.equals("InvalidName", r.errors[1].error.code)
    local planned = {}
    for _, a in ipairs(r.actions) do planned[a.key] = a.action end
    assert.equals("download", planned["a.txt"])
    assert.equals("download", planned["c.txt"])
    assert.equals("refuse_failed", planned["bad\255.txt"])
    sh("rm -rf " .. q(dir))
  end)

  it("changes no local byte in a dry run, not even to probe for case folding", function()
    local dir = servers.tmpdir()
    lfs.touch(dir, 1600000000, 1600000000)
    local res = assert(objstore.sync(c, { bucket = "b" }, dir, { dry_run = true, delete = true, state = false,
      pages = function()
        return { contents = { { key = "k", size = "1", etag = '"e"', last_modified = "2024-01-01T00:00:00.000Z" } } }
      end }))
    assert.equals("download", res.actions[1].action)
    assert.equals(1600000000, lfs.attributes(dir, "modification"))
    local n = 0
    for name in lfs.dir(dir) do if name ~= "." and name ~= ".." then n = n + 1 end end
    assert.equals(0, n)
    sh("rm -rf " .. q(dir))
  end)

  it("checks move and backup", function()
    assert.has_error(function() objstore.sync(c, "/tmp", { bucket = "b" }, { move = "yes" }) end,
      "objstore.sync: argument #4 (opts.move): must be a boolean, got string")
    assert.has_error(function() objstore.sync(c, "/tmp", { bucket = "b" }, { backup = { bucket = 1 } }) end,
      "objstore.sync: argument #4 (opts.backup): must be a prefix, a directory or {bucket=, prefix=}, got table")
    assert.has_error(function() objstore.sync(c, { bucket = "b" }, "/tmp", { backup = { bucket = "x" } }) end,
      "objstore.sync: argument #4 (opts.backup): must be a directory when the destination is local")
  end)

  it("refuses a sync or a move of a remote tree onto itself before any request", function()
    local sent = 0
    local c2 = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
      region = "us-east-1", hooks = { on_request = function() sent = sent + 1 end } }
    for _, pair in ipairs{ { "p", "p" }, { "p", "p/sub" }, { "p/sub", "p" }, { nil, "x" } } do
      local res, err = objstore.sync(c2, { bucket = "b", prefix = pair[1] }, { bucket = "b", prefix = pair[2] },
        { move = true, delete = true })
      assert.is_nil(res)
      assert.equals("SameSourceDestination", err.code)
    end
    assert.equals(0, sent)
  end)

  it("computes multipart ETags for several part sizes in one read", function()
    local digest = require "objstore.sync.digest"
    local dir = servers.tmpdir()
    local data = string.rep("0123456789abcdef", 40000) -- 640000 bytes
    servers.write_file(dir .. "/f", data)
    local function etag(ps)
      local core = require "objstore.core"
      local parts = {}
      for i = 1, #data, ps do
        local h = core.hash.new("md5")
        h:update(data:sub(i, i + ps - 1))
        parts[#parts + 1] = h:digest()
      end
      local h = core.hash.new("md5")
      h:update(table.concat(parts))
      return core.hash.tohex(h:digest()) .. "-" .. #parts
    end
    local got = digest.multipart_etags(dir .. "/f", { 100000, 1024 * 1024, 333333 })
    assert.equals(etag(100000), got[100000])
    assert.equals(etag(1024 * 1024), got[1024 * 1024])
    assert.equals(etag(333333), got[333333])
    sh("rm -rf " .. q(dir))
  end)
end)

--- The command that runs this Lua with this checkout's modules (for child processes).
local function lua_command()
  local cwd = lfs.currentdir()
  local interp = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
  return "LUA_PATH=" .. q(cwd .. "/lua/?.lua;" .. cwd .. "/lua/?/init.lua;;") .. " LUA_CPATH="
    .. q(cwd .. "/build/" .. interp .. "/?.so;;") .. " " .. interp
end

--- Runs `body` (Lua returning a table; `objstore`, `cjson`, `c` (a client
-- for the test server) and `arg` in scope) in a child process, bounded by
-- timeout, with `env` set and as user nobody when `nobody`; returns the table.
local function child(dir, body, o)
  local f = dir .. "/child-" .. tostring(math.random(1e9)) .. ".lua"
  servers.write_file(f, [[
local cjson = require "cjson"
local objstore = require "objstore"
local ops = {}
local c = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"),
  access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"),
  secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY"), region = os.getenv("OBJSTORE_TEST_REGION") or "us-east-1",
  hooks = { on_request = function(e) ops[#ops + 1] = e.op end } }
local function run(...)
]] .. body .. [[

end
local ok, out = pcall(run, ...)
io.write(cjson.encode(ok and out or { raised = tostring(out) }))
]])
  sh("chmod 644 " .. q(f))
  local env = ""
  for k, v in pairs(o.env or {}) do env = env .. k .. "=" .. q(v) .. " " end
  local args = ""
  for _, a in ipairs(o.args or {}) do args = args .. " " .. q(a) end
  local as = o.nobody and " timeout 120 setpriv --reuid=nobody --regid=nogroup --clear-groups %1" or " timeout 120 %1"
  local cmd = "env " .. env .. lua_command():gsub(" (%S+)$", as) .. " " .. q(f) .. args
  local ok, out = sh(cmd)
  os.remove(f)
  assert(ok, out)
  return require("cjson").decode(out:match("{.*}$") or out)
end

local function summary_code()
  return [[
  local r = res or (err and err.result) or {}
  local msgs = {}
  for _, e in ipairs(r.errors or {}) do
    msgs[#msgs + 1] = tostring(e.key) .. ": " .. tostring(e.error and e.error.message)
  end
  return { ok = res ~= nil, code = err and err.code, message = err and err.message, failed = r.failed,
    deleted = r.deleted, transferred = r.transferred, errors = msgs, ops = ops }
]]
end

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("sync data safety (issue 17) on " .. srv.name .. " #server", function()
      local c, bucket, root
      local log = {}

      setup(function()
        c = servers.client(srv, { hooks = { on_request = function(e) log[#log + 1] = e.op end } })
        bucket = servers.bucket_name("h17-sync")
        assert(c:create_bucket(bucket))
        root = servers.tmpdir()
        sh("chmod 755 " .. q(root))
      end)

      teardown(function()
        servers.cleanup(c, bucket)
        sh("chmod -R u+rwX " .. q(root) .. "; rm -rf " .. q(root))
      end)

      before_each(function()
        for i = #log, 1, -1 do log[i] = nil end
      end)

      it("an unreadable source directory fails the run and deletes nothing (run as nobody)", function()
        if not sh("command -v setpriv") then
          pending("setpriv (util-linux) is needed to read as another user")
          return
        end
        local src = root .. "/unread"
        write(src .. "/a.txt", "a")
        write(src .. "/sub/b.txt", "b")
        write(src .. "/sub/c.txt", "c")
        assert(objstore.sync(c, src, { bucket = bucket, prefix = "unread" }, { state = false }))
        sh("chmod -R a+rX " .. q(src) .. " && chmod 000 " .. q(src .. "/sub"))
        local out = child(root, [[
  local res, err = objstore.sync(c, arg[1], { bucket = arg[2], prefix = "unread" }, { delete = true, state = false })
]] .. summary_code(), { nobody = true, args = { src, bucket } })
        sh("chmod 755 " .. q(src .. "/sub"))
        assert.is_nil(out.raised)
        assert.is_false(out.ok)
        assert.equals("SyncFailed", out.code)
        assert.equals(0, out.deleted)
        assert.matches("cannot read directory", table.concat(out.errors, "\n"))
        assert.is_true(c:object_exists(bucket, "unread/sub/b.txt"))
        assert.is_true(c:object_exists(bucket, "unread/sub/c.txt"))
        for _, op in ipairs(out.ops) do assert.is_truthy(op ~= "DeleteObjects" and op ~= "DeleteObject", op) end
      end)

      it("an unreadable destination directory fails the run and deletes nothing (run as nobody)", function()
        if not sh("command -v setpriv") then
          pending("setpriv (util-linux) is needed to read as another user")
          return
        end
        local dst = root .. "/unread-dst"
        write(dst .. "/extra.txt", "x")
        write(dst .. "/locked/old.txt", "o")
        sh("chmod -R a+rwX " .. q(dst) .. " && chmod 000 " .. q(dst .. "/locked"))
        local out = child(root, [[
  local res, err = objstore.sync(c, { bucket = "b", prefix = "u" }, arg[1], { delete = true, dry_run = true,
    state = false, pages = function()
      return { contents = { { key = "u/locked/new.txt", size = "1", etag = '"e"',
        last_modified = "2024-01-01T00:00:00.000Z" }, { key = "u/z.txt", size = "1", etag = '"e"',
        last_modified = "2024-01-01T00:00:00.000Z" } } }
    end })
  local r = res or err.result
  local planned = {}
  for _, a in ipairs(r.actions) do planned[a.key] = a.action end
  local out = (function() ]] .. summary_code() .. [[ end)()
  out.planned = planned
  return out
]], { nobody = true, args = { dst } })
        sh("chmod 755 " .. q(dst .. "/locked"))
        assert.is_nil(out.raised)
        assert.is_false(out.ok)
        assert.equals("SyncFailed", out.code)
        assert.matches("cannot read directory", table.concat(out.errors, "\n"))
        assert.is_nil(out.planned["extra.txt"]) -- no delete planned
        assert.equals("skip", out.planned["locked/new.txt"]) -- not written where what is there is unknown
        assert.equals("download", out.planned["z.txt"])
      end)

      it("fails a local name that is not UTF-8 alone; the others are uploaded", function()
        local src = root .. "/utf"
        write(src .. "/good1.txt", "1")
        write(src .. "/bad\255.txt", "2")
        write(src .. "/good2.txt", "3")
        local ok, res, err = pcall(objstore.sync, c, src, { bucket = bucket, prefix = "utf" }, { state = false })
        assert.is_true(ok, tostring(res))
        assert.is_nil(res)
        local r = err.result
        assert.equals(2, r.transferred)
        assert.equals(1, r.failed)
        assert.equals("InvalidName", r.errors[1].error.code)
        assert.is_true(c:object_exists(bucket, "utf/good1.txt"))
        assert.is_true(c:object_exists(bucket, "utf/good2.txt"))
      end)

      it("moves a tree up, transferring again a file whose content could not be compared", function()
        local src = root .. "/mv"
        write(src .. "/a.txt", "alpha", 1600000000)
        write(src .. "/d/b.txt", "beta", 1600000000)
        write(src .. "/same.txt", "SAME!", 1600000000)
        write(src .. "/kept.txt", "LOCAL", 1600000000)
        assert(c:put_object(bucket, "mv/same.txt", "SAME!")) -- identical (plain MD5 ETag): proven, source removed
        -- Another tool's object, same size, newer, one-part multipart (ETag "<md5>-1"), no checksum: not comparable.
        local up = assert(c:create_multipart_upload(bucket, "mv/kept.txt"))
        local p1 = assert(c:upload_part(bucket, "mv/kept.txt", up.upload_id, 1, "REMOT"))
        assert(c:complete_multipart_upload(bucket, "mv/kept.txt", up.upload_id,
          { { part_number = 1, etag = p1.etag } }))
        -- A dry run first: no write, nothing removed.
        for i = #log, 1, -1 do log[i] = nil end
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "mv" }, { move = true, dry_run = true,
          state = false }))
        assert.equals(0, res.removed)
        for _, op in ipairs(log) do assert.is_truthy(op == "ListObjectsV2" or op == "HeadObject", op) end
        for _, f in ipairs{ "a.txt", "d/b.txt", "same.txt", "kept.txt" } do
          assert.is_truthy(lfs.attributes(src .. "/" .. f), f)
        end
        assert.is_false(c:object_exists(bucket, "mv/a.txt"))
        res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "mv" }, { move = true, state = false }))
        -- kept.txt: size and mtime call it in sync, but only a content
        -- comparison may stand in for a copy: it is uploaded again.
        assert.equals(3, res.transferred)
        assert.equals(4, res.removed)
        assert.equals(0, res.kept)
        local by = {}
        for _, a in ipairs(res.actions) do by[a.key] = a end
        assert.is_true(by["a.txt"].verified)
        assert.is_true(by["a.txt"].removed)
        assert.is_true(by["same.txt"].removed)
        assert.equals("same", by["same.txt"].verdict)
        assert.is_true(by["kept.txt"].verified)
        assert.is_true(by["kept.txt"].removed)
        assert.is_nil(lfs.attributes(src .. "/a.txt"))
        assert.is_nil(lfs.attributes(src .. "/d/b.txt"))
        assert.is_nil(lfs.attributes(src .. "/same.txt"))
        assert.is_nil(lfs.attributes(src .. "/kept.txt"))
        assert.equals("LOCAL", c:get_object(bucket, "mv/kept.txt").body)
        assert.equals("alpha", c:get_object(bucket, "mv/a.txt").body)
      end)

      it("moves down and server-side, removing verified sources in one DeleteObjects", function()
        for _, k in ipairs{ "mvd/x.txt", "mvd/y/z.txt" } do assert(c:put_object(bucket, k, "v-" .. k)) end
        local res = assert(objstore.sync(c, { bucket = bucket, prefix = "mvd" }, { bucket = bucket, prefix = "mvc" },
          { move = true }))
        assert.equals(2, res.removed)
        assert.equals(1, ops_of(log).DeleteObjects)
        assert.is_false(c:object_exists(bucket, "mvd/x.txt"))
        local dst = root .. "/mv-down"
        res = assert(objstore.sync(c, { bucket = bucket, prefix = "mvc" }, dst, { move = true, state = false }))
        assert.equals(2, res.transferred)
        assert.equals(2, res.removed)
        assert.equals("v-mvd/y/z.txt", servers.read_file(dst .. "/y/z.txt"))
        assert.is_false(c:object_exists(bucket, "mvc/x.txt"))
        -- A multipart ETag and no stored checksum: the download cannot be verified, the object stays.
        local up = assert(c:create_multipart_upload(bucket, "mvu/m.txt"))
        local p1 = assert(c:upload_part(bucket, "mvu/m.txt", up.upload_id, 1, "multi"))
        assert(c:complete_multipart_upload(bucket, "mvu/m.txt", up.upload_id, { { part_number = 1, etag = p1.etag } }))
        local err
        res, err = objstore.sync(c, { bucket = bucket, prefix = "mvu" }, root .. "/mv-unver", { move = true,
          state = false })
        assert.is_nil(res)
        assert.equals(1, err.result.transferred)
        assert.equals(0, err.result.removed)
        assert.equals("MoveNotVerified", err.result.errors[1].error.code)
        assert.matches("not verified: source kept", err.result.errors[1].error.message)
        assert.is_false(err.result.actions[1].verified)
        assert.equals("multi", servers.read_file(root .. "/mv-unver/m.txt"))
        assert.is_true(c:object_exists(bucket, "mvu/m.txt"))
      end)

      it("refuses a move onto itself with nothing sent and nothing deleted", function()
        assert(c:put_object(bucket, "self/a", "a"))
        for i = #log, 1, -1 do log[i] = nil end
        local res, err = objstore.sync(c, { bucket = bucket, prefix = "self" }, { bucket = bucket,
          prefix = "self/inner" }, { move = true, delete = true })
        assert.is_nil(res)
        assert.equals("SameSourceDestination", err.code)
        assert.equals(0, #log)
        assert.is_true(c:object_exists(bucket, "self/a"))
      end)

      it("check --checksum proves a multipart object by its recomputed ETag, else says unverified", function()
        local env = "AWS_ACCESS_KEY_ID=" .. q(srv.access_key) .. " AWS_SECRET_ACCESS_KEY=" .. q(srv.secret_key)
          .. " AWS_DEFAULT_REGION=" .. q(srv.region) .. " AWS_SHARED_CREDENTIALS_FILE=/dev/null"
        local cfg = root .. "/aws7.cfg"
        servers.write_file(cfg, "[default]\ns3 =\n  multipart_chunksize = 7MB\n")
        local function aws(file, key, config)
          local ok, out = sh("env " .. env .. " AWS_CONFIG_FILE=" .. q(config or "/dev/null")
            .. " timeout 120 aws s3 cp --only-show-errors --endpoint-url " .. q(srv.endpoint) .. " " .. q(file) .. " "
            .. q("s3://" .. bucket .. "/" .. key))
          assert(ok, out)
        end
        sh("mkdir -p " .. q(root .. "/ck1") .. " " .. q(root .. "/ck2"))
        assert(sh("head -c 20971520 /dev/urandom > " .. q(root .. "/ck1/big.bin")))
        aws(root .. "/ck1/big.bin", "ck1/big.bin") -- 8 MiB parts: 3 parts
        assert.matches("%-3\"?$", assert(c:head_object(bucket, "ck1/big.bin")).etag)
        local rep = assert(objstore.check(c, root .. "/ck1", { bucket = bucket, prefix = "ck1" },
          { compare = "checksum" }))
        assert.is_true(rep.ok)
        assert.equals(1, rep.matched)
        local compared = rep.compared
        -- Same size, other bytes, 7 MiB parts (3 parts too: no candidate reproduces the ETag).
        assert(sh("head -c 20971520 /dev/urandom > " .. q(root .. "/ck2/big.bin")))
        aws(root .. "/ck2/big.bin", "ck2/big.bin", cfg)
        assert(sh("head -c 20971520 /dev/urandom > " .. q(root .. "/ck2/big.bin")))
        lfs.touch(root .. "/ck2/big.bin", 1600000000, 1600000000) -- older than the object
        rep = assert(objstore.check(c, root .. "/ck2", { bucket = bucket, prefix = "ck2" }, { compare = "checksum" }))
        assert.is_false(rep.ok)
        assert.same({ "big.bin" }, rep.unverified)
        assert.equals(0, rep.matched)
        local res = assert(objstore.sync(c, root .. "/ck2", { bucket = bucket, prefix = "ck2" },
          { compare = "checksum", state = false, dry_run = true }))
        assert.equals(1, res.unverified)
        assert.matches("^not compared", res.actions[1].reason)
        assert.equals("content (MD5/CRC)", compared)
        assert.equals("size and modification time",
          assert(objstore.check(c, root .. "/ck2", { bucket = bucket, prefix = "ck2" })).compared)
      end)

      it("keeps its state under XDG_STATE_HOME and its own files out of the upload at any depth", function()
        local src = root .. "/st"
        local xdg = root .. "/xdg"
        write(src .. "/f.txt", "f")
        write(src .. "/sub/g.txt", "g")
        write(src .. "/sub/x.objstore-tmp-0123abcd", "t")
        write(src .. "/sub/.objstore-sync-0badf00d", "s")
        write(src .. "/sub/y.objstore-part-ab12", "p")
        write(src .. "/sub/z.objstore-cp", "c")
        local body = [[
  local res, err = objstore.sync(c, arg[1], { bucket = arg[2], prefix = "st" })
  local first = { transferred = res and res.transferred, state_path = res and res.state_path,
    err = err and err.message }
  for i = #ops, 1, -1 do ops[i] = nil end
  local res2, err2 = objstore.sync(c, arg[1], { bucket = arg[2], prefix = "st" })
  return { first = first, skipped = res2 and res2.skipped, err2 = err2 and err2.message, ops = ops }
]]
        local out = child(root, body, { env = { XDG_STATE_HOME = xdg }, args = { src, bucket } })
        assert.is_nil(out.raised)
        assert.equals(2, out.first.transferred, out.first.err)
        assert.equals(2, out.skipped, out.err2)
        for _, op in ipairs(out.ops) do assert.equals("ListObjectsV2", op) end -- a no-op re-run: no HEAD
        local ok, found = sh("find " .. q(src) .. " -maxdepth 1 -name '.objstore-*'")
        assert(ok)
        assert.equals("", found)
        assert.matches("^" .. xdg:gsub("%p", "%%%0") .. "/objstore/sync/%x+%.state$", out.first.state_path)
        assert.is_truthy(lfs.attributes(out.first.state_path))
        local _, mode = sh("stat -c %a " .. q(xdg .. "/objstore/sync"))
        assert.equals("700", mode:match("%d+"))
        for _, k in ipairs{ "sub/x.objstore-tmp-0123abcd", "sub/.objstore-sync-0badf00d", "sub/y.objstore-part-ab12",
          "sub/z.objstore-cp" } do
          assert.is_false(c:object_exists(bucket, "st/" .. k), k)
        end
      end)

      it("never deletes through a followed directory link out of the destination", function()
        local dst = root .. "/sl-dst"
        write(root .. "/outside/victim.txt", "precious")
        sh("mkdir -p " .. q(dst) .. " && ln -s ../outside " .. q(dst .. "/link"))
        assert(c:put_object(bucket, "sl/keep.txt", "k"))
        local res, err = objstore.sync(c, { bucket = bucket, prefix = "sl" }, dst, { delete = true,
          follow_symlinks = true, state = false })
        assert.is_nil(res)
        assert.equals(0, err.result.deleted)
        assert.matches("outside", tostring(err.result.errors[1].error.message))
        assert.equals("precious", servers.read_file(root .. "/outside/victim.txt"))
        assert.equals("k", servers.read_file(dst .. "/keep.txt"))
      end)

      it("moves deleted objects to a backup given as {bucket=, prefix=}", function()
        local src = root .. "/bk"
        write(src .. "/keep.txt", "k")
        assert(c:put_object(bucket, "bk/extra.txt", "x"))
        local res = assert(objstore.sync(c, src, { bucket = bucket, prefix = "bk" }, { delete = true, state = false,
          backup = { bucket = bucket, prefix = "bk-trash" } }))
        assert.equals(1, res.deleted)
        assert.is_false(c:object_exists(bucket, "bk/extra.txt"))
        assert.equals("x", c:get_object(bucket, "bk-trash/extra.txt").body)
      end)
    end)
  end
end
