-- The `objstore` command as a person uses it, against rgw: from the source
-- tree (bin/objstore) and as installed by the rock; its progress on a
-- pseudo-terminal (script(1)) and in a pipe; exit codes; bad input.
-- The cases tagged #options (each option issue 19 lists) also run through
-- the rock-installed command: spec/cli_installed_spec.lua.
local servers = require "servers"
local cjson = require "cjson"
local lfs = require "lfs"

local q = servers.q

local LUA = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
-- OBJSTORE_CLI_CMD: another command line to run as `objstore` (the rock's
-- installed wrapper: spec/cli_installed_spec.lua runs the #options cases
-- through it); the source tree's bin/objstore with this Lua otherwise.
local BIN = os.getenv("OBJSTORE_CLI_CMD") or (LUA .. " " .. q(lfs.currentdir() .. "/bin/objstore"))

local function read(path) return servers.read_file(path) or "" end

--- run(cmd, env) -> rc, stdout, stderr (a shell command line after the env).
local function run(cmd, env)
  local dir = servers.tmpdir()
  local line = string.format("%s %s >%s/out 2>%s/err; echo $? >%s/rc", env or "", cmd, q(dir), q(dir), q(dir))
  os.execute(line)
  local rc, out, err = tonumber(read(dir .. "/rc")), read(dir .. "/out"), read(dir .. "/err")
  servers.sh("rm -rf " .. q(dir))
  return rc, out, err
end

local COMMANDS = { "ls", "cp", "mv", "rm", "sync", "check", "cat", "stat", "mb", "rb", "presign", "du", "uploads",
  "version" }

describe("objstore command line: usage", function()
  it("documents every command", function()
    local rc, out = run(BIN .. " --help")
    assert.equals(0, rc)
    for _, c in ipairs(COMMANDS) do
      assert.matches("\n  " .. c .. " ", out, 1, true)
      local rc2, out2 = run(BIN .. " " .. c .. " --help")
      assert.equals(0, rc2, c)
      assert.matches("Usage: objstore " .. c, out2, 1, true)
    end
  end)

  it("exits 2 with a clear message on bad input and hostile URLs", function()
    local cases = {
      { "", "Usage" },
      { "frobnicate", "unknown command 'frobnicate'" },
      { "ls --bogus", "unknown option '--bogus'" },
      { "cp onlyone", "cp needs SRC and DST" },
      { "cp a b", "one side must be" },
      { "sync s3://bucket-x", "sync needs SRC and DST" },
      { "cat ftp://host/x", "unknown URL scheme" },
      { "cat s3:///key", "no bucket" },
      { "cat 's3://Bad_Bucket!/k'", "not a valid bucket name" },
      { "cat s3://ab/k", "not a valid bucket name" },
      { "cat s3://bucket-x", "needs a key" },
      { "sync --concurrency lots . s3://bucket-x", "needs a whole number" },
      { "sync --part-size huge . s3://bucket-x", "needs a size" },
      -- 0 reached upload_file/download_file, which raised; a fraction of a byte was floored.
      { "cp --bwlimit 0 /etc/hostname s3://bucket-x/k", "needs a size from 1" },
      { "cp --bwlimit 0 s3://bucket-x/k /tmp/h17f-never", "needs a size from 1" },
      { "sync --bwlimit 2.5 . s3://bucket-x", "needs a size" },
      { "sync --bwlimit 8MiBx . s3://bucket-x", "needs a size" },
      -- accepted and ignored before: no walk and no state between two remote trees, no mtime
      -- window for content or size, a move compares content
      { "sync --no-state s3://bucket-x/a/ s3://bucket-x/b/", "--no-state applies when" },
      { "sync --state-file /tmp/s s3://bucket-x/a/ s3://bucket-x/b/", "--state-file applies when" },
      { "cp -r --follow-symlinks s3://bucket-x/a/ s3://bucket-x/b/", "--follow-symlinks applies when" },
      { "check --follow-symlinks s3://bucket-x/a/ s3://bucket-x/b/", "--follow-symlinks applies when" },
      { "sync --checksum --modify-window 2 . s3://bucket-x", "--modify-window applies to" },
      { "check --size-only --modify-window 2 . s3://bucket-x", "--modify-window applies to" },
      { "mv -r --size-only . s3://bucket-x", "a move compares content" },
      { "mv -r --modify-window 2 . s3://bucket-x", "a move compares content" },
      { "presign --method POST s3://bucket-x/k", "--method must be" },
      { "rm s3://bucket-x", "give a key, or -r" },
      { "cp - ./here", "one side must be" },
    }
    for _, case in ipairs(cases) do
      local rc, out, err = run(BIN .. " " .. case[1] .. " </dev/null")
      assert.equals(2, rc, case[1])
      assert.matches(case[2], out .. err, 1, true)
    end
  end)
end)

