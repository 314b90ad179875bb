--- The steps of the OpenResty example's GET /presign, one location each
-- (bench/openresty_breakdown.sh): step N does what step N-1 does plus one
-- more piece of the handler, so the difference of their per-request times
-- is that piece's cost. Step 5 is examples/openresty/handlers/presign.lua
-- without its error branches; step 6 is step 0 with an answer as long.
local ngx = ngx -- luacheck: ignore 113
local common = require "common"
local cjson_encode = require("cjson.safe").encode

local _M = {}

_M.NAMES = {
  [0] = "ngx.say(\"ok\") (= /ok)",
  "+ common.authenticate()",
  "+ ngx.req.get_uri_args(16)",
  "+ common.check_key(key)",
  "+ client():presign(...) (result dropped)",
  "+ ngx.say('{\"url\":\"', url, '\"}') (= /presign)",
  "ngx.say(<a string as long as the URL>)",
  "client():presign(...) only",
}

local URL_SIZED -- a string as long as the JSON /presign answers

local function presign(key)
  return common.client():presign("GET", common.config().bucket, key)
end

function _M.run(n)
  if n == 6 then
    URL_SIZED = URL_SIZED or cjson_encode({ url = presign("bench/object.bin") })
    return ngx.say(URL_SIZED)
  elseif n == 7 then
    presign("bench/object.bin")
    return ngx.say("ok")
  end
  if n >= 1 then common.authenticate() end
  local key = "bench/object.bin"
  if n >= 2 then key = ngx.req.get_uri_args(16).key end
  if n >= 3 then common.check_key(key) end
  if n >= 5 then return ngx.say('{"url":"', presign(key), '"}') end
  if n >= 4 then presign(key) end
  ngx.say("ok")
end

-- Step 8: the handler of step 5 timed piece by piece (core.time.monotonic)
-- in every request wrk sends; /step/stats gives the mean per request.
local monotonic
local PIECES = { "authenticate", "get_uri_args", "check_key", "presign", "ngx.say(JSON)" }
local sums, count = { 0, 0, 0, 0, 0 }, 0

function _M.timed()
  monotonic = monotonic or require("objstore.core").time.monotonic
  local t0 = monotonic()
  common.authenticate()
  local t1 = monotonic()
  local key = ngx.req.get_uri_args(16).key
  local t2 = monotonic()
  common.check_key(key)
  local t3 = monotonic()
  local url = presign(key)
  local t4 = monotonic()
  ngx.say('{"url":"', url, '"}')
  local t5 = monotonic()
  sums[1], sums[2], sums[3] = sums[1] + (t1 - t0), sums[2] + (t2 - t1), sums[3] + (t3 - t2)
  sums[4], sums[5], count = sums[4] + (t4 - t3), sums[5] + (t5 - t4), count + 1
end

function _M.stats()
  local out, total = {}, 0
  for i, name in ipairs(PIECES) do
    local us = sums[i] / math.max(count, 1) * 1e6
    total = total + us
    out[#out + 1] = ("  %-40s %7.2f us/request"):format(name, us)
  end
  out[#out + 1] = ("  %-40s %7.2f us/request (%d requests)"):format("all five", total, count)
  sums, count = { 0, 0, 0, 0, 0 }, 0
  ngx.say(table.concat(out, "\n"))
end

--- The same pieces in a loop inside the worker (GET /step/loop?key=K):
-- CPU microseconds per call of each (os.clock, best of 5 rounds of N),
-- as text. What wrk cannot split (nginx's own request handling, the
-- response) is the rest of the per-request time.
function _M.loop()
  local N = tonumber(ngx.var.arg_n) or 20000
  local key = ngx.req.get_uri_args(16).key
  local client, bucket = common.client(), common.config().bucket
  local url = client:presign("GET", bucket, key)
  local pieces = {
    { "common.authenticate()", function() common.authenticate() end },
    { "ngx.req.get_uri_args(16)", function() return ngx.req.get_uri_args(16) end },
    { "common.check_key(key)", function() return common.check_key(key) end },
    { "client:presign(\"GET\", bucket, key)", function() return client:presign("GET", bucket, key) end },
    { "cjson encode {url = url} (not used)", function() return cjson_encode({ url = url }) end },
    { "'{\"url\":\"' .. url .. '\"}'", function() return '{"url":"' .. url .. '"}' end },
  }
  local out = {}
  for _, p in ipairs(pieces) do
    local best = math.huge
    for _ = 1, 5 do
      local t0 = os.clock()
      for _ = 1, N do p[2]() end
      local dt = os.clock() - t0
      if dt < best then best = dt end
    end
    out[#out + 1] = ("  %-40s %7.2f us/call"):format(p[1], best / N * 1e6)
  end
  ngx.say(table.concat(out, "\n"))
end

return _M
