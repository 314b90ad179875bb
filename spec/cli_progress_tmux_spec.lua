-- The progress line of `objstore cp` as a person sees it (issue 19): the
-- command runs in a tmux pane, uploading one 60 MiB file through a proxy
-- that slows it to 12 MiB/s (spec/support/slow_proxy.py), as a single PUT
-- and as a multipart upload; the pane is captured every half second. The
-- bytes must grow between captures while the file moves (inside the single
-- request too), never pass the total, agree with the percentage; after the
-- window is narrowed to 40 columns mid-transfer, the progress line must fit
-- (no wrapped line) and no stale pieces of the wider line may stay.
-- Against rgw; needs tmux (spec/support/install-deps.sh).
local servers = require "servers"
local lfs = require "lfs"

local q = servers.q

local LUA = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local BIN = LUA .. " " .. q(lfs.currentdir() .. "/bin/objstore")
local MiB = 1024 * 1024
local SIZE = 60 * MiB
local PROXY_PORT = tonumber(os.getenv("OBJSTORE_TEST_TMUX_PROXY_PORT") or "") or 19330
local RATE = 12 * MiB
local TAIL = 4 * MiB

--- Starts the slowing proxy in front of endpoint; returns its pid.
local function start_proxy(endpoint, dir)
  local host, port = endpoint:match("^https?://([^:/]+):(%d+)")
  local log, pidfile = dir .. "/proxy.log", dir .. "/proxy.pid"
  -- timeout(1) bounds it should the teardown never run.
  os.execute(string.format("timeout 300 python3 spec/support/slow_proxy.py %d %s %s %d >%s 2>&1 & echo $! >%s",
    PROXY_PORT, host, port, RATE, q(log), q(pidfile)))
  local pid = assert(tonumber(servers.read_file(pidfile)), "no proxy pid")
  for _ = 1, 100 do
    if (servers.read_file(log) or ""):find("ready", 1, true) then return pid end
    os.execute("sleep 0.1")
  end
  os.execute("kill " .. pid)
  error("the slow proxy did not start: " .. (servers.read_file(log) or ""))
end

local UNITS = { B = 1, KiB = 1024, MiB = 1024 ^ 2, GiB = 1024 ^ 3 }

