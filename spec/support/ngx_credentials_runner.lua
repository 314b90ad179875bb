-- Inside nginx (spec/support/ngx_contract.sh, location /credentials): a
-- client on the cosocket transport with a credentials.assume_role provider
-- kept per worker (module level), so the second request of a worker uses
-- the session the first one obtained. The transport is wrapped to record
-- every URL it is asked for: the STS call must be one of them (it goes
-- through the client's cosockets, not a curl session of its own).
-- Answers JSON: { ok, error, refreshes, sts_through_cosockets, body }.
local cjson = require "cjson.safe"

local _M = {}

local provider -- one per worker

local function getenv(n)
  local v = os.getenv(n)
  if v == "" then return nil end
  return v
end

function _M.run()
  local objstore = require "objstore"
  local credentials = require "objstore.credentials"
  local endpoint = getenv("OBJSTORE_TEST_STS_ENDPOINT") or getenv("OBJSTORE_TEST_ENDPOINT")
  provider = provider or credentials.assume_role{ endpoint = endpoint, region = getenv("OBJSTORE_TEST_REGION"),
    access_key = getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = getenv("OBJSTORE_TEST_SECRET_KEY"),
    role_arn = getenv("OBJSTORE_TEST_STS_ROLE_ARN") or "arn:aws:iam:::role/objstore-sts-test",
    session_name = "ngx-worker", duration = 900 }
  local t = require("objstore.transport.ngx").new{}
  local urls = {}
  local request = t.request
  t.request = function(self, req)
    urls[#urls + 1] = req.method .. " " .. req.url
    return request(self, req)
  end
  local c = objstore.new{ endpoint = endpoint, region = getenv("OBJSTORE_TEST_REGION"), transport = t,
    credentials = provider }
  local bucket = ngx.var.arg_bucket
  local out = { refreshes_before = provider.refreshes }
  local ok, err = c:put_object(bucket, "ngx/credentials", "from a cosocket")
  local got = ok and c:get_object(bucket, "ngx/credentials")
  out.ok = ok ~= nil and got ~= nil
  out.error = err and tostring(err) or nil
  out.body = got and got.body or nil
  out.refreshes = provider.refreshes
  out.sts_through_cosockets = false
  for _, u in ipairs(urls) do
    if u == "POST " .. endpoint .. "/" then out.sts_through_cosockets = true end
  end
  out.urls = urls
  ngx.say(cjson.encode(out))
end

return _M
