-- One option checker (issue 20): every options table of the public API is
-- checked by errors.options, so a bad table reads the same everywhere and
-- the blame is the caller's line, found one way (the first frame outside
-- objstore's modules), however deep the check sits.
local objstore = require "objstore"
local errors = require "objstore.errors"
local retry = require "objstore.engine.retry"
local signer = require "objstore.engine.signer"
local sts = require "objstore.sts"
local auto = require "objstore.transport.auto"
local replicated = require "objstore.replicated"
local sync = require "objstore.sync"
local metrics = require "objstore.metrics"

local DEAD = "http://127.0.0.1:9" -- nothing is sent: every case raises first

local function new_client(extra)
  local o = { endpoint = DEAD, access_key = "a", secret_key = "s", region = "us-east-1", env = {} }
  for k, v in pairs(extra or {}) do o[k] = v end
  return objstore.new(o)
end

--- The message f raised, checked to be blamed on this file.
local function raised(f)
  local ok, e = pcall(f)
  assert.is_false(ok, "did not raise")
  assert.is_string(e)
  assert.matches("^spec/options_spec%.lua:%d+: objstore%.", e)
  return (e:gsub("^spec/options_spec%.lua:%d+: ", ""))
end

describe("one option checker", function()
  it("names an unknown option in one wording, for every kind of entry point", function()
    local c = new_client()
    local cases = {
      { "client.new", 1, function() new_client{ bogus = 1 } end },
      { "client.put_object", 4, function() c:put_object("b", "k", "x", { bogus = 1 }) end },
      { "client.list_objects", 2, function() c:list_objects("b", { bogus = 1 }) end },
      { "client.presign", 4, function() c:presign("GET", "b", "k", { bogus = 1 }) end },
      { "engine.signer.new", 1, function() signer.new{ access_key = "a", secret_key = "s", bogus = 1 } end },
      { "engine.retry.policy", 1, function() retry.policy{ bogus = 1 } end },
      { "engine.retry.policy", 1, function() new_client{ retry = { bogus = 1 } } end },
      { "sts.new", 1, function() sts.new{ bogus = 1 } end },
      { "transport.auto.new", 1, function() auto.new{ bogus = 1 } end },
      { "replicated.new", 1, function() replicated.new{ clients = { c }, journal = "/nonexistent", bogus = 1 } end },
      { "sync", 4, function() sync.sync(c, "/tmp", { bucket = "b" }, { bogus = 1 }) end },
      { "metrics.new", 1, function() metrics.new{ bogus = 1 } end },
    }
    for _, case in ipairs(cases) do
      local fname, n, f = case[1], case[2], case[3]
      assert.equals(("objstore.%s: argument #%d (opts.bogus): is not an option of %s"):format(fname, n, fname),
        raised(f))
    end
    c:close()
  end)

  it("says 'must be a table, got <type>' for an options table of the wrong type", function()
    local c = new_client()
    assert.equals("objstore.client.new: argument #1 (opts): must be a table, got number",
      raised(function() objstore.new(5) end))
    assert.equals("objstore.client.put_object: argument #4 (opts): must be a table, got string",
      raised(function() c:put_object("b", "k", "x", "fast") end))
    assert.equals("objstore.engine.signer.new: argument #1 (opts): must be a table, got string",
      raised(function() signer.new("aws4") end))
    assert.equals("objstore.engine.retry.policy: argument #1 (opts): must be a table, got string",
      raised(function() retry.policy("fast") end))
    assert.equals("objstore.transport.auto.new: argument #1 (opts): must be a table, got boolean",
      raised(function() auto.new(true) end))
    assert.equals("objstore.client.new: argument #1 (opts.tls): must be a table, got string",
      raised(function() new_client{ tls = "yes" } end))
    c:close()
  end)

  it("names nested tables and wrong types the same way", function()
    assert.equals("objstore.client.new: argument #1 (opts.tls.verify): is not an option of client.new",
      raised(function() new_client{ tls = { verify = true } } end))
    assert.equals("objstore.client.new: argument #1 (opts.timeout): must be a number, got string",
      raised(function() new_client{ timeout = "10" } end))
    assert.equals("objstore.engine.retry.policy: argument #1 (opts.sleep): must be a function, got number",
      raised(function() retry.policy{ sleep = 5 } end))
  end)

  it("names the first bad option in sorted order, whatever order pairs() gives", function()
    for _ = 1, 20 do
      local o = {}
      for i = 1, 30 do o["zz" .. i] = i end
      o.aa_first = true
      assert.equals(
        "objstore.engine.retry.policy: argument #1 (opts.aa_first): is not an option of engine.retry.policy",
        raised(function() retry.policy(o) end))
    end
  end)

  it("is itself public: errors.options checks a table for any module", function()
    local allowed = { size = "number", name = true }
    local o = { size = 1, name = {} }
    assert.equals(o, errors.options("mymod.f", 2, o, allowed))
    assert.same({}, errors.options("mymod.f", 2, nil, allowed))
    assert.equals("objstore.mymod.f: argument #2 (opts.size): must be a number, got string",
      raised(function() errors.options("mymod.f", 2, { size = "1" }, allowed) end))
    assert.equals("objstore.mymod.f: argument #2 (opts.x.sizes): is not an option of mymod.f",
      raised(function() errors.options("mymod.f", 2, { sizes = 1 }, allowed, "opts.x") end))
    assert.equals("objstore.errors.options: argument #4 (allowed): must be a table, got nil",
      raised(function() errors.options("mymod.f", 2, {}) end))
  end)
end)
