-- The command line attacked as a user and as a hostile store or
-- neighbour would (issue 19's options and issue 17's rules): each case is
-- a defect found by that review, run as a child process against rgw.
local servers = require "servers"
local lfs = require "lfs"

local q = servers.q

local LUA = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local BIN = LUA .. " " .. q(lfs.currentdir() .. "/bin/objstore")

local function read(path) return servers.read_file(path) or "" end

--- run(cmd, env) -> rc, stdout, stderr; bounded by timeout(1).
local function run(cmd, env)
  local dir = servers.tmpdir()
  local line = string.format("%s timeout -s KILL 120 %s >%s/out 2>%s/err; echo $? >%s/rc", env or "", cmd, q(dir),
    q(dir), q(dir))
  os.execute(line)
  local rc, out, err = tonumber(read(dir .. "/rc")), read(dir .. "/out"), read(dir .. "/err")
  servers.sh("rm -rf " .. q(dir))
  return rc, out, err
end

describe("objstore command line under attack (issue 19): usage", function()
  it("refuses --metadata that would overwrite objstore's own mtime or checksum metadata", function()
    -- cp stored the user's mtime over the file's (sync the other way round):
    -- a later sync then compared against a time the file never had.
    for _, m in ipairs{ "mtime=5", "MTime=99999999999", "objstore-crc64nvme=AAAAAAAAAAA=" } do
      local rc, out, err = run(BIN .. " cp --metadata " .. q(m) .. " /etc/hostname s3://bucket-x/k </dev/null")
      assert.equals(2, rc, m)
      assert.equals("", out)
      assert.matches("objstore's own metadata", err, 1, true)
    end
  end)
end)

describe("objstore command line under attack (issue 19): options that would do nothing", function()
  it("refuses --resume where nothing can be resumed (stdin, stdout, server-side copies)", function()
    for _, line in ipairs{ "cp --resume - s3://bucket-x/k", "cp --resume s3://bucket-x/k -",
      "cp --resume s3://bucket-x/k s3://bucket-x/k2", "mv --resume s3://bucket-x/k s3://bucket-x/k2" } do
      local rc, out, err = run(BIN .. " " .. line .. " </dev/null")
      assert.equals(2, rc, line)
      assert.equals("", out)
      assert.matches("--resume applies to transfers between a file and the store", err, 1, true)
    end
  end)
end)

describe("objstore command line under attack (issue 19): --resume without a state directory", function()
  it("says so before sending anything (it was silently not resumable, its upload aborted on Ctrl-C)", function()
    local env = "AWS_ACCESS_KEY_ID=ak AWS_SECRET_ACCESS_KEY=sk AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null "
      .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ENDPOINT_URL=http://127.0.0.1:9"
    local rc, out, err = run("env -u HOME -u XDG_STATE_HOME " .. env .. " " .. BIN
      .. " cp --resume /etc/hostname s3://bucket-x/k </dev/null")
    assert.equals(2, rc, err)
    assert.equals("", out)
    assert.matches("--resume needs a place for its checkpoint", err, 1, true)
    rc, out, err = run("env XDG_STATE_HOME=/proc/self/none " .. env .. " " .. BIN
      .. " cp -q --resume s3://bucket-x/k /tmp/attack19-never </dev/null")
    assert.equals(1, rc, err)
    assert.equals("", out)
    assert.matches("cannot create the checkpoint directory /proc/self/none/objstore/transfers", err, 1, true)
    assert.is_nil(lfs.attributes("/tmp/attack19-never"))
  end)
end)

