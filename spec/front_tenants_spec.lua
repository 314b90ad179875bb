-- objstore.front.tenants: the tenants file of the S3 front, offline (the
-- clock injected).
local tenants = require "objstore.front.tenants"
local cjson = require "cjson"

local DIR = os.getenv("TMPDIR") or "/tmp"

local function doc(over)
  local d = { tenants = {
    a = { keys = { { access_key = "AKA", secret_key = "secret-of-a-1" } },
      buckets = { data = { store_bucket = "shared", prefix = "a/", allow = { "read", "list" } } } },
    b = { keys = { { access_key = "AKB", secret_key = "secret-of-b-1" } },
      buckets = { data = { store_bucket = "shared", prefix = "b/", allow = { "read", "write", "list", "delete" } } } },
  } }
  if over then over(d) end
  return cjson.encode(d)
end

-- Until os.time() has moved on: a file written after it has a later
-- status-change time (one-second resolution).
local function sleep_past_second()
  local t = os.time()
  while os.time() == t do os.execute("sleep 0.1") end
end

local function refused(text, field)
  local set, err = tenants.parse(text)
  assert.is_nil(set)
  assert.equal("InvalidTenants", err.code)
  assert.equal(field, err.field, err.message)
  assert.falsy(err.message:find("secret-of", 1, true), "a secret in: " .. err.message)
end

