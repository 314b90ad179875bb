--- upload_stream (unknown size, e.g. stdin), copy_large (server-side
-- UploadPartCopy) and the housekeeping of incomplete uploads.
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
local clock = require "objstore.clock"
local response = require "objstore.engine.response"

local core = require "objstore.core"

local type, ipairs, pairs, tostring, tonumber, io_type = type, ipairs, pairs, tostring, tonumber, io.type
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
  local job = { m = m, bucket = bucket, key = key, upload_id = upload_id, leave = opts.leave_parts_on_error,
    concurrency = opts.concurrency or defaults.CONCURRENCY.upload_stream, progress = progress, moving = moving,
    opts = opts, alg = alg, src = src, base = base, max_parts = max_parts, next_buf = first, total = 0,
    all_verified = alg ~= nil }
  local ok, err = driver.run(c, STREAM, job)
  if not ok then return nil, err end
  local total, all_verified = job.total, job.all_verified
  local fin, cerr = complete.complete(c, "UploadStream", bucket, key, upload_id, m, etag_md5 and m:etag() or nil,
    common.customer_key_headers(common.part_headers(opts, 1), c, opts), all_verified and alg or nil)
  if not fin then return nil, cerr end
  progress(0, true)
  return { bucket = bucket, key = key, etag = fin.etag, size = total, parts = (m:count()), resumed_from = 0,
    upload_id = upload_id, sse = up.sse, kms_key_id = up.kms_key_id,
    checksum = alg and { algorithm = alg, verified = all_verified == true } or nil }
end

local COPY_LARGE_OPTS = { part_size = true, concurrency = true, progress = true, metadata = true,
  content_type = true, cache_control = true, content_disposition = true, acl = true, storage_class = true,
  multipart_threshold = true, leave_parts_on_error = true,
  part_headers = true, copy_source_sse_customer_key = true, checkpoint = true, on_part = true }
for k in pairs(sse.OBJECT_OPTS) do COPY_LARGE_OPTS[k] = true end

--- The encryption options of `opts` alone.
local function sse_opts(opts, into)
  for k in pairs(sse.OBJECT_OPTS) do into[k] = opts[k] end
  return into
end

--- The checkpoint path of a copy: opts.checkpoint, or for `true` a file
-- in the current directory named after the source and the destination.
local function copy_checkpoint_path(opts, src_bucket, src_key, dst_bucket, dst_key)
  local cp = opts.checkpoint
  if cp == true then
    local id = checksum.hex("md5", table.concat({ src_bucket, src_key, dst_bucket, dst_key }, "\0"))
    return "objstore-copy-" .. id:sub(1, 16) .. ".objstore-cp"
  end
  if cp ~= nil and type(cp) ~= "string" then
    common.misuse("copy_large", 4, "opts.checkpoint", "must be a path or true, " .. errors.got(cp))
  end
  return cp
end

--- The checkpoint header of a copy. Its "file" is the source object: size,
-- last-modified (file_mtime), a 48-bit digest of its bucket, key and
-- version id (file_inode) and ETag, so a source overwritten between two
-- runs starts a clean copy.
local function copy_header(head, src_bucket, src_key, dst_bucket, dst_key, size, psize)
  local d = checksum.digest("md5", table.concat({ src_bucket, src_key, head.version_id or "" }, "\0"))
  local name = 0
  for i = 1, 6 do name = name * 256 + d:byte(i) end
  local etag = head.etag or ""
  if #etag >= 80 then etag = checksum.hex("md5", etag) end -- longer than the header keeps
  return { kind = "copy", bucket = dst_bucket, key = dst_key, file_size = size,
    file_mtime = clock.parse(head.last_modified or "") or 0, file_inode = name, etag = etag, part_size = psize,
    object_size = size }
end

--- An ETag without quotes, in lower case (servers differ in both).
local function bare_etag(etag)
  return type(etag) == "string" and etag:gsub('"', ""):lower() or nil
end

