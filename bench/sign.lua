-- Signing throughput from Lua: presigned GET URLs and header signatures per
-- second on one core. Prints "presign <n>/s" and "sign <n>/s" (best of 5
-- rounds of about 0.5 s each, so a busy neighbour costs a round, not the result).
--   lua bench/sign.lua [seconds_per_round]
local signer = require "objstore.signer"

local round = tonumber(arg[1]) or 0.5
local s = signer.new{ access_key = "AKIAIOSFODNN7EXAMPLE",
  secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region = "us-east-1" }
local T = 1705307400
local clock = os.clock

local function rate(fn)
  local best = 0
  for _ = 1, 5 do
    local n, batch = 0, 2000
    local t0 = clock()
    local t1 = t0
    while t1 - t0 < round do
      for i = 1, batch do fn(i) end
      n = n + batch
      t1 = clock()
    end
    local r = n / (t1 - t0)
    if r > best then best = r end
  end
  return best
end

local presign = rate(function(i)
  return s:presign{ method = "GET", host = "examplebucket.s3.us-east-1.amazonaws.com", key = "photos/2024/img.jpg",
    time = T + i % 7, expires = 3600 }
end)
local sign = rate(function(i)
  return s:sign{ method = "PUT", host = "examplebucket.s3.us-east-1.amazonaws.com", key = "photos/2024/img.jpg",
    payload_hash = "UNSIGNED-PAYLOAD", headers = { ["Content-MD5"] = "1B2M2Y8AsgTpgAmY7PhCfg==" }, time = T + i % 7 }
end)
print(string.format("presign %.0f/s", presign))
print(string.format("sign %.0f/s", sign))
