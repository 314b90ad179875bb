--- upload_stream (unknown size, e.g. stdin), copy_large (server-side
-- UploadPartCopy) and the housekeeping of incomplete uploads.
local plan = require "objstore.transfer.plan"
local runner = require "objstore.transfer.runner"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local common = require "objstore.client.common"
local clock = require "objstore.clock"

local type, ipairs, tostring, io_type = type, ipairs, tostring, io.type
local concat = table.concat

local fail = errors.failure

return function(Client)
  --- upload_stream(bucket, key, reader, opts) -> result | nil, err
  -- reader: function() -> chunk | nil | nil, err, or a file handle (stdin).
  -- Memory stays within about concurrency x part_size: parts are cut from
  -- the stream as it comes and sent while the next are read; the part size
  -- grows with the count so the part limit holds the largest object, and
  -- reaching the limit is an error, never a silent truncation.
  function Client:upload_stream(bucket, key, reader, opts)
    common.check_bucket("upload_stream", bucket)
    common.check_key("upload_stream", key)
    opts = common.check_opts("upload_stream", opts, { part_size = true, concurrency = true, progress = true,
      metadata = true, content_type = true, acl = true, storage_class = true, leave_parts_on_error = true,
      headers = true })
    if io_type(reader) == "file" then
      local fh = reader
      reader = function() return fh:read(1024 * 1024) end
    elseif type(reader) ~= "function" then
      errors.argument("upload_stream", "reader must be a function or a file handle", 2)
    end
    local lim = plan.LIMITS[self.provider]
    local base = math.max(opts.part_size or plan.DEFAULT_PART_SIZE, lim.min_part)
    local concurrency = opts.concurrency or 4
    local progress = runner.progress(opts.progress, nil, 0)

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
      local r, err = self:put_object(bucket, key, first, { content_type = opts.content_type, metadata = opts.metadata,
        acl = opts.acl, storage_class = opts.storage_class, headers = opts.headers })
      if not r then return nil, err end
      progress(#first, true)
      return { bucket = bucket, key = key, etag = r.etag, size = #first, parts = 1, resumed_from = 0 }
    end
    local up, uerr = self:create_multipart_upload(bucket, key, { content_type = opts.content_type,
      metadata = opts.metadata, acl = opts.acl, storage_class = opts.storage_class, headers = opts.headers })
    if not up then return nil, uerr end
    local upload_id = up.upload_id
    local parts, md5s, total, number = {}, {}, 0, 0
    local next_data, read_err = first, nil
    local ok, err = runner.run(self, {
      concurrency = concurrency,
      next = function()
        if not next_data or read_err then return nil end
        local data = next_data
        number = number + 1
        if number > lim.max_parts then
          read_err = "the stream needs more than " .. lim.max_parts .. " parts"
          return nil
        end
        -- Read the following part now so the end of the stream is known.
        if eof and pending_len == 0 then
          next_data = nil
        else
          local size = plan.stream_part_size(number, self.provider, base)
          local nd, rerr = read_part(size)
          if not nd then read_err = tostring(rerr) end
          next_data = (nd and #nd > 0) and nd or nil
        end
        local md5 = checksum.md5(data)
        md5s[number] = md5
        total = total + #data
        return { name = "UploadPart", method = "PUT", bucket = bucket, key = key,
          query = { partNumber = tostring(number), uploadId = upload_id },
          headers = { ["Content-MD5"] = checksum.tobase64(md5) }, body = data, body_length = #data,
          number = number, md5 = md5 }
      end,
      done = function(op, res, perr)
        if not res then return false, perr end
        parts[#parts + 1] = { part_number = op.number, etag = res.headers["etag"] }
        progress(#op.body)
        return true
      end,
    })
    if ok and read_err then ok, err = nil, fail("UploadStream", "ReaderError", read_err, bucket, key) end
    if not ok then
      if not opts.leave_parts_on_error then self:abort_multipart_upload(bucket, key, upload_id) end
      err.upload_id = upload_id
      return nil, err
    end
    local fin, cerr = self:complete_multipart_upload(bucket, key, upload_id, parts)
    if not fin then return nil, cerr end
    local expected = '"' .. checksum.multipart_etag(md5s) .. '"'
    local etag = fin.etag
    if not etag or etag == "" or etag == '""' then
      local h, herr = self:head_object(bucket, key)
      if not h then return nil, herr end
      etag = h.etag
    end
    -- Servers differ in quoting the ETag (radosgw drops the quotes when it
    -- answers a retried Complete): compare the value.
    if etag and not etag:find('^"') then etag = '"' .. etag .. '"' end
    if etag ~= expected then
      return nil, fail("UploadStream", "BadDigest", "object ETag " .. tostring(etag) .. " is not " .. expected,
        bucket, key)
    end
    progress(0, true)
    return { bucket = bucket, key = key, etag = etag, size = total, parts = #parts, resumed_from = 0,
      upload_id = upload_id }
  end

  --- copy_large(src_bucket, src_key, dst_bucket, dst_key, opts): server-side
  -- copy of any size with UploadPartCopy (CopyObject stops at 5 GiB), parts
  -- in parallel, the source pinned by its ETag.
  function Client:copy_large(src_bucket, src_key, dst_bucket, dst_key, opts)
    common.check_bucket("copy_large", src_bucket)
    common.check_key("copy_large", src_key)
    common.check_bucket("copy_large", dst_bucket)
    common.check_key("copy_large", dst_key)
    opts = common.check_opts("copy_large", opts, { part_size = true, concurrency = true, progress = true,
      metadata = true, content_type = true, acl = true, storage_class = true, threshold = true,
      leave_parts_on_error = true })
    local head, herr = self:head_object(src_bucket, src_key)
    if not head then return nil, herr end
    local size = head.content_length or 0
    local psize = plan.part_size(size, self.provider, opts.part_size or 64 * 1024 * 1024)
    if size <= (opts.threshold or psize) then
      local r, err = self:copy_object(src_bucket, src_key, dst_bucket, dst_key, { if_match = head.etag,
        metadata = opts.metadata, content_type = opts.content_type, acl = opts.acl,
        storage_class = opts.storage_class })
      if not r then return nil, err end
      return { bucket = dst_bucket, key = dst_key, etag = r.etag, size = size, parts = 1 }
    end
    local up, uerr = self:create_multipart_upload(dst_bucket, dst_key, {
      content_type = opts.content_type or head.content_type,
      metadata = opts.metadata or head.metadata, acl = opts.acl, storage_class = opts.storage_class })
    if not up then return nil, uerr end
    local progress = runner.progress(opts.progress, size, 0)
    local ranges = plan.parts(size, psize)
    local d = self.dialect
    local i, parts = 0, {}
    local src = "/" .. src_bucket .. "/" .. require("objstore.core").encode.uri_encode(src_key, true)
    local ok, err = runner.run(self, {
      concurrency = opts.concurrency or 8,
      next = function()
        i = i + 1
        local r = ranges[i]
        if not r then return nil end
        return { name = "UploadPartCopy", method = "PUT", bucket = dst_bucket, key = dst_key,
          query = { partNumber = tostring(r.number), uploadId = up.upload_id },
          headers = { [d.copy_source] = src,
            [d.copy_source_range] = "bytes=" .. r.offset .. "-" .. (r.offset + r.length - 1),
            [d.prefix .. "copy-source-if-match"] = head.etag },
          range = r, parse = function(res, op) return self:_parse_xml(res, op) end }
      end,
      done = function(op, res, perr)
        if not res then return false, perr end
        if not res.etag then return false, fail("CopyLarge", "MalformedResponse", "no ETag for a copied part",
          dst_bucket, dst_key) end
        parts[#parts + 1] = { part_number = op.range.number, etag = res.etag }
        progress(op.range.length)
        return true
      end,
    })
    if not ok then
      if not opts.leave_parts_on_error then self:abort_multipart_upload(dst_bucket, dst_key, up.upload_id) end
      return nil, err
    end
    local fin, cerr = self:complete_multipart_upload(dst_bucket, dst_key, up.upload_id, parts)
    if not fin then return nil, cerr end
    progress(0, true)
    return { bucket = dst_bucket, key = dst_key, etag = fin.etag, size = size, parts = #parts }
  end

  --- list_incomplete_uploads(bucket, prefix) -> { {key, upload_id, initiated}, ... } (all pages)
  function Client:list_incomplete_uploads(bucket, prefix)
    common.check_bucket("list_incomplete_uploads", bucket)
    local out, key_marker, id_marker = {}, nil, nil
    repeat
      local page, err = self:list_multipart_uploads(bucket, { prefix = prefix, key_marker = key_marker,
        upload_id_marker = id_marker })
      if not page then return nil, err end
      for _, u in ipairs(page.uploads) do out[#out + 1] = u end
      key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker
    until not page.is_truncated or not key_marker or key_marker == ""
    return out
  end

  --- abort_incomplete_uploads(bucket, {older_than = seconds, prefix = ...}) -> { aborted = n, errors = {...} }
  function Client:abort_incomplete_uploads(bucket, opts)
    common.check_bucket("abort_incomplete_uploads", bucket)
    opts = common.check_opts("abort_incomplete_uploads", opts, { older_than = true, prefix = true })
    local list, err = self:list_incomplete_uploads(bucket, opts.prefix)
    if not list then return nil, err end
    local now = self:now()
    local result = { aborted = 0, errors = {} }
    for _, u in ipairs(list) do
      local started = clock.parse(u.initiated)
      if not opts.older_than or (started and now - started >= opts.older_than) then
        local ok, aerr = self:abort_multipart_upload(bucket, u.key, u.upload_id)
        if ok then
          result.aborted = result.aborted + 1
        else
          result.errors[#result.errors + 1] = aerr
        end
      end
    end
    return result
  end

end
