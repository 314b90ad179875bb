-- Provider facts as data (issue 20): what differs between S3 and OSS is
-- one table per provider in objstore.engine.dialect, and no module branches on a
-- provider's name; a provider the code has never heard of works once its
-- table is defined (here: S3's facts under another name, against rgw).
local servers = require "servers"
local objstore = require "objstore"
local dialects = require "objstore.engine.dialect"

describe("objstore.engine.dialect", function()
  it("has every fact in every provider's table", function()
    assert.are.same({ "s3", "oss" }, dialects.names)
    for _, name in ipairs(dialects.names) do
      local d = dialects.get(name)
      assert.equals(name, d.name)
      for fact, ty in pairs(dialects.REQUIRED) do
        assert.equals(ty, type(d[fact]), name .. "." .. fact)
      end
      for alg in pairs(d.post_forms) do
        local found = false
        for _, a in pairs(d.signatures) do found = found or a == alg end
        assert.is_true(found, name .. ".post_forms." .. alg .. " is a signature of " .. name)
      end
    end
    assert.is_nil(dialects.get("names"))
    assert.is_nil(dialects.get("get"))
    assert.is_nil(dialects.get("gcs"))
  end)

  it("refuses a table with a fact missing or a name taken", function()
    local t = {}
    for k, v in pairs(dialects.s3) do t[k] = v end
    t.name, t.limits = "dialect20-incomplete", nil
    assert.has_error(function() dialects.define(t) end,
      "objstore.engine.dialect.define: dialect20-incomplete.limits must be a table")
    t.limits, t.name = dialects.s3.limits, "oss"
    assert.has_error(function() dialects.define(t) end, "objstore.engine.dialect.define: 'oss' is taken")
    assert.are.same({ "s3", "oss" }, dialects.names)
  end)

  it("is the only place provider names are compared with (no provider == \"oss\" in lua/objstore)", function()
    local found = {}
    local p = io.popen("find lua/objstore -name '*.lua' | sort")
    for path in p:lines() do
      local n = 0
      for line in io.lines(path) do
        n = n + 1
        local code = line:gsub("%-%-.*$", "")
        if code:find("provider%s*[=~]=%s*[\"']") or code:find("[\"']%s*[=~]=%s*[%w_.]*provider%f[^%w_]") then
          found[#found + 1] = path .. ":" .. n .. ": " .. line
        end
      end
    end
    p:close()
    assert.are.same({}, found)
  end)
end)

local srv = servers.list()[1]

describe("a provider added as a table #server", function()
  if not srv then return end
  local NAME = "s3-like"
  local t = {}
  for k, v in pairs(dialects.s3) do t[k] = v end
  t.name, t.title = NAME, "S3-like"

  setup(function() dialects.define(t) end)
  teardown(function()
    dialects[NAME] = nil
    for i = #dialects.names, 1, -1 do
      if dialects.names[i] == NAME then table.remove(dialects.names, i) end
    end
  end)

  it("is a provider of objstore.new and round-trips an object on " .. srv.name, function()
    assert.has_error(function() objstore.new{ provider = "dialect20-none", region = "r", access_key = "a",
      secret_key = "b" } end)
    local c = objstore.new{ provider = NAME, endpoint = srv.endpoint, region = srv.region, access_key = srv.access_key,
      secret_key = srv.secret_key, timeout = 10, retry = { max_attempts = 2 } }
    assert.equals(NAME, c.provider)
    assert.equals("path", c.addressing)
    local bucket = servers.bucket_name("dialect20")
    assert.truthy(c:create_bucket(bucket))
    local ok, err = pcall(function()
      assert.truthy(c:put_object(bucket, "k", "hello"))
      local got = assert(c:get_object(bucket, "k"))
      assert.equals("hello", got.body)
      assert.is_true(c:bucket_exists(bucket))
    end)
    servers.cleanup(c, bucket)
    assert(ok, err)
  end)
end)
