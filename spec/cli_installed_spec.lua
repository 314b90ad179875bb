-- The command as the rock installs it (issue 19's proof): `luarocks make`
-- into a temporary tree, then every case of spec/cli_spec.lua tagged
-- #options (upload request options, network options, --bwlimit, ls -h /
-- --summarize / --versions, --version-id, uploads --abort, cp --resume,
-- --signature) runs again with that tree's bin/objstore (the luarocks
-- wrapper, which runs bin/objstore: it finds the tree's modules from its own
-- place) as the command:
-- OBJSTORE_CLI_CMD, in a busted of its own, with no LUA_PATH or LUA_CPATH
-- that could reach the checkout's modules.
local servers = require "servers"

local q = servers.q
local LUA = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
-- The rock's Lua: LuaJIT's is 5.1.
local V = LUA == "luajit" and "5.1" or LUA:match("%d%.%d")

describe("objstore command line as installed by the rock #server #installed", function()
  local rock

  setup(function()
    rock = servers.tmpdir()
    -- luarocks make compiles in the source directory: a copy of the sources.
    assert(servers.sh("mkdir -p " .. q(rock .. "/src") .. " && cp -r lua csrc bin rockspec " .. q(rock .. "/src")))
    local built, log = servers.sh("cd " .. q(rock .. "/src") .. " && env -u LUA_PATH -u LUA_CPATH luarocks"
      .. " --lua-version=" .. V .. " --tree " .. q(rock .. "/tree") .. " make --deps-mode=none"
      .. " rockspec/objstore-scm-1.rockspec 2>&1")
    assert(built, log)
  end)

  teardown(function()
    if rock then servers.sh("rm -rf " .. q(rock)) end
  end)

  it("runs from anywhere, no LUA_PATH needed (luarocks' wrapper of a --tree sets none)", function()
    local bin = rock .. "/tree/bin/objstore"
    local ok, out = servers.sh("cd / && env -u LUA_PATH -u LUA_CPATH " .. q(bin) .. " --version")
    assert(ok, out)
    assert.matches("^objstore %S+\nlua ", out)
  end)

  it("passes every #options case of spec/cli_spec.lua through the installed command", function()
    local out_file = rock .. "/tap"
    local cmd = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_" .. V:gsub("%.", "_") .. " -u LUA_CPATH_"
      .. V:gsub("%.", "_") .. " OBJSTORE_CLI_CMD=" .. q(rock .. "/tree/bin/objstore") .. " timeout 300 busted --lua="
      .. LUA .. " --cpath=" .. q((os.getenv("BUILD") or "build") .. "/" .. LUA .. "/?.so") .. " -o TAP --tags=options"
      .. " spec/cli_spec.lua >" .. q(out_file) .. " 2>&1"
    os.execute(cmd)
    local tap = servers.read_file(out_file) or ""
    local passed, failed = 0, 0
    for _ in tap:gmatch("\nok %d+") do passed = passed + 1 end
    if tap:find("^ok %d+") then passed = passed + 1 end
    for _ in tap:gmatch("not ok %d+") do failed = failed + 1 end
    assert.equals(0, failed, tap)
    -- The #options cases: two OSS signature cases, upload options, network
    -- options, ACL/SSE/bwlimit/TLS/connect-timeout, resume and uploads, listings and versions.
    assert.is_true(passed >= 7, tap)
    print(string.format("\n    installed command: %d #options cases passed", passed))
  end)
end)
