-- Data safety of everything that writes or deletes, stated as invariants
-- and checked over tables, so that a new command, option or entry point is
-- covered by adding a row:
--
--   1. A dry run sends no write (no PUT, POST or DELETE reaches the store:
--      counted by the fault proxy in front of rgw) and changes no local
--      byte (the trees are compared before and after: names, types, sizes,
--      contents, modification times). Every command that writes, in every
--      direction, crossed with every option that command accepts.
--   2. A source is removed only after its own copy succeeded and was
--      verified: moves whose copies fail (the store refuses the writes, the
--      destination cannot be written), whose source cannot be removed, or
--      that would move onto themselves keep every source and exit non-zero.
--   3. An incomplete listing or walk, on either side, deletes nothing and
--      exits non-zero.
--   4. Any failure gives a non-zero exit code (writes to stdout included).
--
-- Everything runs `objstore` as a person does (a child process), against
-- the real rgw through spec/support/faultproxy.sh.
local servers = require "servers"
local faults = require "faults"
local args = require "objstore.cli.args"
local core = require "objstore.core"
local lfs = require "lfs"
local cjson = require "cjson"

local q = servers.q
local LUA = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local BIN = LUA .. " " .. q(lfs.currentdir() .. "/bin/objstore")

--- run(cmd, env, stdout) -> rc, stdout, stderr (stdout: a path to send it to instead)
local function run(cmd, env, stdout)
  local dir = servers.tmpdir()
  os.execute(string.format("%s %s >%s 2>%s/err </dev/null; echo $? >%s/rc", env or "", cmd,
    stdout or q(dir .. "/out"), q(dir), q(dir)))
  local rc = tonumber(servers.read_file(dir .. "/rc") or "")
  local out, err = servers.read_file(dir .. "/out") or "", servers.read_file(dir .. "/err") or ""
  servers.sh("rm -rf " .. q(dir))
  return rc, out, err
end