describe("objstore command line: first contact", function()
  it("runs from a checkout whatever `lua` is, with the Lua that was built; says what to run otherwise", function()
    -- A checkout with one build only, and a `lua` on the PATH that is another
    -- interpreter (Debian's alternatives after `make test`).
    local tree = servers.tmpdir()
    assert(servers.sh("cp -r bin lua " .. q(tree) .. " && mkdir -p " .. q(tree .. "/build") .. " && cp -r "
      .. q(os.getenv("BUILD") or "build") .. "/" .. LUA .. " " .. q(tree .. "/build/")))
    local other = LUA == "lua5.2" and "lua5.3" or "lua5.2"
    assert(servers.sh("mkdir -p " .. q(tree .. "/path") .. " && ln -s $(command -v " .. other .. ") "
      .. q(tree .. "/path/lua")))
    local env = "PATH=" .. q(tree .. "/path") .. ":$PATH"
    local rc, out, err = run(q(tree .. "/bin/objstore") .. " --help", env)
    assert.equals(0, rc, err)
    assert.matches("Usage: objstore COMMAND", out, 1, true)
    rc, out, err = run("cd / && " .. q(tree .. "/bin/objstore") .. " --version", env)
    assert.equals(0, rc, err)
    assert.matches("^objstore %d+%.%d+%.%d+\n", out)
    -- Run by hand with an interpreter that has no build: one line saying what to run.
    rc, out, err = run(other .. " " .. q(tree .. "/bin/objstore") .. " --help")
    assert.equals(127, rc)
    assert.equals("", out)
    assert.matches("^objstore: no objstore core for " .. other .. ": run `make build LUA=" .. other
      .. "`[^\n]*\n$", err)
    assert.is_nil(err:find("traceback", 1, true))
    servers.sh("rm -rf " .. q(tree))
  end)

  it("prints its version and the Lua, libcurl and OpenSSL in use", function()
    local core = require "objstore.core"
    for _, how in ipairs{ " --version", " version" } do
      local rc, out = run(BIN .. how)
      assert.equals(0, rc)
      assert.matches("objstore " .. require("objstore")._VERSION .. "\n", out, 1, true)
      assert.matches((jit and jit.version or _VERSION), out, 1, true)
      assert.matches("libcurl  " .. core.http.curl_version:match("^libcurl/(%S+)"), out, 1, true)
      assert.matches(core.openssl_version, out, 1, true)
    end
    local rc, out = run(BIN .. " --json --version")
    assert.equals(0, rc)
    local v = cjson.decode(out)
    assert.equals(require("objstore")._VERSION, v.objstore)
    assert.equals(core.openssl_version, v.openssl)
    assert.truthy(v.libcurl and v.lua)
    assert.equals(2, (run(BIN .. " version extra")))
  end)
end)

describe("objstore command line: OSS signature version", function()
  local ENV = "OSS_ACCESS_KEY_ID=ak OSS_ACCESS_KEY_SECRET=sk OSS_REGION=cn-hangzhou AWS_CONFIG_FILE=/dev/null "
    .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null"

  it("signs OSS URLs with v4 by default, v1 with --signature v1 or OSS_SIGNATURE_VERSION=v1 #options", function()
    local rc, out = run(BIN .. " presign oss://bucket-x/k", ENV)
    assert.equals(0, rc)
    assert.matches("x-oss-signature-version=OSS4-HMAC-SHA256", out, 1, true)
    for _, how in ipairs{ { BIN .. " presign --signature v1 oss://bucket-x/k", ENV },
      { BIN .. " presign oss://bucket-x/k", ENV .. " OSS_SIGNATURE_VERSION=v1" } } do
      rc, out = run(how[1], how[2])
      assert.equals(0, rc)
      assert.matches("^https://bucket%-x%.oss%-cn%-hangzhou%.aliyuncs%.com/k%?OSSAccessKeyId=ak&Expires=%d+&Signature=",
        out)
    end
  end)

  it("refuses a signature version other than v1/v4, and v1 for s3:// #options", function()
    local rc, _, err = run(BIN .. " presign --signature v2 oss://bucket-x/k", ENV)
    assert.equals(2, rc)
    assert.matches("must be v1 or v4", err, 1, true)
    rc, _, err = run(BIN .. " presign --signature v1 s3://bucket-x/k", ENV)
    assert.equals(2, rc)
    assert.matches("v4 only", err, 1, true)
  end)
end)

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("objstore command line on " .. srv.name .. " #server", function()
      local bucket, dir, ENV, CMD

      setup(function()
        bucket = servers.bucket_name("h10-cli")
        dir = servers.tmpdir()
        ENV = string.format("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s AWS_CONFIG_FILE=/dev/null "
          .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null OBJSTORE_PROGRESS_INTERVAL=0", q(srv.access_key),
          q(srv.secret_key), q(srv.region))
        CMD = BIN .. " --endpoint " .. q(srv.endpoint)
        -- Made here, not by the first case, so that any case runs alone (busted --tags=options).
        assert(servers.client(srv):create_bucket(bucket))
      end)

      teardown(function()
        servers.cleanup(servers.client(srv), bucket)
        servers.sh("rm -rf " .. q(dir))
      end)

      local function ok(args, stdin)
        local rc, out, err = run(CMD .. " " .. args .. (stdin and (" <" .. q(stdin)) or " </dev/null"), ENV)
        assert.equals(0, rc, args .. "\n" .. err)
        return out, err
      end

      it("makes a bucket, copies both ways, lists, stats, cats, presigns, sizes and removes", function()
        servers.write_file(dir .. "/hello.txt", "hello, world\n")
        lfs.touch(dir .. "/hello.txt", 1600000000, 1600000000)
        ok("cp " .. q(dir .. "/hello.txt") .. " s3://" .. bucket .. "/docs/")
        local out = ok("ls s3://" .. bucket)
        assert.matches("PRE docs/", out, 1, true)
        out = ok("ls -r s3://" .. bucket .. " --json")
        local obj = cjson.decode(out:match("[^\n]+"))
        assert.equals("docs/hello.txt", obj.key)
        assert.equals(13, obj.size)
        out = ok("stat s3://" .. bucket .. "/docs/hello.txt")
        assert.matches("meta:mtime%s+1600000000", out)
        assert.matches("text/plain", out, 1, true)
        assert.equals("hello, world\n", (ok("cat s3://" .. bucket .. "/docs/hello.txt")))
        ok("cp s3://" .. bucket .. "/docs/hello.txt " .. q(dir .. "/back.txt"))
        assert.equals("hello, world\n", servers.read_file(dir .. "/back.txt"))
        assert.equals(1600000000, lfs.attributes(dir .. "/back.txt", "modification"))
        local url = ok("presign s3://" .. bucket .. "/docs/hello.txt --expires-in 60"):gsub("%s+$", "")
        local got = select(2, servers.sh("curl -sf " .. q(url)))
        assert.equals("hello, world\n", got)
        out = ok("du s3://" .. bucket .. " --json")
        assert.same({ objects = 1, bytes = 13 }, cjson.decode(out))
        ok("mv s3://" .. bucket .. "/docs/hello.txt s3://" .. bucket .. "/moved.txt")
        assert.equals(2, (run(CMD .. " stat s3://" .. bucket .. "/docs/hello.txt", ENV)) + 1)
        ok("rm s3://" .. bucket .. "/moved.txt")
        for _, k in ipairs{ "tmp/a.log", "tmp/b.log", "tmp/keep.txt", "tmpx/c.log" } do
          servers.write_file(dir .. "/part", k)
          ok("cp " .. q(dir .. "/part") .. " s3://" .. bucket .. "/" .. k)
        end
        ok("rm -r s3://" .. bucket .. "/tmp --exclude 'keep.*'")
        out = ok("ls -r s3://" .. bucket)
        assert.matches("tmp/keep.txt", out, 1, true)
        assert.matches("tmpx/c.log", out, 1, true) -- the sibling prefix is not touched
        assert.is_nil(out:find("tmp/a.log", 1, true))
        local other = servers.bucket_name("h10-clirb")
        ok("mb s3://" .. other)
        ok("cp " .. q(dir .. "/part") .. " s3://" .. other .. "/x")
        assert.equals(1, (run(CMD .. " rb s3://" .. other, ENV))) -- not empty
        ok("rb s3://" .. other .. " --force")
      end)

      it("streams stdin of unknown size into an object and back to stdout", function()
        local src = dir .. "/stream.bin"
        servers.sh("head -c 7000000 /dev/urandom > " .. q(src))
        ok("cp - s3://" .. bucket .. "/stream.bin --part-size 5M", src)
        local rc = run("cat " .. q(src) .. " | " .. ENV .. " " .. CMD .. " cp - s3://" .. bucket .. "/pipe.bin")
        assert.equals(0, rc)
        local same = servers.sh(CMD:gsub("^", ENV .. " ") .. " cat s3://" .. bucket .. "/pipe.bin | cmp - " .. q(src))
        assert.is_true(same)
      end)

      it("syncs, then a second run transfers nothing; --json gives one object per line", function()
        local tree = dir .. "/tree"
        for i = 1, 12 do
          servers.sh("mkdir -p " .. q(tree .. "/d" .. (i % 3)))
          servers.write_file(tree .. "/d" .. (i % 3) .. "/f" .. i .. ".txt", string.rep("x", i * 100))
        end
        local _, err = ok("sync " .. q(tree) .. " s3://" .. bucket .. "/tree")
        assert.matches("transferred 12, skipped 0, deleted 0, failed 0", err, 1, true)
        local out = ok("sync " .. q(tree) .. " s3://" .. bucket .. "/tree --json")
        local summary
        for line in out:gmatch("[^\n]+") do
          local t = assert(cjson.decode(line))
          if t.type == "summary" then summary = t end
        end
        assert.equals(0, summary.transferred)
        assert.equals(12, summary.skipped)
        -- Back down, then check says they match.
        ok("sync s3://" .. bucket .. "/tree " .. q(dir .. "/down"))
        ok("check " .. q(dir .. "/down") .. " s3://" .. bucket .. "/tree")
        servers.write_file(dir .. "/down/d1/f1.txt", "changed")
        local rc, cout = run(CMD .. " check " .. q(dir .. "/down") .. " s3://" .. bucket .. "/tree", ENV)
        assert.equals(1, rc)
        assert.matches("differs d1/f1.txt", cout, 1, true)
      end)

      it("plans with --dry-run, keeps --max-delete (exit 3) and deletes with filters", function()
        local tree = dir .. "/tree"
        os.remove(tree .. "/d0/f3.txt")
        os.remove(tree .. "/d0/f6.txt")
        local out = ok("sync " .. q(tree) .. " s3://" .. bucket .. "/tree --delete --dry-run")
        assert.matches("(dry run) delete d0/f3.txt (not in source)", out, 1, true)
        local rc, _, err = run(CMD .. " sync " .. q(tree) .. " s3://" .. bucket .. "/tree --delete --max-delete 1", ENV)
        assert.equals(3, rc)
        assert.matches("MaxDeleteExceeded", err, 1, true)
        local _, e2 = ok("sync " .. q(tree) .. " s3://" .. bucket .. "/tree --delete --exclude 'f6.*'")
        assert.matches("deleted 1,", e2, 1, true)
        out = ok("ls -r s3://" .. bucket .. "/tree/d0/")
        assert.matches("f6.txt", out, 1, true)
        assert.is_nil(out:find("f3.txt", 1, true))
      end)

      it("--profile wins over AWS_* keys in the environment; a missing profile is named", function()
        local creds = dir .. "/credentials"
        servers.write_file(creds, "[h19]\naws_access_key_id = " .. srv.access_key .. "\naws_secret_access_key = "
          .. srv.secret_key .. "\n")
        local env = string.format("AWS_ACCESS_KEY_ID=bogus AWS_SECRET_ACCESS_KEY=bogus AWS_REGION=%s "
          .. "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=%s", q(srv.region), q(creds))
        local rc, _, err = run(CMD .. " ls s3://" .. bucket .. " --profile h19", env)
        assert.equals(0, rc, err)
        rc, _, err = run(CMD .. " --profile h19-nope ls s3://" .. bucket, env)
        assert.equals(1, rc)
        assert.matches("ProfileNotFound", err, 1, true)
        assert.matches("profile 'h19-nope' not found", err, 1, true)
        assert.matches(creds, err, 1, true)
      end)

      --- The progress line's numbers: done and total in bytes, percentage, ETA.
      local UNITS = { B = 1, KiB = 1024, MiB = 1024 ^ 2, GiB = 1024 ^ 3 }
      local function bytes_of(n, u) return tonumber(n) * UNITS[u] end

      it("shows progress that can be trusted in a 40-column terminal (tmux)", function()
        local big = dir .. "/big12.bin"
        servers.sh("head -c 12582912 /dev/urandom > " .. q(big))
        local sock = "h19j-spec-" .. tostring(os.time())
        local script = dir .. "/tmux.sh"
        servers.write_file(script, ENV:gsub("OBJSTORE_PROGRESS_INTERVAL=0", "") .. " " .. CMD .. " cp " .. q(big)
          .. " s3://" .. bucket .. "/big12.bin --part-size 5M --bwlimit 2M --concurrency 1; echo rc=$?; sleep 60\n")
        assert(servers.sh("tmux -L " .. sock .. " new-session -d -x 40 -y 12 'sh " .. script .. "'"))
        local screens, finished = {}, nil
        for _ = 1, 120 do
          os.execute("sleep 0.25")
          local okc, pane = servers.sh("tmux -L " .. sock .. " capture-pane -p")
          if okc then screens[#screens + 1] = pane end
          if okc and pane:find("rc=%d") then
            finished = pane
            break
          end
        end
        servers.sh("tmux -L " .. sock .. " kill-server")
        assert.truthy(finished, "the copy did not end")
        assert.matches("rc=0", finished, 1, true)
        local seen_partial = false
        for _, pane in ipairs(screens) do
          local progress_lines = 0
          for line in pane:gmatch("[^\n]+") do
            assert.is_true(#line <= 40, line)
            if line:find("ETA", 1, true) then
              progress_lines = progress_lines + 1
              -- "5.0 MiB/12.0 MiB 41% ..." (the compact form) or "5.0 MiB of 12.0 MiB ...".
              local dn, du, tn, tu = line:match("^([%d.]+) (%a+)/([%d.]+) (%a+)")
              if not dn then dn, du, tn, tu = line:match("^([%d.]+) (%a+) of ([%d.]+) (%a+)") end
              assert.truthy(dn, "no bytes of a total: " .. line)
              local done, total = bytes_of(dn, du), bytes_of(tn, tu)
              assert.is_true(done <= total, line)
              assert.equals(12582912, total)
              local pct = tonumber(line:match(" (%d+)%%"))
              assert.is_true(pct == nil or pct <= 100, line)
              assert.is_nil((line:match("ETA (%S*)") or ""):find("-", 1, true), line)
              if done > 0 and done < total then seen_partial = true end
            end
          end
          assert.is_true(progress_lines <= 1, pane) -- no stale lines piling up
        end
        assert.is_true(seen_partial, "no progress inside the file")
        -- The upload line starts a line of its own (the progress line was cleared first).
        assert.matches("\nupload: ", "\n" .. finished)
        assert.matches("12.0 MiB/12.0 MiB 100%", finished, 1, true)
      end)

      it("gives totals as soon as the walk knows them, one action object per file with --json", function()
        local tree = dir .. "/jtree"
        servers.sh("mkdir -p " .. q(tree))
        for i = 1, 5 do servers.write_file(tree .. "/f" .. i, string.rep("j", 1000 * i)) end
        local out = ok("cp -r " .. q(tree) .. " s3://" .. bucket .. "/jtree --json")
        local actions, progress = 0, {}
        for line in out:gmatch("[^\n]+") do
          local t = cjson.decode(line)
          if t.type == "action" then actions = actions + 1 end
          if t.type == "progress" then progress[#progress + 1] = t end
        end
        assert.equals(5, actions)
        assert.is_true(#progress > 0)
        for _, p in ipairs(progress) do
          assert.equals(15000, p.total_bytes)
          assert.equals(5, p.total_files)
          assert.is_true(p.bytes <= p.total_bytes and p.files <= p.total_files)
        end
        -- -v: one line per file; a dry run shows no progress line.
        local vout = ok("sync " .. q(tree) .. " s3://" .. bucket .. "/jtree-v -v")
        local n = 0
        for _ in vout:gmatch("upload: [^\n]+ to s3://[^\n]+/jtree%-v/f%d\n") do n = n + 1 end
        assert.equals(5, n)
        local _, derr = ok("sync " .. q(tree) .. " s3://" .. bucket .. "/jtree-d --dry-run")
        assert.is_nil(derr:find("files %d"), derr)
        -- Single commands report their action in --json too.
        local singles = { "cp " .. q(tree .. "/f1") .. " s3://" .. bucket .. "/one", "rm s3://" .. bucket .. "/one" }
        for _, c in ipairs(singles) do
          local o1 = ok(c .. " --json")
          local found
          for line in o1:gmatch("[^\n]+") do
            local t = cjson.decode(line)
            if t.type == "action" then found = t end
          end
          assert.truthy(found, c)
        end
        local rout = ok("rm -r s3://" .. bucket .. "/jtree-v -v")
        n = 0
        for _ in rout:gmatch("delete: s3://[^\n]+/jtree%-v/f%d\n") do n = n + 1 end
        assert.equals(5, n)
      end)

      it("stores what the upload options ask for (content type, caching, metadata, class, ACL, SSE) #options",
        function()
        local f = dir .. "/opts.txt"
        servers.write_file(f, "options")
        local url = "s3://" .. bucket .. "/opts/o.txt"
        ok("cp " .. q(f) .. " " .. url .. " --content-type text/x-h19 --cache-control max-age=60"
          .. " --content-disposition attachment --metadata color=blue --metadata Size=L --storage-class STANDARD"
          .. " --acl public-read")
        local st = cjson.decode((ok("stat " .. url .. " --json")))
        assert.equals("text/x-h19", st.content_type)
        assert.equals("max-age=60", st.cache_control)
        assert.equals("attachment", st.content_disposition)
        assert.equals("blue", st.metadata.color)
        assert.equals("L", st.metadata.size)
        assert.truthy(st.metadata.mtime) -- still kept beside the user's metadata
        local _, code = servers.sh("curl -s -o /dev/null -w '%{http_code}' " .. q(srv.endpoint .. "/" .. bucket
          .. "/opts/o.txt"))
        assert.equals("200", code) -- public-read: no signature needed
        ok("cp " .. q(f) .. " s3://" .. bucket .. "/opts/private.txt")
        _, code = servers.sh("curl -s -o /dev/null -w '%{http_code}' " .. q(srv.endpoint .. "/" .. bucket
          .. "/opts/private.txt"))
        assert.equals("403", code)
        -- stdin takes the content type too.
        ok("cp - s3://" .. bucket .. "/opts/stdin.txt --content-type application/x-h19", f)
        assert.equals("application/x-h19", cjson.decode((ok("stat s3://" .. bucket .. "/opts/stdin.txt --json")))
          .content_type)
        -- SSE-KMS (rgw's testing backend) and SSE-C with the key from a file.
        ok("cp " .. q(f) .. " s3://" .. bucket .. "/opts/kms.txt --sse aws:kms --sse-kms-key-id testkey-1")
        assert.equals("aws:kms", cjson.decode((ok("stat s3://" .. bucket .. "/opts/kms.txt --json"))).sse)
        local keyfile = dir .. "/ssec.key"
        servers.write_file(keyfile, string.rep("c", 32))
        ok("cp " .. q(f) .. " s3://" .. bucket .. "/opts/ssec.txt --sse-c-key file:" .. q(keyfile))
        assert.equals(1, (run(CMD .. " cat s3://" .. bucket .. "/opts/ssec.txt", ENV)))
        assert.equals("options", (ok("cat s3://" .. bucket .. "/opts/ssec.txt --sse-c-key file:" .. q(keyfile))))
        ok("cp s3://" .. bucket .. "/opts/ssec.txt " .. q(dir .. "/ssec-back.txt") .. " --sse-c-key file:"
          .. q(keyfile))
        assert.equals("options", servers.read_file(dir .. "/ssec-back.txt"))
        -- sync passes them on.
        local tree = dir .. "/otree"
        servers.sh("mkdir -p " .. q(tree))
        servers.write_file(tree .. "/a.txt", "a")
        ok("sync " .. q(tree) .. " s3://" .. bucket .. "/otree --metadata team=h19 --cache-control no-cache")
        st = cjson.decode((ok("stat s3://" .. bucket .. "/otree/a.txt --json")))
        assert.equals("h19", st.metadata.team)
        assert.equals("no-cache", st.cache_control)
        -- Usage errors: the key itself, where an option does nothing, bad values.
        for _, bad in ipairs{ "cp " .. q(f) .. " " .. url .. " --sse-c-key " .. string.rep("c", 32),
          "cp " .. url .. " " .. q(dir .. "/x") .. " --acl private", "cp " .. q(f) .. " " .. url .. " --metadata nokv",
          "cp " .. q(f) .. " " .. url .. " --acl everyone", "cp " .. q(f) .. " " .. url .. " --sse-kms-key-id k",
          "sync s3://" .. bucket .. "/otree " .. q(dir .. "/o2") .. " --storage-class STANDARD" } do
          assert.equals(2, (run(CMD .. " " .. bad, ENV)), bad)
        end
      end)

      it("honours --retries / AWS_MAX_ATTEMPTS (a notice per retry), --timeout, --ca-bundle, --no-verify-ssl"
        .. " #options", function()
        local port = tonumber(os.getenv("OBJSTORE_SPEC_STUB_PORT") or "19961")
        local started = {}
        -- A failing assertion leaves no stub behind on the port.
        finally(function() for _, p in ipairs(started) do servers.sh("kill " .. p .. " 2>/dev/null") end end)
        local function stub(mode)
          local _, pid = servers.sh("python3 spec/support/stub_server.py " .. port .. " " .. mode
            .. " >/dev/null 2>&1 & echo $!")
          os.execute("sleep 0.5")
          started[#started + 1] = pid:match("%d+")
          return pid:match("%d+")
        end
        local stub_cmd = BIN .. " --endpoint http://127.0.0.1:" .. port
        local pid = stub("503")
        local rc, _, err = run(stub_cmd .. " ls s3://" .. bucket .. " --retries 2", ENV)
        assert.equals(1, rc)
        local n = 0
        for _ in err:gmatch("objstore: notice: [^\n]*retrying in") do n = n + 1 end
        assert.equals(2, n, err)
        rc, _, err = run(stub_cmd .. " ls s3://" .. bucket, ENV .. " AWS_MAX_ATTEMPTS=1")
        assert.equals(1, rc)
        assert.is_nil(err:find("retrying", 1, true))
        rc, _, err = run(stub_cmd .. " -q ls s3://" .. bucket .. " --retries 1", ENV)
        assert.equals(1, rc)
        assert.is_nil(err:find("notice", 1, true)) -- -q: no notices
        servers.sh("kill " .. pid)
        pid = stub("hang")
        local t0 = os.time()
        rc = run(stub_cmd .. " ls s3://" .. bucket .. " --timeout 1 --retries 0", ENV)
        assert.equals(1, rc)
        assert.is_true(os.time() - t0 <= 10)
        servers.sh("kill " .. pid)
        assert.equals(2, (run(CMD .. " ls s3://" .. bucket .. " --ca-bundle /nonexistent", ENV)))
        assert.equals(2, (run(CMD .. " ls s3://" .. bucket .. " --connect-timeout 0", ENV)))
        assert.equals(2, (run(CMD .. " ls s3://" .. bucket, ENV .. " AWS_MAX_ATTEMPTS=many")))
        ok("ls s3://" .. bucket .. " --no-verify-ssl --ca-bundle /etc/ssl/certs/ca-certificates.crt"
          .. " --connect-timeout 5")
      end)

      it("ACL as get-object-acl reads it, SSE AES256 refused honestly, SSE-C key from env:, --bwlimit, TLS options,"
        .. " --connect-timeout #options", function()
        -- busted keeps one finally per case: every cleanup goes through it, so that
        -- a failing assertion leaves no server behind.
        local cleanups = {}
        finally(function() for i = #cleanups, 1, -1 do cleanups[i]() end end)
        local f = dir .. "/o2.txt"
        servers.write_file(f, "options 2")
        -- --acl: the grants as the store keeps them (aws s3api get-object-acl).
        ok("cp " .. q(f) .. " s3://" .. bucket .. "/o2/acl.txt --acl public-read")
        local _, acl = servers.sh("env -u AWS_CA_BUNDLE " .. ENV .. " /usr/bin/aws --endpoint-url " .. q(srv.endpoint)
          .. " s3api get-object-acl --bucket " .. bucket .. " --key o2/acl.txt --output json")
        local grants = cjson.decode(acl).Grants
        local public
        for _, g in ipairs(grants) do
          if g.Grantee.URI == "http://acs.amazonaws.com/groups/global/AllUsers" then public = g.Permission end
        end
        assert.equals("READ", public, acl)
        -- --sse AES256: this rgw (16.2) has no SSE-S3 and answers without the header: said, exit 1.
        local rc, _, err = run(CMD .. " cp " .. q(f) .. " s3://" .. bucket .. "/o2/aes.txt --sse AES256", ENV)
        if rc ~= 0 then
          assert.equals(1, rc)
          assert.matches("SSENotApplied", err, 1, true)
        else
          assert.equals("AES256", cjson.decode((ok("stat s3://" .. bucket .. "/o2/aes.txt --json"))).sse)
        end
        -- --sse-c-key env:NAME
        local kenv = ENV .. " H19_SSEC=" .. string.rep("k", 32)
        rc, _, err = run(CMD .. " cp " .. q(f) .. " s3://" .. bucket .. "/o2/ssec.txt --sse-c-key env:H19_SSEC", kenv)
        assert.equals(0, rc, err)
        assert.equals(1, (run(CMD .. " stat s3://" .. bucket .. "/o2/ssec.txt", ENV)))
        local rc2, out2 = run(CMD .. " cat s3://" .. bucket .. "/o2/ssec.txt --sse-c-key env:H19_SSEC", kenv)
        assert.equals(0, rc2)
        assert.equals("options 2", out2)
        assert.equals(2, (run(CMD .. " cat s3://" .. bucket .. "/o2/ssec.txt --sse-c-key env:H19_NONE", ENV)))
        -- --bwlimit: 3 MiB at 1 MiB/s take more than 2 s each way (a first second may burst).
        local big = dir .. "/bw.bin"
        servers.sh("head -c 3145728 /dev/urandom > " .. q(big))
        local function timed(args)
          local t0 = tonumber(select(2, servers.sh("date +%s.%N")))
          ok(args)
          return tonumber(select(2, servers.sh("date +%s.%N"))) - t0
        end
        local up = timed("cp " .. q(big) .. " s3://" .. bucket .. "/o2/bw.bin --bwlimit 1M")
        local down = timed("cp s3://" .. bucket .. "/o2/bw.bin " .. q(dir .. "/bw-back.bin") .. " --bwlimit 1M")
        assert.is_true(up > 2, "upload took " .. up .. " s")
        assert.is_true(down > 2, "download took " .. down .. " s")
        assert.is_true(servers.sh("cmp " .. q(big) .. " " .. q(dir .. "/bw-back.bin")))
        -- --no-verify-ssl and --ca-bundle against a TLS front whose CA no system trusts.
        local tls_dir = servers.tmpdir()
        local front = "TLS_FRONT_DIR=" .. q(tls_dir) .. " TLS_FRONT_PORT="
          .. (os.getenv("OBJSTORE_SPEC_TLS_PORT") or "19620") .. " bash spec/support/tls_front.sh"
        cleanups[#cleanups + 1] = function() servers.sh(front .. " stop; rm -rf " .. q(tls_dir)) end
        local started, log = servers.sh(front .. " start")
        assert(started, log)
        local ok_env, tenv = servers.sh(front .. " env")
        assert(ok_env, tenv)
        local ca, https = tenv:match("TLS_FRONT_CA=(%S+)"), tenv:match("TLS_FRONT_ENDPOINT=(%S+)")
        ca, https = ca:gsub("^'(.*)'$", "%1"), https:gsub("^'(.*)'$", "%1")
        local tls = BIN .. " --endpoint " .. q(https) .. " ls s3://" .. bucket .. "/o2/ --retries 0"
        local env_noca = "env -u AWS_CA_BUNDLE " .. ENV
        local rc3, _, err3 = run(tls, env_noca)
        local rc4, out4, err4 = run(tls .. " --no-verify-ssl", env_noca)
        local rc5, out5, err5 = run(tls .. " --ca-bundle " .. q(ca), env_noca)
        local rc6, out6 = run(tls, env_noca .. " AWS_CA_BUNDLE=" .. q(ca))
        assert.equals(1, rc3, err3)
        assert.equals(0, rc4, err4)
        assert.matches("acl.txt", out4, 1, true)
        assert.equals(0, rc5, err5)
        assert.matches("acl.txt", out5, 1, true)
        assert.equals(0, rc6)
        assert.matches("acl.txt", out6, 1, true)
        -- --connect-timeout: an endpoint whose connects never complete fails within it, not 90 s later.
        local port = tonumber(os.getenv("OBJSTORE_SPEC_STUB_PORT") or "19961")
        local _, pid = servers.sh("python3 spec/support/stub_server.py " .. port
          .. " noaccept >/dev/null 2>&1 & echo $!")
        cleanups[#cleanups + 1] = function() servers.sh("kill " .. pid:match("%d+") .. " 2>/dev/null") end
        os.execute("sleep 1")
        local t0 = os.time()
        local rc7, _, err7 = run(BIN .. " --endpoint http://127.0.0.1:" .. port .. " ls s3://" .. bucket
          .. " --connect-timeout 2 --retries 0", ENV)
        local took = os.time() - t0
        servers.sh("kill " .. pid:match("%d+"))
        assert.equals(1, rc7, err7)
        assert.is_true(took <= 6, "took " .. took .. " s")
      end)

      it("resumes an interrupted cp --resume from a checkpoint under XDG_STATE_HOME (Ctrl-C, kill -9); uploads --abort"
        .. " #options", function()
        local state = dir .. "/state"
        local env = ENV .. " XDG_STATE_HOME=" .. q(state)
        local src = dir .. "/resume-src"
        servers.sh("mkdir -p " .. q(src) .. " && head -c 12582912 /dev/urandom > " .. q(src .. "/big.bin"))
        local url = "s3://" .. bucket .. "/resume/big.bin"
        local slow = CMD .. " cp " .. q(src .. "/big.bin") .. " " .. url
          .. " --part-size 5M --bwlimit 2M --concurrency 1 --resume"
        local function checkpoints()
          local n = 0
          if lfs.attributes(state .. "/objstore/transfers", "mode") then
            for name in lfs.dir(state .. "/objstore/transfers") do if name:find("%.cp$") then n = n + 1 end end
          end
          return n
        end
        local function uploads()
          local out = ok("uploads s3://" .. bucket .. "/resume/ --json")
          local n = 0
          for _ in out:gmatch('"upload_id"') do n = n + 1 end
          return n
        end
        for _, how in ipairs{ { "INT", 130 }, { "KILL", 137 } } do
          local rc, _, err = run("timeout --foreground --preserve-status -s " .. how[1] .. " 4 " .. slow, env)
          assert.equals(how[2], rc, err)
          if how[1] == "INT" then
            assert.matches("run the same command again (with --resume) to resume", err, 1, true)
          end
          assert.equals(1, checkpoints())
          assert.equals(1, uploads()) -- kept to resume
          for name in lfs.dir(src) do assert.is_nil(name:find("objstore", 1, true), name) end -- nothing beside it
          local rc2, _, err2 = run(CMD .. " cp " .. q(src .. "/big.bin") .. " " .. url .. " --part-size 5M --resume",
            env)
          assert.equals(0, rc2, err2)
          assert.matches("resumed: %d+%.%d MiB of 12%.0 MiB were already uploaded", err2)
          assert.equals(0, checkpoints())
          assert.equals(0, uploads())
          assert.is_true(servers.sh(ENV .. " " .. CMD .. " cat " .. url .. " | cmp - " .. q(src .. "/big.bin")))
        end
        -- An interrupted --resume run leaves its upload for `uploads --abort`.
        assert.equals(130, (run("timeout --foreground --preserve-status -s INT 4 " .. slow, env)))
        assert.equals(1, uploads())
        local out = ok("uploads s3://" .. bucket .. "/resume/ --abort --dry-run")
        assert.matches("(dry run) abort upload ", out, 1, true)
        assert.equals(1, uploads())
        ok("uploads s3://" .. bucket .. "/resume/ --abort")
        assert.equals(0, uploads())
        -- Without --resume an interrupt leaves nothing: no checkpoint, no upload.
        local plain = slow:gsub(" %-%-resume$", "")
        assert.equals(130, (run("timeout --foreground --preserve-status -s INT 4 " .. plain, env)))
        assert.equals(0, uploads())
        local rc, _, err = run(CMD .. " cp " .. q(src .. "/big.bin") .. " " .. url .. " --part-size 5M", env)
        assert.equals(0, rc, err)
        assert.is_nil(err:find("resumed", 1, true))
        assert.equals(2, (run(CMD .. " cp -r " .. q(src) .. " s3://" .. bucket .. "/r2 --resume", env)))
      end)

      it("ls -h, --summarize and --versions; --version-id on cp, cat, stat, rm and mv #options", function()
        local vb = servers.bucket_name("h19j-ver")
        ok("mb s3://" .. vb)
        assert(servers.client(srv):put_bucket_versioning(vb, "Enabled"))
        local f = dir .. "/v.txt"
        servers.write_file(f, "first")
        ok("cp " .. q(f) .. " s3://" .. vb .. "/v.txt")
        servers.write_file(f, string.rep("second!", 300))
        ok("cp " .. q(f) .. " s3://" .. vb .. "/v.txt")
        local versions = {}
        for line in ok("ls --versions s3://" .. vb .. " --json"):gmatch("[^\n]+") do
          versions[#versions + 1] = cjson.decode(line)
        end
        assert.equals(2, #versions)
        local old = versions[1].is_latest and versions[2] or versions[1]
        assert.is_false(old.is_latest)
        assert.equals(5, old.size)
        local text = ok("ls --versions s3://" .. vb)
        assert.matches("(latest)", text, 1, true)
        assert.matches(old.version_id, text, 1, true)
        assert.equals("first", (ok("cat s3://" .. vb .. "/v.txt --version-id " .. q(old.version_id))))
        assert.equals(5, cjson.decode((ok("stat s3://" .. vb .. "/v.txt --json --version-id " .. q(old.version_id))))
          .size)
        ok("cp s3://" .. vb .. "/v.txt " .. q(dir .. "/v-old.txt") .. " --version-id " .. q(old.version_id))
        assert.equals("first", servers.read_file(dir .. "/v-old.txt"))
        local hs = ok("ls -h --summarize s3://" .. vb)
        assert.matches("2.1 KiB v.txt", hs, 1, true)
        assert.matches("Total Objects: 1\n   Total Size: 2.1 KiB\n", hs, 1, true)
        local vdst = servers.bucket_name("cli19-vdst")
        ok("mb s3://" .. vdst)
        -- A server-side copy of the older version: CopyObject, then UploadPartCopy (6 MiB in 5 MiB parts)
        -- of a version a newer one hides.
        ok("cp s3://" .. vb .. "/v.txt s3://" .. vdst .. "/vcopy.txt --version-id " .. q(old.version_id))
        assert.equals("first", (ok("cat s3://" .. vdst .. "/vcopy.txt")))
        local big = dir .. "/vbig.bin"
        servers.sh("head -c 6291456 /dev/urandom > " .. q(big))
        ok("cp " .. q(big) .. " s3://" .. vb .. "/big.bin")
        ok("cp " .. q(f) .. " s3://" .. vb .. "/big.bin")
        local bigv
        for line in ok("ls --versions s3://" .. vb .. "/big.bin --json"):gmatch("[^\n]+") do
          local v = cjson.decode(line)
          if v.size == 6291456 then bigv = v.version_id end
        end
        assert.truthy(bigv)
        local function same_as_big(url)
          return servers.sh(ENV .. " " .. CMD .. " cat " .. url .. " | cmp - " .. q(big))
        end
        ok("cp s3://" .. vb .. "/big.bin s3://" .. vdst .. "/vbig.bin --part-size 5M --version-id " .. q(bigv))
        assert.is_true(same_as_big("s3://" .. vdst .. "/vbig.bin"))
        -- mv of a version: copied, then that version alone removed; the latest stays.
        ok("mv s3://" .. vb .. "/big.bin s3://" .. vdst .. "/vbig2.bin --part-size 5M --version-id " .. q(bigv))
        assert.is_true(same_as_big("s3://" .. vdst .. "/vbig2.bin"))
        assert.equals(1, (run(CMD .. " stat s3://" .. vb .. "/big.bin --version-id " .. q(bigv), ENV)))
        assert.equals(string.rep("second!", 300), (ok("cat s3://" .. vb .. "/big.bin")))
        local left = 0
        for _ in ok("ls --versions s3://" .. vb .. "/big.bin --json"):gmatch('"version_id"') do left = left + 1 end
        assert.equals(1, left)
        assert.equals(2, (run(CMD .. " mv -r s3://" .. vb .. "/ s3://" .. vdst .. "/mvr/ --version-id x", ENV)))
        assert.equals(2, (run(CMD .. " mv " .. q(f) .. " s3://" .. vb .. "/x --version-id x", ENV)))
        ok("rm s3://" .. vb .. "/v.txt --version-id " .. q(old.version_id))
        assert.equals(1, (run(CMD .. " cat s3://" .. vb .. "/v.txt --version-id " .. q(old.version_id), ENV)))
        assert.equals(string.rep("second!", 300), (ok("cat s3://" .. vb .. "/v.txt")))
        assert.equals(2, (run(CMD .. " rm -r s3://" .. vb .. "/ --version-id x", ENV)))
        assert.equals(2, (run(CMD .. " cp " .. q(f) .. " s3://" .. vb .. "/x --version-id x", ENV)))
        -- Every version goes before the bucket can.
        local c = servers.client(srv)
        local page = assert(c:list_object_versions(vb, {}))
        for _, v in ipairs(page.versions) do c:delete_object(vb, v.key, { version_id = v.version_id }) end
        for _, m in ipairs(page.delete_markers) do c:delete_object(vb, m.key, { version_id = m.version_id }) end
        ok("rb s3://" .. vb)
        ok("rb --force s3://" .. vdst)
      end)

      it("exits 1 with the key on stderr when an operation fails", function()
        local rc, _, err = run(CMD .. " cat s3://" .. bucket .. "/no/such/key", ENV)
        assert.equals(1, rc)
        assert.matches("no/such/key", err, 1, true)
        assert.matches("NoSuchKey", err, 1, true)
      end)

      it("redraws one progress line on a terminal, prints plain lines in a pipe, nothing with -q", function()
        local tree = dir .. "/tree"
        local tty_dir = servers.tmpdir()
        local cmd = ENV .. " " .. CMD .. " sync " .. q(tree) .. " s3://" .. bucket .. "/tty"
        os.execute("script -qfc " .. q(cmd) .. " /dev/null > " .. q(tty_dir .. "/typescript") .. " 2>&1 </dev/null")
        local ts = read(tty_dir .. "/typescript")
        assert.matches("\r\27[K", ts, 1, true)
        assert.matches("files %d+/10", ts)
        assert.matches("B/s, ETA", ts, 1, true)
        local pipe_err = tty_dir .. "/pipe-err"
        local rc = run(ENV .. " " .. CMD .. " sync " .. q(tree) .. " s3://" .. bucket .. "/pipe 2>" .. q(pipe_err)
          .. " | cat")
        local err = read(pipe_err)
        assert.equals(0, rc)
        assert.is_nil(err:find("\r", 1, true))
        -- The walk ended before the first transfer: totals from the first line.
        assert.matches("^0 B of 6%.7 KiB %(0%%%), [^\n]*, files 0/10\n", err)
        assert.matches("files 10/10\n", err)
        local _, qout, qerr = run(CMD .. " -q sync " .. q(tree) .. " s3://" .. bucket .. "/quiet", ENV)
        assert.equals("", qout .. qerr)
        servers.sh("rm -rf " .. q(tty_dir))
      end)

      it("exits 130 on SIGINT and leaves no temporary file", function()
        local src = dir .. "/slow"
        servers.sh("mkdir -p " .. q(src))
        for i = 1, 40 do servers.write_file(src .. "/f" .. i, string.rep("s", 100000)) end
        ok("sync " .. q(src) .. " s3://" .. bucket .. "/slow")
        local down = dir .. "/slowdown"
        -- One SIGINT, as Ctrl-C sends: without --foreground GNU timeout signals
        -- the command and then its whole process group, and a second SIGINT
        -- that lands after Lua's handler has run (it restores the default
        -- action) ends the process before the interrupt is reported.
        local rc, _, err = run("timeout --foreground --preserve-status -s INT 2 " .. CMD .. " sync s3://" .. bucket
          .. "/slow " .. q(down) .. " --bwlimit 200k", ENV)
        assert.equals(130, rc, err)
        assert.matches("interrupted", err, 1, true)
        local n = 0
        for name in lfs.dir(down) do
          assert.is_nil(name:find("objstore%-tmp"), name)
          n = n + 1
        end
        assert.is_true(n - 2 < 40) -- stopped before the end
      end)

      it("works as installed by the rock", function()
        local rock = servers.tmpdir()
        assert(servers.sh("mkdir -p " .. q(rock .. "/src") .. " && cp -r lua csrc bin rockspec " .. q(rock .. "/src")))
        local v = LUA == "luajit" and "5.1" or LUA:match("%d%.%d")
        local built, log = servers.sh("cd " .. q(rock .. "/src") .. " && luarocks --lua-version=" .. v .. " --tree "
          .. q(rock .. "/tree") .. " make --deps-mode=none rockspec/objstore-scm-1.rockspec")
        assert(built, log)
        local share = rock .. "/tree/share/lua/" .. v
        local env = "cd / && " .. ENV .. " LUA_PATH=" .. q(share .. "/?.lua;" .. share .. "/?/init.lua;;")
          .. " LUA_CPATH=" .. q(rock .. "/tree/lib/lua/" .. v .. "/?.so;;")
        local bin = q(rock .. "/tree/bin/objstore") .. " --endpoint " .. q(srv.endpoint)
        local rc, out = run(bin .. " --help", env)
        assert.equals(0, rc)
        assert.matches("Usage: objstore COMMAND", out, 1, true)
        rc, out = run(bin .. " --version", env)
        assert.equals(0, rc)
        assert.matches("^objstore %S+\nlua ", out)
        servers.write_file(rock .. "/r.txt", "from the rock")
        assert.equals(0, (run(bin .. " cp " .. q(rock .. "/r.txt") .. " s3://" .. bucket .. "/rock.txt", env)))
        local rc2, out2 = run(bin .. " cat s3://" .. bucket .. "/rock.txt", env)
        assert.equals(0, rc2)
        assert.equals("from the rock", out2)
        servers.sh("rm -rf " .. q(rock))
      end)
    end)
  end
end

describe("objstore command line: progress counts", function()
  it("counts a finished file's bytes once, whether or not its transfer reported progress", function()
    local progress = require "objstore.cli.progress"
    local lines = {}
    local sink = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end, flush = function() end }
    local p = progress.new{ mode = "plain", out = sink, err = sink }
    p.plan(1, 3000)
    p.plan(1, 2000)
    p.planned()
    p.moving(1, 1000)
    p.moving(1, 3000)
    p.file(1, 3000) -- the same file, finished: 3000 bytes in all, not 6000
    assert.equals(3000, (p.numbers()))
    p.moving(2, 500) -- the next file
    assert.equals(3500, (p.numbers()))
    assert.equals(5000, p.state.total_bytes)
    p.file(2, 2000)
    p.file(3, 100) -- a file without progress reports: never shown above the total
    assert.equals(5000, (p.numbers()))
    assert.equals(5100, p.state.bytes)
  end)
end)