--- The parts ListParts reports for upload_id, reconciled into m. A copied
-- part has no local bytes to hash: one we did not record (the crash came
-- between the server's answer and the record) is accepted when its size is
-- the planned one, since every part of this upload was copied from the
-- same range of the same source ETag (If-Match); a recorded part is kept
-- when the listed ETag is the recorded one, copied again otherwise.
-- Returns the part numbers newly accepted, or nil, err (err.status 404:
-- the upload is gone).
local function reconcile_copy(c, bucket, key, m, upload_id)
  local listed, err = c:list_parts(bucket, key, upload_id)
  if not listed then return nil, err end
  local count = m:count()
  local recorded, etags = {}, {}
  for _, p in ipairs(listed.parts) do
    local n = tonumber(p.part_number)
    if n and n >= 1 and n <= count and n % 1 == 0 then
      etags[n] = p.etag
      local mine = m:part(n)
      recorded[n] = mine.state == "done" and mine.etag or false
    end
  end
  local adopted = {}
  for _, n in ipairs(m:reconcile(listed.parts)) do
    local ok = not recorded[n] or bare_etag(recorded[n]) == bare_etag(etags[n])
    if ok and m:done(n, etags[n]) then adopted[#adopted + 1] = n else m:reset(n) end
  end
  return adopted
end

--- The ETag a multipart object assembled from m's parts has: the MD5 of
-- the part ETags (binary) followed by "-<count>"; nil unless every part is
-- done with an MD5-shaped ETag.
local function parts_etag(m)
  local etags = {}
  for n = 1, (m:count()) do
    local p = m:part(n)
    local hex = p.state == "done" and p.etag:match('^"?(%x+)"?$')
    if not hex or #hex ~= 32 then return nil end
    etags[n] = hex
  end
  return checksum.multipart_etag(etags)
end

--- The destination's HEAD when it is already what the recorded parts make
-- (the copy was completed, then the process died before it could remove
-- its checkpoint): its size, and its ETag the one the part ETags imply;
-- nil otherwise.
local function copy_complete(c, bucket, key, m, size, opts)
  local want = parts_etag(m)
  if not want then return nil end
  local h = c:head_object(bucket, key, { headers = common.customer_key_headers(common.part_headers(opts, 1), c,
    opts) })
  if not h or h.content_length ~= size or bare_etag(h.etag) ~= want then return nil end
  return h
end

--- The parts of a copy: UploadPartCopy of the source's range, pinned by
-- the source's ETag (If-Match), so a source changed meanwhile fails
-- (PreconditionFailed) instead of mixing two versions.
local COPY = { op = "CopyLarge" }

function COPY.request(job, n, offset, length)
  local opts = job.opts
  return job.c:build_request("upload_part_copy", job.bucket, job.key, job.upload_id, n, job.src,
    { range = { offset, offset + length - 1 }, copy_source_if_match = job.source_etag,
      headers = common.part_headers(opts, n), context = { number = n, length = length },
      sse_customer_key = opts.sse_customer_key, copy_source_sse_customer_key = opts.copy_source_sse_customer_key })
end

--- A copied part's ETag, quoted as ListParts gives it (the
-- CopyPartResult's is bare), is what a resume compares.
function COPY.record(job, part, res)
  if not res.etag then
    return nil, fail("CopyLarge", "MalformedResponse", "no ETag for a copied part", job.bucket, job.key)
  end
  return job.m:done(part.number, response.quoted_etag(res.etag))
end

--- copy_large(bucket, key, source, opts) -> { etag, size, parts, sent, verified, ... } | nil, err
-- Server-side copy of any size to bucket/key with UploadPartCopy
-- (CopyObject stops at 5 GiB), parts in parallel, the source pinned by its
-- ETag. Below the multipart threshold it is one CopyObject.
-- source: { bucket =, key =, version_id = } (as copy_object's);
--   version_id copies that version (HEAD, CopyObject and every
--   UploadPartCopy name it: a newer version written meanwhile changes
--   nothing).
-- opts.checkpoint: makes it resumable like upload_file: a path, or true
--   for "objstore-copy-<id>.objstore-cp" in the current directory. A
--   resume copies only what is missing; a changed source starts a clean
--   copy, said in res.notices.
-- opts.metadata: the destination's metadata (default: the source's).
-- opts.content_type: the destination's Content-Type (default: the source's).
-- result.sent: parts copied by this run (0 when the destination was
--   already complete).
-- errors: PreconditionFailed (the source changed), Aborted, and those of
--   the requests.
local function copy_large(c, bucket, key, source, opts)
  common.bucket(c, "copy_large", 1, bucket)
  common.key("copy_large", 2, key)
  local dst_bucket, dst_key = bucket, key
  local src = common.source(c, "copy_large", 3, source)
  local src_bucket, src_key, svid = src.bucket, src.key, src.version_id
  opts = common.opts("copy_large", 4, opts, COPY_LARGE_OPTS)
  local cp_path = copy_checkpoint_path(opts, src_bucket, src_key, dst_bucket, dst_key)
  local head, herr = c:head_object(src_bucket, src_key, { sse_customer_key = opts.copy_source_sse_customer_key,
    version_id = svid })
  if not head then return nil, herr end
  local size = head.content_length or 0
  local psize = plan.part_size(size, c.provider, opts.part_size or defaults.COPY_PART_SIZE)
  -- The object's headers: each one given replaces the source's, the others
  -- are the source's (as a multipart copy, which starts a new object, always
  -- does). A single CopyObject keeps the source's unless told REPLACE, and
  -- then keeps nothing: so the source's are sent along.
  local replace = opts.metadata or opts.content_type or opts.cache_control or opts.content_disposition
  local stored = { content_type = opts.content_type or head.content_type,
    metadata = opts.metadata or head.metadata, cache_control = opts.cache_control or head.cache_control,
    content_disposition = opts.content_disposition or head.content_disposition }
  if size < (opts.multipart_threshold or psize) then
    local copts = { copy_source_if_match = head.etag, acl = opts.acl, storage_class = opts.storage_class,
      copy_source_sse_customer_key = opts.copy_source_sse_customer_key }
    if replace then
      copts.metadata_directive = "REPLACE"
      for k, v in pairs(stored) do copts[k] = v end
    end
    local r, err = c:copy_object(dst_bucket, dst_key, src, sse_opts(opts, copts))
    if not r then return nil, err end
    -- verified: the copy's ETag is the source's (the same bytes, where
    -- ETags are MD5s); a multipart source's copy gets an ETag of its own.
    return { bucket = dst_bucket, key = dst_key, etag = r.etag, size = size, parts = 1, sse = r.sse,
      source_etag = head.etag, kms_key_id = r.kms_key_id, resumed_from = 0,
      verified = sse.etag_is_md5(c, opts) and head.etag ~= nil
        and r.etag ~= nil and r.etag:gsub('"', ""):lower() == head.etag:gsub('"', ""):lower() }
  end
  local function new_state() return core.mpu.new{ size = size, part_size = psize } end
  local m, merr = new_state()
  if not m then return nil, errors.locate(merr, "CopyLarge", dst_bucket, dst_key) end
  local header = copy_header(head, src_bucket, src_key, dst_bucket, dst_key, size, psize)
  local notices = {}
  local ck, upload_id
  if cp_path then
    local done_head
    ck, m, upload_id, done_head = state_mod.open_multipart(c, cp_path, m, header, notices, { op = "CopyLarge",
      bucket = dst_bucket, key = dst_key, new_state = new_state,
      reconcile = function(mm, id) return reconcile_copy(c, dst_bucket, dst_key, mm, id) end,
      complete = function(mm) return copy_complete(c, dst_bucket, dst_key, mm, size, opts) end })
    if not ck then return nil, m end
    if done_head then
      ck:remove()
      progress_mod.new(opts.progress, size, size)(0, true)
      return { bucket = dst_bucket, key = dst_key, etag = done_head.etag, size = size, parts = (m:count()),
        source_etag = head.etag, resumed_from = size, upload_id = upload_id, sent = 0,
        version_id = done_head.version_id,
        sse = done_head.sse, kms_key_id = done_head.kms_key_id, notices = #notices > 0 and notices or nil }
    end
  end
  if not upload_id then
    local up, uerr = state_mod.create_upload(c, ck, header, dst_bucket, dst_key, sse_opts(opts, {
      content_type = stored.content_type, metadata = stored.metadata, cache_control = stored.cache_control,
      content_disposition = stored.content_disposition, acl = opts.acl, storage_class = opts.storage_class }),
      "CopyLarge")
    if not up then return nil, uerr end
    upload_id = up.upload_id
  end
  local resumed_from = m:bytes_done()
  local progress = progress_mod.new(opts.progress, size, resumed_from)
  local job = { m = m, bucket = dst_bucket, key = dst_key, upload_id = upload_id, ck = ck, checkpoint = cp_path,
    leave = opts.leave_parts_on_error, concurrency = opts.concurrency or defaults.CONCURRENCY.copy_large,
    on_part = opts.on_part, progress = progress, opts = opts, src = src, source_etag = head.etag }
  local ok, err = driver.run(c, COPY, job)
  if not ok then return nil, err end
  local sent = job.sent
  -- The assembled object's ETag must be the one its part ETags imply (not
  -- checked where ETags are not MD5s: SSE-KMS, SSE-C).
  local fin, cerr = complete.complete(c, "CopyLarge", dst_bucket, dst_key, upload_id, m,
    sse.etag_is_md5(c, opts) and parts_etag(m) or nil, common.customer_key_headers(common.part_headers(opts, 1), c,
    opts))
  if not fin then
    if ck then ck:close() end
    return nil, cerr
  end
  if ck then ck:remove() end
  progress(0, true)
  return { bucket = dst_bucket, key = dst_key, etag = fin.etag, size = size, parts = (m:count()), sse = fin.sse,
    source_etag = head.etag, kms_key_id = fin.kms_key_id, version_id = fin.version_id, upload_id = upload_id,
    resumed_from = resumed_from,
    sent = sent, notices = #notices > 0 and notices or nil, verified = sse.etag_is_md5(c, opts) == true }
end

--- list_incomplete_uploads(bucket, prefix) -> { { key, upload_id, initiated }, ... } | nil, err
-- Every upload begun and not finished (all pages), only those under
-- `prefix` (nil: all), whatever the store answered.
-- errors: TruncatedListing, PaginationLoop, and those of the listing.
local function list_incomplete_uploads(c, bucket, prefix)
  common.bucket(c, "list_incomplete_uploads", 1, bucket)
  local out, key_marker, id_marker, seen = {}, nil, nil, {}
  repeat
    local page, err = c:list_multipart_uploads(bucket, { prefix = prefix, key_marker = key_marker,
      upload_id_marker = id_marker })
    if not page then return nil, err end
    -- Only uploads below the prefix, whatever the store answered: the
    -- caller may abort every one of them.
    for _, u in ipairs(page.uploads) do
      if not prefix or (type(u.key) == "string" and u.key:sub(1, #prefix) == prefix) then out[#out + 1] = u end
    end
    key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker
    if page.is_truncated then
      if not key_marker or key_marker == "" then
        return nil, errors.failure("ListMultipartUploads", "TruncatedListing",
          "the listing is truncated but gives no NextKeyMarker", bucket, nil, { retryable = false })
      end
      local mark = key_marker .. "\0" .. tostring(id_marker)
      if seen[mark] then
        return nil, errors.failure("ListMultipartUploads", "PaginationLoop",
          "The same next marker was received twice: " .. key_marker, bucket, nil, { retryable = false })
      end
      seen[mark] = true
    end
  until not page.is_truncated
  return out
end

--- abort_incomplete_uploads(bucket, opts) -> { aborted, errors } | nil, err
-- Aborts the uploads begun and not finished.
-- opts.older_than: only uploads begun at least this many seconds ago.
-- opts.prefix: only uploads of keys under this prefix.
-- result.aborted: how many were aborted.
-- result.errors: the errors of the aborts that failed (each names its key).
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
