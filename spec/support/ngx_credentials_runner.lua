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

-- spec/ngx_credentials_spec.lua's other cases: every provider shape the
-- README documents wrapped by ngx_credentials.cached (GET
-- /credentials/shapes?bucket=B), and what cached() and an explicit
-- cosocket transport give in phases without cosockets (init_worker and log:
-- recorded per worker, read back by GET /credentials/phases).
local results = {} -- per worker: name -> { raised | ok, code, message }

local function probe(name, fn)
  local ok, r, err = pcall(fn)
  results[name] = { raised = not ok and tostring(r) or nil, ok = ok and r ~= nil and r ~= false,
    code = ok and type(err) == "table" and err.code or nil,
    message = ok and type(err) == "table" and err.message or nil }
end

local function cosocket_provider()
  local sock = ngx.socket.tcp()
  sock:settimeout(1000)
  sock:connect("127.0.0.1", 9)
  return { access_key = "AK", secret_key = "SK" }
end

local function request_ngx()
  return require("objstore.transport.ngx").new{}:request{ url = "http://127.0.0.1:9/" }
end

local function run_ngx()
  local sent = false
  local errs = {}
  local ok, err = require("objstore.transport.ngx").new{}:run(function()
    if sent then return nil end
    sent = true
    return { url = "http://127.0.0.1:9/" }
  end, function(_, _, e) errs[#errs + 1] = e end)
  if ok then return ok end
  return nil, errs[1] and errs[1].code == err.code and err or { code = "mismatch" }
end

function _M.init_worker()
  local cached = require("objstore.openresty.credentials").cached
  probe("init_worker transport.ngx request", request_ngx)
  probe("init_worker transport.ngx run", run_ngx)
  probe("init_worker cached static table", function()
    local c, err = cached({ access_key = "AK", secret_key = "SK" }, { key = "static" })()
    return c and c.access_key == "AK", err
  end)
  probe("init_worker cached cosocket provider", function() return cached(cosocket_provider, { key = "i" })() end)
end

-- Refreshed by a timer the content phase of /credentials/log starts: its
-- log phase finds a refresh under way.
local slow

function _M.log_content()
  local cached = require("objstore.openresty.credentials").cached
  slow = slow or cached(function()
    ngx.sleep(1)
    return { access_key = "AK", secret_key = "SK" }
  end, { key = "slow" })
  ngx.timer.at(0, function() slow() end)
  ngx.sleep(0.1)
  ngx.say("ok")
end

function _M.log()
  local cached = require("objstore.openresty.credentials").cached
  probe("log transport.ngx request", request_ngx)
  probe("log transport.ngx run", run_ngx)
  probe("log cached cosocket provider", function() return cached(cosocket_provider, { key = "l" })() end)
  probe("log cached refresh under way", function() return slow() end)
  probe("log cached shared, being refreshed elsewhere", function()
    ngx.shared.ngx_phases:set("held:lock", 1, 5)
    return cached(cosocket_provider, { key = "held", dict = "ngx_phases" })()
  end)
end

function _M.phases()
  ngx.say(cjson.encode(results))
end

function _M.shapes()
  local objstore = require "objstore"
  local credentials = require "objstore.credentials"
  local cached = require("objstore.openresty.credentials").cached
  local endpoint = getenv("OBJSTORE_TEST_ENDPOINT")
  local sts_endpoint = getenv("OBJSTORE_TEST_STS_ENDPOINT") or endpoint
  local ak, sk = getenv("OBJSTORE_TEST_ACCESS_KEY"), getenv("OBJSTORE_TEST_SECRET_KEY")
  local shapes = {
    ["function"] = function() return { access_key = ak, secret_key = sk } end,
    ["static table"] = { access_key = ak, secret_key = sk },
    ["object with :get"] = { get = function() return { access_key = ak, secret_key = sk } end },
    ["credentials.assume_role{}"] = credentials.assume_role{ endpoint = sts_endpoint,
      region = getenv("OBJSTORE_TEST_REGION"), access_key = ak, secret_key = sk,
      role_arn = getenv("OBJSTORE_TEST_STS_ROLE_ARN") or "arn:aws:iam:::role/objstore-sts-test",
      session_name = "ngx-cached", duration = 900 },
  }
  local out = {}
  for name, p in pairs(shapes) do
    local ok, r = pcall(function()
      local c = objstore.new{ endpoint = name == "credentials.assume_role{}" and sts_endpoint or endpoint,
        region = getenv("OBJSTORE_TEST_REGION"), addressing = "path",
        credentials = cached(p, { key = "shape " .. name }) }
      local put, err = c:put_object(ngx.var.arg_bucket, "ngx/shape", name)
      return put and "ok" or tostring(err)
    end)
    out[name] = ok and r or ("raised: " .. tostring(r))
  end
  ngx.say(cjson.encode(out))
end

-- GET /credentials/concurrent?bucket=B: a client on the default
-- transport (objstore.transport.auto), its credentials behind cached()
-- with a provider that takes 0.3 s, and six light threads of one request
-- putting at once: the five that ask while the first fetch is under way
-- wait for it on the transport's semaphore (none may fail, none may fetch
-- again). Answers { fetches, results = { "ok" | error, ... } }.
function _M.concurrent()
  local objstore = require "objstore"
  local cached = require("objstore.openresty.credentials").cached
  local ak, sk = getenv("OBJSTORE_TEST_ACCESS_KEY"), getenv("OBJSTORE_TEST_SECRET_KEY")
  local fetches = 0
  local c = objstore.new{ endpoint = getenv("OBJSTORE_TEST_ENDPOINT"), region = getenv("OBJSTORE_TEST_REGION"),
    addressing = "path", credentials = cached(function()
      fetches = fetches + 1
      ngx.sleep(0.3)
      return { access_key = ak, secret_key = sk, expiration = ngx.time() + 3600 }
    end, { key = "concurrent" }) }
  local threads, answers = {}, {}
  for i = 1, 6 do
    threads[i] = ngx.thread.spawn(function()
      local ok, err = c:put_object(ngx.var.arg_bucket, "ngx/concurrent/" .. i, "x")
      return ok and "ok" or tostring(err)
    end)
  end
  for i = 1, 6 do
    local ok, r = ngx.thread.wait(threads[i])
    answers[i] = ok and r or ("raised: " .. tostring(r))
  end
  c:close()
  ngx.say(cjson.encode{ fetches = fetches, results = answers })
end

return _M