describe("objstore command line under attack (issue 19): special files", function()
  it("cp of a pipe or a device says to use - (it said 'cannot read', after '0 B of 0 B (100%)')", function()
    local env = "AWS_ACCESS_KEY_ID=ak AWS_SECRET_ACCESS_KEY=sk AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null "
      .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ENDPOINT_URL=http://127.0.0.1:9 OBJSTORE_PROGRESS_INTERVAL=0"
    local rc, out, err = run("env " .. env .. " " .. BIN .. " cp /dev/zero s3://bucket-x/k </dev/null")
    assert.equals(1, rc, err)
    assert.equals("", out)
    assert.matches("/dev/zero: LocalFileError: not a regular file (char device): to upload a stream, use -", err, 1,
      true)
    assert.is_nil(err:find("100%", 1, true))
  end)
end)

describe("objstore command line under attack (issue 19): header values", function()
  it("refuses CR/LF in options that become headers or names (a Lua error from the signer before)", function()
    for _, line in ipairs{ "cp /etc/hostname s3://bucket-x/k --cache-control 'max-age=1\r\nx-amz-meta-evil: 1'",
      "cp /etc/hostname s3://bucket-x/k --content-type 'text/plain\nx: y'",
      "cp /etc/hostname s3://bucket-x/k --content-disposition 'inline\r'",
      "cp /etc/hostname s3://bucket-x/k --sse aws:kms --sse-kms-key-id 'k\n1'",
      "ls s3://bucket-x --region 'us-east-1\r\nX: y'" } do
      local rc, out, err = run(BIN .. " " .. line:gsub("'([^']*)'", function(v)
        return "\"$(printf '" .. v .. "')\""
      end) .. " </dev/null")
      assert.equals(2, rc, line)
      assert.equals("", out)
      assert.matches("a value with control characters", err, 1, true)
    end
  end)
end)

describe("objstore command line under attack (issue 19): key and CA files", function()
  it("--sse-c-key file: a directory or an endless device is a usage error; --ca-bundle a directory too", function()
    -- file:DIR was a Lua error ("attempt to get length of a nil value"); file:/dev/zero read forever.
    for _, line in ipairs{ "cp /etc/hostname s3://bucket-x/k --sse-c-key file:/tmp",
      "cat s3://bucket-x/k --sse-c-key file:/tmp", "stat s3://bucket-x/k --sse-c-key file:/dev/zero",
      "ls s3://bucket-x --ca-bundle /tmp" } do
      local rc, out, err = run(BIN .. " " .. line .. " </dev/null")
      assert.equals(2, rc, line .. ": " .. err)
      assert.equals("", out)
      assert.matches("^objstore: %-%-", err)
    end
  end)
end)

describe("objstore command line under attack (issue 19): signals", function()
  it("a Ctrl-C while the modules load is an interrupt (130), not a traceback and exit 1", function()
    -- lua.c's own handler raises "interrupted!" until objstore traps the signals.
    local d = servers.tmpdir()
    servers.sh("mkdir -p " .. q(d .. "/objstore"))
    servers.write_file(d .. "/objstore/cli.lua", "error('interrupted!')\n")
    local env = "LUA_PATH=" .. q(d .. "/?.lua;;") .. " LUA_PATH_5_2=" .. q(d .. "/?.lua;;") .. " LUA_PATH_5_3="
      .. q(d .. "/?.lua;;") .. " LUA_PATH_5_4=" .. q(d .. "/?.lua;;")
    local rc, out, err = run(BIN .. " version", env)
    servers.sh("rm -rf " .. q(d))
    assert.equals(130, rc, err)
    assert.equals("", out)
    assert.equals("objstore: interrupted\n", err)
  end)

  it("no signal handler is left pointing into the core once the Lua state that trapped is closed", function()
    -- lua_close unloaded the core while its SIGINT/SIGTERM/SIGHUP handlers
    -- stayed installed: a second Ctrl-C (or timeout(1)'s signal to the
    -- process group) during the exit was a SIGSEGV, exit 139.
    local build = (os.getenv("BUILD") or "build") .. "/luajit"
    if not (servers.sh("command -v luajit >/dev/null") and lfs.attributes(build .. "/objstore/core.so")) then
      pending("needs luajit and " .. build)
      return
    end
    local rc, out, err = run("luajit spec/support/signal_close.lua " .. q(build .. "/?.so"))
    assert.equals(0, rc, err)
    assert.equals("hup_caught=false core_mapped=true\n", out)
  end)
end)

