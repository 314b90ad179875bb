-- Signing throughput from Lua: presigned GET URLs and header signatures per
-- second on one core, each next to its floor: the two core.hash calls on the
-- strings that signing that request needs (SHA-256 of the canonical request,
-- HMAC-SHA256 of the string to sign with the derived signing key, which a
-- signer caches). Prints "presign <n>/s", "presign_floor <n>/s", "sign <n>/s"
-- and "sign_floor <n>/s": CPU time, best of 5 rounds of about 0.5 s each per
-- rate. Within a round the four alternate batch by batch, so a busy
-- neighbour slows a rate and its floor alike instead of skewing the ratio.
--   lua bench/sign.lua [seconds_per_round]
local signer = require "objstore.engine.signer"
local hash = require("objstore.core").hash

local round = tonumber(arg[1]) or 0.5
local SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
local s = signer.new{ access_key = "AKIAIOSFODNN7EXAMPLE", secret_key = SECRET, region = "us-east-1" }
local T = 1705307400
local clock = os.clock
local sha256, hmac = hash.sha256, hash.hmac

local HOST, KEY = "examplebucket.s3.us-east-1.amazonaws.com", "photos/2024/img.jpg"
local function presign_req(i)
  return { method = "GET", host = HOST, key = KEY, time = T + i % 7, expires = 3600 }
end
local function sign_req(i)
  return { method = "PUT", host = HOST, key = KEY, payload_hash = "UNSIGNED-PAYLOAD",
    headers = { ["Content-MD5"] = "1B2M2Y8AsgTpgAmY7PhCfg==" }, time = T + i % 7 }
end

-- The derived key, as the signer caches it (all seven times share a date).
local date8 = os.date("!%Y%m%d", T)
local kdate = hmac("sha256", "AWS4" .. SECRET, date8)
local ksigning = hmac("sha256", hmac("sha256", hmac("sha256", kdate, "us-east-1"), "s3"), "aws4_request")

-- The strings each request signs, one pair per i % 7; checked against the
-- signer so that the floor hashes exactly what signing hashes.
local function cases(make, mode)
  local cr, sts = {}, {}
  for i = 0, 6 do
    local d = assert(s:details(make(i), mode))
    assert(hash.tohex(hmac("sha256", ksigning, d.string_to_sign)) == d.signature, "floor strings differ")
    cr[i], sts[i] = d.canonical_request, d.string_to_sign
  end
  return cr, sts
end
local pcr, psts = cases(presign_req, "query")
local scr, ssts = cases(sign_req, "header")

local benches = {
  { "presign", function(i) return s:presign(presign_req(i)) end },
  { "presign_floor", function(i)
    local k = i % 7
    return sha256(pcr[k]), hmac("sha256", ksigning, psts[k])
  end },
  { "sign", function(i) return s:sign(sign_req(i)) end },
  { "sign_floor", function(i)
    local k = i % 7
    return sha256(scr[k]), hmac("sha256", ksigning, ssts[k])
  end },
}

local BATCH = 2000
local best = {}
for _ = 1, 5 do
  local n, t = {}, {}
  for k = 1, #benches do n[k], t[k] = 0, 0 end
  repeat
    for k, b in ipairs(benches) do
      local fn = b[2]
      local t0 = clock()
      for i = 1, BATCH do fn(i) end
      t[k] = t[k] + (clock() - t0)
      n[k] = n[k] + BATCH
    end
  until t[1] >= round
  for k, b in ipairs(benches) do
    local r = n[k] / t[k]
    if r > (best[b[1]] or 0) then best[b[1]] = r end
  end
end
for _, b in ipairs(benches) do print(string.format("%s %.0f/s", b[1], best[b[1]])) end
