-- Data safety against a store that lies in its listings: a hostile S3
-- server (spec/support/hostile_listing.py, a real HTTP server on 127.0.0.1,
-- no S3 behind it) answers with repeating continuation tokens, truncated
-- pages without a token, keys outside the asked prefix, unsorted pages, a
-- failing second page, hostile keys, archived objects and the empty body
-- of a quiet DeleteObjects (Alibaba OSS). What must hold: a listing never
-- loops without end and never ends silently when it is incomplete; an
-- incomplete listing deletes nothing and is an error; a prefix operation
-- touches nothing outside its prefix; a quiet delete answered with an
-- empty body is a success.
local objstore = require "objstore"
local hostile = require "hostile_listing"
local servers = require "servers"
local lfs = require "lfs"

local q, sh = servers.q, servers.sh

local LUA = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local BIN = LUA .. " " .. q(lfs.currentdir() .. "/bin/objstore")
local ENV = "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null "
  .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null OBJSTORE_PROGRESS_INTERVAL=0"
local BUCKET = "bkt"
-- Every key of the server's object set under p/ (spec/support/hostile_listing.py).
local UNDER_P = { "p/a", "p/b", "p/c", "p/d", "p/e", "p/sub/f" }

local srv, c, tmp

local function client(extra)
  local o = { endpoint = srv.url, access_key = "x", secret_key = "y", region = "us-east-1", timeout = 10,
    retry = { max_attempts = 2, base_delay = 0.01, max_delay = 0.02 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return objstore.new(o)
end

--- Reads an iterator to its end (at most `cap` items): items, err.
local function drain(it, cap)
  local items = {}
  for item, err in it do
    if not item then return items, err end
    items[#items + 1] = item.key or item.prefix
    if #items >= (cap or 1000) then return items, "runaway: " .. #items .. " items" end
  end
  return items
end

local function sorted(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s
end

local function write(path, data)
  sh("mkdir -p " .. q(path:match("^(.*)/")))
  servers.write_file(path, data)
end

--- A fresh local directory with files rel -> content.
local function local_dir(files)
  local d = tmp .. "/d" .. tostring(math.random(1, 1e9))
  assert(lfs.mkdir(d))
  for rel, data in pairs(files) do write(d .. "/" .. rel, data) end
  return d
end

local function exists(path) return lfs.attributes(path, "mode") ~= nil end

--- The codes of a failed sync's errors (err.result.errors), joined.
local function codes(err)
  local out = {}
  for _, e in ipairs(err and err.result and err.result.errors or {}) do
    out[#out + 1] = tostring(e.error and e.error.code or e.error)
  end
  return table.concat(out, " ")
end

--- run(args) -> rc, stdout, stderr, seconds: the command line against the hostile server, bounded to 60 s.
local function cli(args)
  local d = tmp .. "/cli" .. tostring(math.random(1, 1e9))
  assert(lfs.mkdir(d))
  local t0 = os.time()
  os.execute(string.format("%s timeout 60 %s --endpoint %s %s </dev/null >%s/out 2>%s/err; echo $? >%s/rc", ENV, BIN,
    q(srv.url), args, q(d), q(d), q(d)))
  local rc = tonumber(servers.read_file(d .. "/rc"))
  local out, err = servers.read_file(d .. "/out") or "", servers.read_file(d .. "/err") or ""
  sh("rm -rf " .. q(d))
  return rc, out, err, os.time() - t0
end

describe("listing safety against a hostile server", function()
  setup(function()
    math.randomseed(os.time())
    tmp = "/tmp/h17c-listing-" .. tostring(math.random(1, 1e9))
    assert(lfs.mkdir(tmp))
    srv = hostile.start{ lifetime = 900 }
    c = client()
  end)

  teardown(function()
    if srv then srv:stop() end
    if tmp then sh("rm -rf " .. q(tmp)) end
  end)

  describe("list_objects_iter", function()
    it("repeat_token (V2): a continuation token received twice is PaginationLoop, after two requests", function()
      srv:mode("repeat_token")
      local items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/" }))
      assert.is_table(err, tostring(err))
      assert.equals("PaginationLoop", err.code)
      assert.matches("The same next token was received twice", err.message, 1, true)
      assert.is_false(err.retryable)
      assert.equals(2, srv:count("ListObjectsV2"))
      assert.same({ "p/a", "p/b" }, items) -- the first page, once
    end)

    it("repeat_token (v1): a NextMarker received twice is PaginationLoop", function()
      srv:mode("repeat_token")
      local _, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/", v1 = true }))
      assert.is_table(err, tostring(err))
      assert.equals("PaginationLoop", err.code)
      assert.is_true(srv:count("ListObjects") <= 3)
    end)

    it("truncated_no_token (V2): IsTruncated without NextContinuationToken is TruncatedListing", function()
      srv:mode("truncated_no_token")
      local items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/" }))
      assert.is_table(err, "the listing ended silently after " .. #items .. " keys")
      assert.equals("TruncatedListing", err.code)
      assert.is_false(err.retryable)
      assert.equals(1, srv:count("ListObjectsV2"))
    end)

    it("truncated_no_token (v1, no delimiter): a truncated page with no key to go on from is TruncatedListing",
      function()
        srv:mode("truncated_no_token")
        -- The pages advance by their last key (as v1 allows) until an empty,
        -- still truncated page.
        local items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/", v1 = true }))
        assert.is_table(err, "the listing ended silently after " .. #items .. " keys")
        assert.equals("TruncatedListing", err.code)
        assert.same(UNDER_P, items)
      end)

    it("truncated_no_token (v1, delimiter): a truncated page without NextMarker is TruncatedListing", function()
      srv:mode("truncated_no_token")
      local items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/", delimiter = "/", v1 = true }))
      assert.is_table(err, "the listing ended silently after " .. #items .. " entries")
      assert.equals("TruncatedListing", err.code)
      assert.equals(1, srv:count("ListObjects"))
    end)

    it("ignore_prefix: nothing outside the prefix is yielded (V2, v1, with a delimiter)", function()
      srv:mode("ignore_prefix")
      local items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/" }))
      assert.is_nil(err, tostring(err))
      assert.same(UNDER_P, items)
      items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/", v1 = true }))
      assert.is_nil(err, tostring(err))
      assert.same(UNDER_P, items)
      items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/", delimiter = "/" }))
      assert.is_nil(err, tostring(err))
      assert.same({ "p/a", "p/b", "p/c", "p/d", "p/e", "p/sub/" }, sorted(items))
      -- The server did send what was dropped.
      srv:mode("ignore_prefix")
      local page = assert(c:list_objects(BUCKET, { prefix = "p/" }))
      assert.equals("other/outside", page.contents[1].key)
    end)

    it("bad_keys: hostile keys come back byte for byte; a key no request can name (not UTF-8) is an error",
      function()
        srv:mode("bad_keys", 1)
        local items, err = drain(c:list_objects_iter(BUCKET, { prefix = "p/" }))
        -- "p/\255\254-bad-utf8" sorts last, alone on its page: everything
        -- before it is yielded.
        assert.is_table(err, "an invalid key was yielded")
        assert.equals("MalformedResponse", err.code)
        assert.matches("not valid UTF-8", err.message, 1, true)
        local set = {}
        for _, k in ipairs(items) do set[k] = true end
        for _, k in ipairs{ "p/../escape", "p/x/../../../escape2", "p//abs", "p/a//b", "p/ctl-\1\31" } do
          assert.is_true(set[k], ("%q missing"):format(k))
        end
        items, err = drain(c:list_objects_iter(BUCKET, { prefix = "../" }))
        assert.is_nil(err, tostring(err))
        assert.same({ "../escape" }, items)
      end)
  end)

  describe("sync", function()
    --- local -> remote with delete, the remote (destination) listing hostile.
    local function up(mode, files, budget)
      srv:mode(mode, 2, budget)
      local d = local_dir(files or { a = "p/a", c = "p/c" })
      local res, err = objstore.sync(c, d, { bucket = BUCKET, prefix = "p" }, { delete = true, state = false })
      return res, err
    end

    --- remote -> local with delete, the remote (source) listing hostile.
    local LOCAL = { a = "p/a", b = "p/b", c = "p/c", d = "p/d", e = "p/e", ["sub/f"] = "p/sub/f", zzz = "local" }
    local function down(mode, page_size, may_delete)
      srv:mode(mode, page_size)
      local d = local_dir(LOCAL)
      local res, err = objstore.sync(c, { bucket = BUCKET, prefix = "p" }, d, { delete = true, state = false })
      for rel in pairs(LOCAL) do
        if rel ~= may_delete then assert.is_true(exists(d .. "/" .. rel), rel .. " was removed") end
      end
      return res, err
    end

    local function no_deletes()
      assert.equals(0, srv:count("DeleteObjects"))
      assert.equals(0, srv:count("DeleteObject"))
    end

    it("local -> remote, truncated_no_token destination: deletes nothing, fails", function()
      local res, err = up("truncated_no_token")
      assert.is_nil(res, "the sync succeeded on an incomplete listing")
      assert.matches("TruncatedListing", codes(err))
      no_deletes()
    end)

    it("local -> remote, repeat_token destination: PaginationLoop, deletes nothing", function()
      local res, err = up("repeat_token")
      assert.is_nil(res)
      assert.matches("PaginationLoop", codes(err))
      assert.is_true(srv:count("ListObjectsV2") <= 3)
      no_deletes()
    end)

    it("local -> remote, fail_halfway destination: deletes nothing, fails", function()
      local res, err = up("fail_halfway")
      assert.is_nil(res)
      assert.matches("InternalError", codes(err))
      no_deletes()
    end)

    it("local -> remote, unsorted destination: UnsortedListing, deletes nothing", function()
      local res, err = up("unsorted")
      assert.is_nil(res)
      assert.matches("UnsortedListing", codes(err))
      no_deletes()
    end)

    it("local -> remote over 1000 local files (ranged listing), truncated_no_token: deletes nothing, fails",
      function()
        local files = {}
        for i = 1, 1001 do files[("n%04d"):format(i)] = "x" end
        local res, err = up("truncated_no_token", files)
        assert.is_nil(res, "the sync succeeded on an incomplete listing")
        assert.matches("TruncatedListing", codes(err))
        no_deletes()
      end)

    it("local -> remote over 1000 local files (ranged listing), repeat_token: PaginationLoop, deletes nothing",
      function()
        local files = {}
        for i = 1, 1001 do files[("n%04d"):format(i)] = "x" end
        local res, err = up("repeat_token", files)
        assert.is_nil(res)
        assert.matches("PaginationLoop", codes(err))
        no_deletes()
      end)

    it("local -> remote over 1000 local files (ranged listing), ignore_prefix: deletes only under the prefix",
      function()
        local files = {}
        for i = 1, 1001 do files[("n%04d"):format(i)] = "x" end
        local res, err = up("ignore_prefix", files, 3000) -- 1001 PUTs
        assert.is_nil(err, tostring(err))
        local deleted = sorted(srv:deleted())
        assert.same(UNDER_P, deleted)
        assert.equals(6, res.deleted)
      end)

    it("remote -> local, truncated_no_token source: no local file removed, fails", function()
      local res, err = down("truncated_no_token")
      assert.is_nil(res, "the sync succeeded on an incomplete listing")
      assert.matches("TruncatedListing", codes(err))
    end)

    it("remote -> local, repeat_token source: PaginationLoop, no local file removed", function()
      local res, err = down("repeat_token")
      assert.is_nil(res)
      assert.matches("PaginationLoop", codes(err))
      assert.is_true(srv:count("ListObjectsV2") <= 3)
    end)

    it("remote -> local, fail_halfway source: no local file removed, fails", function()
      local res, err = down("fail_halfway")
      assert.is_nil(res)
      assert.matches("InternalError", codes(err))
    end)

    it("remote -> local, unsorted source: UnsortedListing, no local file removed", function()
      local res, err = down("unsorted", 3)
      assert.is_nil(res, "an unsorted listing was joined as if sorted")
      assert.matches("UnsortedListing", codes(err))
    end)

    it("remote -> local, ignore_prefix source: only the prefix is synced", function()
      local res, err = down("ignore_prefix", 2, "zzz")
      assert.is_nil(err, tostring(err))
      assert.equals(1, res.deleted) -- zzz, which the source does not have
    end)

    it("remote -> local, archived source: the archived objects are skipped, never fetched", function()
      srv:mode("archived")
      local d = local_dir({})
      local res = assert(objstore.sync(c, { bucket = BUCKET, prefix = "p" }, d, { state = false }))
      assert.equals(2, res.skipped)
      for _, r in ipairs(srv:log()) do
        if r.op == "GetObject" then assert.is_true(r.key ~= "p/b" and r.key ~= "p/c", r.key) end
      end
      assert.is_nil(lfs.attributes(d .. "/b"))
      assert.equals("p/a", servers.read_file(d .. "/a"))
    end)

    it("remote -> local, bad_keys: nothing is written outside the destination, nothing deleted, an error",
      function()
        srv:mode("bad_keys", 5)
        local parent = tmp .. "/bad" .. tostring(math.random(1, 1e9))
        assert(lfs.mkdir(parent))
        local d = parent .. "/dst"
        assert(lfs.mkdir(d))
        servers.write_file(d .. "/zzz", "local")
        local res, err = objstore.sync(c, { bucket = BUCKET, prefix = "p" }, d, { state = false, delete = true })
        assert.is_nil(res)
        -- The name no request can name fails alone (the run goes on); every delete is held back.
        assert.matches("InvalidName", codes(err))
        assert.is_true(exists(d .. "/zzz"))
        local outside = {}
        for name in lfs.dir(parent) do
          if name ~= "." and name ~= ".." and name ~= "dst" then outside[#outside + 1] = name end
        end
        assert.same({}, outside)
        assert.is_nil(lfs.attributes(tmp .. "/escape"))
        assert.is_nil(lfs.attributes(tmp .. "/escape2"))
      end)

    it("local -> remote with delete, each refused key reported twice: counted once, the others deleted", function()
      local res, err = up("delete_dup_errors")
      assert.is_nil(res)
      local r = err.result
      assert.equals(2, r.failed)
      assert.equals(2, #r.errors)
      assert.equals(2, r.deleted) -- p/e, p/sub/f
    end)

    it("remote -> local move, each refused source reported twice: counted once, the others removed", function()
      srv:mode("delete_dup_errors")
      local d = local_dir({})
      local res, err = objstore.sync(c, { bucket = BUCKET, prefix = "p" }, d, { move = true, state = false })
      assert.is_nil(res)
      local r = err.result
      assert.equals(2, r.failed)
      assert.equals(2, #r.errors)
      assert.equals(4, r.removed) -- p/a, p/c, p/e, p/sub/f
    end)

    it("local -> remote with delete, quiet DeleteObjects answered with an empty body: the deletes succeed", function()
      local res, err = up("quiet_empty")
      assert.is_nil(err, tostring(err))
      assert.equals(4, res.deleted) -- p/b, p/d, p/e, p/sub/f
      assert.equals(1, srv:count("DeleteObjects"))
    end)
  end)

  describe("delete_objects", function()
    it("quiet, answered 200 with an empty body (Alibaba OSS): every key deleted, one request (s3 and oss)",
      function()
        local oss = objstore.new{ provider = "oss", endpoint = "http://localhost:" .. srv.port, region = "cn-hangzhou",
          access_key = "x", secret_key = "y", timeout = 10,
          retry = { max_attempts = 2, base_delay = 0.01, max_delay = 0.02 } }
        for name, cl in pairs{ s3 = c, oss = oss } do
          srv:mode("quiet_empty")
          local out = cl:delete_objects(BUCKET, { "p/a", "p/b" }, { quiet = true })
          assert.same({}, out.errors, name)
          local log = srv:log()
          assert.equals(1, #log, name)
          assert.equals("DeleteObjects", log[1].op)
          assert.same({ "p/a", "p/b" }, log[1].delete_keys)
          if name == "oss" then assert.matches("^bkt%.localhost:", log[1].host) end
        end
      end)

    it("answered 200 with another document than a DeleteResult: no key is said deleted (quiet or not)", function()
      for _, quiet in ipairs{ true, false } do
        srv:mode("delete_other_root")
        local none, err = c:delete_objects(BUCKET, { "p/a", "p/b" }, { quiet = quiet })
        assert.is_nil(none)
        assert.equals("MalformedResponse", err.code)
        assert.equals(2, #err.result.errors)
        assert.same({}, err.result.deleted)
      end
    end)

    it("over many batches: every batch's failures are reported, a batch failed as a whole with all its keys",
      function()
        for _, quiet in ipairs{ false, true } do
          srv:mode("normal")
          local keys = {}
          for i = 1, 2500 do keys[i] = ("ok/%04d"):format(i) end
          for i = 10, 50, 10 do keys[i] = ("deny/%04d"):format(i) end -- batch 1: per-key AccessDenied
          keys[1500] = "fail/1500" -- batch 2: a 500 for the whole request
          keys[2400] = "deny/2400" -- batch 3
          local none, err = c:delete_objects(BUCKET, keys, { quiet = quiet })
          -- The partial-failure rule: nil, err, and what was done in err.result.
          assert.is_nil(none)
          assert.equals("PartialFailure", err.code)
          assert.matches("^1006 of 2500 keys not deleted %(first: ", err.message)
          local out = err.result
          local failed = {}
          for _, e in ipairs(out.errors) do failed[e.key] = e.code end
          assert.equals(6 + 1000, #out.errors)
          assert.equals("AccessDenied", failed["deny/0010"])
          assert.equals("AccessDenied", failed["deny/2400"])
          assert.equals("InternalError", failed["ok/1001"])
          assert.equals("InternalError", failed["ok/2000"])
          assert.is_nil(failed["ok/2001"])
          assert.equals(quiet and 0 or 2500 - 1006, #out.deleted)
          assert.equals(4, srv:count("DeleteObjects")) -- batch 2 tried twice
        end
      end)
  end)

  describe("the command line", function()
    it("rm -r with ignore_prefix deletes only keys under the prefix", function()
      srv:mode("ignore_prefix")
      local rc, _, err = cli("rm -r s3://" .. BUCKET .. "/p/")
      assert.equals(0, rc, err)
      assert.same(UNDER_P, sorted(srv:deleted()))
    end)

    it("rm -r deletes only below the prefix as given: 'p' is 'p/' (never 'pp'), 'p//' is not 'p/'", function()
      srv:mode("bad_keys", 100)
      local rc, _, err = cli("rm -r s3://" .. BUCKET .. "/p//")
      assert.equals(0, rc, err)
      assert.same({ "p//abs" }, sorted(srv:deleted()))
      srv:mode("normal")
      rc, _, err = cli("rm -r s3://" .. BUCKET .. "/p")
      assert.equals(0, rc, err)
      assert.same(UNDER_P, sorted(srv:deleted()))
    end)

    it("rm -r answered with another document than a DeleteResult: exit 1, no key said deleted", function()
      srv:mode("delete_other_root")
      local rc, out, err = cli("rm -r --json s3://" .. BUCKET .. "/p/")
      assert.equals(1, rc, err)
      assert.matches("MalformedResponse", err)
      assert.no_match('"action":"delete"', out, 1, true)
    end)

    it("rm -r with repeat_token exits 1 within seconds and deletes nothing", function()
      srv:mode("repeat_token")
      local rc, _, err, secs = cli("rm -r s3://" .. BUCKET .. "/p/")
      assert.equals(1, rc, err)
      assert.matches("PaginationLoop", err)
      assert.is_true(secs <= 10, secs .. " s")
      assert.is_true(srv:count("ListObjectsV2") <= 3)
      assert.same({}, srv:deleted())
    end)

    it("rm -r with truncated_no_token exits 1 and deletes nothing", function()
      srv:mode("truncated_no_token")
      local rc, _, err = cli("rm -r s3://" .. BUCKET .. "/p/")
      assert.equals(1, rc, err)
      assert.matches("TruncatedListing", err)
      assert.same({}, srv:deleted())
    end)

    it("rm -r over a key no request can name (bad_keys) exits 1 and deletes nothing", function()
      srv:mode("bad_keys", 100)
      local rc, _, err = cli("rm -r s3://" .. BUCKET .. "/p/")
      assert.equals(1, rc, err)
      assert.matches("MalformedResponse", err)
      assert.same({}, srv:deleted())
    end)

    it("rm -r with fail_halfway exits 1 and deletes nothing", function()
      srv:mode("fail_halfway")
      local rc, _, err = cli("rm -r s3://" .. BUCKET .. "/p/")
      assert.equals(1, rc, err)
      assert.same({}, srv:deleted())
    end)
  end)

  describe("sync's ranged listing (objstore.sync.remote.ranged) with short pages", function()
    local remote = require "objstore.sync.remote"
    --- The keys of a ranged listing of p/ cut at bounds, the error that
    -- ended it, and how many LISTs the iterator sent one by one (c:send)
    -- rather than in its concurrent run.
    local function ranged(bounds, per_range)
      local cl = client()
      local sends, send = 0, cl.send
      cl.send = function(self, req)
        sends = sends + 1
        return send(self, req)
      end
      local keys, stats = {}, {}
      for e, err in remote.ranged(cl, BUCKET, "p/", bounds, stats, nil, per_range) do
        if not e then return keys, err, sends end
        keys[#keys + 1] = e.key
      end
      return keys, nil, sends
    end

    it("a range's next page is fetched in the same run as the first pages, not one by one", function()
      srv:mode("normal", 2)
      -- (nil, p/d]: [p/a p/b] then [p/c p/d]; (p/d, end): [p/e p/sub/f]
      local keys, err, sends = ranged({ "p/d" })
      assert.is_nil(err, tostring(err))
      assert.same(UNDER_P, keys)
      assert.equals(0, sends)
      assert.equals(3, srv:count("ListObjectsV2"))
    end)

    it("a range's next page asks for what the range still lacks (max-keys), not a whole page", function()
      srv:mode("normal", 2)
      -- 4 local names in (nil, p/d]: 2 on the first page, so 2 more (and 8 of slack)
      local keys, err = ranged({ "p/d" }, 4)
      assert.is_nil(err, tostring(err))
      assert.same(UNDER_P, keys)
      local asked = {}
      for _, r in ipairs(srv:log()) do
        if r.op == "ListObjectsV2" then asked[#asked + 1] = r.query["max-keys"] or "-" end
      end
      table.sort(asked)
      assert.same({ "-", "-", "10" }, asked)
    end)

    it("pages past the ones fetched ahead are read one after another, none left out", function()
      srv:mode("normal", 2)
      local keys, err, sends = ranged({})
      assert.is_nil(err, tostring(err))
      assert.same(UNDER_P, keys)
      assert.equals(1, sends)
      assert.equals(3, srv:count("ListObjectsV2"))
    end)

    it("a page fetched ahead that failed ends the listing with its error, never silently", function()
      srv:mode("fail_halfway", 2)
      local keys, err = ranged({ "p/d" })
      assert.same({ "p/a", "p/b" }, keys)
      assert.equals("InternalError", err and err.code)
    end)
  end)
end)