describe("objstore command line under attack (issue 19): empty values", function()
  it("refuses an empty value for a string option (an unset variable), before any request", function()
    -- rm --version-id "" deleted the current object (a plain DELETE) and said "(version )".
    for _, line in ipairs{ "rm s3://bucket-x/k --version-id ''", "cat s3://bucket-x/k --version-id ''",
      "stat --version-id= s3://bucket-x/k", "ls s3://bucket-x --profile ''", "cp /etc/hostname s3://bucket-x/k "
      .. "--content-type ''", "ls s3://bucket-x --endpoint ''" } do
      local rc, out, err = run(BIN .. " " .. line .. " </dev/null")
      assert.equals(2, rc, line)
      assert.equals("", out)
      assert.matches("needs a value, got an empty one", err, 1, true)
    end
  end)
end)

describe("objstore command line under attack (issue 19): terminal output", function()
  it("escapes control characters of names in usage errors", function()
    local d = servers.tmpdir()
    local name = d .. "/d\27[2J\27]0;pwned\7"
    assert(lfs.mkdir(name))
    local rc, out, err = run(BIN .. " cp " .. q(name) .. " s3://bucket-x/ </dev/null")
    servers.sh("rm -rf " .. q(d))
    assert.equals(2, rc)
    assert.equals("", out)
    assert.matches("is a directory", err, 1, true)
    assert.is_nil(err:find("\27", 1, true))
    assert.matches("d\\x1b[2J", err, 1, true)
  end)
end)

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("objstore command line under attack (issue 19) on " .. srv.name .. " #server", function()
      local bucket, dir, ENV, CMD, c

      setup(function()
        bucket = servers.bucket_name("attack19")
        dir = servers.tmpdir()
        ENV = string.format("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s AWS_CONFIG_FILE=/dev/null "
          .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null OBJSTORE_PROGRESS_INTERVAL=0 XDG_STATE_HOME=%s", q(srv.access_key),
          q(srv.secret_key), q(srv.region), q(dir .. "/state"))
        CMD = "env " .. ENV .. " " .. BIN .. " --endpoint " .. q(srv.endpoint)
        c = servers.client(srv)
        assert(c:create_bucket(bucket))
      end)

      teardown(function()
        servers.cleanup(c, bucket)
        servers.sh("rm -rf " .. q(dir))
      end)

      it("an object whose mtime metadata is no time (1e300, nan, inf) downloads: cp and sync, exit 0", function()
        for i, v in ipairs{ "1e300", "nan", "-inf", "0x7fffffffffffffff" } do
          assert(c:put_object(bucket, "hm/" .. i, "data " .. i, { metadata = { mtime = v } }))
        end
        assert(c:put_object(bucket, "hm/ok", "fine", { metadata = { mtime = "1600000000" } }))
        local rc, _, err = run(CMD .. " cp -q s3://" .. bucket .. "/hm/1 " .. q(dir .. "/one"))
        assert.equals(0, rc, err)
        assert.equals("data 1", read(dir .. "/one"))
        assert.equals("", err)
        rc, _, err = run(CMD .. " sync -q s3://" .. bucket .. "/hm/ " .. q(dir .. "/hm/"))
        assert.equals(0, rc, err)
        assert.equals("", err)
        for i = 1, 4 do assert.equals("data " .. i, read(dir .. "/hm/" .. i)) end
        assert.equals(1600000000, lfs.attributes(dir .. "/hm/ok", "modification"))
      end)

      it("cp s3 -> s3 honours --cache-control and --content-disposition, keeping the source's other headers", function()
        -- Raised "copy_large: opts.cache_control is not an option" (exit 1, a Lua error);
        -- a single-request copy with --metadata lost the source's Content-Type.
        assert(c:put_object(bucket, "cc/src", "some bytes", { content_type = "text/x-src",
          cache_control = "max-age=5", metadata = { a = "1" } }))
        local rc, _, err = run(CMD .. " cp -q s3://" .. bucket .. "/cc/src s3://" .. bucket
          .. "/cc/d1 --cache-control no-store --content-disposition inline")
        assert.equals(0, rc, err)
        assert.equals("", err)
        local h = assert(c:head_object(bucket, "cc/d1"))
        assert.equals("no-store", h.cache_control)
        assert.equals("inline", h.content_disposition)
        assert.equals("text/x-src", h.content_type)
        assert.equals("1", h.metadata.a)
        rc, _, err = run(CMD .. " cp -q s3://" .. bucket .. "/cc/src s3://" .. bucket .. "/cc/d2 --metadata z=2")
        assert.equals(0, rc, err)
        h = assert(c:head_object(bucket, "cc/d2"))
        assert.equals("text/x-src", h.content_type)
        assert.equals("max-age=5", h.cache_control)
        assert.equals("2", h.metadata.z)
        assert.is_nil(h.metadata.a)
        -- A multipart copy (UploadPartCopy) the same way.
        local big = dir .. "/big"
        servers.write_file(big, string.rep("0123456789abcdef", 12 * 65536))
        assert(c:upload_file(bucket, "cc/big", big, { cache_control = "max-age=1", content_type = "text/big" }))
        rc, _, err = run(CMD .. " cp -q s3://" .. bucket .. "/cc/big s3://" .. bucket
          .. "/cc/big2 --part-size 5M --content-disposition inline")
        assert.equals(0, rc, err)
        h = assert(c:head_object(bucket, "cc/big2"))
        assert.matches("%-3\"?$", h.etag)
        assert.equals("inline", h.content_disposition)
        assert.equals("max-age=1", h.cache_control)
        assert.equals("text/big", h.content_type)
      end)

      it("cp --resume after the file changed in place (same size, same mtime) uploads the file, not a mix", function()
        -- The checkpoint matched on size, whole-second mtime and inode, and the
        -- parts it recorded were trusted: the object became old parts + new
        -- parts, reported verified, exit 0.
        local path = dir .. "/resume.bin"
        servers.write_file(path, string.rep("A", 20 * 1024 * 1024))
        local t = lfs.attributes(path, "modification")
        local url = "s3://" .. bucket .. "/resume/obj"
        local bg = dir .. "/bg"
        servers.sh("mkdir -p " .. q(bg))
        -- pid: timeout(1)'s, which passes a SIGINT on to objstore (once: --foreground, not to the group too).
        local line = string.format("echo $$ >%s/pid; exec timeout --foreground -s KILL 60 %s cp -q --resume "
          .. "--part-size 5M --concurrency 1 --bwlimit 8M %s %s", q(bg), CMD, q(path), url)
        os.execute(string.format("(sh -c %s >%s/out 2>%s/err; echo $? >%s/rc) &", q(line), q(bg), q(bg), q(bg)))
        -- Interrupted (Ctrl-C) once the store holds a part.
        local id
        for _ = 1, 200 do
          local ups = c:list_incomplete_uploads(bucket, "resume/obj")
          id = ups and ups[1] and ups[1].upload_id
          local parts = id and c:list_parts(bucket, "resume/obj", id)
          if parts and #parts.parts >= 1 then break end
          id = nil
          servers.sh("sleep 0.05")
        end
        assert.truthy(id, "no part was uploaded")
        servers.sh("kill -INT $(cat " .. q(bg .. "/pid") .. "); for i in $(seq 100); do [ -s " .. q(bg .. "/rc")
          .. " ] && break; sleep 0.1; done")
        assert.equals("130", (read(bg .. "/rc"):gsub("%s+$", "")))
        assert.matches("resume", read(bg .. "/err"))
        -- Rewritten in place: the first KiB differs, size and mtime are the same.
        local f = assert(io.open(path, "r+b"))
        f:write(string.rep("B", 1024))
        f:close()
        lfs.touch(path, t, t)
        local rc, _, err = run(CMD .. " cp --resume --part-size 5M " .. q(path) .. " " .. url)
        assert.equals(0, rc, err)
        -- and says why nothing was resumed (the library's notices reach stderr)
        assert.matches("notice: " .. path .. " changed since the interrupted upload: starting a clean upload", err, 1,
          true)
        local got = assert(c:get_object(bucket, "resume/obj"))
        assert.equals(#read(path), #got.body)
        assert.is_true(got.body == read(path), "the object is not the file")
        local ups = assert(c:list_incomplete_uploads(bucket, "resume/obj"))
        assert.equals(0, #ups)
      end)

      it("rm -r, mv -r and sync --delete remove keys with control characters (DeleteObjects cannot)", function()
        -- One such key made rgw refuse the whole DeleteObjects batch (400):
        -- rm -r deleted nothing, mv -r kept every source, exit 1.
        local odd = "ctl/c\27[31mRED"
        for _, k in ipairs{ odd, "ctl/ok", "ctl/sub/b" } do assert(c:put_object(bucket, k, "x")) end
        local rc, _, err = run(CMD .. " mv -r -q s3://" .. bucket .. "/ctl/ s3://" .. bucket .. "/ctl2/")
        assert.equals(0, rc, err)
        local function keys(prefix)
          local out = {}
          for o in c:list_objects_iter(bucket, { prefix = prefix }) do out[#out + 1] = o.key end
          table.sort(out)
          return out
        end
        assert.same({}, keys("ctl/"))
        assert.same({ "ctl2/c\27[31mRED", "ctl2/ok", "ctl2/sub/b" }, keys("ctl2/"))
        servers.sh("mkdir -p " .. q(dir .. "/empty-side"))
        servers.write_file(dir .. "/empty-side/ok", "x")
        rc, _, err = run(CMD .. " sync -q --delete " .. q(dir .. "/empty-side") .. " s3://" .. bucket .. "/ctl2/")
        assert.equals(0, rc, err)
        assert.same({ "ctl2/ok" }, keys("ctl2/"))
        assert(c:put_object(bucket, "ctl2/\1x", "x"))
        rc, _, err = run(CMD .. " rm -r -q s3://" .. bucket .. "/ctl2/")
        assert.equals(0, rc, err)
        assert.same({}, keys("ctl2/"))
      end)

      it("cp of a key ending in '/..' into a directory says the key names no file", function()
        -- The rename onto DIR/.. failed with "Device or resource busy".
        assert(c:put_object(bucket, "dots/..", "dotdot"))
        servers.sh("mkdir -p " .. q(dir .. "/dd"))
        local rc, _, err = run(CMD .. " cp -q s3://" .. bucket .. "/dots/.. " .. q(dir .. "/dd/"))
        assert.equals(1, rc, err)
        assert.matches("the key ends in '..', which is no file name", err, 1, true)
        rc, _, err = run(CMD .. " cp -q s3://" .. bucket .. "/dots/.. " .. q(dir .. "/dd/named"))
        assert.equals(0, rc, err)
        assert.equals("dotdot", read(dir .. "/dd/named"))
      end)

      it("mv of an SSE-C object to a file with --sse-c-key removes the source (HEAD without the key: kept)", function()
        local key = string.rep("k", 32)
        local env = "OBJSTORE_A19_KEY=" .. key
        servers.write_file(dir .. "/ssec.txt", "secret bytes")
        local rc, _, err = run(CMD .. " cp -q --sse-c-key env:OBJSTORE_A19_KEY " .. q(dir .. "/ssec.txt")
          .. " s3://" .. bucket .. "/ssec/obj", env)
        assert.equals(0, rc, err)
        rc, _, err = run(CMD .. " mv -q --sse-c-key env:OBJSTORE_A19_KEY s3://" .. bucket .. "/ssec/obj "
          .. q(dir .. "/ssec.back"), env)
        assert.equals(0, rc, err)
        assert.equals("", err)
        assert.equals("secret bytes", read(dir .. "/ssec.back"))
        local h, herr = c:head_object(bucket, "ssec/obj", { sse_customer_key = key })
        assert.is_nil(h)
        assert.equals(404, herr.status)
      end)

      it("--json lines are UTF-8 even for a file name that is not (each such byte as \\xFF)", function()
        local tree = dir .. "/badname"
        servers.sh("mkdir -p " .. q(tree))
        servers.write_file(tree .. "/d\255", "d")
        servers.write_file(tree .. "/ok", "ok")
        local rc, out = run(CMD .. " cp -r --json " .. q(tree) .. " s3://" .. bucket .. "/badname/")
        assert.equals(1, rc)
        local utf8_valid = require("objstore.core").encode.utf8_valid
        local cjson = require "cjson"
        local seen = false
        for line in out:gmatch("[^\n]+") do
          assert.is_true(utf8_valid(line), line)
          local t = cjson.decode(line)
          if t.type == "error" then
            assert.equals("d\\xFF", t.key)
            seen = true
          end
        end
        assert.is_true(seen)
      end)

      it("ls --versions lists one level unless -r, like ls (it listed every level; -r did nothing)", function()
        assert(c:put_object(bucket, "lv/a", "a"))
        assert(c:put_object(bucket, "lv/sub/b", "b"))
        local rc, out, err = run(CMD .. " ls --versions s3://" .. bucket .. "/lv/")
        assert.equals(0, rc, err)
        assert.matches("PRE lv/sub/\n", out, 1, true)
        assert.matches(" lv/a ", out, 1, true)
        assert.is_nil(out:find("lv/sub/b", 1, true))
        rc, out, err = run(CMD .. " ls --versions -r s3://" .. bucket .. "/lv/")
        assert.equals(0, rc, err)
        assert.matches(" lv/a ", out, 1, true)
        assert.matches(" lv/sub/b ", out, 1, true)
        assert.is_nil(out:find("PRE", 1, true))
      end)

      it("two SIGINTs a few ms apart (timeout(1) signals the command and its group) are one interrupt", function()
        -- The second forced a quit in the middle of the cleanup (aborting the
        -- multipart upload): no message, exit by the signal.
        local path = dir .. "/dbl.bin"
        servers.write_file(path, string.rep("z", 20 * 1024 * 1024))
        local bg = dir .. "/dbl"
        servers.sh("mkdir -p " .. q(bg))
        for round = 1, 3 do
          servers.sh("rm -f " .. q(bg) .. "/*")
          local line = string.format("echo $$ >%s/pid; exec timeout --foreground -s KILL 60 %s cp -q --part-size 5M "
            .. "--concurrency 1 --bwlimit 8M %s s3://%s/dbl/obj", q(bg), CMD, q(path), bucket)
          os.execute(string.format("(sh -c %s >%s/out 2>%s/err; echo $? >%s/rc) &", q(line), q(bg), q(bg), q(bg)))
          -- Mid-upload, two signals 2 ms apart, to objstore (timeout's child).
          servers.sh("sleep 1; P=$(pgrep -P $(cat " .. q(bg .. "/pid") .. ")); kill -INT $P; sleep 0.002; "
            .. "kill -INT $P 2>/dev/null; for i in $(seq 100); do [ -s " .. q(bg .. "/rc") .. " ] && break; "
            .. "sleep 0.1; done")
          assert.equals("130", (read(bg .. "/rc"):gsub("%s+$", "")), "round " .. round)
          assert.matches("objstore: interrupted", read(bg .. "/err"), 1, true)
        end
        local ups = assert(c:list_incomplete_uploads(bucket, "dbl/"))
        assert.equals(0, #ups)
      end)

    end)
  end
end
