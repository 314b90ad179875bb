-- The bad-input matrix: every operation of the registry (objstore.operations,
-- so a new one is covered without editing this file), the client's request
-- API and the public modules' functions and methods, called with wrong
-- types, empty, huge, NUL-carrying and invalid UTF-8 strings, negative,
-- NaN and infinite numbers; then the operations against hostile server
-- answers from a real TCP server (spec/support/hostile_server.py). Each
-- case must either raise in the one misuse format
--   objstore.<module>.<fn>: argument #n (name): problem
-- or return nil, err with the shared error metatable (or succeed); nothing
-- crashes, and nothing is left half-written.
local objstore = require "objstore"
local operations = require "objstore.operations"
local errors = require "objstore.errors"
local servers = require "servers"
local lfs = require "lfs"
local core = require "objstore.core"
local plan = require "objstore.transfer.plan"

local unpack = table.unpack or unpack
local DEAD = "http://127.0.0.1:18447" -- nothing listens there (this helper's port range)
local HOSTILE_PORT = 18448

local HUGE = ("x"):rep(1024 * 1024 + 1)
local VALUES = {
  { "nil", nil }, { "true", true }, { "false", false }, { "zero", 0 }, { "negative", -1 },
  { "fraction", 0.5 }, { "NaN", 0 / 0 }, { "math.huge", math.huge }, { "-math.huge", -math.huge },
  { "2^63", 2 ^ 63 }, { "empty string", "" }, { "huge string", HUGE }, { "NUL byte", "a\0b" },
  { "invalid UTF-8", "\255\254\192\128" }, { "CR LF", "a\r\nX-Injected: 1" }, { "table", {} },
  { "function", function() end }, { "file handle", io.stdout }, { "coroutine", coroutine.create(function() end) },
}

local cases, failures = 0, {}

local function describe_value(v)
  if type(v) == "string" then return #v > 40 and ("string of " .. #v .. " bytes") or string.format("%q", v) end
  return tostring(v)
end

-- The three forms of errors.argument: about argument #n, about a named
-- thing that is no argument (a closed object), or about the call itself
-- (objstore.log.ngx outside nginx).
local function misuse_format(e)
  return type(e) == "string" and (e:match("objstore%.[%w_.]+: argument #%d+ %([^)]*%): .")
    or e:match("objstore%.[%w_.]+: %([^)]*%): .") or e:match("^[^\n]-objstore%.[%w_]+%.[%w_.]+: %S"))
end

--- Runs f(...) and checks its outcome; returns "raised", "error" or "ok".
local function check(label, f, ...)
  cases = cases + 1
  local r = { pcall(f, ...) }
  local kind
  if not r[1] then
    if misuse_format(r[2]) then return "raised", r[2] end
    kind = "raised outside the misuse format: " .. tostring(r[2])
  elseif r[2] == nil and r[3] ~= nil then
    local e = r[3]
    if errors.is(e) and type(e.code) == "string" and e.code ~= "" and type(e.message) == "string" then
      return "error", e
    end
    kind = "returned an error without the shared metatable, code and message: " .. tostring(e)
  else
    return "ok", r[2]
  end
  failures[#failures + 1] = label .. ": " .. kind
  return "bad"
end

--- A valid value for a parameter, by its name in the builder.
local function valid(name, dir)
  local map = {
    bucket = "h11-bad", src_bucket = "h11-bad", dst_bucket = "h11-bad", key = "k", src_key = "k", dst_key = "k2",
    body = "data", upload_id = "upload-1", part_number = 1, parts = { { part_number = 1, etag = '"e"' } },
    keys = { "k" }, path = dir .. "/file", canned = "private", status = "Enabled",
    policy = '{"Version":"2012-10-17","Statement":[]}', name = "put_object", method = "GET",
  }
  return map[name]
end

--- The parameter names of an operation (after the client), or nil (Lua 5.1
-- cannot read them from a function that is not running).
local function params(fn)
  local out = {}
  for i = 2, 12 do
    local ok, n = pcall(debug.getlocal, fn, i)
    if not ok then return nil end
    if not n then break end
    out[#out + 1] = n
  end
  return out
end

--- Prints the count of cases so far; fails listing the first failure of
-- each function that failed.
local function report()
  print(("bad-input matrix: %d cases, %d failures"):format(cases, #failures))
  local seen, firsts = {}, {}
  for _, f in ipairs(failures) do
    local fn = f:match("^(%S+)")
    if not seen[fn] then seen[fn] = true; firsts[#firsts + 1] = f end
  end
  assert(#failures == 0, #firsts .. " functions failed:\n" .. table.concat(firsts, "\n"))
end

describe("bad-input matrix", function()
  local dir
  setup(function()
    dir = servers.tmpdir()
    servers.write_file(dir .. "/file", "local file")
  end)
  teardown(function() servers.sh("rm -rf " .. servers.q(dir)) end)
  before_each(function() failures = {} end)

  local function client(extra)
    local o = { endpoint = DEAD, access_key = "AKIDBAD", secret_key = "secret", region = "us-east-1",
      addressing = "path", connect_timeout = 1, timeout = 5, retry = { max_attempts = 1 } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return objstore.new(o)
  end

  it("every operation of the registry, each argument", function()
    local c = client()
    local names = {}
    for name in pairs(operations) do names[#names + 1] = name end
    table.sort(names)
    assert.is_true(#names > 20)
    for _, name in ipairs(names) do
      local entry = operations[name]
      local known = params(entry.call or entry.build)
      local ps = known or { "bucket", "key", "body", "opts" }
      local base = {}
      for i, p in ipairs(ps) do base[i] = valid(p, dir) end
      local n = #ps
      for i = 1, n do
        for _, v in ipairs(VALUES) do
          local args = { unpack(base, 1, n) }
          args[i] = v[2]
          check(("%s argument #%d (%s) = %s"):format(name, i, ps[i], v[1]), function()
            local method = c[name]
            return method(c, unpack(args, 1, n))
          end)
        end
      end
      -- opts that are not options of the call, and bad per-call hooks
      if known and ps[n] == "opts" then
        for _, o in ipairs{ { unknown_option = 1 }, { hooks = 1 }, { hooks = { on_request = 1 } }, { [1] = "x" } } do
          local args = { unpack(base, 1, n) }
          args[n] = o
          local kind = check(name .. " bad opts", function() return c[name](c, unpack(args, 1, n)) end)
          if kind ~= "bad" and kind ~= "raised" then
            failures[#failures + 1] = name .. " accepted opts " .. describe_value(next(o)) .. ": " .. kind
          end
        end
      end
    end
    -- nothing was written next to the paths the matrix used
    for f in lfs.dir(dir) do
      assert.is_true(f == "." or f == ".." or f == "file", "left behind: " .. f)
    end
    c:close()
    report()
  end)

  it("the client's request API, constructor and presign", function()
    local c = client()
    local api = {
      build_request = 3, send = 1, run = 1, prepare = 3, presign = 4,
    }
    for name, n in pairs(api) do
      for i = 1, n do
        for _, v in ipairs(VALUES) do
          local args = { "put_object", "h11-bad", "k" }
          if name == "presign" then args = { "GET", "h11-bad", "k", nil } end
          args[i] = v[2]
          check(("client:%s argument #%d = %s"):format(name, i, v[1]), function()
            return c[name](c, unpack(args, 1, n))
          end)
        end
      end
    end
    -- every option of objstore.new, one at a time
    local option_names = { "provider", "endpoint", "region", "access_key", "secret_key", "session_token",
      "credentials", "addressing", "signature", "timeout", "connect_timeout", "tls", "transport", "proxy",
      "user_agent", "profile", "env", "max_connections", "retry", "endpoints", "failover", "hooks", "metrics",
      "log", "log_level", "deadline", "read_timeout", "send_timeout" }
    for _, opt in ipairs(option_names) do
      for _, v in ipairs(VALUES) do
        check(("objstore.new opts.%s = %s"):format(opt, v[1]), function()
          local o = { endpoint = DEAD, access_key = "a", secret_key = "s", region = "us-east-1", env = {} }
          o[opt] = v[2]
          if opt == "endpoints" then o.endpoint = nil end
          local nc = objstore.new(o)
          local r, e = nc:head_object("h11-bad", "k")
          nc:close()
          return r, e
        end)
      end
    end
    for _, v in ipairs(VALUES) do
      check("objstore.new(" .. v[1] .. ")", objstore.new, v[2])
      check("objstore.replicated(" .. v[1] .. ")", objstore.replicated, v[2])
    end
    c:close()
    report()
  end)

  it("the public modules' functions and objects' methods", function()
    -- Functions that take a path (core.mpu.checkpoint creates its file)
    -- get the matrix's strings and numbers as relative paths: run them in
    -- a directory of their own, not in the repository.
    local cwd, scratch = lfs.currentdir(), servers.tmpdir()
    local path, cpath = package.path, package.cpath
    package.path = (path:gsub("%./", cwd .. "/"))
    package.cpath = (cpath:gsub("%./", cwd .. "/"))
    assert(lfs.chdir(scratch))
    finally(function()
      lfs.chdir(cwd)
      package.path, package.cpath = path, cpath
      servers.sh("rm -rf " .. servers.q(scratch))
    end)
    -- The modules objstore's documentation offers (lua/objstore/init.lua,
    -- README.md). objstore.credentials is left to the credentials work
    -- (issue 9): from_env and parse_ini index what they are given.
    local modules = { "objstore", "objstore.engine.request", "objstore.engine.signer", "objstore.checksum",
      "objstore.xml", "objstore.errors", "objstore.transport", "objstore.transport.curl", "objstore.metrics",
      "objstore.log" }
    local skip = { sleep = true } -- math.huge seconds would be a real wait
    local function each_function(t, prefix, fn)
      local keys = {}
      for k, v in pairs(t) do
        if type(k) == "string" and type(v) == "function" and not skip[k] and k:sub(1, 1) ~= "_" then
          keys[#keys + 1] = k
        end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do fn(prefix .. k, t[k]) end
    end
    local function matrix(label, f, self_value)
      for i = 1, 3 do
        for _, v in ipairs(VALUES) do
          local args = {}
          args[i] = v[2]
          if self_value ~= nil then
            check(("%s argument #%d = %s"):format(label, i, v[1]), f, self_value(), unpack(args, 1, 3))
          else
            check(("%s argument #%d = %s"):format(label, i, v[1]), f, unpack(args, 1, 3))
          end
        end
      end
    end
    for _, m in ipairs(modules) do
      each_function(require(m), m .. ".", function(label, f) matrix(label, f) end)
    end
    -- the C core, module by module
    for name, sub in pairs(core) do
      if type(sub) == "table" and name ~= "error_mt" then
        each_function(sub, "objstore.core." .. name .. ".", function(label, f) matrix(label, f) end)
      end
    end
    -- methods, each on a fresh object
    local makers = {
      signer = function() return assert(require("objstore.engine.signer").new{ algorithm = "aws4", access_key = "a",
        secret_key = "s", region = "us-east-1" }) end,
      transport = function() return assert(require("objstore.transport.curl").new{ connect_timeout = 1 }) end,
      metrics = function() return require("objstore.metrics").new() end,
      checksum = function() return assert(require("objstore.checksum").new("crc32c")) end,
      client = function() return client() end,
    }
    for kind, make in pairs(makers) do
      local obj = make()
      local mt = getmetatable(obj)
      local methods = type(mt) == "table" and type(mt.__index) == "table" and mt.__index or obj
      each_function(methods, kind .. ":", function(label, f)
        if not operations[label:match(":(.*)$")] then matrix(label, f, make) end
      end)
    end
    report()
  end)

  it("hostile server answers: a clear error, no crash, nothing half-written", function()
    local log = dir .. "/hostile.log"
    local ok, out = servers.sh("(/usr/bin/python3 spec/support/hostile_server.py " .. HOSTILE_PORT .. " 300 >"
      .. servers.q(log) .. " 2>&1 & echo $!)")
    local pid = assert(ok and out:match("(%d+)"), out)
    finally(function() servers.sh("kill " .. pid .. " 2>/dev/null") end)
    for _ = 1, 100 do
      if (servers.read_file(log) or ""):find("listening") then break end
      servers.sh("sleep 0.1")
    end
    assert.matches("listening", servers.read_file(log) or "")
    local c = client{ endpoint = "http://127.0.0.1:" .. HOSTILE_PORT, timeout = 10,
      retry = { max_attempts = 2, base_delay = 0.01, max_delay = 0.02 } }
    local out_dir = dir .. "/downloads"
    assert(lfs.mkdir(out_dir))
    local modes = { "malformed-xml", "not-xml", "error-200", "huge-header", "many-headers", "long-body",
      "short-body", "bad-length", "huge-length", "garbage", "bad-status", "nul-header", "empty" }
    local parts = { { part_number = 1, etag = '"0123456789abcdef0123456789abcdef"' } }
    local xml_modes = { ["malformed-xml"] = true, ["not-xml"] = true, ["error-200"] = true }
    for _, mode in ipairs(modes) do
      local calls = {
        list_objects = function() return c:list_objects(mode) end,
        list_object_versions = function() return c:list_object_versions(mode) end,
        list_multipart_uploads = function() return c:list_multipart_uploads(mode) end,
        get_bucket_location = function() return c:get_bucket_location(mode) end,
        get_bucket_acl = function() return c:get_bucket_acl(mode) end,
        get_object = function() return c:get_object(mode, "k") end,
        head_object = function() return c:head_object(mode, "k") end,
        put_object = function() return c:put_object(mode, "k", "data") end,
        create_multipart_upload = function() return c:create_multipart_upload(mode, "k") end,
        complete_multipart_upload = function() return c:complete_multipart_upload(mode, "k", "u", parts) end,
        copy_object = function() return c:copy_object(mode, "b", { bucket = mode, key = "a" }) end,
        delete_objects = function() return c:delete_objects(mode, { "a", "b" }) end,
        download_file = function() return c:download_file(mode, "k", out_dir .. "/" .. mode) end,
        get_object_file = function() return c:get_object(mode, "k", { file = out_dir .. "/get-" .. mode }) end,
        upload_file = function()
          return c:upload_file(mode, "k", dir .. "/file", { multipart_threshold = 1, part_size = 5 * 1024 * 1024,
            checkpoint = out_dir .. "/cp-" .. mode })
        end,
      }
      for name, f in pairs(calls) do
        local label = ("%s against %s"):format(name, mode)
        local kind, v = check(label, f)
        local function expect(cond, what)
          if not cond then failures[#failures + 1] = label .. ": " .. what .. " (got " .. kind .. ": "
            .. tostring(v) .. ")" end
        end
        -- What must be an error: a listing or XML answer that cannot be read,
        -- an S3 error document in a 200 (S3 sends those for Complete and
        -- Copy), a body that ends before its Content-Length.
        if name:match("^list_") or name:match("^get_bucket") or name == "create_multipart_upload"
            or name == "complete_multipart_upload" or name == "copy_object" then
          expect(kind == "error", "an unreadable answer must be an error")
          if mode == "error-200" and kind == "error" then
            expect(v.code == "InternalError" and v.request_id == "hostile-1", "the error document's code and id")
          end
        end
        if name == "delete_objects" then
          -- a batch that failed as a whole: nil, err (the partial-failure
          -- rule) and each of its keys in err.result.errors
          local res = kind == "error" and v.result
          expect(res and #res.deleted == 0 and #res.errors == 2 and res.errors[1].code ~= nil
            and errors.is(res.errors[1].error) and v.code == res.errors[1].code, "both keys reported as not deleted")
          if mode == "error-200" and res then
            expect(res.errors[1].code == "InternalError" and v.code == "InternalError", "the error document's code")
          end
        end
        if name == "get_object" then
          if xml_modes[mode] then
            expect(kind == "ok" and v.body:sub(1, 5) ~= "" and #v.body == v.content_length, "the body as sent")
          elseif mode == "long-body" then
            expect(kind == "ok" and v.body == "0123456789", "exactly Content-Length bytes")
          else
            expect(kind == "error", "a broken answer must be an error")
          end
          if mode == "huge-length" or mode == "bad-length" then
            expect(kind == "error" and v.code == "ProtocolError", "an invalid Content-Length is a ProtocolError")
          elseif mode == "short-body" then
            expect(kind == "error" and v.code == "BodyTruncated", "a short body is BodyTruncated")
          end
        end
        if name == "download_file" then
          local path = out_dir .. "/" .. mode
          if kind == "ok" then
            expect(servers.read_file(path) == "0123456789" and mode == "long-body", "only a whole, verified file")
          else
            expect(lfs.attributes(path) == nil, "no file after a failed download")
          end
          expect(lfs.attributes(path .. ".objstore-part") == nil, "no partial file left")
        end
      end
    end
    -- An upload_file whose CreateMultipartUpload got no readable answer
    -- keeps its intent (the server may have made an upload a resume then
    -- adopts or aborts): a checkpoint with no upload id and no part.
    local function intent_only(path, bucket)
      local size = lfs.attributes(dir .. "/file", "size")
      local psize = plan.part_size(size, "s3", 5 * 1024 * 1024)
      local m = assert(core.mpu.new{ size = size, part_size = psize })
      local ck = assert(core.mpu.checkpoint(path))
      local status, h = ck:load(m, { kind = "upload", bucket = bucket, key = "k", file_size = size,
        file_mtime = math.floor(lfs.attributes(dir .. "/file", "modification")),
        file_inode = lfs.attributes(dir .. "/file", "ino"), part_size = psize, object_size = size })
      ck:close()
      return status == "resume" and h.upload_id == nil and select(2, m:count()) == 0
    end
    -- nothing but whole files the server's answers fully gave
    for f in lfs.dir(out_dir) do
      if f ~= "." and f ~= ".." then
        local whole = { ["long-body"] = true, ["get-long-body"] = true, ["get-malformed-xml"] = true,
          ["get-not-xml"] = true, ["get-error-200"] = true }
        local cp_of = f:match("^cp%-(.*)$")
        if cp_of then
          assert.is_nil(xml_modes[cp_of], "a checkpoint left after a refused Create: " .. f)
          assert.is_true(intent_only(out_dir .. "/" .. f, cp_of), "more than an intent in " .. f)
        else
          assert.is_true(whole[f] ~= nil, "left behind: " .. f)
        end
      end
    end
    -- the connection a long body poisoned is not reused for garbage
    local _, e = c:list_objects("long-body")
    assert.is_true(errors.is(e))
    local got = assert(c:get_object("long-body", "k"))
    assert.equals("0123456789", got.body)
    c:close()
    report()
  end)
end)