--- Every entry below dir (links not followed): path, type, size, MD5, mtime.
local function snapshot(dir)
  local lines = {}
  local function walk(d, rel)
    local names = {}
    for name in lfs.dir(d) do if name ~= "." and name ~= ".." then names[#names + 1] = name end end
    table.sort(names)
    for _, name in ipairs(names) do
      local path, r = d .. "/" .. name, rel .. "/" .. name
      local a = lfs.symlinkattributes(path)
      local line = r .. " " .. a.mode .. " " .. a.size .. " " .. a.modification
      if a.mode == "file" then
        line = line .. " " .. core.hash.tohex(core.hash.file("md5", path, 0, a.size))
      elseif a.mode == "link" then
        line = line .. " -> " .. tostring(a.target)
      end
      lines[#lines + 1] = line
      if a.mode == "directory" then walk(path, r) end
    end
  end
  if lfs.attributes(dir, "mode") == "directory" then walk(dir, "") end
  return table.concat(lines, "\n")
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end

--- The writes the proxy saw since its counters were zeroed.
local function writes(fp)
  local m = assert(fp:stats()).methods or {}
  return (m.PUT or 0) + (m.POST or 0) + (m.DELETE or 0), m
end

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("data safety invariants on rgw #server", function()
      local fp, c, bucket, root, ENV, CMD

      --- The remote state: every bucket of the user, and every key of ours with its ETag and size.
      local function remote_snapshot()
        local lines = {}
        -- Only our buckets: other specs may create and remove theirs meanwhile.
        local bl = assert(c:list_buckets())
        for _, b in ipairs(bl.buckets) do
          if b.name:sub(1, #bucket) == bucket then lines[#lines + 1] = "bucket " .. b.name end
        end
        table.sort(lines)
        for o, err in c:list_objects_iter(bucket) do
          assert(o, err)
          lines[#lines + 1] = o.key .. " " .. tostring(o.size) .. " " .. tostring(o.etag)
        end
        local ups = assert(c:list_incomplete_uploads(bucket))
        lines[#lines + 1] = "incomplete uploads " .. #ups
        return table.concat(lines, "\n")
      end

      -- The fixture: a local tree, an empty local directory, objects under src/ and dst/.
      local function fixture()
        servers.sh("rm -rf " .. q(root) .. " && mkdir -p " .. q(root .. "/tree/sub") .. " " .. q(root .. "/empty")
          .. " " .. q(root .. "/state"))
        write(root .. "/tree/a.txt", "alpha\n")
        write(root .. "/tree/sub/b.txt", "bravo bravo\n")
        write(root .. "/tree/c.bin", string.rep("c", 3000))
        for o in c:list_objects_iter(bucket) do if o then c:delete_object(bucket, o.key) end end
        assert(c:put_object(bucket, "src/x.txt", "x-ray\n"))
        assert(c:put_object(bucket, "src/deep/y.txt", "yankee\n"))
        assert(c:put_object(bucket, "dst/old.txt", "only on the destination\n"))
        assert(c:put_object(bucket, "dst/a.txt", "a different alpha\n"))
      end

      setup(function()
        fp = assert(faults.start())
        c = servers.client(srv)
        bucket = servers.bucket_name("safety")
        assert(c:create_bucket(bucket))
        root = servers.tmpdir()
        ENV = string.format("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s AWS_CONFIG_FILE=/dev/null "
          .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null OBJSTORE_PROGRESS_INTERVAL=0 XDG_STATE_HOME=%s HOME=%s "
          .. "OBJSTORE_SPEC_SSE_C_KEY=%s",
          q(srv.access_key), q(srv.secret_key), q(srv.region), q(root .. "/state"), q(root .. "/state"),
          string.rep("k", 32))
        CMD = BIN .. " --endpoint " .. q(fp.endpoint)
        fixture()
      end)

      teardown(function()
        if fp then fp:clear() end
        servers.sh("chattr -R -i " .. q(root) .. " 2>/dev/null; rm -rf " .. q(root))
        for o in c:list_objects_iter(bucket) do if o then c:delete_object(bucket, o.key) end end
        c:abort_incomplete_uploads(bucket)
        c:delete_bucket(bucket)
      end)

      local function expand(s)
        return (s:gsub("%$(%u+)", { B = "s3://" .. bucket, L = q(root .. "/tree"), E = q(root .. "/empty"),
          S = q(root .. "/state"), N = "s3://" .. bucket .. "-new" }))
      end

      -- Invariant 1: every command that writes, every direction.
      local WRITERS = {
        "cp $L/a.txt $B/new/a.txt", "cp -r $L $B/new/", "cp $B/src/x.txt $E/x.txt", "cp -r $B/src/ $E/down/",
        "cp $B/src/x.txt $B/copy/x.txt", "cp -r $B/src/ $B/copy/",
        "mv $L/a.txt $B/new/", "mv -r $L $B/new/", "mv $B/src/x.txt $E/", "mv -r $B/src/ $E/down/",
        "mv $B/src/x.txt $B/moved/x.txt", "mv -r $B/src/ $B/moved/",
        "rm $B/src/x.txt", "rm -r $B/src/",
        "sync $L $B/dst/ --delete", "sync $B/dst/ $L --delete", "sync $B/src/ $B/dst/ --delete",
        "mb $N", "rb --force $B", "uploads $B --abort",
      }
      -- A value for each option that takes one; $D is the destination's kind of backup.
      local VALUES = { concurrency = "4", ["part-size"] = "5M", bwlimit = "10M", ["max-delete"] = "100",
        ["modify-window"] = "2", ["expires-in"] = "60", ["content-type"] = "text/plain",
        ["state-file"] = "$S/state-file",
        include = "'*.txt'", exclude = "'*.bin'", method = "GET", ["cache-control"] = "no-cache",
        ["content-disposition"] = "attachment", metadata = "k=v", ["storage-class"] = "STANDARD", acl = "private",
        sse = "AES256", ["sse-kms-key-id"] = "testkey-1", ["sse-c-key"] = "env:OBJSTORE_SPEC_SSE_C_KEY",
        ["version-id"] = "null" }
      local SKIP = { help = true, h = true, ["dry-run"] = true, r = true, recursive = true, profile = true,
        endpoint = true, region = true }

      --- The variants of one row: plain, --json, -q, and each option its command accepts.
      local function variants(row)
        local cmd = row:match("^(%S+)")
        local dst_local = row:match("%$L$") or row:match("%$L %-%-") or row:match("%$E/?%S*$")
        local out = { "", "--json", "-q" }
        local names = {}
        for name in pairs(args.COMMANDS[cmd]) do if not SKIP[name] then names[#names + 1] = name end end
        table.sort(names)
        for _, name in ipairs(names) do
          local kind = args.FLAGS[name][1]
          local value = VALUES[name]
          if name == "backup" then value = dst_local and "$E/backup" or "$B/backup/" end
          if kind == "bool" then
            out[#out + 1] = "--" .. name
          elseif value then
            out[#out + 1] = "--" .. name .. " " .. value
          end
        end
        return out
      end

      it("a dry run sends no write and changes no local byte, for every writing command x option "
        .. "#exhaustive", function()
        local n, usage_errors, problems = 0, 0, {}
        for _, row in ipairs(WRITERS) do
          for _, v in ipairs(variants(row)) do
            local line = expand(row .. " --dry-run " .. v)
            local before_local, before_remote = snapshot(root), remote_snapshot()
            assert(fp:reset_stats())
            local rc, out, err = run(CMD .. " " .. line, ENV)
            local w, methods = writes(fp)
            n = n + 1
            if rc == 2 then usage_errors = usage_errors + 1 end
            local why
            if rc ~= 0 and rc ~= 2 then why = "exit " .. tostring(rc)
            elseif w > 0 then why = w .. " write(s): " .. cjson.encode(methods)
            elseif snapshot(root) ~= before_local then why = "a local byte changed"
            elseif remote_snapshot() ~= before_remote then why = "the store changed"
            elseif rc == 0 and v ~= "-q" and not (out .. err):find("dry", 1, true) then why = "no dry-run report"
            end
            if why then problems[#problems + 1] = line .. ": " .. why .. "\n" .. out .. err end
          end
        end
        print(string.format("\n    dry-run table: %d command lines (%d writing commands), %d usage errors, "
          .. "%d problems", n, #WRITERS, usage_errors, #problems))
        assert.same({}, problems)
        assert.is_true(n > 150)
      end)

      it("a plain --dry-run reports what it would do, for every writing command", function()
        for _, row in ipairs(WRITERS) do
          local rc, out = run(CMD .. " " .. expand(row .. " --dry-run"), ENV)
          assert.equals(0, rc, row)
          assert.matches("(dry run)", out, 1, true)
        end
      end)

      it("a --dry-run -q prints nothing on stdout, for every writing command", function()
        for _, row in ipairs(WRITERS) do
          local rc, out = run(CMD .. " " .. expand(row .. " --dry-run -q"), ENV)
          assert.equals(0, rc, row)
          assert.equals("", out, row)
        end
      end)

      -- Invariant 2: no source goes without its verified copy.
      describe("moves", function()
        before_each(function()
          fixture()
          fp:clear()
        end)
        after_each(function()
          fp:clear()
          servers.sh("chattr -R -i " .. q(root) .. " 2>/dev/null")
        end)

        it("keep every local source when the store refuses the uploads (single and -r)", function()
          assert(fp:set{ internal = { rate = 1, methods = { "PUT", "POST" } } })
          local before = snapshot(root .. "/tree")
          local rc = run(CMD .. " " .. expand("mv $L/a.txt $B/new/"), ENV)
          assert.equals(1, rc)
          rc = run(CMD .. " " .. expand("mv -r $L $B/new/"), ENV)
          assert.equals(1, rc)
          assert.equals(before, snapshot(root .. "/tree"))
        end)

        it("keep the objects when the downloads cannot be written", function()
          servers.sh("chattr +i " .. q(root .. "/empty"))
          local before = remote_snapshot()
          assert.equals(1, (run(CMD .. " " .. expand("mv $B/src/x.txt $E/"), ENV)))
          assert.equals(1, (run(CMD .. " " .. expand("mv -r $B/src/ $E/"), ENV)))
          assert.equals(before, remote_snapshot())
        end)

        it("keep the objects when the store refuses the copies", function()
          assert(fp:set{ internal = { rate = 1, methods = { "PUT" } } })
          local before = remote_snapshot()
          assert.equals(1, (run(CMD .. " " .. expand("mv $B/src/x.txt $B/moved/x.txt"), ENV)))
          assert.equals(1, (run(CMD .. " " .. expand("mv -r $B/src/ $B/moved/"), ENV)))
          fp:clear()
          assert.equals(before, remote_snapshot())
        end)

        it("say so and exit 1 when a local source cannot be removed", function()
          servers.sh("chattr +i " .. q(root .. "/tree") .. " " .. q(root .. "/tree/sub"))
          local rc, _, err = run(CMD .. " " .. expand("mv $L/a.txt $B/new/"), ENV)
          assert.equals(1, rc)
          assert.matches("a.txt", err, 1, true)
          rc = run(CMD .. " " .. expand("mv -r $L $B/new2/"), ENV)
          assert.equals(1, rc)
          assert.truthy(lfs.attributes(root .. "/tree/a.txt"))
        end)

        -- A file appended to while it is uploaded: the object holds the
        -- bytes read, the file has more; removing it would lose them.
        for _, row in ipairs{ { "mv --bwlimit 1M $L/big.bin $B/grown/", "big.bin" },
          { "mv -r --bwlimit 1M $L $B/grown-r/", "big.bin" } } do
          it("keep a local source written to during its upload: " .. row[1], function()
            local path = root .. "/tree/" .. row[2]
            write(path, string.rep("z", 3 * 1000 * 1000))
            servers.sh("(sleep 1; printf appended >> " .. q(path) .. ") >/dev/null 2>&1 &")
            local rc, _, err = run(CMD .. " " .. expand(row[1]), ENV)
            servers.sh("sleep 1")
            assert.equals(1, rc, err)
            assert.equals(3 * 1000 * 1000 + 8, lfs.attributes(path, "size"))
            assert.matches("changed", err)
          end)
        end

        it("keep a remote source another writer replaced after it was copied (mv -r down)", function()
          for i = 1, 5 do assert(c:put_object(bucket, "slow/f" .. i, string.rep("v", 200 * 1000))) end
          -- f1 is downloaded first (1 s at 200K/s, one at a time), then replaced while f2.. follow.
          local lua = LUA .. " -e " .. q("package.path='lua/?.lua;lua/?/init.lua;'..package.path "
            .. "package.cpath='build/" .. (jit and "luajit" or LUA) .. "/?.so;'..package.cpath "
            .. "local o=require'objstore' local c=o.new{endpoint=os.getenv'E',region=os.getenv'R',"
            .. "credentials={access_key=os.getenv'A',secret_key=os.getenv'S'}} "
            .. "assert(c:put_object(os.getenv'B','slow/f1','the new version'))")
          servers.sh(string.format("(sleep 2; E=%s R=%s A=%s S=%s B=%s %s) >/dev/null 2>&1 &", q(srv.endpoint),
            q(srv.region), q(srv.access_key), q(srv.secret_key), q(bucket), lua))
          local rc, _, err = run(CMD .. " " .. expand("mv -r --bwlimit 200K --concurrency 1 $B/slow/ $E/slow/"), ENV)
          assert.equals(1, rc, err)
          assert.matches("SourceChanged", err)
          assert.equals("the new version", assert(c:get_object(bucket, "slow/f1")).body)
          assert.is_nil(c:head_object(bucket, "slow/f2"))
        end)

        -- mv of one object: another writer replaces it right after its copy
        -- (in process: the client's copy call is wrapped to do so).
        for _, row in ipairs{ "mv $B/src/x.txt $E/x-moved.txt", "mv $B/src/x.txt $B/moved-one/x.txt" } do
          it("keep a remote source replaced between its copy and its removal: " .. row, function()
            local objstore = require "objstore"
            local cli = require "objstore.cli"
            local real_new = objstore.new
            objstore.new = function(o)
              o.access_key, o.secret_key, o.region = srv.access_key, srv.secret_key, srv.region
              o.profile = nil
              local cl = real_new(o)
              for _, m in ipairs{ "download_file", "copy_large" } do
                local real = cl[m]
                cl[m] = function(self, ...)
                  local res, err = real(self, ...)
                  assert(c:put_object(bucket, "src/x.txt", "replaced meanwhile\n"))
                  return res, err
                end
              end
              return cl
            end
            local argv = {}
            for w in expand(row):gsub("'", ""):gmatch("%S+") do argv[#argv + 1] = w end
            table.insert(argv, 2, "--endpoint")
            table.insert(argv, 3, srv.endpoint)
            table.insert(argv, 4, "-q")
            local errs = {}
            local sink = { write = function(_, ...) errs[#errs + 1] = table.concat({ ... }) return true end,
              flush = function() return true end }
            local ok, rc = pcall(cli.main, argv, sink, sink)
            objstore.new = real_new
            assert.is_true(ok, tostring(rc))
            assert.equals(1, rc, table.concat(errs))
            assert.matches("SourceChanged", table.concat(errs))
            assert.equals("replaced meanwhile\n", assert(c:get_object(bucket, "src/x.txt")).body)
          end)
        end

        it("refuse to move onto itself or into an overlapping prefix, deleting nothing", function()
          local before = remote_snapshot()
          for _, line in ipairs{ "mv $B/src/x.txt $B/src/x.txt", "mv -r $B/src/ $B/src/", "mv -r $B/src/ $B/src/deep/",
            "mv -r $B/src/deep/ $B/src/" } do
            assert(fp:reset_stats())
            local rc = run(CMD .. " " .. expand(line), ENV)
            assert.is_true(rc == 1 or rc == 2, line)
            assert.equals(0, (writes(fp)), line)
          end
          assert.equals(before, remote_snapshot())
        end)

        it("keep a source that was skipped without a content comparison", function()
          -- An object written by another tool after the file changed, of the
          -- same size: size and mtime call it in sync, but only a content
          -- comparison may let the move remove the file.
          assert(c:put_object(bucket, "dst2/a.txt", "ALPHA\n"))
          local rc = run(CMD .. " " .. expand("mv -r $L $B/dst2/"), ENV)
          assert.equals(0, rc)
          -- Copied again (not proven identical), then removed after its verified upload.
          local got = assert(c:get_object(bucket, "dst2/a.txt"))
          assert.equals("alpha\n", got.body)
        end)
      end)

      it("never syncs the state directory when it lies in the local tree (other pairs' states included)", function()
        fixture()
        local env = ENV .. " XDG_STATE_HOME=" .. q(root .. "/tree/.st")
        for _, line in ipairs{ "sync $L $B/stA/", "sync $L $B/stB/", "sync --no-state $L $B/stC/",
          "sync --delete $B/stA/ $L" } do
          local rc, _, err = run(CMD .. " " .. expand(line), env)
          assert.equals(0, rc, line .. ": " .. err)
        end
        for o in c:list_objects_iter(bucket) do
          assert(o)
          assert.is_nil(o.key:find(".st/", 1, true), o.key)
        end
        local ok, found = servers.sh("find " .. q(root .. "/tree/.st") .. " -name '*.state' | wc -l")
        assert(ok)
        assert.equals("3", found:match("%d+")) -- stA, stB, and stA's download pair: none deleted
      end)

      it("leaves remote keys with objstore's own temporary names alone both ways (never deleted, never downloaded)",
        function()
          fixture()
          local own = { "dst/db.objstore-cp", "dst/sub/x.objstore-part", "dst/y.objstore-tmp-0123456789abcdef" }
          for _, k in ipairs(own) do assert(c:put_object(bucket, k, "not objstore's: " .. k)) end
          local rc, _, err = run(CMD .. " " .. expand("sync --delete $L $B/dst/"), ENV)
          assert.equals(0, rc, err)
          for _, k in ipairs(own) do assert.is_truthy(c:head_object(bucket, k), k) end
          rc, _, err = run(CMD .. " " .. expand("sync $B/dst/ $E/own/"), ENV)
          assert.equals(0, rc, err)
          assert.is_nil(snapshot(root .. "/empty"):find("objstore-", 1, true))
        end)

      -- A backup inside the destination (or a remote source) is listed as a
      -- part of it: re-moved into itself on every run, or a backed-up key
      -- written over a destination key. Refused, nothing sent or changed.
      describe("backups overlapping a side", function()
        before_each(function()
          fixture()
          fp:clear()
        end)
        for _, line in ipairs{ "sync $L $B/dst/ --delete --backup $B/dst/bk/", "sync $L $B/dst/ --delete --backup $B/",
          "sync $B/src/ $B/dst/ --delete --backup $B/src/bk/", "sync $B/dst/ $L --delete --backup $L/bk",
          "sync $B/dst/ $L --delete --backup $L/.." } do
          it("are refused: " .. line, function()
            local before_local, before_remote = snapshot(root), remote_snapshot()
            assert(fp:reset_stats())
            local rc, _, err = run(CMD .. " " .. expand(line), ENV)
            assert.equals(1, rc, err)
            assert.matches("overlaps", err)
            assert.equals(0, (writes(fp)))
            assert.equals(before_remote, remote_snapshot())
            assert.equals(before_local, snapshot(root))
          end)
        end
      end)

      -- Invariant 3: an incomplete listing or walk deletes nothing.
      describe("incomplete listings", function()
        before_each(function()
          fixture()
          fp:clear()
        end)
        after_each(function() fp:clear() end)

        for _, line in ipairs{ "sync $L $B/dst/ --delete", "sync $B/dst/ $L --delete", "sync $B/src/ $B/dst/ --delete",
          "mv -r $B/src/ $E/down/", "rm -r $B/src/", "rb --force $B" } do
          it("delete nothing when a listing page fails: " .. line, function()
            assert(fp:set{ internal = { rate = 1, methods = { "GET" }, match = "list%-type" } })
            local before_local, before_remote = snapshot(root), remote_snapshot()
            assert(fp:reset_stats())
            local rc = run(CMD .. " " .. expand(line), ENV)
            local _, methods = writes(fp)
            fp:clear()
            assert.equals(1, rc)
            assert.is_nil(methods.DELETE)
            assert.is_nil(methods.POST)
            assert.equals(before_remote, remote_snapshot())
            assert.equals(before_local, snapshot(root))
          end)
        end
      end)

      describe("command line details", function()
        before_each(fixture)

        it("cp into directories that do not exist makes them, naming the user's path on failure", function()
          local rc, _, err = run(CMD .. " " .. expand("cp $B/src/x.txt $E/new/deeper/x.txt"), ENV)
          assert.equals(0, rc, err)
          assert.equals("x-ray\n", servers.read_file(root .. "/empty/new/deeper/x.txt"))
          write(root .. "/empty/plain", "a file")
          rc, _, err = run(CMD .. " " .. expand("cp $B/src/x.txt $E/plain/x.txt"), ENV)
          assert.equals(1, rc)
          assert.matches("empty/plain", err, 1, true)
          assert.is_nil(err:find("objstore%-tmp"))
          assert.is_nil(err:find("objstore%-part"))
        end)

        it("prints names with control characters escaped on a terminal, exact with --json", function()
          local key = "src/esc\27[2J\27]0;title\7line\nforged"
          assert(c:put_object(bucket, key, "x"))
          local rc, out = run(CMD .. " " .. expand("ls -r $B/src/"), ENV)
          assert.equals(0, rc)
          assert.is_nil(out:find("\27", 1, true))
          assert.is_nil(out:find("\7", 1, true))
          assert.matches("esc\\x1b[2J", out, 1, true)
          assert.is_nil(out:find("\nforged", 1, true))
          rc, out = run(CMD .. " " .. expand("ls -r --json $B/src/"), ENV)
          assert.equals(0, rc)
          local found
          for line in out:gmatch("[^\n]+") do
            local t = cjson.decode(line)
            if t.key == key then found = true end
          end
          assert.is_true(found)
          assert(c:delete_object(bucket, key))
        end)

        it("--backup s3://bucket/prefix/ moves into that prefix, never into keys named s3://", function()
          local rc, _, err = run(CMD .. " " .. expand("sync $L $B/dst/ --delete --backup $B/bak/"), ENV)
          assert.equals(0, rc, err)
          assert.equals("only on the destination\n", assert(c:get_object(bucket, "bak/old.txt")).body)
          for o in c:list_objects_iter(bucket) do
            assert.is_nil(o.key:find("s3:", 1, true), o.key)
          end
          assert.is_false(c:object_exists(bucket, "dst/old.txt"))
        end)
      end)

      describe("library", function()
        it("a checkpoint planted beside a file never aborts another bucket's upload", function()
          local other = servers.bucket_name("safety-other")
          assert(c:create_bucket(other))
          local path = root .. "/big.bin"
          write(path, string.rep("p", 6 * 1024 * 1024))
          -- A real checkpoint of an upload into `other`, stopped after its first part.
          local res, err = c:upload_file(other, "victim", path, { part_size = 5 * 1024 * 1024, checkpoint = true,
            on_part = function() return false end })
          assert.is_nil(res)
          assert.truthy(err)
          local before = assert(c:list_incomplete_uploads(other))
          assert.equals(1, #before)
          -- The same checkpoint file, now beside a transfer into this bucket.
          local planted = path .. ".objstore-cp"
          local mine = root .. "/mine.bin"
          write(mine, string.rep("m", 6 * 1024 * 1024))
          assert(os.rename(planted, mine .. ".objstore-cp"))
          assert(c:upload_file(bucket, "mine.bin", mine, { part_size = 5 * 1024 * 1024, checkpoint = true }))
          local after = assert(c:list_incomplete_uploads(other))
          assert.equals(1, #after)
          assert.equals(before[1].upload_id, after[1].upload_id)
          c:abort_incomplete_uploads(other)
          c:delete_bucket(other)
        end)
      end)

      -- Invariant 4: every failure is a non-zero exit.
      describe("exit codes", function()
        before_each(fixture)

        it("are 1 when a write to stdout fails", function()
          for _, line in ipairs{ "ls $B", "ls -r $B", "cat $B/src/x.txt", "cp $B/src/x.txt -", "stat $B/src/x.txt",
            "du $B", "presign $B/src/x.txt" } do
            local rc, _, err = run(CMD .. " " .. expand(line), ENV, "/dev/full")
            assert.equals(1, rc, line .. ": " .. err)
          end
        end)

        it("are 1 with the reason when stdout fails inside a transfer (--json actions), temporary files gone",
          function()
            for _, line in ipairs{ "sync --json $B/src/ $E/json/", "cp -r --json $L $B/json/",
              "mv -r --json $B/src/ $E/json2/" } do
              local rc, _, err = run(CMD .. " " .. expand(line), ENV, "/dev/full")
              assert.equals(1, rc, line .. ": " .. err)
              assert.matches("cannot write to standard output", err, 1, true)
              assert.is_nil(err:find("error object is not a string", 1, true), err)
            end
            assert.is_nil(snapshot(root .. "/empty"):find("objstore-", 1, true))
          end)

        it("are 1 when stdout or stdin is closed (>&-, <&-): their descriptors are not reused", function()
          -- Closed, fd 1 became the first socket opened: ls said 0, sync
          -- --json wrote its lines into an HTTP connection.
          for _, line in ipairs{ "ls $B", "ls -r --json $B", "sync --json $B/src/ $E/closed/", "cat $B/src/x.txt" } do
            local rc, _, err = run(CMD .. " " .. expand(line), ENV, "&-")
            assert.equals(1, rc, line .. ": " .. err)
            assert.matches("cannot write to standard output", err, 1, true)
          end
          local dir = servers.tmpdir()
          os.execute(string.format("%s %s %s <&- >/dev/null 2>%s/err; echo $? >%s/rc", ENV, CMD,
            expand("cp - $B/stdin-closed"), q(dir), q(dir)))
          assert.equals("1", (servers.read_file(dir .. "/rc") or ""):match("%d+"))
          assert.matches("standard input is closed", servers.read_file(dir .. "/err") or "", 1, true)
          servers.sh("rm -rf " .. q(dir))
          assert.is_nil(c:head_object(bucket, "stdin-closed"))
        end)

        it("are non-zero, with no temporary file left, when stdout is a pipe closed early (SIGPIPE ignored)",
          function()
            for i = 1, 20 do assert(c:put_object(bucket, "piped/f" .. i, string.rep("p", 100 * 1000))) end
            local dir = servers.tmpdir()
            -- `true` reads nothing and exits: the first JSON line meets a closed pipe.
            os.execute(string.format("bash -c %s", q(string.format("%s %s %s | true; echo ${PIPESTATUS[0]} >%s/rc",
              ENV, CMD, expand("sync --json --concurrency 8 $B/piped/ $E/piped/") .. " 2>/dev/null", q(dir)))))
            local rc = tonumber((servers.read_file(dir .. "/rc") or ""):match("%d+"))
            servers.sh("rm -rf " .. q(dir))
            assert.is_true(rc == 1, "exit " .. tostring(rc))
            assert.is_nil(snapshot(root .. "/empty"):find("objstore-", 1, true))
          end)

        it("are 129 on SIGHUP (a closed terminal), with no part file left", function()
          assert(c:put_object(bucket, "hup/big", string.rep("h", 3 * 1000 * 1000)))
          local dir = servers.tmpdir()
          os.execute(string.format("%s %s %s >/dev/null 2>&1 </dev/null & pid=$!; sleep 1; kill -HUP $pid; wait $pid; "
            .. "echo $? >%s/rc", ENV, CMD, expand("cp --concurrency 1 --bwlimit 1M $B/hup/big $E/hup/"), q(dir)))
          local rc = tonumber((servers.read_file(dir .. "/rc") or ""):match("%d+"))
          servers.sh("rm -rf " .. q(dir))
          assert.equals(129, rc)
          assert.is_nil(snapshot(root .. "/empty"):find("objstore-", 1, true))
        end)

        it("are non-zero for a local source directory that does not exist", function()
          for _, line in ipairs{ "sync $E/nothing $B/dst/", "cp -r $E/nothing $B/dst/", "mv -r $E/nothing $B/dst/",
            "check $E/nothing $B/dst/" } do
            local rc, _, err = run(CMD .. " " .. expand(line), ENV)
            assert.is_true(rc == 1 or rc == 2, line)
            assert.matches("nothing", err, 1, true)
          end
        end)

        it("are 1 when the store refuses the writes", function()
          assert(fp:set{ internal = { rate = 1, methods = { "PUT", "POST", "DELETE" } } })
          for _, line in ipairs{ "cp $L/a.txt $B/new/", "cp -r $L $B/new/", "sync $L $B/new/", "rm $B/src/x.txt",
            "rm -r $B/src/", "cp $B/src/x.txt $B/copy/x.txt" } do
            local rc = run(CMD .. " " .. expand(line), ENV)
            assert.equals(1, rc, line)
          end
          fp:clear()
        end)
      end)
    end)
  end
end
