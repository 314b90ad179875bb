-- Per-call hooks (opts.hooks of any operation) on rgw: they get the events
-- of the requests that call makes, after the client's own hooks; a hook
-- that raises never breaks the request; the caller's opts are not changed;
-- other calls (and concurrent ones) do not see them.
local servers = require "servers"

local function recorder(tag, into)
  local h = {}
  for _, name in ipairs{ "on_request", "on_response", "on_retry", "on_failover", "on_error" } do
    h[name] = function(e)
      into[#into + 1] = { tag = tag, name = name, op = e.op, status = e.status, code = e.code, from = e.from,
        to = e.to, attempt = e.attempt, request_id = e.request_id, reason = e.reason }
    end
  end
  return h
end

local function names(list, tag)
  local out = {}
  for _, e in ipairs(list) do
    if not tag or e.tag == tag then out[#out + 1] = e.name .. " " .. tostring(e.op) end
  end
  return out
end

describe("per-call hooks #server", function()
  local srv = servers.list()[1]
  local bucket = servers.bucket_name("h11-hooks")
  local events, c

  setup(function()
    events = {}
    c = servers.client(srv, { hooks = recorder("client", events) })
    assert(c:create_bucket(bucket))
  end)

  teardown(function()
    servers.cleanup(c, bucket)
    c:close()
  end)

  before_each(function()
    for i = #events, 1, -1 do events[i] = nil end
  end)

  it("get the events of their call, after the client's, with the server's request id", function()
    local opts = { content_type = "text/plain", hooks = recorder("call", events) }
    assert(c:put_object(bucket, "k1", "hello", opts))
    assert.same({ "on_request PutObject", "on_response PutObject" }, names(events, "call"))
    assert.same({ "client", "call", "client", "call" }, { events[1].tag, events[2].tag, events[3].tag,
      events[4].tag })
    assert.equals(200, events[4].status)
    assert.is_string(events[4].request_id)
    assert.equals(events[3].request_id, events[4].request_id)
    -- the caller's table is left as it was
    assert.is_table(opts.hooks)
    assert.equals("text/plain", opts.content_type)
    -- a call without hooks: the client's alone
    for i = #events, 1, -1 do events[i] = nil end
    assert.equals("hello", assert(c:get_object(bucket, "k1")).body)
    assert.same({}, names(events, "call"))
    assert.same({ "on_request GetObject", "on_response GetObject" }, names(events, "client"))
  end)

  it("work on operations without an options argument and report on_error", function()
    local mine = {}
    assert(c:list_buckets({ hooks = recorder("call", mine) }))
    assert.same({ "on_request ListBuckets", "on_response ListBuckets" }, names(mine))
    mine = {}
    local res, err = c:get_object(bucket, "missing", { hooks = recorder("call", mine) })
    assert.is_nil(res)
    assert.equals("NoSuchKey", err.code)
    assert.same({ "on_request GetObject", "on_response GetObject", "on_error GetObject" }, names(mine))
    assert.equals(404, mine[2].status)
    mine = {}
    assert.is_false(c:bucket_exists(servers.bucket_name("h11-none"), { hooks = recorder("call", mine) }))
    assert.equals("on_request HeadBucket", names(mine)[1])
  end)

  it("see every request of a transfer", function()
    local d = servers.tmpdir()
    finally(function() servers.sh("rm -rf " .. servers.q(d)) end)
    local src, dst = d .. "/src", d .. "/dst"
    local data = ("0123456789abcdef"):rep(65536 * 6) -- 6 MiB: two parts of 5 MiB and less
    servers.write_file(src, data)
    local mine = {}
    assert(c:upload_file(bucket, "big", src, { part_size = 5 * 1024 * 1024, multipart_threshold = 1,
      hooks = recorder("call", mine) }))
    local ops = {}
    for _, e in ipairs(mine) do
      if e.name == "on_response" then ops[e.op] = (ops[e.op] or 0) + 1 end
    end
    assert.equals(1, ops.CreateMultipartUpload)
    assert.equals(2, ops.UploadPart)
    assert.equals(1, ops.CompleteMultipartUpload)
    mine = {}
    assert(c:download_file(bucket, "big", dst, { hooks = recorder("call", mine) }))
    assert.equals(data, servers.read_file(dst))
    assert.is_true(#mine >= 2)
    for _, e in ipairs(mine) do assert.is_string(e.op) end
  end)

  it("get on_retry and on_failover when an endpoint is down", function()
    local mine = {}
    local fc = servers.client(srv, { endpoint = false, endpoints = { "http://127.0.0.1:18447", srv.endpoint },
      connect_timeout = 2, retry = { max_attempts = 3, base_delay = 0.01 } })
    assert(fc:put_object(bucket, "fo", "x", { hooks = recorder("call", mine) }))
    local got = names(mine)
    assert.same({ "on_request PutObject", "on_response PutObject", "on_retry PutObject",
      "on_failover PutObject", "on_request PutObject", "on_response PutObject" }, got)
    assert.equals("ConnectFailed", mine[3].reason)
    assert.equals("http://127.0.0.1:18447", mine[4].from)
    assert.equals(srv.endpoint, mine[4].to)
    fc:close()
  end)

  it("never break the request when they raise; reported once per call", function()
    local reported = {}
    local hooks = {
      on_request = function() error("call hook boom") end,
      on_response = function() error("again") end,
      on_hook_error = function(name, e) reported[#reported + 1] = name .. ": " .. tostring(e) end,
    }
    assert(c:put_object(bucket, "k2", "v", { hooks = hooks }))
    assert.equals(1, #reported)
    assert.matches("^on_request: .*call hook boom", reported[1])
    assert(c:delete_object(bucket, "k2", { hooks = hooks }))
    assert.equals(2, #reported) -- a new call: reported again, once
    -- the client's hooks ran every time, untouched by the call's failures
    assert.same({ "on_request PutObject", "on_response PutObject", "on_request DeleteObject",
      "on_response DeleteObject" }, names(events, "client"))
  end)

  it("keep calls apart: interleaved calls (coroutines) each see only their own events", function()
    local a, b = {}, {}
    local ca = coroutine.wrap(function() return c:put_object(bucket, "ca", "1", { hooks = recorder("a", a) }) end)
    assert(ca())
    assert(c:put_object(bucket, "cb", "2", { hooks = recorder("b", b) }))
    assert.same({ "on_request PutObject", "on_response PutObject" }, names(a))
    assert.same({ "on_request PutObject", "on_response PutObject" }, names(b))
    -- state learnt during a call stays with the client (credentials, endpoint health)
    assert.is_table(c.creds)
    assert.is_nil(rawget(c, "call"))
  end)

  it("are checked: misuse raises in the one format", function()
    local cases = {
      { function() c:put_object(bucket, "k", "v", { hooks = 1 }) end,
        "objstore%.client%.put_object: argument #4 %(opts%.hooks%): must be a table, got number" },
      { function() c:get_object(bucket, "k", { hooks = { on_nothing = print } }) end,
        "objstore%.client%.get_object: argument #3 %(opts%.hooks%.on_nothing%): is not an option of "
        .. "client%.get_object$" },
      { function() c:list_buckets({ hooks = { on_request = "f" } }) end,
        "objstore%.client%.list_buckets: argument #1 %(opts%.hooks%.on_request%): must be a function, got string$" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      assert.matches(case[2], err)
      assert.matches("call_hooks_spec%.lua:%d+:", err) -- blamed on the caller
    end
  end)
end)
