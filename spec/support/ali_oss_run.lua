-- Runs spec/support/ali_oss_shape.js (ali-oss at a fixed clock, nothing
-- sent) on a list of cases and returns its results by case id. A case is
-- { id, sig = "v1"|"v4", time, op, bucket, key, opts, sts?, align? } with
-- the shape script's fixed credentials given here.
local cjson = require "cjson"
local servers = require "servers"

local _M = {}

_M.AK, _M.SK = "LTAI5tShapeTestKeyId", "shapeTestSecret/With+Chars="
_M.TOKEN = "CAIS-shape-test-sts-token/+="
_M.REGION, _M.ENDPOINT = "cn-hangzhou", "https://oss-cn-hangzhou.aliyuncs.com"

function _M.run(cases)
  servers.node_package("ali-oss")
  local payload = {}
  for i, k in ipairs(cases) do
    payload[i] = { id = k.id, sig = k.sig, sts = k.sts or cjson.null, time = k.time, access_key = _M.AK,
      secret_key = _M.SK, region = _M.REGION, endpoint = _M.ENDPOINT, op = k.op, bucket = k.bucket,
      key = k.key or cjson.null, body = k.body or cjson.null, opts = k.opts or {}, align = k.align or cjson.null }
  end
  local base = os.tmpname()
  local infile, outfile = base .. ".in.json", base .. ".out.json"
  servers.write_file(infile, cjson.encode{ cases = payload })
  -- A time zone far from UTC: neither side may use local time.
  local ok, out = servers.sh("TZ=Asia/Shanghai node spec/support/ali_oss_shape.js < " .. servers.q(infile)
    .. " > " .. servers.q(outfile))
  local text = servers.read_file(outfile)
  os.remove(infile)
  os.remove(outfile)
  os.remove(base)
  assert(ok, "spec/support/ali_oss_shape.js failed:\n" .. out)
  local results = {}
  for _, r in ipairs(cjson.decode(text).cases) do
    assert(not r.error, r.error)
    results[r.id] = r
  end
  return results
end

--- An OSS client with the shape script's credentials, clock fixed at `time`;
-- it never sends anything.
function _M.client(sig, time, sts)
  local objstore = require "objstore"
  local c = objstore.new{ provider = "oss", region = _M.REGION, endpoint = _M.ENDPOINT, access_key = _M.AK,
    secret_key = _M.SK, session_token = sts, signature = sig,
    transport = { request = function() error("ali_oss_run: no request may be sent") end } }
  c.now = function() return time end
  return c
end

return _M
