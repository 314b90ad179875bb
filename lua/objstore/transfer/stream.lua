--- upload_stream (unknown size, e.g. stdin), copy_large (server-side
-- UploadPartCopy) and the housekeeping of incomplete uploads.
local plan = require "objstore.transfer.plan"
local progress_mod = require "objstore.transfer.progress"
local complete = require "objstore.transfer.complete"
local state_mod = require "objstore.transfer.state"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local common = require "objstore.ops.common"
local sse = require "objstore.ops.sse"
local flexsum = require "objstore.ops.flexsum"
local clock = require "objstore.clock"

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
-- a Lua string left to the collector.
local function part_source(reader)
  local fh = io_type(reader) == "file" and reader or nil
  local pool, pending, eof, since_step = {}, nil, false, 0
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
    while buf:len() < n do
      local chunk, rerr = pending, nil
      pending = nil
      if not chunk then chunk, rerr = reader() end
      if chunk == nil then
        if rerr then
          src.put(buf)
          return nil, tostring(rerr)
        end
        eof = true
        break
      end
      local used = buf:append(chunk, n)
      if used < #chunk then pending = chunk:sub(used + 1) end
      -- The reader's chunks are garbage once copied: collect about as much
      -- as was read, or the collector (LuaJIT's above all) lets a part's
      -- worth of dead strings pile up before its next cycle.
      since_step = since_step + used
      if since_step >= STEP then
        collectgarbage("step", STEP / 1024)
        since_step = 0
      end
    end
    return buf
  end
  --- Gives a buffer back for the next part (after its request is done).
  function src.put(buf)
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

--- upload_stream(bucket, key, reader, opts) -> result | nil, err
-- reader: function() -> chunk | nil | nil, err, or a file handle (stdin).
-- Memory stays within concurrency x part_size (parts are read into that
-- many reusable buffers and sent while the next is read); the part size
-- grows with the count so the part limit holds the largest object, and a
-- stream longer than max_parts parts (opts.max_parts, default the
-- provider's 10,000) fails with TooManyParts, never a silent truncation.
local function upload_stream(c, bucket, key, reader, opts)
  common.bucket(c, "upload_stream", 1, bucket)
  common.key("upload_stream", 2, key)
  opts = common.opts("upload_stream", 4, opts, STREAM_OPTS)
  if io_type(reader) ~= "file" and type(reader) ~= "function" then
    common.misuse("upload_stream", 3, "reader", "must be a function or a file handle, " .. errors.got(reader))
  end
  local lim = plan.LIMITS[c.provider]
  local max_parts = opts.max_parts or lim.max_parts
  if type(max_parts) ~= "number" or max_parts < 1 or max_parts > lim.max_parts or max_parts % 1 ~= 0 then
    common.misuse("upload_stream", 4, "opts.max_parts", "must be an integer from 1 to " .. lim.max_parts)
  end
  local base = math.max(opts.part_size or plan.DEFAULT_PART_SIZE, lim.min_part)
  local concurrency = opts.concurrency or 4
  local progress = progress_mod.new(opts.progress, nil, 0)
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
  local up, uerr = c:create_multipart_upload(bucket, key, upload_opts)
  if not up then
    src.close()
    return nil, uerr
  end
  local upload_id = up.upload_id
  local etag_md5 = sse.etag_is_md5(c, opts)
  -- The parts' state (sizes, MD5s, ETags, checksums) lives in C, one block
  -- for all; the pool's buffers hold the bytes in flight.
  local m = core.mpu.new{ part_size = base, max_parts = max_parts, etag_md5 = etag_md5 }
  local total, all_verified = 0, alg ~= nil
  local next_buf, read_err, too_many = first, nil, false
  local ok, err = c:run{ concurrency = concurrency,
    next = function()
      if read_err or too_many then return nil end
      local buf = next_buf
      next_buf = nil
      if not buf then
        if src.eof() then return nil end
        local rerr
        buf, rerr = src.read(plan.stream_part_size((m:count()), c.provider, base))
        if not buf then
          read_err = rerr
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
        too_many = true
        return nil
      end
      local md5 = buf:digest("md5")
      m:digests(number, md5)
      m:start(number)
      total = total + buf:len()
      return c:build_request("upload_part", bucket, key, upload_id, number, buf,
        { content_md5 = checksum.tobase64(md5), headers = common.part_headers(opts, number),
          sse_customer_key = opts.sse_customer_key, checksum = alg, checksum_policy = opts.checksum_policy,
          context = { number = number, size = buf:len(), buf = buf } })
    end,
    done = function(req, res, perr)
      local part = req.context
      src.put(part.buf)
      if not res then
        m:failed(part.number)
        return false, perr
      end
      -- C checks the part's ETag against its MD5 (not with SSE-KMS/SSE-C).
      local dok, derr = m:done(part.number, res.etag)
      if not dok then return false, errors.locate(derr, "UploadStream", bucket, key) end
      if res.checksum then
        m:checksum(part.number, alg, core.encode.base64_decode(res.checksum.value), res.checksum.verified)
      end
      all_verified = all_verified and res.checksum and res.checksum.verified
      progress(part.size)
      return true
    end }
  src.close()
  if ok and read_err then ok, err = nil, fail("UploadStream", "ReaderError", read_err, bucket, key) end
  if ok and too_many then
    ok, err = nil, fail("UploadStream", "TooManyParts", "the stream is longer than " .. max_parts
      .. " parts (" .. total .. " bytes sent): give a larger part_size; the upload was not completed", bucket, key,
      { max_parts = max_parts, part_size = base })
  end
  if not ok then
    if not opts.leave_parts_on_error then c:abort_multipart_upload(bucket, key, upload_id) end
    err.upload_id = upload_id
    return nil, err
  end
  local fin, cerr = complete.complete(c, "UploadStream", bucket, key, upload_id, m, etag_md5 and m:etag() or nil,
    common.customer_key_headers(common.part_headers(opts, 1), c, opts), all_verified and alg or nil)
  if not fin then return nil, cerr end
  progress(0, true)
  return { bucket = bucket, key = key, etag = fin.etag, size = total, parts = (m:count()), resumed_from = 0,
    upload_id = upload_id, sse = up.sse, kms_key_id = up.kms_key_id,
    checksum = alg and { algorithm = alg, verified = all_verified == true } or nil }
end

local COPY_LARGE_OPTS = { part_size = true, concurrency = true, progress = true, metadata = true,
  content_type = true, acl = true, storage_class = true, threshold = true, leave_parts_on_error = true,
  part_headers = true, copy_source_sse_customer_key = true }
for k in pairs(sse.OBJECT_OPTS) do COPY_LARGE_OPTS[k] = true end

--- The encryption options of `opts` alone.
local function sse_opts(opts, into)
  for k in pairs(sse.OBJECT_OPTS) do into[k] = opts[k] end
  return into
end

--- copy_large(src_bucket, src_key, dst_bucket, dst_key, opts): server-side
-- copy of any size with UploadPartCopy (CopyObject stops at 5 GiB), parts
-- in parallel, the source pinned by its ETag.
local function copy_large(c, src_bucket, src_key, dst_bucket, dst_key, opts)
  common.bucket(c, "copy_large", 1, src_bucket, "src_bucket")
  common.key("copy_large", 2, src_key, "src_key")
  common.bucket(c, "copy_large", 3, dst_bucket, "dst_bucket")
  common.key("copy_large", 4, dst_key, "dst_key")
  opts = common.opts("copy_large", 5, opts, COPY_LARGE_OPTS)
  local head, herr = c:head_object(src_bucket, src_key, { sse_customer_key = opts.copy_source_sse_customer_key })
  if not head then return nil, herr end
  local size = head.content_length or 0
  local psize = plan.part_size(size, c.provider, opts.part_size or 64 * 1024 * 1024)
  if size <= (opts.threshold or psize) then
    local r, err = c:copy_object(src_bucket, src_key, dst_bucket, dst_key, sse_opts(opts, { if_match = head.etag,
      metadata = opts.metadata, content_type = opts.content_type, acl = opts.acl,
      storage_class = opts.storage_class, copy_source_sse_customer_key = opts.copy_source_sse_customer_key }))
    if not r then return nil, err end
    return { bucket = dst_bucket, key = dst_key, etag = r.etag, size = size, parts = 1, sse = r.sse,
      kms_key_id = r.kms_key_id }
  end
  local up, uerr = c:create_multipart_upload(dst_bucket, dst_key, sse_opts(opts, {
    content_type = opts.content_type or head.content_type,
    metadata = opts.metadata or head.metadata, acl = opts.acl, storage_class = opts.storage_class }))
  if not up then return nil, uerr end
  local progress = progress_mod.new(opts.progress, size, 0)
  local m = core.mpu.new{ size = size, part_size = psize }
  local ok, err = c:run{ concurrency = opts.concurrency or 8,
    next = function()
      local n, offset, length = m:next()
      if not n then return nil end
      return c:build_request("upload_part_copy", dst_bucket, dst_key, up.upload_id, n, src_bucket, src_key,
        { range = { offset, offset + length - 1 }, if_match = head.etag,
          headers = common.part_headers(opts, n), context = { number = n, length = length },
          sse_customer_key = opts.sse_customer_key, copy_source_sse_customer_key = opts.copy_source_sse_customer_key })
    end,
    done = function(req, res, perr)
      local part = req.context
      if not res then
        m:failed(part.number)
        return false, perr
      end
      if not res.etag then
        return false, fail("CopyLarge", "MalformedResponse", "no ETag for a copied part", dst_bucket, dst_key)
      end
      local dok, derr = m:done(part.number, res.etag)
      if not dok then return false, errors.locate(derr, "CopyLarge", dst_bucket, dst_key) end
      progress(part.length)
      return true
    end }
  if not ok then
    if not opts.leave_parts_on_error then c:abort_multipart_upload(dst_bucket, dst_key, up.upload_id) end
    return nil, err
  end
  local fin, cerr = complete.complete(c, "CopyLarge", dst_bucket, dst_key, up.upload_id, m)
  if not fin then return nil, cerr end
  progress(0, true)
  return { bucket = dst_bucket, key = dst_key, etag = fin.etag, size = size, parts = (m:count()), sse = fin.sse,
    kms_key_id = fin.kms_key_id }
end

--- list_incomplete_uploads(bucket, prefix) -> { {key, upload_id, initiated}, ... } (all pages)
local function list_incomplete_uploads(c, bucket, prefix)
  common.bucket(c, "list_incomplete_uploads", 1, bucket)
  local out, key_marker, id_marker = {}, nil, nil
  repeat
    local page, err = c:list_multipart_uploads(bucket, { prefix = prefix, key_marker = key_marker,
      upload_id_marker = id_marker })
    if not page then return nil, err end
    for _, u in ipairs(page.uploads) do out[#out + 1] = u end
    key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker
  until not page.is_truncated or not key_marker or key_marker == ""
  return out
end

--- abort_incomplete_uploads(bucket, {older_than = seconds, prefix = ...}) -> { aborted = n, errors = {...} }
local function abort_incomplete_uploads(c, bucket, opts)
  common.bucket(c, "abort_incomplete_uploads", 1, bucket)
  opts = common.opts("abort_incomplete_uploads", 2, opts, { older_than = true, prefix = true })
  local list, err = list_incomplete_uploads(c, bucket, opts.prefix)
  if not list then return nil, err end
  local now = c:now()
  local result = { aborted = 0, errors = {} }
  for _, u in ipairs(list) do
    local started = clock.parse(u.initiated)
    if not opts.older_than or (started and now - started >= opts.older_than) then
      local aok, aerr = c:abort_multipart_upload(bucket, u.key, u.upload_id)
      if aok then
        result.aborted = result.aborted + 1
      else
        result.errors[#result.errors + 1] = aerr
      end
    end
  end
  return result
end

return {
  upload_stream = { call = upload_stream },
  copy_large = { call = copy_large },
  list_incomplete_uploads = { call = list_incomplete_uploads },
  abort_incomplete_uploads = { call = abort_incomplete_uploads },
}
