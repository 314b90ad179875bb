-- docs/reference.md has one entry per public function, documents every
-- option an operation accepts, and is exactly what
-- spec/support/gen_reference.lua makes of the sources (issue 20: a manual
-- that cannot drift). The public functions are found by walking the real
-- modules here, not by asking the generator.
local operations = require "objstore.operations"
local objstore = require "objstore"
local Client = require "objstore.client"
local Engine = require "objstore.engine"
local credentials = require "objstore.credentials"
local sts = require "objstore.sts"
local metrics = require "objstore.metrics"
local onx = require "objstore.openresty"
local openresty_credentials = require "objstore.openresty.credentials"
local front_tenants = require "objstore.front.tenants"
local front_server = require "objstore.front.server"

-- The generator reads parameter names with debug.getlocal on a function,
-- which Lua 5.1 (not LuaJIT) cannot do.
local can_generate = _VERSION ~= "Lua 5.1" or rawget(_G, "jit") ~= nil

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- The entries of a reference text: heading -> body.
local function entries(text)
  local out = {}
  local name, body = nil, {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    local h = line:match("^### (.+)$")
    if h or line:match("^## ") then
      if name then out[name] = table.concat(body, "\n") end
      name, body = h, {}
    elseif name then
      body[#body + 1] = line
    end
  end
  if name then out[name] = table.concat(body, "\n") end
  return out
end

local function functions(t)
  local names = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and not k:match("^_") then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

--- The public functions and the headings that may document each.
local function public()
  local want = {}
  local function add(name, ...) want[#want + 1] = { name = name, headings = { ... } } end
  for name in pairs(operations) do add("client:" .. name, "client:" .. name) end
  for _, k in ipairs(functions(Client)) do add("Client." .. k, "client:" .. k, "objstore.Client." .. k) end
  for _, k in ipairs(functions(Engine)) do
    add("Engine." .. k, "client:" .. k, "engine:" .. k, "objstore.engine." .. k)
  end
  for _, k in ipairs(functions(objstore)) do add("objstore." .. k, "objstore." .. k) end
  for _, k in ipairs(functions(credentials)) do add("credentials." .. k, "objstore.credentials." .. k) end
  for _, k in ipairs(functions(sts)) do add("sts." .. k, "objstore.sts." .. k) end
  for _, k in ipairs(functions(metrics)) do add("metrics." .. k, "objstore.metrics." .. k) end
  for _, k in ipairs(functions(getmetatable(metrics.new()).__index)) do add("registry:" .. k, "registry:" .. k) end
  local s = sts.new{ provider = "s3", region = "us-east-1", endpoint = "http://127.0.0.1:19880",
    access_key = "AKIDPROBE", secret_key = "probe" }
  s:close()
  for _, k in ipairs(functions(getmetatable(s).__index)) do add("sts:" .. k, "sts:" .. k) end
  for _, k in ipairs(functions(require("objstore.replicated").Replicated)) do add("store:" .. k, "store:" .. k) end
  for _, k in ipairs(functions(onx)) do add("objstore.openresty." .. k, "objstore.openresty." .. k) end
  for _, k in ipairs(functions(openresty_credentials)) do
    add("objstore.openresty.credentials." .. k, "objstore.openresty.credentials." .. k)
  end
  for _, k in ipairs(functions(front_tenants)) do
    add("objstore.front.tenants." .. k, "objstore.front.tenants." .. k)
  end
  for _, k in ipairs(functions(front_tenants.Registry)) do add("tenants:" .. k, "tenants:" .. k) end
  for _, k in ipairs(functions(front_server)) do
    add("objstore.front.server." .. k, "objstore.front.server." .. k)
  end
  return want
end

--- Problems of a reference text: public functions without an entry,
-- entries without a description, options without a meaning.
local function problems(text, option_tables)
  local e = entries(text)
  local out = {}
  for _, w in ipairs(public()) do
    local body
    for _, h in ipairs(w.headings) do body = body or e[h] end
    if not body then
      out[#out + 1] = w.name .. ": no entry (### " .. w.headings[1] .. ")"
    elseif not body:find("`syntax: ", 1, true) then
      out[#out + 1] = w.name .. ": no syntax line"
    elseif body:find("UNDOCUMENTED", 1, true) then
      out[#out + 1] = w.name .. ": undocumented (no `---` comment)"
    end
  end
  for name, allowed in pairs(option_tables) do
    local body = e["client:" .. name] or ""
    for opt in pairs(allowed) do
      local meaning = body:match("\n%- `" .. opt .. "`: ([^\n]*)")
      if not meaning or not meaning:find("%w") or meaning == "UNDOCUMENTED" then
        out[#out + 1] = "client:" .. name .. ": option " .. opt .. " is not documented"
      end
    end
  end
  local sync_opts = require("objstore.sync").OPTS
  for _, fn in ipairs{ "objstore.sync", "objstore.check" } do
    for opt in pairs(sync_opts) do
      local meaning = (e[fn] or ""):match("\n%- `" .. opt .. "`: ([^\n]*)")
      if not meaning or not meaning:find("%w") or meaning == "UNDOCUMENTED" then
        out[#out + 1] = fn .. ": option " .. opt .. " is not documented"
      end
    end
  end
  local new = e["objstore.new"] or ""
  for opt in pairs(Engine.OPTIONS) do
    local meaning = new:match("\n%- `" .. opt .. "`: ([^\n]*)")
    if not meaning or not meaning:find("%w") then
      out[#out + 1] = "objstore.new: client option " .. opt .. " is not documented"
    end
  end
  table.sort(out)
  return out
end

describe("docs/reference.md", function()
  local gen = can_generate and loadfile("spec/support/gen_reference.lua")("--module")
  local committed = read("docs/reference.md")

  it("has an entry for every public function and every option of every operation", function()
    local tables = gen and gen.option_tables() or {}
    assert.are.same({}, problems(committed, tables))
  end)

  it("finds what is missing (the checker itself)", function()
    local tables = gen and gen.option_tables() or { put_object = { content_md5 = true } }
    -- an entry removed
    local without = committed:gsub("\n### client:put_object\n", "\n### client:gone\n")
    local p = problems(without, tables)
    assert.truthy(table.concat(p, "\n"):find("client:put_object: no entry", 1, true))
    -- an option's meaning removed
    local no_opt = committed:gsub("\n%- `content_md5`: [^\n]*", "")
    p = problems(no_opt, tables)
    assert.truthy(table.concat(p, "\n"):find("client:put_object: option content_md5 is not documented", 1, true))
    -- a client option removed
    local no_client_opt = committed:gsub("\n%- `read_timeout`: [^\n]*", "")
    p = problems(no_client_opt, tables)
    assert.truthy(table.concat(p, "\n"):find("objstore.new: client option read_timeout", 1, true))
  end)

  it("captures the option tables of the operations (a probe that finds nothing proves nothing)", function()
    if not gen then return pending("the generator needs Lua 5.2+ or LuaJIT") end
    local tables = gen.option_tables()
    assert.truthy(tables.put_object.content_md5)
    assert.truthy(tables.get_object.on_head)
    assert.truthy(tables.upload_file.checkpoint)
    assert.truthy(tables.list_objects_iter.v1)
    local n = 0
    for _ in pairs(tables) do n = n + 1 end
    assert.is_true(n >= 20, "operations with options: " .. n)
  end)

  it("is what the generator makes of the sources (make docs)", function()
    if not gen then return pending("the generator needs Lua 5.2+ or LuaJIT") end
    local fresh = gen.generate()
    if fresh ~= committed then
      -- the first line that differs, to say where
      local a, b, n = {}, {}, 0
      for l in committed:gmatch("([^\n]*)\n") do a[#a + 1] = l end
      for l in fresh:gmatch("([^\n]*)\n") do b[#b + 1] = l end
      repeat n = n + 1 until a[n] ~= b[n]
      error("docs/reference.md is stale (run make docs): line " .. n .. "\n  file: " .. tostring(a[n])
        .. "\n  code: " .. tostring(b[n]))
    end
  end)
end)
