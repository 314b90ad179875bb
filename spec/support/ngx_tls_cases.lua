-- The TLS cases of spec/tls_spec.lua for objstore.transport.ngx, run inside
-- the nginx that spec/support/tls_front.sh starts (GET /ngx/<case> on its
-- Lua port). Each location sets what nginx itself decides for cosockets
-- (lua_ssl_trusted_certificate, lua_ssl_protocols) and the front to talk
-- to ($front); the answer is one JSON object: { ok, code, retryable,
-- message, steps }.
-- luacheck: globals ngx
local cjson = require "cjson.safe"
local objstore = require "objstore"
local ngx_transport = require "objstore.transport.ngx"

local _M = {}

local TLS = { insecure = { insecure = true }, ["min-option"] = { min_version = "1.3" },
  ["min-option-equal"] = { min_version = "1.2" }, ["min-option-ok"] = { min_version = "1.3" } }

--- Per-call hooks under real concurrency: two light threads put objects
-- through one client at once (each cosocket wait lets the other run),
-- each call with its own hooks; every event must reach only its own.
function _M.call_hooks(c, out)
  local bucket = ngx.var.arg_bucket
  assert(c:create_bucket(bucket))
  local seen, order = { a = {}, b = {} }, {}
  local function worker(tag)
    for i = 1, 5 do
      local key = tag .. i
      local function note(e)
        seen[tag][#seen[tag] + 1] = e.key
        order[#order + 1] = tag
      end
      assert(c:put_object(bucket, key, ("x"):rep(100000), { hooks = { on_request = note, on_response = note } }))
    end
  end
  local ta, tb = ngx.thread.spawn(worker, "a"), ngx.thread.spawn(worker, "b")
  local oka, ea = ngx.thread.wait(ta)
  local okb, eb = ngx.thread.wait(tb)
  out.steps = { tostring(oka and "a done" or ea), tostring(okb and "b done" or eb) }
  out.seen, out.order = seen, table.concat(order)
  for _, tag in ipairs{ "a", "b" } do
    for i = 1, 5 do c:delete_object(bucket, tag .. i) end
  end
  c:delete_bucket(bucket)
  out.ok = oka and okb
end

function _M.run(case)
  local out = { case = case, steps = {} }
  local ok, perr = pcall(function()
    local c = objstore.new{ endpoint = ngx.var.front, region = os.getenv("OBJSTORE_TEST_REGION") or "us-east-1",
      access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY"),
      transport = ngx_transport.new{ tls = TLS[case], connect_timeout = 3, timeout = 20 },
      retry = { max_attempts = 1 } }
    if case == "call-hooks" then return _M.call_hooks(c, out) end
    local res, err = c:list_buckets()
    out.steps[#out.steps + 1] = "list_buckets"
    if res and case == "ca" then
      -- a full round trip: bucket, put, get, list, delete
      local bucket = ngx.var.arg_bucket
      local body = ("ngx tls body "):rep(5000)
      res, err = c:create_bucket(bucket)
      if res then res, err = c:put_object(bucket, "over/tls", body) end
      if res then res, err = c:get_object(bucket, "over/tls") end
      if res and res.body ~= body then res, err = nil, { code = "Mismatch", message = "body differs" } end
      if res then res, err = c:list_objects(bucket) end
      if res and (#res.contents ~= 1 or res.contents[1].key ~= "over/tls") then
        res, err = nil, { code = "Mismatch", message = "listing differs" }
      end
      if res then res, err = c:delete_object(bucket, "over/tls") end
      if res then res, err = c:delete_bucket(bucket) end
      out.steps[#out.steps + 1] = "round trip"
    end
    out.ok = res ~= nil
    if err then out.code, out.retryable, out.message = err.code, err.retryable, err.message end
  end)
  if not ok then out.ok, out.code, out.message = false, "Raised", tostring(perr) end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(out))
end

return _M
