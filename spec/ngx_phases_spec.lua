-- The transport chosen per nginx phase (objstore.transport.auto), the live
-- signing clock and objstore.openresty.defer, inside the real nginx of
-- spec/support/ngx_contract.sh (cases in spec/support/ngx_phases.lua)
-- against radosgw. Tagged #server (eval "$(bash spec/support/rgw.sh env)").
local SCRIPT = "spec/support/ngx_contract.sh"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

describe("objstore in nginx phases #server #nginx", function()
  local base, dir
  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
    sh("make --no-print-directory -s build LUA=luajit")
    local out = sh("timeout 60 bash " .. SCRIPT .. " start; echo rc=$?")
    assert.matches("rc=0", out)
    base = "http://127.0.0.1:" .. (os.getenv("NGX_CONTRACT_PORT") or "18090")
    dir = os.getenv("NGX_CONTRACT_DIR") or "/tmp/objstore-ngx-contract"
  end)
  teardown(function() sh("timeout 30 bash " .. SCRIPT .. " stop") end)

  it("uses libcurl in init_worker, cosockets in content, nothing in log (deferred to a timer)", function()
    assert.equal("ok\n", sh("curl -sS --max-time 10 " .. base .. "/phases/log"))
    sh("sleep 0.5")
    local report = sh("curl -sS --max-time 60 " .. base .. "/phases")
    local passed, failed = report:match("(%d+) passed, (%d+) failed%s*$")
    assert.is_not_nil(passed, report)
    assert.equal("0", failed, report)
    assert.is_true(tonumber(passed) >= 15, report)
    local f = assert(io.open(dir .. "/error.log"))
    local log = f:read("*a")
    f:close()
    local _, warnings = log:gsub("the curl transport was forced", "")
    assert.equal(1, warnings, "one warning per worker (one worker)")
    assert.matches("deferred failure marker", log)
    assert.is_nil(log:find("exited on signal", 1, true))
  end)
end)
