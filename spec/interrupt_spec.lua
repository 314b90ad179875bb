-- SIGTERM and SIGINT to `objstore cp` in the middle of a 40 MiB transfer:
-- the command ends with 143 / 130 after cleaning up (no part or temporary
-- file, no incomplete multipart upload, no destination). The transfers go
-- through a proxy that slows them to 8 MiB/s (spec/support/slow_proxy.py)
-- so a signal after about a second lands mid-transfer. Against rgw.
local servers = require "servers"
local lfs = require "lfs"

local q = servers.q

local LUA = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local BIN = LUA .. " " .. q(lfs.currentdir() .. "/bin/objstore")
local MiB = 1024 * 1024
local PROXY_PORT = 19117
local RATE = 8 * MiB

--- Starts the slowing proxy in front of endpoint; returns its pid.
local function start_proxy(endpoint, dir)
  local host, port = endpoint:match("^https?://([^:/]+):(%d+)")
  local log, pidfile = dir .. "/proxy.log", dir .. "/proxy.pid"
  -- timeout(1) bounds it should the teardown never run.
  os.execute(string.format("timeout 600 python3 spec/support/slow_proxy.py %d %s %s %d >%s 2>&1 & echo $! >%s",
    PROXY_PORT, host, port, RATE, q(log), q(pidfile)))
  local pid = assert(tonumber(servers.read_file(pidfile)), "no proxy pid")
  for _ = 1, 100 do
    if (servers.read_file(log) or ""):find("ready", 1, true) then return pid end
    os.execute("sleep 0.1")
  end
  os.execute("kill " .. pid)
  error("the slow proxy did not start: " .. (servers.read_file(log) or ""))
end

--- Runs `cmd` (a shell command) in the background in dir, sends sig after
-- `after` seconds; a watchdog kills it after 60. Returns exit status, stderr.
local function interrupt(env, cmd, dir, sig, after)
  local script = string.format([[
cd %s
%s %s </dev/null >out 2>err &
p=$!
( sleep 60; kill -9 $p ) </dev/null >/dev/null 2>&1 &
w=$!
sleep %s
kill -%s $p
wait $p
echo $? >rc
kill $w 2>/dev/null
]], q(dir), env, cmd, tostring(after), sig)
  os.execute("sh -c " .. q(script))
  return tonumber(servers.read_file(dir .. "/rc")), servers.read_file(dir .. "/err") or ""
end

--- The command line with `args`, interrupted as `interrupt` does.
local function run_interrupted(env, args, dir, sig, after)
  return interrupt(env, BIN .. " " .. args, dir, sig, after)
end

-- A library call in a process of its own that traps the signals as the
-- command line does: arg[1] endpoint, arg[2] "down" | "up", arg[3] bucket,
-- arg[4] key, arg[5] local path; credentials from the environment. Exits 7
-- with the error on stderr when the call raises, 1 when it fails, 0 done.
local LIB_SCRIPT = [[
local root, v = os.getenv("OBJSTORE_SRC"), jit and "luajit" or _VERSION:gsub("Lua ", "lua")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/" .. v .. "/?.so;" .. package.cpath
local objstore, core = require "objstore", require "objstore.core"
assert(core.signal.trap())
local c = objstore.new{ endpoint = arg[1], access_key = os.getenv("AWS_ACCESS_KEY_ID"),
  secret_key = os.getenv("AWS_SECRET_ACCESS_KEY"), region = os.getenv("AWS_REGION") }
local opts = { checkpoint = true, part_size = 5 * 1024 * 1024, concurrency = 2 }
local ok, res, err = pcall(function()
  if arg[2] == "down" then return c:download_file(arg[3], arg[4], arg[5], opts) end
  return c:upload_file(arg[3], arg[4], arg[5], opts)
end)
if not ok then io.stderr:write(tostring(res), "\n") os.exit(7) end
if not res then io.stderr:write(tostring(err and err.message), "\n") os.exit(1) end
os.exit(0)
]]

