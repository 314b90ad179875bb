-- Inside the nginx of spec/support/ngx_contract.sh, for
-- spec/ngx_phases_spec.lua: which transport a client uses in each phase,
-- against radosgw (OBJSTORE_TEST_*):
--   init_worker: libcurl (no cosockets yet; blocking is harmless there);
--   content:     cosockets;
--   log:         no I/O at all (a clear error), deferred to a timer instead;
--   transport = "curl" forced in content: works, one warning per worker;
--   signing time from a live clock, not nginx's cached one.
-- GET /phases prints "ok: ..." / "FAIL: ..." lines and "N passed, N failed".
local objstore = require "objstore"
local onx = require "objstore.openresty"

local _M = {}

local function client(extra)
  local opts = { endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"), region = "us-east-1", addressing = "path",
    access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY") }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return objstore.new(opts)
end

local function bucket() return "ngx-phases-" .. ngx.worker.pid() end

-- Per worker: what the init_worker call saw.
local init_worker_result

function _M.init_worker()
  if not os.getenv("OBJSTORE_TEST_ENDPOINT") then return end
  local c = client()
  local which = c.transport.which and c.transport:which()
  local ok, err = c:create_bucket(bucket())
  if not ok and err.code == "BucketAlreadyOwnedByYou" then ok = true end
  init_worker_result = { which = which, ok = ok and true or false, err = err and err.code }
  c:close()
end

function _M.log()
  local c = client()
  local _, err = c:head_bucket(bucket())
  local dict = ngx.shared.ngx_phases
  dict:set("log_which", tostring(c.transport:which()))
  dict:set("log_err", err and (err.code .. ": " .. tostring(err.message)) or "none")
  onx.defer(function()
    local cc = client()
    local r, e = cc:head_bucket(bucket())
    dict:set("deferred", r and ("ok " .. tostring(cc.transport:which())) or ("failed " .. tostring(e)))
    cc:close()
  end)
end

function _M.run()
  local passed, failed = 0, 0
  local function check(name, cond, detail)
    if cond then
      passed = passed + 1
      ngx.say("ok: ", name)
    else
      failed = failed + 1
      ngx.say("FAIL: ", name, ": ", tostring(detail))
    end
  end
  local r = init_worker_result or {}
  check("init_worker uses libcurl", r.which == "curl", r.which)
  check("a request from init_worker works", r.ok, r.err)

  local c = client()
  check("the default transport in nginx is the per-phase one", c.transport.which ~= nil, tostring(c.transport))
  check("content uses cosockets", c.transport:which() == "ngx", c.transport:which())
  local res, err = c:head_bucket(bucket())
  check("a request from content works", res ~= nil, err)
  check("the content request went through the cosocket transport",
    c.transport.ngx_t ~= nil and c.transport.curl_t == nil)

  -- Live clock: nginx's cached time stays put while Lua runs without
  -- yielding; the signing time must not.
  local cached = ngx.now()
  local t0 = os.clock()
  while os.clock() - t0 < 1.2 do end -- luacheck: ignore 563
  local still_cached = ngx.now() == cached
  local now = c:now()
  check("signing time from a live clock", still_cached and now >= math.floor(cached) + 1,
    "cached " .. cached .. ", client:now() " .. now)
  res, err = c:head_bucket(bucket()) -- signed after the busy loop: still valid
  check("a request signed from the live clock works", res ~= nil, err)
  c:close()

  -- Forced curl in a request phase: works, warns (the spec counts the
  -- warnings in the error log: one per worker).
  local fc = client{ transport = "curl" }
  check("forced curl reports curl", fc.transport:which() == "curl")
  for _ = 1, 3 do
    res, err = fc:head_bucket(bucket())
    check("a forced-curl request works", res ~= nil, err)
  end
  fc:close()

  -- The log phase (GET /phases/log ran before this request).
  local dict = ngx.shared.ngx_phases
  check("log phase: no transport", dict:get("log_which") == "nil", dict:get("log_which"))
  local log_err = dict:get("log_err") or ""
  check("log phase: a clear error naming defer", log_err:find("TransportError", 1, true) ~= nil
    and log_err:find("objstore.openresty.defer", 1, true) ~= nil, log_err)
  check("log phase: the deferred call ran in a timer with cosockets", dict:get("deferred") == "ok ngx",
    dict:get("deferred"))
  -- defer in a content phase, too, and an error it raises is logged.
  local ok, derr = onx.defer(function() error("deferred failure marker") end)
  check("defer returns true", ok, derr)
  ngx.sleep(0.05)

  -- A source that yields on a cosocket while earlier requests finish
  -- (an upload reading its next part from the client): the socket read
  -- gets its own answer, never a finished light thread's results.
  local t = require("objstore.transport.ngx").new{}
  local base = "http://127.0.0.1:" .. ngx.var.server_port
  local given, got, done = 0, nil, 0
  -- 1 fast and 2 slow requests; after the fast one's completion (a wait
  -- on all three returned) the source reads a slower answer while the
  -- slow ones finish.
  local okr, rerr = pcall(t.run, t, function()
    given = given + 1
    if given == 1 then return { url = base .. "/hello" } end
    if given <= 3 then return { url = base .. "/phases/slow" } end
    if given == 5 then
      local sock = ngx.socket.tcp()
      sock:settimeouts(3000, 3000, 3000)
      assert(sock:connect("127.0.0.1", tonumber(ngx.var.server_port)))
      sock:send("GET /phases/slower HTTP/1.0\r\nHost: x\r\n\r\n")
      got = { sock:receive("*a") }
      sock:close()
    end
    return nil
  end, function(_, rr) if rr and rr.status == 200 then done = done + 1 end end, 8)
  check("run: a source yielding on a cosocket gets its own data", okr and type(got and got[1]) == "string"
    and got[1]:find("late", 1, true) ~= nil, tostring(rerr) .. " " .. tostring(got and got[1]))
  check("run: every request done", done == 3, done)
  t:close()

  ngx.say(passed, " passed, ", failed, " failed")
end

return _M