--- The numbers of a progress line, in its full form ("7.2 MiB of 60.0 MiB
-- (12%), 5.7 MiB/s, ETA 10s, files 0/1") or a compact one ("12.0 MiB/60.0
-- MiB 20% ETA 8s 0/1"): done, total (bytes, as shown), percent, eta.
local function parse(line)
  local dn, du, tn, tu, pct = line:match("^([%d.]+) (%a+) of ([%d.]+) (%a+) %((%d+)%%%)")
  if not dn then dn, du, tn, tu, pct = line:match("^([%d.]+) (%a+)/([%d.]+) (%a+) (%d+)%%") end
  if not dn then return nil end
  return tonumber(dn) * UNITS[du], tonumber(tn) * UNITS[tu], tonumber(pct), line:match("ETA (%S+)")
end

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("objstore cp progress in a tmux pane #server", function()
      local c, bucket, dir, proxy, src, ENV

      setup(function()
        assert(servers.sh("command -v tmux"), "tmux is not installed (spec/support/install-deps.sh)")
        c = servers.client(srv)
        bucket = servers.bucket_name("progress-tmux")
        assert(c:create_bucket(bucket))
        dir = servers.tmpdir()
        src = dir .. "/big60.bin"
        assert(servers.sh("head -c " .. SIZE .. " /dev/urandom > " .. q(src)))
        proxy = start_proxy(srv.endpoint, dir)
        ENV = string.format("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s AWS_CONFIG_FILE=/dev/null "
          .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null", q(srv.access_key), q(srv.secret_key), q(srv.region))
      end)

      teardown(function()
        if proxy then os.execute("kill " .. proxy .. " 2>/dev/null") end
        if c and bucket then servers.cleanup(c, bucket) end
        if dir then servers.sh("rm -rf " .. q(dir)) end
      end)

      --- Runs `cp` with `args` in a 100-column pane, narrowed to 40 columns
      -- once the bytes are seen moving. Returns the captures (joined
      -- wrapped lines: a line that wrapped shows as one longer line) with
      -- the width at their time, and the last screen with its history.
      local function watch(key, args)
        local sock = "progress-tmux-" .. tostring(os.time()) .. "-" .. math.random(1000, 9999)
        local script = dir .. "/" .. key .. ".sh"
        servers.write_file(script, "echo marker-before\n" .. ENV .. " " .. BIN .. " --endpoint http://127.0.0.1:"
          .. PROXY_PORT .. " cp " .. q(src) .. " s3://" .. bucket .. "/" .. key .. " " .. args
          .. "; echo rc=$?; sleep 60\n")
        local tmux = "tmux -L " .. sock .. " "
        assert(servers.sh(tmux .. "new-session -d -x 100 -y 12 'sh " .. script .. "'"))
        local caps, width = {}, 100
        for _ = 1, 80 do -- at most 40 s
          os.execute("sleep 0.5")
          local okc, pane = servers.sh(tmux .. "capture-pane -p -J")
          if okc then
            caps[#caps + 1] = { pane = pane, width = width }
            if pane:find("rc=%d") then break end
            local moving = 0
            for _, k in ipairs(caps) do
              for line in (k and k.pane or ""):gmatch("[^\n]+") do
                local d, t = parse(line)
                if d and d > 0 and d < t then moving = moving + 1 end
              end
            end
            if width == 100 and moving >= 2 then
              assert(servers.sh(tmux .. "resize-window -x 40 -y 12"))
              width = 40
              -- The line is redrawn (at the new width) when bytes move next:
              -- the next capture, half a second on, may still show the old one.
              caps[#caps + 1] = false
            end
          end
        end
        local _, last = servers.sh(tmux .. "capture-pane -p -J -S -")
        servers.sh(tmux .. "kill-server")
        return caps, last
      end

      local function check(caps, last, what, part)
        assert.matches("rc=0", last, 1, true)
        local prev, inside, narrow, within = nil, 0, 0, 0
        for i, k in ipairs(caps) do
          if not k then
            caps[i + 1] = caps[i + 1] and { pane = caps[i + 1].pane, width = 100 }
            k = { pane = "", width = 40 }
          end
          local progress_lines = 0
          local done_shown = k.pane:find("rc=%d") or k.pane:find("\nupload: ") or k.pane:find("^upload: ")
          for line in k.pane:gmatch("[^\n]+") do
            local d, t, pct, eta = parse(line)
            if d then
              progress_lines = progress_lines + 1
              assert.is_true(#line < k.width, what .. ": wider than the pane (" .. k.width .. "): " .. line)
              assert.equals("60.0 MiB", line:match("[/f] ?([%d.]+ MiB)"), what .. ": total in " .. line)
              assert.is_true(d <= t, what .. ": past the total: " .. line)
              -- shown to 0.1 MiB: the percentage of the bytes shown, within 1
              local want = math.floor(100 * d / t)
              assert.is_true(math.abs(pct - want) <= 1, what .. ": " .. pct .. "% for " .. d .. " bytes: " .. line)
              assert.is_truthy(eta, what .. ": no ETA in " .. line)
              assert.is_nil(eta:find("-", 1, true), what .. ": " .. line)
              if not done_shown and d > 0 and d < t then
                inside = inside + 1
                -- Strictly more, but for the last bytes of a request: those
                -- written into the socket buffers count as sent while the
                -- proxy and the server still take them in.
                if prev then
                  local request_end = math.min(t, math.ceil(d / part) * part)
                  local grew = d > prev or (d == prev and request_end - d <= TAIL)
                  assert.is_true(grew, what .. ": no growth between captures "
                    .. (i - 1) .. " and " .. i .. ": " .. line)
                end
                prev = d
                if k.width == 40 then narrow = narrow + 1 end
                if d % part ~= 0 then within = within + 1 end
              end
            elseif not done_shown then
              -- Nothing but the marker while it runs: a piece of an older,
              -- wider progress line would be a stale line.
              assert.equals("marker-before", line, what .. ": stale line in capture " .. i .. ":\n" .. k.pane)
            end
          end
          assert.is_true(progress_lines <= 1, what .. ": progress lines piled up:\n" .. k.pane)
        end
        assert.is_true(inside >= 3, what .. ": fewer than 3 captures with the bytes moving: " .. inside)
        -- counted inside a request, not only when one ends
        assert.is_true(within >= 2, what .. ": fewer than 2 captures with bytes inside a request: " .. within)
        assert.is_true(narrow >= 1, what .. ": no capture of the moving bytes at 40 columns")
        -- What was printed before the progress is still there (screen or history).
        assert.matches("marker-before", last, 1, true)
        assert.matches("60.0 MiB/60.0 MiB 100%", last, 1, true)
      end

      it("shows the bytes of a single PUT growing, and fits a pane narrowed to 40 columns", function()
        -- the part size over the file: one request
        local caps, last = watch("single", "--part-size 128M")
        check(caps, last, "single PUT", SIZE)
        assert.equals(SIZE, assert(c:head_object(bucket, "single")).content_length)
      end)

      it("shows the bytes inside the parts of a multipart upload growing, the same way", function()
        local caps, last = watch("multi", "--part-size 16M --concurrency 1")
        check(caps, last, "multipart", 16 * MiB)
        local h = assert(c:head_object(bucket, "multi"))
        assert.equals(SIZE, h.content_length)
        assert.matches("%-4\"?$", h.etag)
      end)
    end)
  end
end
