--- copy_large: a server-side copy of any size in UploadPartCopy parts,
-- resumable from a checkpoint like upload_file (transfer/state.lua); the
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
local clock = require "objstore.clock"
local response = require "objstore.engine.response"
local core = require "objstore.core"

local type, ipairs, pairs, tonumber = type, ipairs, pairs, tonumber

local fail = errors.failure

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

--- With a checkpoint, what it records is resumed (transfer/state.lua).
function COPY.prepare(c, job)
  if not job.checkpoint then return true end
  local bucket, key, opts = job.bucket, job.key, job.opts
  local ck, m, upload_id, done_head = state_mod.open_multipart(c, job.checkpoint, job.m, job.header, job.notices,
    { op = "CopyLarge", bucket = bucket, key = key, new_state = job.new_state,
      reconcile = function(mm, id) return reconcile_copy(c, bucket, key, mm, id) end,
      complete = function(mm) return copy_complete(c, bucket, key, mm, job.size, opts) end })
  if not ck then return nil, m end
  job.ck, job.m, job.upload_id, job.done_head = ck, m, upload_id, done_head
  if done_head then job.progress = progress_mod.new(opts.progress, job.size, job.size) end
  return true
end

--- The destination's headers: given ones, else the source's (stored).
function COPY.create(c, job)
  local opts, stored = job.opts, job.stored
  local up, uerr = state_mod.create_upload(c, job.ck, job.header, job.bucket, job.key, sse_opts(opts, {
    content_type = stored.content_type, metadata = stored.metadata, cache_control = stored.cache_control,
    content_disposition = stored.content_disposition, acl = opts.acl, storage_class = opts.storage_class }),
    "CopyLarge")
  if not up then return nil, uerr end
  job.upload_id = up.upload_id
  return true
end

function COPY.start(job)
  job.resumed_from = job.m:bytes_done()
  job.progress = progress_mod.new(job.opts.progress, job.size, job.resumed_from)
end

--- The assembled object's ETag must be the one its part ETags imply (not
-- checked where ETags are not MD5s: SSE-KMS, SSE-C).
function COPY.finish(c, job)
  local opts = job.opts
  return complete.complete(c, "CopyLarge", job.bucket, job.key, job.upload_id, job.m,
    sse.etag_is_md5(c, opts) and parts_etag(job.m) or nil, common.customer_key_headers(common.part_headers(opts, 1),
    c, opts))
end

--- already: the destination was complete (fin is its HEAD), nothing sent.
function COPY.result(job, fin, already)
  local notices = #job.notices > 0 and job.notices or nil
  if already then
    return { bucket = job.bucket, key = job.key, etag = fin.etag, size = job.size, parts = (job.m:count()),
      source_etag = job.source_etag, resumed_from = job.size, upload_id = job.upload_id, sent = 0,
      version_id = fin.version_id, sse = fin.sse, kms_key_id = fin.kms_key_id, notices = notices }
  end
  return { bucket = job.bucket, key = job.key, etag = fin.etag, size = job.size, parts = (job.m:count()),
    sse = fin.sse, source_etag = job.source_etag, kms_key_id = fin.kms_key_id, version_id = fin.version_id,
    upload_id = job.upload_id, resumed_from = job.resumed_from, sent = job.sent, notices = notices,
    verified = sse.etag_is_md5(job.c, job.opts) == true }
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
  -- below the threshold one CopyObject, which no store takes above 5 GiB
  if size < (opts.multipart_threshold or psize) and size <= defaults.MAX_SINGLE_REQUEST then
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
  return driver.transfer(c, COPY, { m = m, bucket = dst_bucket, key = dst_key, checkpoint = cp_path,
    leave = opts.leave_parts_on_error, concurrency = opts.concurrency or defaults.CONCURRENCY.copy_large,
    on_part = opts.on_part, opts = opts, src = src, source_etag = head.etag, size = size, stored = stored,
    new_state = new_state, notices = {}, header = copy_header(head, src_bucket, src_key, dst_bucket, dst_key, size,
      psize) })
end

return { copy_large = { call = copy_large } }