describe("objstore.front.tenants", function()
  it("parses a valid file: lookup and map", function()
    local path = DIR .. "/objstore-tenants-spec-" .. os.time() .. "-" .. math.random(1e9) .. ".json"
    local f = assert(io.open(path, "wb")); f:write(doc()); f:close()
    local reg = assert(tenants.new(path))
    os.remove(path)
    local t, secret = reg:lookup("AKA")
    assert.equal("a", t.name)
    assert.equal("secret-of-a-1", secret)
    assert.is_nil(reg:lookup("AKX"))
    local sb, sk = reg:map(t, "data", "k/x", "read")
    assert.same({ "shared", "a/k/x" }, { sb, sk })
    local _, err = reg:map(t, "data", "k", "write")
    assert.equal("AccessDenied", err.code)
    _, err = reg:map(t, "nope", "k", "read")
    assert.equal("NoSuchBucket", err.code)
    for _, bad in ipairs({ "", "../b/x", "x/../../b", "./x", "a\0b", "\255" }) do
      _, err = reg:map(t, "data", bad, "read")
      assert.equal("InvalidArgument", err.code, bad)
    end
    _, err = reg:map(t, "data", ("k"):rep(1023), "read")
    assert.equal("KeyTooLongError", err.code)
    assert.same({ "data" }, reg:buckets(t))
  end)

  it("refuses a bad file naming the field, never a secret", function()
    refused("not json", "(file)")
    refused(doc(function(d) d.extra = 1 end), "(file).extra")
    refused(doc(function(d) d.tenants.a.keys = {} end), "tenants.a.keys")
    refused(doc(function(d) d.tenants.a.keys[1].secret_key = "short" end), "tenants.a.keys[1].secret_key")
    refused(doc(function(d) d.tenants.a.keys[1].access_key = "A/K" end), "tenants.a.keys[1].access_key")
    refused(doc(function(d) d.tenants.b.keys[1].access_key = "AKA" end), "tenants.b.keys[1].access_key")
    refused(doc(function(d) d.tenants.a.buckets.data.allow = { "read", "admin" } end),
      "tenants.a.buckets.data.allow[2]")
    refused(doc(function(d) d.tenants.a.buckets.data.store_bucket = "Bad_Bucket" end),
      "tenants.a.buckets.data.store_bucket")
    refused(doc(function(d) d.tenants.a.buckets.Data = d.tenants.a.buckets.data end), "tenants.a.buckets.Data")
    -- b's prefix inside a's: b would see a's objects
    refused(doc(function(d) d.tenants.a.buckets.data.prefix = "" end), "tenants.b.buckets.data.prefix")
    refused(doc(function(d) d.tenants.b.buckets.data.prefix = "a/b/" end), "tenants.b.buckets.data.prefix")
  end)

  it("reads optional limits strictly: integer requests and bytes per integer window", function()
    local set = assert(tenants.parse(doc(function(d) d.tenants.a.limits = { requests = 5, window = 60 } end)))
    assert.same({ requests = 5, window = 60 }, set.tenants.a.limits)
    assert.is_nil(set.tenants.b.limits)
    set = assert(tenants.parse(doc(function(d) d.tenants.a.limits = { requests = 3 } end)))
    assert.same({ requests = 3, window = 1 }, set.tenants.a.limits)
    refused(doc(function(d) d.tenants.a.limits = 5 end), "tenants.a.limits")
    refused(doc(function(d) d.tenants.a.limits = { 5 } end), "tenants.a.limits")
    refused(doc(function(d) d.tenants.a.limits = { requests = 5, burst = 2 } end), "tenants.a.limits.burst")
    refused(doc(function(d) d.tenants.a.limits = {} end), "tenants.a.limits")
    refused(doc(function(d) d.tenants.a.limits = { window = 60 } end), "tenants.a.limits")
    set = assert(tenants.parse(doc(function(d) d.tenants.a.limits = { bytes = 1048576, window = 60 } end)))
    assert.same({ bytes = 1048576, window = 60 }, set.tenants.a.limits)
    set = assert(tenants.parse(doc(function(d) d.tenants.a.limits = { requests = 2, bytes = 10 } end)))
    assert.same({ requests = 2, bytes = 10, window = 1 }, set.tenants.a.limits)
    for _, b in ipairs({ 0, -1, 1.5, "5", 1e16 }) do
      refused(doc(function(d) d.tenants.a.limits = { bytes = b } end), "tenants.a.limits.bytes")
    end
    for _, n in ipairs({ 0, -1, 1.5, "5", 1e10 }) do
      refused(doc(function(d) d.tenants.a.limits = { requests = n } end), "tenants.a.limits.requests")
    end
    for _, w in ipairs({ 0, 0.5, 86401, "60" }) do
      refused(doc(function(d) d.tenants.a.limits = { requests = 1, window = w } end), "tenants.a.limits.window")
    end
  end)

  it("reads a bucket space strictly and maps the buckets created in it, never over another mapping", function()
    local set = assert(tenants.parse(doc(function(d)
      d.tenants.a.bucket_space = { store_bucket = "shared", prefix = "spaces/a/", allow = { "read", "create" } }
    end)))
    local a = set.tenants.a
    assert.same({ store_bucket = "shared", prefix = "spaces/a/", allow = { read = true, create = true } }, a.space)
    local m = tenants.space_mapping(a, "made")
    assert.same({ name = "made", store_bucket = "shared", prefix = "spaces/a/made/", created = true,
      allow = { read = true, create = true } }, m)
    assert.same({ "shared", "spaces/a/.buckets/made" }, { tenants.space_marker(a, "made") })
    -- no mapping for a static bucket's name, a bad name, or without a space
    assert.is_nil(tenants.space_mapping(a, "data"))
    assert.is_nil(tenants.space_mapping(a, "Bad_Name"))
    assert.is_nil(tenants.space_mapping(set.tenants.b, "made"))
    -- map takes the created bucket only when told it exists
    local reg = setmetatable({}, tenants.Registry)
    local sb, skey = reg:map(a, "made", "k", "read", true)
    assert.same({ "shared", "spaces/a/made/k" }, { sb, skey })
    local _, err = reg:map(a, "made", "k", "read")
    assert.equal("NoSuchBucket", err.code)
    _, err = reg:map(a, "made", "k", "write", true)
    assert.equal("AccessDenied", err.code)
    -- overlaps: with another tenant's mapping, with its own static ones
    refused(doc(function(d) -- a is read first: b's mapping is the one found overlapping
      d.tenants.a.bucket_space = { store_bucket = "shared", prefix = "b/", allow = { "read" } }
    end), "tenants.b.buckets.data.prefix")
    refused(doc(function(d)
      d.tenants.a.bucket_space = { store_bucket = "shared", prefix = "a/", allow = { "read" } }
    end), "tenants.a.bucket_space.prefix")
    refused(doc(function(d)
      d.tenants.a.bucket_space = { store_bucket = "shared", prefix = "spaces/", allow = { "read" } }
      d.tenants.b.buckets.data.prefix = "spaces/b/"
    end), "tenants.b.buckets.data.prefix")
    for _, bad in ipairs({ "", "spaces/a", ("p"):rep(401) .. "/" }) do
      refused(doc(function(d)
        d.tenants.a.bucket_space = { store_bucket = "shared", prefix = bad, allow = { "read" } }
      end), "tenants.a.bucket_space.prefix")
    end
    refused(doc(function(d)
      d.tenants.a.bucket_space = { store_bucket = "shared", prefix = "s/", allow = { "fly" } }
    end), "tenants.a.bucket_space.allow[1]")
    refused(doc(function(d)
      d.tenants.a.bucket_space = { store_bucket = "shared", prefix = "s/", allow = { "read" }, extra = 1 }
    end), "tenants.a.bucket_space.extra")
  end)

  it("reloads a changed file at most once per interval, keeping the old set when the new one is invalid", function()
    local path = DIR .. "/objstore-tenants-spec-r" .. os.time() .. "-" .. math.random(1e9) .. ".json"
    local function write(text)
      local tmp = path .. ".new"
      local f = assert(io.open(tmp, "wb")); f:write(text); f:close()
      assert(os.rename(tmp, path))
    end
    write(doc())
    local now, logs = 1000, {}
    local reg = assert(tenants.new(path, { now = function() return now end,
      log = function(level, msg) logs[#logs + 1] = level .. ": " .. msg end }))
    write(doc(function(d) d.tenants.a.keys[2] = { access_key = "AKA2", secret_key = "secret-of-a-2" } end))
    assert.is_nil(reg:lookup("AKA2")) -- checked less than a second ago
    now = now + 1
    assert.equal("a", reg:lookup("AKA2").name)
    write("{ broken")
    now = now + 1
    assert.equal("a", reg:lookup("AKA2").name)
    assert.truthy(logs[#logs]:find("^error: .*kept the previous tenants"), logs[#logs])
    for _, l in ipairs(logs) do assert.falsy(l:find("secret-of", 1, true)) end
    os.remove(path)
  end)

  -- Two nginx workers: one asked while the file gave key AKA2 and removed
  -- AKA, one not asked then; the file turns invalid; the second must not go
  -- on with its old set (AKA valid, AKA2 unknown).
  it("shares the newest valid file between registries: a worker not asked in between answers like the others",
    function()
      local path = DIR .. "/objstore-tenants-spec-s" .. os.time() .. "-" .. math.random(1e9) .. ".json"
      local function write(text)
        local tmp = path .. ".new"
        local f = assert(io.open(tmp, "wb")); f:write(text); f:close()
        assert(os.rename(tmp, path))
      end
      -- ngx.shared.DICT's get / set with flags
      local dict = { data = {} }
      function dict:get(k) local e = self.data[k]; if e then return e[1], e[2] end end
      function dict:set(k, v, _, flags) self.data[k] = { v, flags } end
      write(doc())
      local now = 1000
      local clock = function() return now end
      local one = assert(tenants.new(path, { now = clock, shared = dict }))
      local two = assert(tenants.new(path, { now = clock, shared = dict }))
      assert.equal("a", two:lookup("AKA").name)
      sleep_past_second() -- a later status-change time
      write(doc(function(d) d.tenants.a.keys[1] = { access_key = "AKA2", secret_key = "secret-of-a-2" } end))
      now = now + 1
      assert.equal("a", one:lookup("AKA2").name) -- `one` read the new file
      assert.is_nil(one:lookup("AKA"))
      write("{ broken")
      now = now + 1
      -- `two` reads the broken file, keeps a set: the newest valid one
      assert.equal("a", two:lookup("AKA2").name)
      assert.is_nil(two:lookup("AKA"))
      -- a registry made now, while the file is broken, takes it too
      local three = assert(tenants.new(path, { now = clock, shared = dict }))
      assert.equal("a", three:lookup("AKA2").name)
      os.remove(path)
    end)
end)
