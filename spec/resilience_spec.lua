-- Failover across endpoints and replicated writes, against the real servers.
local servers = require "servers"
local objstore = require "objstore"

local function srv_by_name(name)
  for _, s in ipairs(servers.list()) do
    if s.name == name then return s end
  end
end

describe("endpoint lists", function()
  it("reject malformed URLs by position", function()
    local ok, err = pcall(objstore.new, { endpoints = { "http://127.0.0.1:7480", "ftp://x" }, access_key = "a",
      secret_key = "b" })
    assert.is_false(ok)
    assert.matches("endpoints%[2%]", err)
    ok, err = pcall(objstore.new, { endpoints = {}, access_key = "a", secret_key = "b" })
    assert.is_false(ok)
    assert.matches("at least one", err)
    ok, err = pcall(objstore.new, { endpoints = { "http://127.0.0.1:1" }, failover = { cooldown = -1 },
      access_key = "a", secret_key = "b" })
    assert.is_false(ok)
    assert.matches("failover.cooldown", err)
  end)
end)

describe("failover #server", function()
  it("routes around an endpoint that is down, without surfacing an error", function()
    local rgw = assert(srv_by_name("rgw"), "rgw is required")
    local c = servers.client(rgw, { endpoint = false, endpoints = { "http://127.0.0.1:9", rgw.endpoint },
      connect_timeout = 1, failover = { threshold = 2, cooldown = 60 } })
    local bucket = servers.bucket_name("fo")
    assert(c:create_bucket(bucket))
    for i = 1, 20 do
      assert(c:put_object(bucket, "k" .. i, "v" .. i))
      assert.equals("v" .. i, assert(c:get_object(bucket, "k" .. i)).body)
    end
    local dead, live = c.endpoints.members[1], c.endpoints.members[2]
    assert.equals("open", dead.state)
    assert.equals(2, dead.errors) -- tripped after the threshold, then left alone
    assert.equals(0, live.errors)
    assert.is_true(servers.cleanup(c, bucket))
  end)

  it("probes an endpoint again after its cool-down", function()
    local rgw = assert(srv_by_name("rgw"))
    local now = 0
    local c = servers.client(rgw, { endpoint = false, endpoints = { rgw.endpoint, rgw.endpoint },
      failover = { threshold = 1, cooldown = 5 } })
    c.endpoints.clock = function() return now end
    local first = c.endpoints.members[1]
    c.endpoints:failure(first)
    assert.equals("open", first.state)
    assert(c:list_buckets())
    assert.equals("open", first.state) -- still cooling: the second served it
    now = 6
    assert(c:list_buckets())
    assert.equals("closed", first.state) -- the probe succeeded
  end)
end)

describe("replicated #server #slow", function()
  local rgw, swift = srv_by_name("rgw"), srv_by_name("swift")
  local dir

  setup(function()
    dir = servers.tmpdir()
  end)

  teardown(function()
    servers.sh("rm -rf " .. servers.q(dir))
    if swift then servers.sh("bash spec/support/swift.sh start") end
  end)

  it("refuses a corrupt journal and leaves it in place", function()
    local path = dir .. "/bad-journal.json"
    servers.write_file(path, "{ this is not json")
    local r, err = objstore.replicated{ clients = { servers.client(rgw) }, journal = path }
    assert.is_nil(r)
    assert.equals("CorruptJournal", err.code)
    assert.equals("{ this is not json", servers.read_file(path))
  end)

  it("writes with a replica down, journals what it missed, and repairs it to identical replicas", function()
    if not swift then return pending("needs the Swift server as the second replica") end
    local a, b = servers.client(rgw), servers.client(swift, { connect_timeout = 1,
      retry = { max_attempts = 1 } })
    local bucket = servers.bucket_name("rep")
    assert(a:create_bucket(bucket))
    assert(b:create_bucket(bucket))
    local journal = dir .. "/journal.json"
    local r = assert(objstore.replicated{ clients = { a, b }, write_quorum = 1, journal = journal })
    assert(r:put_object(bucket, "before", "both"))
    assert(r:put_object(bucket, "doomed", "to be deleted"))

    assert(servers.sh("bash spec/support/swift.sh stop"))
    local w = assert(r:put_object(bucket, "during/1", "one"))
    assert.same({ 2 }, w.replicas_missed)
    assert(r:put_object(bucket, "during/2", ("x"):rep(100000)))
    assert(r:delete_object(bucket, "doomed"))
    assert(r:put_object(bucket, "before", "updated"))
    assert.equals(4, r:pending())
    -- the journal is durable: a new instance sees the same entries
    assert.equals(4, assert(objstore.replicated{ clients = { a, b }, journal = journal }):pending())
    assert.equals("updated", assert(r:get_object(bucket, "before")).body)
    -- no quorum at all: an error, and the write that did land is journalled
    local strict = assert(objstore.replicated{ clients = { a, b }, write_quorum = 2, journal = dir .. "/j2.json" })
    local _, qerr = strict:put_object(bucket, "strict", "x")
    assert.equals("QuorumNotReached", qerr.code)
    local failed_repair = assert(r:repair())
    assert.equals(4, failed_repair.remaining)

    assert(servers.sh("bash spec/support/swift.sh start"))
    local rep = assert(r:repair())
    assert.equals(4, rep.repaired)
    assert.equals(0, rep.remaining)
    assert.equals(0, r:pending())
    assert.equals(1, assert(strict:repair()).repaired) -- the write that missed its quorum, completed
    -- both replicas now hold the same keys and bytes
    local function snapshot(c)
      local t = {}
      for obj in c:list_objects_iter(bucket) do
        assert.is_truthy(obj)
        t[obj.key] = require("objstore.checksum").md5_hex(assert(c:get_object(bucket, obj.key)).body)
      end
      return t
    end
    local sa, sb = snapshot(a), snapshot(b)
    assert.same(sa, sb)
    assert.is_nil(sa.doomed)
    assert.equals(require("objstore.checksum").md5_hex("updated"), sb.before)
    assert.is_string(sb.strict)
    servers.cleanup(a, bucket)
    servers.cleanup(b, bucket)
  end)
end)
