-- transfer/driver.lua alone: the one multipart loop with a fake strategy
-- and a fake client whose run loop answers each part as told. No server.
local core = require "objstore.core"
local driver = require "objstore.transfer.driver"

local MiB = 1024 * 1024

-- A client whose run sends nothing: each request is answered by
-- `answer(number)` -> res | nil, err, or raises when it says "raise".
local function fake_client(answer)
  local c = { aborted = {} }
  function c.run(_, spec)
    assert.equal(4, spec.concurrency)
    while true do
      local req = spec.next()
      if not req then return true end
      local n = req.context.number
      local res, err = answer(n)
      if res == "raise" then error("interrupted (SIGINT)", 0) end
      local ok, derr = spec.done(req, res, err)
      if not ok then return nil, derr end
    end
  end
  function c:abort_multipart_upload(bucket, key, id)
    self.aborted[#self.aborted + 1] = bucket .. "/" .. key .. "#" .. id
  end
  return c
end

local function fake_strategy(log)
  local s = { op = "FakeOp", unit = "piece" }
  function s.request(_, n, offset, length)
    log[#log + 1] = "request " .. n .. " " .. offset .. " " .. length
    return { context = { number = n, length = length } }
  end
  function s.record(job, part, res)
    log[#log + 1] = "record " .. part.number
    return job.m:done(part.number, res.etag)
  end
  return s
end

local function new_job(opts)
  local job = { m = assert(core.mpu.new{ size = 3 * 5 * MiB, part_size = 5 * MiB }), bucket = "b", key = "k",
    upload_id = "U1", concurrency = 4, progressed = 0, moved = {} }
  job.progress = function(delta) job.progressed = job.progressed + delta end
  job.moving = function(n, v) job.moved[#job.moved + 1] = { n, v } end
  for k, v in pairs(opts or {}) do job[k] = v end
  return job
end

local ETAG = '"0123456789abcdef0123456789abcdef"'

describe("transfer driver", function()
  it("plans each part from the state, records it, counts progress and on_part", function()
    local log, seen = {}, {}
    local job = new_job{ on_part = function(n, sent) seen[#seen + 1] = n .. ":" .. sent end }
    local c = fake_client(function() return { etag = ETAG } end)
    assert.is_true(driver.run(c, fake_strategy(log), job))
    assert.same({ "request 1 0 5242880", "record 1", "request 2 5242880 5242880", "record 2",
      "request 3 10485760 5242880", "record 3" }, log)
    assert.same({ "1:1", "2:2", "3:3" }, seen)
    assert.equal(3, job.sent)
    assert.equal(15 * MiB, job.progressed)
    assert.equal(15 * MiB, job.m:bytes_done())
    assert.same({}, c.aborted)
  end)

  it("a failed part is marked failed, stops counting, and the upload is aborted", function()
    local log = {}
    local strategy = fake_strategy(log)
    strategy.failed = function(_, part, err) return { code = err.code, message = "part " .. part.number } end
    local job = new_job()
    local c = fake_client(function(n)
      if n == 2 then return nil, { code = "InternalError" } end
      return { etag = ETAG }
    end)
    local ok, err = driver.run(c, strategy, job)
    assert.is_nil(ok)
    assert.same({ code = "InternalError", message = "part 2", upload_id = "U1" }, err)
    assert.same({ { 2, nil } }, job.moved)
    assert.equal("failed", job.m:part(2).state)
    assert.same({ "b/k#U1" }, c.aborted)
  end)

  it("on_part returning false stops with Aborted; leave_parts_on_error keeps the upload", function()
    local job = new_job{ leave = true, on_part = function(n) return n < 2 end }
    local c = fake_client(function() return { etag = ETAG } end)
    local ok, err = driver.run(c, fake_strategy({}), job)
    assert.is_nil(ok)
    assert.equal("Aborted", err.code)
    assert.equal("FakeOp", err.op)
    assert.equal("U1", err.upload_id)
    assert.matches("stopped by on_part after piece 2", err.message, 1, true)
    assert.same({}, c.aborted)
  end)

  it("a record the strategy refuses fails the run, located", function()
    local strategy = fake_strategy({})
    strategy.record = function() return nil, { code = "BadDigest" } end
    local c = fake_client(function() return { etag = ETAG } end)
    local ok, err = driver.run(c, strategy, new_job())
    assert.is_nil(ok)
    assert.same({ code = "BadDigest", op = "FakeOp", bucket = "b", key = "k", upload_id = "U1" }, err)
  end)

  it("ended can fail a run that succeeded; abandon replaces the abort", function()
    local strategy = fake_strategy({})
    local abandoned = 0
    strategy.ended = function(_, ok) assert.is_true(ok) return nil, { code = "ReaderError" } end
    strategy.abandon = function() abandoned = abandoned + 1 end
    local c = fake_client(function() return { etag = ETAG } end)
    local ok, err = driver.run(c, strategy, new_job())
    assert.is_nil(ok)
    assert.equal("ReaderError", err.code)
    assert.equal(1, abandoned)
    assert.same({}, c.aborted)
  end)

  it("an interrupt keeps a checkpointed upload and says how to resume; without one it aborts", function()
    local closed = 0
    local ck = { close = function() closed = closed + 1 end, append = function() return true end }
    local c = fake_client(function(n) if n == 2 then return "raise" end return { etag = ETAG } end)
    local job = new_job{ ck = ck, checkpoint = "/tmp/x.objstore-cp" }
    local pok, msg = pcall(driver.run, c, fake_strategy({}), job)
    assert.is_false(pok)
    assert.matches("interrupted (SIGINT); the multipart upload U1 of k is kept", msg, 1, true)
    assert.equal(1, closed)
    assert.same({}, c.aborted)

    c = fake_client(function(n) if n == 2 then return "raise" end return { etag = ETAG } end)
    pok, msg = pcall(driver.run, c, fake_strategy({}), new_job())
    assert.is_false(pok)
    assert.equal("interrupted (SIGINT)", msg)
    assert.same({ "b/k#U1" }, c.aborted)
  end)
end)

-- driver.transfer: the skeleton around run. A fake checkpoint logs what
-- happens to it; the hooks log that they ran.
describe("transfer driver: the skeleton around the run", function()
  local function fake_ck(log)
    return { append = function() return true end,
      close = function() log[#log + 1] = "ck close" end,
      remove = function() log[#log + 1] = "ck remove" return true end }
  end

  -- A strategy whose hooks log; `how` replaces any of them.
  local function skeleton(log, how)
    local s = fake_strategy(log)
    function s.prepare(_, job)
      log[#log + 1] = "prepare"
      job.ck = fake_ck(log)
      return true
    end
    function s.create(_, job)
      log[#log + 1] = "create"
      job.upload_id = "U1"
      return true
    end
    function s.start(job)
      log[#log + 1] = "start"
      -- the parts' own reports are the run's (tested above): only the final one here
      job.progress = function(delta, final) if final then log[#log + 1] = "progress " .. delta .. " final" end end
    end
    function s.finish(_, job)
      log[#log + 1] = "finish " .. tostring(job.sent)
      return { etag = "E" }
    end
    function s.result(job, fin, already)
      log[#log + 1] = "result"
      return { etag = fin.etag, sent = job.sent, already = already }
    end
    for k, v in pairs(how or {}) do s[k] = v end
    return s
  end

  local function transfer_job(opts)
    local job = new_job()
    job.upload_id, job.checkpoint = nil, "/tmp/x.objstore-cp"
    for k, v in pairs(opts or {}) do job[k] = v end
    return job
  end

  local function no_requests(log)
    local out = {}
    for _, l in ipairs(log) do if not l:match("^request") and not l:match("^record") then out[#out + 1] = l end end
    return out
  end

  it("prepares, creates, runs, finishes, then removes the checkpoint and reports the end", function()
    local log = {}
    local c = fake_client(function() return { etag = ETAG } end)
    local res = driver.transfer(c, skeleton(log), transfer_job())
    assert.same({ etag = "E", sent = 3 }, res)
    assert.same({ "prepare", "create", "start", "finish 3", "ck remove", "progress 0 final", "result" },
      no_requests(log))
    assert.same({}, c.aborted)
  end)

  it("a failed finish closes the checkpoint, never removes it, and aborts nothing", function()
    local log = {}
    local c = fake_client(function() return { etag = ETAG } end)
    local strategy = skeleton(log, { finish = function() return nil, { code = "BadDigest" } end })
    local job = transfer_job{ checkpoint = false }
    local res, err = driver.transfer(c, strategy, job)
    assert.is_nil(res)
    assert.same({ code = "BadDigest" }, err)
    assert.same({ "prepare", "create", "start", "ck close" }, no_requests(log))
    assert.is_nil(job.ck)
    assert.same({}, c.aborted)
  end)

  it("a finish that raises (an interrupt) closes the checkpoint and the error goes on", function()
    local log = {}
    local c = fake_client(function() return { etag = ETAG } end)
    local strategy = skeleton(log, { finish = function() error("interrupted (SIGINT)", 0) end })
    local pok, msg = pcall(driver.transfer, c, strategy, transfer_job())
    assert.is_false(pok)
    assert.equal("interrupted (SIGINT)", msg)
    assert.same({ "prepare", "create", "start", "ck close" }, no_requests(log))
  end)

  it("a failed prepare or create closes what was opened and goes no further", function()
    local log = {}
    local c = fake_client(function() error("no request may be sent") end)
    local strategy = skeleton(log, { create = function() log[#log + 1] = "create" return nil, { code = "E" } end })
    local res, err = driver.transfer(c, strategy, transfer_job())
    assert.is_nil(res)
    assert.equal("E", err.code)
    assert.same({ "prepare", "create", "ck close" }, log)

    log = {}
    strategy = skeleton(log, { prepare = function(_, job)
      job.ck = fake_ck(log)
      return nil, { code = "LocalFileError" }
    end })
    res, err = driver.transfer(c, strategy, transfer_job())
    assert.is_nil(res)
    assert.equal("LocalFileError", err.code)
    assert.same({ "ck close" }, log)
  end)

  it("a failed run is abandoned (aborted unless kept), named for the transfer, and not finished", function()
    local log = {}
    local c = fake_client(function(n) if n == 2 then return nil, { code = "InternalError", op = "UploadPart" } end
      return { etag = ETAG } end)
    local strategy = skeleton(log, { name_errors = true })
    local res, err = driver.transfer(c, strategy, transfer_job{ checkpoint = false })
    assert.is_nil(res)
    assert.same({ code = "InternalError", op = "FakeOp", bucket = "b", key = "k", upload_id = "U1" }, err)
    assert.same({ "prepare", "create", "start", "ck close" }, no_requests(log))
    assert.same({ "b/k#U1" }, c.aborted)

    -- with a checkpoint the upload is kept for the resume, its file closed
    log = {}
    c = fake_client(function(n) if n == 2 then return nil, { code = "InternalError" } end return { etag = ETAG } end)
    res, err = driver.transfer(c, skeleton(log), transfer_job())
    assert.is_nil(res)
    assert.equal("InternalError", err.code)
    assert.same({ "prepare", "create", "start", "ck close" }, no_requests(log))
    assert.same({}, c.aborted)
  end)

  it("an object prepare found already complete: the checkpoint removed, nothing created or sent", function()
    local log = {}
    local c = fake_client(function() error("no request may be sent") end)
    local strategy = skeleton(log, { prepare = function(_, job)
      log[#log + 1] = "prepare"
      job.ck, job.upload_id, job.done_head = fake_ck(log), "U0", { etag = "HEAD" }
      job.progress = function(delta, final) if final then log[#log + 1] = "progress " .. delta .. " final" end end
      return true
    end })
    local res = driver.transfer(c, strategy, transfer_job())
    assert.same({ etag = "HEAD", already = true }, res)
    assert.same({ "prepare", "ck remove", "progress 0 final", "result" }, log)
  end)

  it("no_parts runs nothing; a resumed upload (upload_id from prepare) is not created again", function()
    local log = {}
    local c = fake_client(function() error("no request may be sent") end)
    local strategy = skeleton(log, { prepare = function(_, job)
      log[#log + 1] = "prepare"
      job.upload_id = "U0"
      return true
    end })
    local res = driver.transfer(c, strategy, transfer_job{ no_parts = true })
    assert.is_nil(res.sent)
    assert.same({ "prepare", "start", "finish nil", "progress 0 final", "result" }, log)
  end)
end)

-- A size the multipart_threshold (up to 5 TiB) would send in one request,
-- above the 5 GiB a PutObject or CopyObject may have: parts all the same,
-- never a single request the store refuses after the HEAD.
describe("transfers above 5 GiB", function()
  local objstore = require "objstore"
  local SIZE = 6 * 1024 * 1024 * 1024

  local function recording()
    local seen = {}
    local t = { request = function(_, req)
      seen[#seen + 1] = req.method .. " " .. req.url
      if req.method == "HEAD" then
        return { status = 200, headers = { ["content-length"] = tostring(SIZE), etag = '"abc"' }, body = "" }
      end
      return { status = 403, headers = { ["content-type"] = "application/xml" },
        body = "<Error><Code>AccessDenied</Code><Message>stop here</Message></Error>" }
    end }
    return objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
      retry = { max_attempts = 1 } }, seen
  end

  it("copy_large: an UploadPartCopy upload, not one CopyObject", function()
    local c, seen = recording()
    local r, err = c:copy_large("dst", "big", { bucket = "src", key = "big" },
      { multipart_threshold = 5 * 1024 ^ 4 })
    assert.is_nil(r)
    assert.equals("AccessDenied", err.code)
    assert.matches("^HEAD ", seen[1])
    assert.matches("^POST .*/dst/big%?uploads", seen[2])
  end)

  it("upload_file: a multipart upload, not one PutObject (reads 6 GiB of a sparse file: #slow)", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    assert(f:seek("set", SIZE - 1))
    f:write("x")
    f:close()
    local c, seen = recording()
    local r, err = c:upload_file("dst", "big", path, { multipart_threshold = 5 * 1024 ^ 4 })
    os.remove(path)
    assert.is_nil(r)
    assert.equals("AccessDenied", err.code)
    assert.matches("^POST .*/dst/big%?uploads", seen[1])
  end)
end)
