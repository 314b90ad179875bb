-- Non-blocking, proven: while 8 large downloads and 4 large uploads run
-- through /files/ of the OpenResty example (one worker), GET /ok on the
-- same nginx keeps answering: its p99 latency is printed and must be far
-- below the transfer times. Tagged #server #slow (radosgw).
local objstore = require "objstore"

local PORT, DIR, BUCKET, TOKEN = 18098, "/tmp/objstore-openresty-nonblocking", "h13b-ngx-demo", "nb-token"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local function percentile(list, p)
  table.sort(list)
  return list[math.max(1, math.ceil(#list * p))]
end

describe("OpenResty example under load #server #slow", function()
  local file
  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured")
    sh("make --no-print-directory -s build LUA=luajit")
    local out = sh(string.format("OPENRESTY_DEMO_PORT=%d OPENRESTY_DEMO_DIR=%s OPENRESTY_DEMO_WORKERS=1 "
      .. "OBJSTORE_DEMO_TOKEN=%s OBJSTORE_DEMO_BUCKET=%s OBJSTORE_DEMO_THRESHOLD=8388608 "
      .. "OBJSTORE_DEMO_PART_SIZE=8388608 timeout 60 bash examples/openresty/run.sh start; echo rc=$?",
      PORT, DIR, TOKEN, BUCKET))
    assert.matches("rc=0", out)
    file = os.tmpname()
    sh("head -c 67108864 /dev/urandom > " .. file)
    local c = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"), region = "us-east-1",
      addressing = "path", access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"),
      secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY") }
    assert(c:upload_file(BUCKET, "nonblocking-64m", file))
    c:close()
  end)
  teardown(function()
    sh("OPENRESTY_DEMO_DIR=" .. DIR .. " timeout 30 bash examples/openresty/run.sh stop")
    if file then os.remove(file) end
  end)

  it("keeps a trivial location answering while 12 transfers run on one worker", function()
    local out = sh(string.format("timeout 400 bash spec/support/ngx_nonblocking.sh http://127.0.0.1:%d %s %s %s 8 4",
      PORT, TOKEN, "nonblocking-64m", file))
    local probes, transfers = {}, {}
    for kind, secs, code in out:gmatch("(%a+) ([%d.]+) (%d+)") do
      if kind == "probe" then
        assert.equal("200", code)
        probes[#probes + 1] = tonumber(secs)
      else
        assert.equal("200", code, out)
        transfers[#transfers + 1] = tonumber(secs)
      end
    end
    assert.equal(12, #transfers, out)
    assert.is_true(#probes >= 5, "too few probes: " .. out)
    local p99, p50 = percentile(probes, 0.99), percentile(probes, 0.5)
    local t_min, t_med = percentile(transfers, 0), percentile(transfers, 0.5)
    print(string.format("\nnon-blocking: %d probes of GET /ok, p50 %.1f ms, p99 %.1f ms; 12 transfers of 64 MiB, "
      .. "shortest %.2f s, median %.2f s (machine shared)", #probes, p50 * 1000, p99 * 1000, t_min, t_med))
    assert.is_true(p99 < t_min / 5, "p99 " .. p99 .. " s is not far below the shortest transfer " .. t_min .. " s")
    assert.is_true(p99 < 1, "p99 " .. p99 .. " s")
    local log = sh("cat " .. DIR .. "/error.log")
    assert.is_nil(log:find("exited on signal", 1, true))
  end)
end)
