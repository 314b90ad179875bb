-- objstore.transport.ngx passes the transport contract inside a real nginx:
-- spec/support/ngx_contract.sh starts Debian's nginx with the Lua module on
-- 127.0.0.1 (the objstore core built for LuaJIT into build/luajit), and
-- GET /contract runs every case of spec/support/transport_contract.lua
-- there against radosgw (and Swift for the chunked upload) with cosockets.
-- Tagged #server: it needs the servers of spec/support/run-tests.sh
-- (eval "$(bash spec/support/rgw.sh env)" by hand).
local curl = require "objstore.transport.curl"

local SCRIPT = "spec/support/ngx_contract.sh"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  if type(ok) == "number" then code = ok; ok = code == 0 end -- Lua 5.1
  return ok == true, out, code
end

describe("objstore.transport.ngx #server #nginx", function()
  local endpoint

  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
    -- make test builds only the Lua 5.4 core; nginx runs LuaJIT.
    local ok, out = sh("make --no-print-directory -s build LUA=luajit")
    assert(ok, "make build LUA=luajit failed: " .. out)
    ok, out = sh("timeout 60 bash " .. SCRIPT .. " start")
    assert(ok, "cannot start nginx: " .. out)
    endpoint = "http://127.0.0.1:" .. (os.getenv("NGX_CONTRACT_PORT") or "18090")
  end)

  teardown(function()
    sh("timeout 30 bash " .. SCRIPT .. " stop")
  end)

  it("passes the transport contract with cosockets inside nginx", function()
    -- The report comes a line per case; a case may be silent a while on a
    -- busy machine (its own timeouts run to 30 s), so not curl's default
    -- 30 s without a byte.
    local t = curl.new { read_timeout = 120 }
    local res, err = t:request { url = endpoint .. "/contract", timeout = 300 }
    t:close()
    assert.is_table(res, "GET /contract: " .. tostring(err))
    assert.equal(200, res.status)
    local report = res.body
    local passed, failed, pend = report:match("(%d+) passed, (%d+) failed, (%d+) pending%s*$")
    assert.is_not_nil(passed, "no summary line in the report:\n" .. report)
    local failures = {}
    for line in report:gmatch("[^\n]+") do
      if line:find("^FAIL: ") then failures[#failures + 1] = line end
    end
    assert.equal(0, tonumber(failed), "contract failures inside nginx:\n" .. table.concat(failures, "\n"))
    assert.is_true(tonumber(passed) >= 25, "only " .. passed .. " cases passed (" .. pend .. " pending):\n" .. report)
  end)
end)
