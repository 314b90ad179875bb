--- upload_stream (unknown size, e.g. stdin), copy_large (server-side
-- UploadPartCopy) and the housekeeping of incomplete uploads.
local plan = require "objstore.transfer.plan"
local progress_mod = require "objstore.transfer.progress"
local complete = require "objstore.transfer.complete"
local state_mod = require "objstore.transfer.state"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local common = require "objstore.ops.common"
local clock = require "objstore.clock"
local core = require "objstore.core"

local type, ipairs, pairs, tostring, io_type = type, ipairs, pairs, tostring, io.type
local concat = table.concat

local fail = errors.failure

local STREAM_OPTS = { part_size = true, concurrency = true, progress = true, leave_parts_on_error = true,
  part_headers = true }
for k in pairs(common.UPLOAD_OPTS) do STREAM_OPTS[k] = true end

--- upload_stream(bucket, key, reader, opts) -> result | nil, err
-- reader: function() -> chunk | nil | nil, err, or a file handle (stdin).
-- Memory stays within about concurrency x part_size: parts are cut from
-- the stream as it comes and sent while the next are read; the part size
-- grows with the count so the part limit holds the largest object, and
-- reaching the limit is an error, never a silent truncation.
local function upload_stream(c, bucket, key, reader, opts)
  common.bucket(c, "upload_stream", 1, bucket)
  common.key("upload_stream", 2, key)
  opts = common.opts("upload_stream", 4, opts, STREAM_OPTS)
  if io_type(reader) == "file" then
    local fh = reader
    reader = function() return fh:read(1024 * 1024) end
  elseif type(reader) ~= "function" then
    common.misuse("upload_stream", 3, "reader", "must be a function or a file handle, " .. errors.got(reader))
  end
  local lim = plan.LIMITS[c.provider]
  local base = math.max(opts.part_size or plan.DEFAULT_PART_SIZE, lim.min_part)
  local concurrency = opts.concurrency or 4
  local progress = progress_mod.new(opts.progress, nil, 0)
  local upload_opts = common.upload_opts(opts)

  -- Reads exactly n bytes (fewer at the end of the stream).
  local pending, pending_len, eof = {}, 0, false
  local function read_part(n)
    while pending_len < n and not eof do
      local chunk, rerr = reader()
      if chunk == nil then
        if rerr then return nil, rerr end
        eof = true
      elseif #chunk > 0 then
        pending[#pending + 1] = chunk
        pending_len = pending_len + #chunk
      end
    end
    local all = concat(pending)
    local part = all:sub(1, n)
    local rest = all:sub(n + 1)
    pending = rest ~= "" and { rest } or {}
    pending_len = #rest
    return part
  end

  local first, ferr = read_part(base)
  if not first then return nil, fail("UploadStream", "ReaderError", tostring(ferr), bucket, key) end
  if eof and pending_len == 0 and #first < base then
    -- It all fitted in one part: a single PUT.
    upload_opts.headers = common.extra_headers("upload_stream", 4, common.part_headers(opts, 1),
      common.extra_headers("upload_stream", 4, opts.headers, {}))
    upload_opts.metadata = state_mod.with_crc(opts.metadata, checksum.digest("crc64nvme", first))
    local r, err = c:put_object(bucket, key, first, upload_opts)
    if not r then return nil, err end
    progress(#first, true)
    return { bucket = bucket, key = key, etag = r.etag, size = #first, parts = 1, resumed_from = 0 }
  end
  local up, uerr = c:create_multipart_upload(bucket, key, upload_opts)
  if not up then return nil, uerr end
  local upload_id = up.upload_id
  -- The parts' state (sizes, MD5s, ETags) lives in C, one block for all.
  local m = core.mpu.new{ part_size = base, max_parts = lim.max_parts }
  local total = 0
  local next_data, read_err = first, nil
  local ok, err = c:run{ concurrency = concurrency,
    next = function()
      if not next_data or read_err then return nil end
      local data = next_data
      local number = m:add(#data)
      if not number then
        read_err = "the stream needs more than " .. lim.max_parts .. " parts"
        return nil
      end
      -- Read the following part now so the end of the stream is known.
      if eof and pending_len == 0 then
        next_data = nil
      else
        local nd, rerr = read_part(plan.stream_part_size(number, c.provider, base))
        if not nd then read_err = tostring(rerr) end
        next_data = (nd and #nd > 0) and nd or nil
      end
      local md5 = checksum.md5(data)
      m:digests(number, md5)
      m:start(number)
      total = total + #data
      return c:build_request("upload_part", bucket, key, upload_id, number, data,
        { content_md5 = checksum.tobase64(md5), headers = common.part_headers(opts, number),
          context = { number = number, size = #data } })
    end,
    done = function(req, res, perr)
      local part = req.context
      if not res then
        m:failed(part.number)
        return false, perr
      end
      -- C checks the part's ETag against its MD5.
      local dok, derr = m:done(part.number, res.etag)
      if not dok then return false, errors.locate(derr, "UploadStream", bucket, key) end
      progress(part.size)
      return true
    end }
  if ok and read_err then ok, err = nil, fail("UploadStream", "ReaderError", read_err, bucket, key) end
  if not ok then
    if not opts.leave_parts_on_error then c:abort_multipart_upload(bucket, key, upload_id) end
    err.upload_id = upload_id
    return nil, err
  end
  local fin, cerr = complete.complete(c, "UploadStream", bucket, key, upload_id, m, m:etag(),
    common.customer_key_headers(common.part_headers(opts, 1)))
  if not fin then return nil, cerr end
  progress(0, true)
  return { bucket = bucket, key = key, etag = fin.etag, size = total, parts = (m:count()), resumed_from = 0,
    upload_id = upload_id }
end

--- copy_large(src_bucket, src_key, dst_bucket, dst_key, opts): server-side
-- copy of any size with UploadPartCopy (CopyObject stops at 5 GiB), parts
-- in parallel, the source pinned by its ETag.
local function copy_large(c, src_bucket, src_key, dst_bucket, dst_key, opts)
  common.bucket(c, "copy_large", 1, src_bucket, "src_bucket")
  common.key("copy_large", 2, src_key, "src_key")
  common.bucket(c, "copy_large", 3, dst_bucket, "dst_bucket")
  common.key("copy_large", 4, dst_key, "dst_key")
  opts = common.opts("copy_large", 5, opts, { part_size = true, concurrency = true, progress = true,
    metadata = true, content_type = true, acl = true, storage_class = true, threshold = true,
    leave_parts_on_error = true, part_headers = true })
  local head, herr = c:head_object(src_bucket, src_key)
  if not head then return nil, herr end
  local size = head.content_length or 0
  local psize = plan.part_size(size, c.provider, opts.part_size or 64 * 1024 * 1024)
  if size <= (opts.threshold or psize) then
    local r, err = c:copy_object(src_bucket, src_key, dst_bucket, dst_key, { if_match = head.etag,
      metadata = opts.metadata, content_type = opts.content_type, acl = opts.acl,
      storage_class = opts.storage_class })
    if not r then return nil, err end
    return { bucket = dst_bucket, key = dst_key, etag = r.etag, size = size, parts = 1 }
  end
  local up, uerr = c:create_multipart_upload(dst_bucket, dst_key, {
    content_type = opts.content_type or head.content_type,
    metadata = opts.metadata or head.metadata, acl = opts.acl, storage_class = opts.storage_class })
  if not up then return nil, uerr end
  local progress = progress_mod.new(opts.progress, size, 0)
  local m = core.mpu.new{ size = size, part_size = psize }
  local ok, err = c:run{ concurrency = opts.concurrency or 8,
    next = function()
      local n, offset, length = m:next()
      if not n then return nil end
      return c:build_request("upload_part_copy", dst_bucket, dst_key, up.upload_id, n, src_bucket, src_key,
        { range = { offset, offset + length - 1 }, if_match = head.etag,
          headers = common.part_headers(opts, n), context = { number = n, length = length } })
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
  return { bucket = dst_bucket, key = dst_key, etag = fin.etag, size = size, parts = (m:count()) }
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
