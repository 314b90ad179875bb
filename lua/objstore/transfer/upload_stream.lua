--- upload_stream: a stream of unknown size (e.g. stdin) uploaded in parts
-- read into reusable C buffers, the part size growing with the count; the
-- parts run through transfer/driver.lua with the strategy below.
local plan = require "objstore.transfer.plan"
local progress_mod = require "objstore.transfer.progress"
local complete = require "objstore.transfer.complete"
local state_mod = require "objstore.transfer.state"
local driver = require "objstore.transfer.driver"
local defaults = require "objstore.transfer.defaults"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local common = require "objstore.ops.common"
local sse = require "objstore.ops.sse"
local flexsum = require "objstore.ops.flexsum"

local core = require "objstore.core"

local type, ipairs, pairs, tostring, io_type = type, ipairs, pairs, tostring, io.type
local tremove = table.remove

local STEP = 1024 * 1024 -- bytes a reader function gives between two GC steps

local fail = errors.failure

local STREAM_OPTS = { part_size = true, concurrency = true, progress = true, leave_parts_on_error = true,
  part_headers = true, max_parts = true, checksum = true, checksum_policy = true }
for k in pairs(common.UPLOAD_OPTS) do STREAM_OPTS[k] = true end

--- A source of parts: reads the stream into reusable core.buffer objects
-- (a file handle straight from its FILE*, a reader function's chunks
-- copied in), so memory stays at the buffers in flight, with no part ever
-- a Lua string left to the collector. A reader function's chunks are
-- MD5-hashed as they are copied in (src.md5(buf): the part's MD5), so no
-- step hashes more than one chunk: in OpenResty, where the chunks come
-- from the request socket (objstore.openresty.put_request_body), an 8 MiB part
-- hashed in one go held the worker ~15 ms, a 64 MiB one ~100 ms.
local function part_source(reader)
  local fh = io_type(reader) == "file" and reader or nil
  local pool, pending, eof, since_step = {}, nil, false, 0
  local md5s = {} -- buffer -> the MD5 of its bytes, hashed while read
  local src = {}
  --- A buffer holding the next n bytes of the stream (fewer at its end),
  -- or nil, message.
  function src.read(n)
    local buf = tremove(pool) or core.buffer.new()
    if eof then return buf end
    if fh then
      local len, at_end = buf:fill(fh, n)
      if len == nil then
        src.put(buf)
        return nil, at_end.message
      end
      eof = at_end
      return buf
    end
    local h = core.hash.new("md5")
    while buf:len() < n do
      local chunk, rerr = pending, nil
      pending = nil
      if not chunk then chunk, rerr = reader() end
      if chunk == nil then
        if rerr then
          h:close()
          src.put(buf)
          return nil, tostring(rerr)
        end
        eof = true
        break
      end
      local used = buf:append(chunk, n)
      if used < #chunk then
        pending = chunk:sub(used + 1)
        h:update(chunk:sub(1, used))
      else
        h:update(chunk)
      end
      -- The reader's chunks are garbage once copied: collect about as much
      -- as was read, or the collector (LuaJIT's above all) lets a part's
      -- worth of dead strings pile up before its next cycle.
      since_step = since_step + used
      if since_step >= STEP then
        collectgarbage("step", STEP / 1024)
        since_step = 0
      end
    end
    local md5, herr = h:digest()
    h:close()
    if not md5 then
      src.put(buf)
      return nil, tostring(herr)
    end
    md5s[buf] = md5
    return buf
  end
  --- The MD5 of a buffer's bytes: hashed while they were read from a
  -- reader function, else (a file handle's fill) now.
  function src.md5(buf)
    return md5s[buf] or buf:digest("md5")
  end
  --- Gives a buffer back for the next part (after its request is done).
  function src.put(buf)
    md5s[buf] = nil
    buf:clear()
    pool[#pool + 1] = buf
  end
  function src.eof() return eof and pending == nil end
  function src.close()
    for _, b in ipairs(pool) do b:free() end
    pool = {}
  end
  return src
end

--- The parts of a stream, planned as they are read: each part's size is
-- known once its buffer is filled (the size grows with the count), so the
-- strategy's next adds it to the state and builds its request.
local STREAM = { op = "UploadStream" }

function STREAM.next(job)
  if job.read_err or job.too_many then return nil end
  local c, m, src = job.c, job.m, job.src
  local buf = job.next_buf
  job.next_buf = nil
  if not buf then
    if src.eof() then return nil end
    local rerr
    buf, rerr = src.read(plan.stream_part_size((m:count()), c.provider, job.base))
    if not buf then
      job.read_err = rerr
      return nil
    end
  end
  if buf:len() == 0 then
    -- The stream ended on a part boundary.
    src.put(buf)
    return nil
  end
  local number = m:add(buf:len())
  if not number then
    src.put(buf)
    job.too_many = true
    return nil
  end
  local md5 = src.md5(buf)
  m:digests(number, md5)
  m:start(number)
  job.total = job.total + buf:len()
  local opts = job.opts
  local req = c:build_request("upload_part", job.bucket, job.key, job.upload_id, number, buf,
    { content_md5 = checksum.tobase64(md5), headers = common.part_headers(opts, number),
      sse_customer_key = opts.sse_customer_key, checksum = job.alg, checksum_policy = opts.checksum_policy,
      context = { number = number, length = buf:len(), buf = buf } })
  req.on_progress = progress_mod.on_progress(job.moving, number, "up")
  return req
end

--- Every answer gives its buffer back to the pool for the next part.
function STREAM.release(job, part)
  job.src.put(part.buf)
end

--- C checks the part's ETag against its MD5 (not with SSE-KMS/SSE-C).
function STREAM.record(job, part, res)
  local ok, err = job.m:done(part.number, res.etag)
  if not ok then return nil, err end
  if res.checksum then
    job.m:checksum(part.number, job.alg, core.encode.base64_decode(res.checksum.value), res.checksum.verified)
  end
  job.all_verified = job.all_verified and res.checksum and res.checksum.verified
  return true
end

--- A stream that failed to read, or outgrew max_parts, ends the run
-- without an error of its own: it fails here.
function STREAM.ended(job, ok, err)
  job.src.close()
  local bucket, key = job.bucket, job.key
  if ok and job.read_err then ok, err = nil, fail("UploadStream", "ReaderError", job.read_err, bucket, key) end
  if ok and job.too_many then
    ok, err = nil, fail("UploadStream", "TooManyParts", "the stream is longer than " .. job.max_parts
      .. " parts (" .. job.total .. " bytes sent): give a larger part_size; the upload was not completed", bucket,
      key, { max_parts = job.max_parts, part_size = job.base })
  end
  return ok, err
end

--- No checkpoint: the upload is created at once.
function STREAM.create(c, job)
  local up, uerr = c:create_multipart_upload(job.bucket, job.key, job.upload_opts)
  if not up then
    job.src.close()
    return nil, uerr
  end
  job.up, job.upload_id = up, up.upload_id
  return true
end

--- The Complete body has the parts' checksums only when the server
-- verified every one.
function STREAM.finish(c, job)
  local opts, m = job.opts, job.m
  return complete.complete(c, "UploadStream", job.bucket, job.key, job.upload_id, m, job.etag_md5 and m:etag() or nil,
    common.customer_key_headers(common.part_headers(opts, 1), c, opts), job.all_verified and job.alg or nil)
end

function STREAM.result(job, fin)
  local alg, up = job.alg, job.up
  return { bucket = job.bucket, key = job.key, etag = fin.etag, size = job.total, parts = (job.m:count()),
    resumed_from = 0, upload_id = job.upload_id, sse = up.sse, kms_key_id = up.kms_key_id,
    checksum = alg and { algorithm = alg, verified = job.all_verified == true } or nil }
end

--- upload_stream(bucket, key, reader, opts) -> { bucket, key, etag, size, parts, upload_id, ... } | nil, err
-- Uploads a stream of unknown size. reader: function() -> chunk | nil |
-- nil, err, or a file handle (io.stdin). Memory stays within concurrency x
-- part_size (parts are read into that many reusable C buffers and sent
-- while the next is read); the part size grows with the count so the part
-- limit holds the largest object.
-- opts.max_parts: at most this many parts (default the provider's 10,000):
--   a longer stream fails with TooManyParts, never a silent truncation.
-- opts.headers: extra headers of the request that creates the upload.
-- errors: TooManyParts, ReaderError (the reader failed), and those of the
--   requests; the upload is aborted unless leave_parts_on_error.
local function upload_stream(c, bucket, key, reader, opts)
  common.bucket(c, "upload_stream", 1, bucket)
  common.key("upload_stream", 2, key)
  opts = common.opts("upload_stream", 4, opts, STREAM_OPTS)
  if io_type(reader) ~= "file" and type(reader) ~= "function" then
    common.misuse("upload_stream", 3, "reader", "must be a function or a file handle, " .. errors.got(reader))
  end
  local lim = c.dialect.limits
  local max_parts = opts.max_parts or lim.max_parts
  if type(max_parts) ~= "number" or max_parts < 1 or max_parts > lim.max_parts or max_parts % 1 ~= 0 then
    common.misuse("upload_stream", 4, "opts.max_parts", "must be an integer from 1 to " .. lim.max_parts)
  end
  local base = math.max(opts.part_size or plan.DEFAULT_PART_SIZE, lim.min_part)
  local progress, moving = progress_mod.new(opts.progress, nil, 0)
  local upload_opts = common.upload_opts(opts)
  local alg = flexsum.option(c, "upload_stream", 4, opts)
  upload_opts.checksum = alg
  local src = part_source(reader)

  local first, ferr = src.read(base)
  if not first then return nil, fail("UploadStream", "ReaderError", ferr, bucket, key) end
  if src.eof() and first:len() < base then
    -- It all fitted in one part: a single PUT.
    upload_opts.headers = common.extra_headers("upload_stream", 4, common.part_headers(opts, 1),
      common.extra_headers("upload_stream", 4, opts.headers, {}))
    local size = first:len()
    upload_opts.checksum_policy = opts.checksum_policy
    upload_opts.metadata = state_mod.with_crc(opts.metadata, first:digest("crc64nvme"))
    local r, err = c:put_object(bucket, key, first, upload_opts)
    src.put(first)
    src.close()
    if not r then return nil, err end
    progress(size, true)
    return { bucket = bucket, key = key, etag = r.etag, size = size, parts = 1, resumed_from = 0, sse = r.sse,
      kms_key_id = r.kms_key_id, checksum = r.checksum }
  end
  -- The parts' state (sizes, MD5s, ETags, checksums) lives in C, one block
  -- for all; the pool's buffers hold the bytes in flight.
  local etag_md5 = sse.etag_is_md5(c, opts)
  local m = core.mpu.new{ part_size = base, max_parts = max_parts, etag_md5 = etag_md5 }
  return driver.transfer(c, STREAM, { m = m, bucket = bucket, key = key, leave = opts.leave_parts_on_error,
    concurrency = opts.concurrency or defaults.CONCURRENCY.upload_stream, progress = progress, moving = moving,
    opts = opts, alg = alg, src = src, base = base, max_parts = max_parts, next_buf = first, total = 0,
    all_verified = alg ~= nil, upload_opts = upload_opts, etag_md5 = etag_md5 })
end

return { upload_stream = { call = upload_stream } }
