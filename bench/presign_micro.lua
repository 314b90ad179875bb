-- client:presign's cost per call, in microseconds of CPU time: a client
-- against http://127.0.0.1:7480 (path style) with static credentials;
-- presign does no network I/O, so no server is needed. Best of ROUNDS
-- rounds of N calls each (a busy neighbour only makes a round slower).
--   LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/luajit/?.so;;' \
--     luajit bench/presign_micro.lua [N] [ROUNDS]
-- (lua5.4 with build/lua5.4). Cases: the OpenResty example's GET (expires
-- given), a GET without opts, and a PUT with a signed Content-Type.
local objstore = require "objstore"

local N = tonumber(arg and arg[1]) or 100000
local ROUNDS = tonumber(arg and arg[2]) or 5
local clock = os.clock

local c = objstore.new{ endpoint = "http://127.0.0.1:7480", region = "us-east-1", addressing = "path",
  access_key = "AKIAIOSFODNN7EXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" }

local OPTS_GET = { expires_in = 3600 }
local OPTS_PUT = { expires_in = 600, content_type = "image/png" }
local cases = {
  { "GET, { expires_in = 3600 }",
    function() return c:presign("GET", "objstore-demo", "bench/object.bin", OPTS_GET) end },
  { "GET, no opts", function() return c:presign("GET", "objstore-demo", "photos/2024/img 1.jpg") end },
  { "PUT, content_type", function() return c:presign("PUT", "objstore-demo", "up/load.png", OPTS_PUT) end },
}

print(("%s, %d calls x best of %d rounds"):format(_VERSION .. (jit and (" / " .. jit.version) or ""), N, ROUNDS))
for _, case in ipairs(cases) do
  local name, fn = case[1], case[2]
  assert(type(fn()) == "string", name .. ": presign failed")
  local best = math.huge
  for _ = 1, ROUNDS do
    local t0 = clock()
    for _ = 1, N do fn() end
    local dt = clock() - t0
    if dt < best then best = dt end
  end
  print(("  %-26s %6.2f us/call"):format(name, best / N * 1e6))
end