--- Names in dir that objstore's transfers leave while they run.
local function leftovers(dir)
  local out = {}
  for name in lfs.dir(dir) do
    if name:find("objstore%-part") or name:find("objstore%-tmp") or name:find("objstore%-cp") then
      out[#out + 1] = name
    end
  end
  return out
end

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("objstore cp interrupted on " .. srv.name .. " #server #slow", function()
      local c, bucket, dir, proxy, ENV, big

      setup(function()
        c = servers.client(srv)
        bucket = servers.bucket_name("h17a-int")
        assert(c:create_bucket(bucket))
        dir = servers.tmpdir()
        big = dir .. "/big"
        assert(servers.sh(string.format("head -c %d /dev/urandom >%s", 40 * MiB, q(big))))
        assert(c:upload_file(bucket, "big", big))
        proxy = start_proxy(srv.endpoint, dir)
        ENV = string.format("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s AWS_CONFIG_FILE=/dev/null "
          .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null OBJSTORE_PROGRESS_INTERVAL=0", q(srv.access_key),
          q(srv.secret_key), q(srv.region))
      end)

      teardown(function()
        if proxy then os.execute("kill " .. proxy .. " 2>/dev/null") end
        servers.cleanup(c, bucket)
        servers.sh("rm -rf " .. q(dir))
      end)

      local function url(key) return "s3://" .. bucket .. "/" .. key end
      local ENDPOINT = " --endpoint http://127.0.0.1:" .. PROXY_PORT

      for _, case in ipairs{ { "TERM", 143 }, { "INT", 130 } } do
        local sig, status = case[1], case[2]

        it("a download: SIG" .. sig .. " exits " .. status .. " and leaves no file behind", function()
          local work = dir .. "/down-" .. sig
          assert(lfs.mkdir(work))
          local rc, err = run_interrupted(ENV, ENDPOINT .. " cp --part-size 5M --concurrency 2 " .. url("big")
            .. " " .. q(work .. "/back"), work, sig, 1)
          assert.equals(status, rc, err)
          assert.matches("interrupted", err, 1, true)
          assert.same({}, leftovers(work))
          assert.is_nil(lfs.symlinkattributes(work .. "/back"))
        end)

        it("an upload: SIG" .. sig .. " exits " .. status .. " and aborts its multipart upload", function()
          local work = dir .. "/up-" .. sig
          assert(lfs.mkdir(work))
          local key = "up-" .. sig
          local rc, err = run_interrupted(ENV, ENDPOINT .. " cp --part-size 5M --concurrency 2 " .. q(big) .. " "
            .. url(key), work, sig, 1)
          assert.equals(status, rc, err)
          assert.matches("interrupted", err, 1, true)
          local ups = assert(c:list_multipart_uploads(bucket))
          for _, u in ipairs(ups.uploads) do assert.not_equals(key, u.key, "an incomplete upload of " .. key) end
          local head, herr = c:head_object(bucket, key)
          assert.is_nil(head)
          assert.equals(404, herr.status)
          assert.same({}, leftovers(dir))
        end)
      end

      it("cp -r to a directory (a sync): SIGTERM exits 143 and leaves no temporary file", function()
        local work = dir .. "/tree"
        assert(lfs.mkdir(work))
        assert(c:copy_object(bucket, "tree/big", { bucket = bucket, key = "big" }))
        local rc, err = run_interrupted(ENV, ENDPOINT .. " cp -r " .. url("tree/") .. " " .. q(work .. "/dst"), work,
          "TERM", 1)
        assert.equals(143, rc, err)
        assert.matches("interrupted", err, 1, true)
        assert.is_nil(lfs.attributes(work .. "/dst/big"))
        if lfs.attributes(work .. "/dst") then assert.same({}, leftovers(work .. "/dst")) end
      end)

      describe("a library call with a checkpoint", function()
        local script

        setup(function()
          script = dir .. "/lib.lua"
          servers.write_file(script, LIB_SCRIPT)
        end)

        -- After 2 s at 8 MiB/s a part or two of 5 MiB have arrived: something to resume.
        local function lib(args, work, sig)
          return interrupt(ENV .. " OBJSTORE_SRC=" .. q(lfs.currentdir()), LUA .. " " .. q(script) .. " " .. args,
            work, sig, 2)
        end

        it("keeps the part file and the checkpoint of an interrupted download, and resumes", function()
          local work = dir .. "/cpdown"
          assert(lfs.mkdir(work))
          local out = work .. "/back"
          local rc, err = lib("http://127.0.0.1:" .. PROXY_PORT .. " down " .. bucket .. " big " .. q(out), work,
            "TERM")
          assert.equals(7, rc, err)
          assert.matches("interrupted (SIGTERM)", err, 1, true)
          assert.equals("file", lfs.symlinkattributes(out .. ".objstore-part", "mode"))
          assert.equals("file", lfs.symlinkattributes(out .. ".objstore-cp", "mode"))
          assert.is_nil(lfs.attributes(out))
          local res = assert(c:download_file(bucket, "big", out, { checkpoint = true, part_size = 5 * MiB }))
          assert.is_true(res.resumed_from > 0)
          assert.is_true(res.verified)
          assert.equals(40 * MiB, lfs.attributes(out, "size"))
          assert.same({}, leftovers(work))
        end)

        it("keeps the multipart upload of an interrupted upload, says how to resume, and resumes", function()
          local work = dir .. "/cpup"
          assert(lfs.mkdir(work))
          local src = work .. "/src"
          assert(servers.sh("cp " .. q(big) .. " " .. q(src)))
          local rc, err = lib("http://127.0.0.1:" .. PROXY_PORT .. " up " .. bucket .. " cpup " .. q(src), work,
            "INT")
          assert.equals(7, rc, err)
          assert.matches("interrupted (SIGINT)", err, 1, true)
          assert.matches("same checkpoint", err, 1, true)
          local kept = 0
          for _, u in ipairs(assert(c:list_multipart_uploads(bucket)).uploads) do
            if u.key == "cpup" then kept = kept + 1 end
          end
          assert.equals(1, kept)
          local res = assert(c:upload_file(bucket, "cpup", src, { checkpoint = true, part_size = 5 * MiB }))
          assert.is_true(res.resumed_from > 0)
          assert.equals(40 * MiB, assert(c:head_object(bucket, "cpup")).content_length)
          assert.same({}, leftovers(work))
        end)
      end)
    end)
  end
end
