--- upload_file: multipart uploads that run their parts concurrently, retry
-- each part on its own, check every part and the whole (Content-MD5 on
-- each part, the final ETag against the MD5 of the part MD5s, the
-- whole-object CRC-64/NVME stored in the object's metadata), and resume
-- from an append-only checkpoint reconciled with ListParts. The state of
-- the parts lives in C (core.mpu); this file is the policy.
--
-- Crash safety: the intent (bucket, key, file identity, time) is recorded
-- before CreateMultipartUpload, so a resume that finds no upload id adopts
-- the upload the crashed process created (and aborts any others it left);
-- a resume whose upload has vanished HEADs the object and, when it is what
-- the recorded parts imply, finishes without sending anything. That
-- sequence lives in transfer/state.lua (open_multipart, create_upload),
-- shared with copy_large; this file gives it the file's checks.
local plan = require "objstore.transfer.plan"
local state_mod = require "objstore.transfer.state"
local driver = require "objstore.transfer.driver"
local defaults = require "objstore.transfer.defaults"
local progress_mod = require "objstore.transfer.progress"
local complete = require "objstore.transfer.complete"
local request = require "objstore.engine.request"
local errors = require "objstore.errors"
local common = require "objstore.ops.common"
local sse = require "objstore.ops.sse"
local flexsum = require "objstore.ops.flexsum"
local checksum = require "objstore.checksum"
local core = require "objstore.core"
local hashjob = require "objstore.hashjob"
local lfs = require "lfs"

local type, pairs, ipairs, tostring, tonumber, floor = type, pairs, ipairs, tostring, tonumber, math.floor
local b64, unb64 = core.encode.base64_encode, core.encode.base64_decode

-- Options of the transfers (upload_file, download_file, upload_stream,
-- copy_large):
-- opts.checkpoint: resume after a crash: true for "<path>.objstore-cp"
--   beside the file, or a path. Without it an interrupted transfer leaves
--   nothing behind (its upload is aborted, its part file removed).
-- opts.progress: function(done, total, rate) called at most 4 times a
--   second and at the end (bytes done, total bytes or nil, bytes/s).
-- opts.on_part: function(part_number, parts_done_this_run) after each part;
--   returning false stops the transfer (error Aborted).
-- opts.verify: false turns off the whole-object checks (default true).
-- opts.leave_parts_on_error: true keeps the upload and its parts when the
--   transfer fails (default: aborted unless a checkpoint keeps it).
local UPLOAD_OPTS = { part_size = true, multipart_threshold = true, concurrency = true, checkpoint = true,
  progress = true,
  leave_parts_on_error = true, on_part = true, verify = true, part_headers = true, checksum = true,
  checksum_policy = true, bwlimit = true }
for k in pairs(common.UPLOAD_OPTS) do UPLOAD_OPTS[k] = true end

local function fail(code, message, bucket, key, extra)
  return errors.failure("UploadFile", code, message, bucket, key, extra)
end

--- The parts the server holds for upload_id, reconciled into m: parts it
-- has that we did not record are checked against the local bytes' MD5.
-- Returns the list of part numbers newly accepted, or nil, err (err.status
-- 404 for an upload that no longer exists). With SSE-KMS or SSE-C
-- (etag_md5 false) a part's ETag proves nothing of its bytes, so parts we
-- did not record are sent again.
local function reconcile(c, bucket, key, path, m, upload_id, kinds, etag_md5)
  local listed, err = c:list_parts(bucket, key, upload_id)
  if not listed then return nil, err end
  local to_check = m:reconcile(listed.parts)
  if not etag_md5 then
    for _, n in ipairs(to_check) do m:reset(n) end
    return {}
  end
  local etags = {}
  for _, p in ipairs(listed.parts) do etags[tonumber(p.part_number)] = p.etag end
  local ok, herr = state_mod.hash_parts(m, path, to_check, kinds, 2)
  if not ok then return nil, herr end
  local adopted = {}
  for _, n in ipairs(to_check) do
    if m:done(n, etags[n]) then adopted[#adopted + 1] = n else m:reset(n) end
  end
  return adopted
end

--- Whether the object on the server is already what the recorded parts
-- make (the upload was completed, then the process died before it could
-- remove its checkpoint).
-- With SSE-KMS or SSE-C the ETag is not the MD5 of the part MD5s: the
-- CRC-64/NVME objstore stored in the metadata tells instead.
local function already_complete(c, bucket, key, m, size, opts, etag_md5)
  local want = etag_md5 and m:etag() or m:crc("crc64nvme", true)
  if not want then return nil end
  local h = c:head_object(bucket, key, { headers = common.customer_key_headers(common.part_headers(opts, 1), c, opts) })
  if not h or h.content_length ~= size then return nil end
  if etag_md5 then
    local etag = h.etag and h.etag:gsub('"', ""):lower()
    if etag ~= want then return nil end
  elseif state_mod.stored_crc(h) ~= want then
    return nil
  end
  return h
end

--- Single PUT: MD5 and CRC in one pass, the CRC stored as metadata.
local function put_whole(c, bucket, key, path, size, opts, upload_opts, verify, progress, moving, alg)
  upload_opts.checksum, upload_opts.checksum_policy = alg, opts.checksum_policy
  upload_opts.headers = common.extra_headers("upload_file", 4, common.part_headers(opts, 1),
    common.extra_headers("upload_file", 4, opts.headers, {}))
  upload_opts.content_md5 = false
  local crc, ecma
  if verify then
    local job, jerr = core.hash.file_async("md5", path, 0, size, state_mod.crc_kinds(c))
    if not job then return nil, jerr end
    local md5, nvme
    md5, nvme, ecma = hashjob.wait(job)
    if not md5 then return nil, errors.locate(nvme, "UploadFile", bucket, key) end
    upload_opts.content_md5 = b64(md5)
    upload_opts.metadata = state_mod.with_crc(opts.metadata, nvme)
    crc = nvme
  end
  local rate = common.max_speed("upload_file", 4, opts, 1)
  local on_progress = progress_mod.on_progress(moving, 1, "up")
  local res, err
  if rate or on_progress then
    local req = c:build_request("put_object", bucket, key, { path = path }, upload_opts)
    req.max_speed = rate
    req.on_progress = on_progress
    res, err = c:send(req)
  else
    res, err = c:put_object(bucket, key, { path = path }, upload_opts)
  end
  if not res then
    moving(1, nil)
    return nil, err
  end
  if ecma and res.crc64ecma and res.crc64ecma ~= checksum.to_decimal(ecma) then
    return nil, fail("BadDigest", "the server's CRC-64 " .. res.crc64ecma .. " is not the file's "
      .. checksum.to_decimal(ecma), bucket, key)
  end
  progress(size, true, 1)
  return { bucket = bucket, key = key, etag = res.etag, size = size, parts = 1, resumed_from = 0,
    version_id = res.version_id, verified = verify, crc64nvme = crc and b64(crc) or nil, sse = res.sse,
    kms_key_id = res.kms_key_id, checksum = res.checksum }
end

--- The flexible checksums of the Complete body: every part's when the
-- server verified at least one (one echo is enough: parts found on the
-- server after a crash are checksummed from the file). Returns the
-- algorithm for the body (nil: none) and whether every part was verified;
-- nil, false, err when a part's bytes cannot be read.
local function part_checksums(m, alg, path)
  if not alg then return nil, false end
  local count = m:count()
  local any, all = false, true
  for n = 1, count do
    local p = m:part(n)
    local ok = p.checksum_algorithm == alg and p.checksum_verified
    any, all = any or ok, all and ok
  end
  if not any then return nil, false end
  for n = 1, count do
    local p = m:part(n)
    if p.checksum_algorithm ~= alg then
      local v, err = flexsum.of_body(alg, { file = path, offset = p.offset, length = p.length })
      if not v then return nil, false, err end
      m:checksum(n, alg, unb64(v), false)
    end
  end
  return alg, all
end

--- Whether the parts a resumed upload recorded as sent are still the
-- file's bytes: their recorded MD5 (or CRC) against the file's now. Size,
-- mtime (whole seconds) and inode match, yet a file rewritten in place in
-- the same second, or whose mtime was set back, would otherwise become an
-- object of old and new parts, verified against its own records. Returns
-- true, false (changed, or nothing recorded to compare), or nil, err.
local function recorded_parts_unchanged(m, path, new_state, kinds)
  local numbers = {}
  for n = 1, m:count() do
    if m:part(n).state == "done" then numbers[#numbers + 1] = n end
  end
  if #numbers == 0 then return true end
  local fresh = new_state()
  local ok, err = state_mod.hash_parts(fresh, path, numbers, kinds, 2)
  if not ok then return nil, err end
  for _, n in ipairs(numbers) do
    local was, now = m:part(n), fresh:part(n)
    if was.md5 then
      if was.md5 ~= now.md5 then return false end
    elseif was.crc64nvme then
      if was.crc64nvme ~= now.crc64nvme then return false end
    else
      return false
    end
  end
  return true
end

--- The parts of a file: each read in C from its range of the file (which
-- must not have shrunk), sent with its Content-MD5 and the flexible
-- checksum asked for.
local STRATEGY = { op = "UploadFile", name_errors = true }

function STRATEGY.request(job, n, offset, length)
  local path, bucket, key = job.path, job.bucket, job.key
  local ok_size = lfs.attributes(path, "size")
  if not ok_size or ok_size < offset + length then
    return request.failed("UploadPart", fail("LocalFileError", path .. " is shorter than when the upload began ("
      .. tostring(ok_size) .. " < " .. job.size .. " bytes)", bucket, key), { part = n })
  end
  local opts = job.opts
  local md5 = job.verify and job.m:part(n).md5 or nil
  local req = job.c:build_request("upload_part", bucket, key, job.upload_id, n,
    { path = path, offset = offset, length = length },
    { content_md5 = md5 and b64(md5) or false, headers = common.part_headers(opts, n),
      sse_customer_key = opts.sse_customer_key, checksum = job.alg, checksum_policy = opts.checksum_policy,
      context = { number = n, length = length } })
  req.max_speed = job.rate
  req.on_progress = progress_mod.on_progress(job.moving, n, "up")
  return req
end

--- The server's ETag of a part is the MD5 of what it stored: C checks it
-- (not with SSE-KMS/SSE-C, whose ETags are not MD5s).
function STRATEGY.record(job, part, res)
  local ok, err = job.m:done(part.number, res.etag)
  if not ok then return nil, err end
  if res.checksum then job.m:checksum(part.number, job.alg, unb64(res.checksum.value), res.checksum.verified) end
  return true
end

--- The checkpoint opened and what it records resumed (transfer/state.lua),
-- then every part's MD5 and CRC on the hashing threads: the whole-object
-- CRC goes into the metadata at CreateMultipartUpload.
function STRATEGY.prepare(c, job)
  local bucket, key, path, opts, kinds = job.bucket, job.key, job.path, job.opts, job.kinds
  local m, upload_id, done_head = job.m, nil, nil
  if job.checkpoint then
    local ck
    ck, m, upload_id, done_head = state_mod.open_multipart(c, job.checkpoint, m, job.header, job.notices,
      { op = "UploadFile", bucket = bucket, key = key, new_state = job.new_state,
        reconcile = function(mm, id) return reconcile(c, bucket, key, path, mm, id, kinds, job.etag_md5) end,
        complete = function(mm) return already_complete(c, bucket, key, mm, job.size, opts, job.etag_md5) end })
    if not ck then return nil, m end
    job.ck = ck
    if upload_id then
      local same, herr = recorded_parts_unchanged(m, path, job.new_state, kinds)
      if same == nil then return nil, errors.locate(herr, "UploadFile", bucket, key) end
      if not same then
        job.notices[#job.notices + 1] = path .. " changed since the interrupted upload: starting a clean upload"
        if not done_head then c:abort_multipart_upload(bucket, key, upload_id) end
        m, upload_id, done_head = job.new_state(), nil, nil
      end
    end
  end
  job.m, job.upload_id, job.done_head = m, upload_id, done_head
  if done_head or not job.verify then return true end
  local todo = {}
  for n = 1, job.nparts do
    local p = m:part(n)
    if not (p.md5 and p.crc64nvme and (#kinds == 1 or p.crc64ecma)) then todo[#todo + 1] = n end
  end
  local width = math.min(opts.concurrency or defaults.CONCURRENCY.upload_file, 4)
  local hok, herr = state_mod.hash_parts(m, path, todo, kinds, width)
  if not hok then return nil, errors.locate(herr, "UploadFile", bucket, key) end
  job.whole_crc = m:crc("crc64nvme", true) or nil
  return true
end

--- The intent recorded first (state.create_upload), the file's CRC in the
-- upload's metadata.
function STRATEGY.create(c, job)
  local upload_opts = job.upload_opts
  if job.whole_crc then upload_opts.metadata = state_mod.with_crc(job.opts.metadata, job.whole_crc) end
  upload_opts.checksum = job.alg
  local up, err = state_mod.create_upload(c, job.ck, job.header, job.bucket, job.key, upload_opts, "UploadFile")
  if not up then return nil, err end
  job.upload_id = up.upload_id
  return true
end

function STRATEGY.start(job)
  local opts, m = job.opts, job.m
  job.resumed_from = m:bytes_done()
  job.progress, job.moving = progress_mod.new(opts.progress, job.size, job.resumed_from)
  job.progress(0, true)
  -- as many ways as parts can be in flight at once
  job.concurrency = opts.concurrency or defaults.CONCURRENCY.upload_file
  job.rate = common.max_speed("upload_file", 4, opts, state_mod.parts_in_flight(job.concurrency, m))
end

--- Complete, its ETag checked against the part MD5s and, where the server
-- reports one (OSS), its CRC-64 against the parts'.
function STRATEGY.finish(c, job)
  local m, opts, bucket, key = job.m, job.opts, job.bucket, job.key
  local body_alg, all_verified, serr = part_checksums(m, job.alg, job.path)
  if serr then return nil, errors.locate(serr, "UploadFile", bucket, key) end
  job.all_verified = all_verified
  local fin, ferr = complete.complete(c, "UploadFile", bucket, key, job.upload_id, m,
    job.verify and job.etag_md5 and m:etag() or nil,
    common.customer_key_headers(common.part_headers(opts, 1), c, opts), body_alg)
  if fin and job.verify and c.dialect.crc64 and fin.crc64ecma then
    local want = checksum.to_decimal(m:crc("crc64ecma", true))
    if want ~= fin.crc64ecma then
      return nil, fail("BadDigest", "the server's CRC-64 " .. fin.crc64ecma .. " is not the parts' " .. want, bucket,
        key)
    end
  end
  return fin, ferr
end

--- already: the object was complete (fin is its HEAD), nothing sent.
function STRATEGY.result(job, fin, already)
  local notices, alg = #job.notices > 0 and job.notices or nil, job.alg
  if already then
    return { bucket = job.bucket, key = job.key, etag = fin.etag, size = job.size, parts = job.nparts,
      resumed_from = job.size, upload_id = job.upload_id, version_id = fin.version_id, verified = job.verify,
      sent = 0, sse = fin.sse, kms_key_id = fin.kms_key_id, notices = notices }
  end
  local whole_crc = job.whole_crc
  return { bucket = job.bucket, key = job.key, etag = fin.etag, size = job.size, parts = job.nparts,
    resumed_from = job.resumed_from, upload_id = job.upload_id, version_id = fin.version_id, verified = job.verify,
    sent = job.sent, crc64nvme = whole_crc and b64(whole_crc) or nil, sse = fin.sse, kms_key_id = fin.kms_key_id,
    checksum = alg and { algorithm = alg, verified = job.all_verified == true } or nil, notices = notices }
end

--- upload_file(bucket, key, path, opts) -> { etag, size, parts, resumed_from, verified, ... } | nil, err
-- Uploads a file: one PUT up to the threshold, else a multipart upload
-- whose parts run concurrently (read in C with pread), each retried on its
-- own and sent with its Content-MD5; the final ETag is checked against the
-- MD5 of the part MD5s and the whole file's CRC-64/NVME is stored in the
-- object's metadata. With a checkpoint it resumes after a crash.
-- opts.headers: extra headers of the request that creates the upload (or
--   of the single PUT).
-- result.parts: the number of parts (1 for a single PUT).
-- result.resumed_from: bytes already uploaded by an earlier run.
-- result.verified: whether the stored object was checked against the file.
-- errors: LocalFileError (unreadable, or the file changed size), BadDigest
--   (a part or the whole object does not match the file), Aborted (on_part
--   stopped it), and those of the requests. An interrupt (core.signal)
--   raises; the upload is kept only with a checkpoint.
local function upload_file(c, bucket, key, path, opts)
  common.bucket(c, "upload_file", 1, bucket)
  common.key("upload_file", 2, key)
  if type(path) ~= "string" then common.misuse("upload_file", 3, "path", "must be a string, " .. errors.got(path)) end
  opts = common.opts("upload_file", 4, opts, UPLOAD_OPTS)
  common.max_speed("upload_file", 4, opts, 1) -- a bad bwlimit raises before any I/O
  local attr = lfs.attributes(path)
  if not attr or attr.mode ~= "file" then
    return nil, fail("LocalFileError", "cannot read " .. path, bucket, key)
  end
  local size, mtime = attr.size, attr.modification
  local part_size, perr = plan.part_size(size, c.provider, opts.part_size)
  if not part_size then return nil, fail("InvalidArgument", perr, bucket, key) end
  local threshold = opts.multipart_threshold or part_size
  local verify = opts.verify ~= false
  local progress, moving = progress_mod.new(opts.progress, size, 0)
  local upload_opts = common.upload_opts(opts)
  local alg = flexsum.option(c, "upload_file", 4, opts)
  -- below the threshold one PutObject, which no store takes above 5 GiB
  if size < threshold and size <= defaults.MAX_SINGLE_REQUEST then
    return put_whole(c, bucket, key, path, size, opts, upload_opts, verify, progress, moving, alg)
  end
  -- SSE-KMS and SSE-C ETags are not MD5s: the server's Content-MD5 check
  -- and the stored CRC are then the proof.
  local etag_md5 = sse.etag_is_md5(c, opts)

  local cp_path = opts.checkpoint == true and (path .. ".objstore-cp") or opts.checkpoint
  if cp_path ~= nil and type(cp_path) ~= "string" then
    common.misuse("upload_file", 4, "opts.checkpoint", "must be a path or true")
  end
  local kinds = state_mod.crc_kinds(c)
  local function new_state()
    return core.mpu.new{ size = size, part_size = part_size, max_parts = c.dialect.limits.max_parts,
      etag_md5 = etag_md5 }
  end
  local m, merr = new_state()
  if not m then return nil, errors.locate(merr, "UploadFile", bucket, key) end
  local header = { kind = "upload", bucket = bucket, key = key, file_size = size, file_mtime = floor(mtime),
    file_inode = attr.ino or 0, part_size = part_size, object_size = size }
  return driver.transfer(c, STRATEGY, { m = m, nparts = m:count(), bucket = bucket, key = key, checkpoint = cp_path,
    leave = opts.leave_parts_on_error, on_part = opts.on_part, progress = progress, path = path, size = size,
    verify = verify, alg = alg, opts = opts, header = header, notices = {}, new_state = new_state, kinds = kinds,
    etag_md5 = etag_md5, upload_opts = upload_opts })
end

return { upload_file = { call = upload_file } }
