--- download_file: parallel ranged GETs written with pwrite into a part
-- file beside the destination ("<path>.objstore-part-<random hex>", or
-- "<path>.objstore-part" with a checkpoint so a later run finds it), set
-- to exactly the object's size and renamed into place only when complete
-- and verified; resumable from a checkpoint, every range guarded by If-Match so
-- an object changed on the server is never stitched from two versions.
--
-- Verification: a single-part object's ETag is the MD5 of its bytes; a
-- multipart one's is the MD5 of its part MD5s. Ranges follow the object's
-- own part layout when the server reports it (HEAD ?partNumber=1), so each
-- range's MD5 is computed in C as it streams and the whole is checked from
-- those alone. On OSS the CRC-64 of each range is combined and compared
-- with x-oss-hash-crc64ecma. Objects whose layout cannot be learnt are
-- checked by one MD5 pass over the finished file (single-part ETags) or
-- reported as unverified (multipart ETags without partNumber support).
--
-- Every answer's head is checked before a byte of it is written (the
-- transport's on_head): a range must come back 206 with Content-Range
-- exactly "bytes a-b/size" as asked (a 200 - the whole object - to a
-- ranged request, or another range, is BadRange: the server misbehaved,
-- not retried, nothing written); the single GET of a one-range download
-- must be a 200 or 206 of the whole object.
local plan = require "objstore.transfer.plan"
local state_mod = require "objstore.transfer.state"
local driver = require "objstore.transfer.driver"
local defaults = require "objstore.transfer.defaults"
local progress_mod = require "objstore.transfer.progress"
local request = require "objstore.engine.request"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local common = require "objstore.ops.common"
local sse = require "objstore.ops.sse"
local core = require "objstore.core"
local hashjob = require "objstore.hashjob"
local lfs = require "lfs"

local type, tostring, tonumber = type, tostring, tonumber
local os_rename, os_remove, error, pcall = os.rename, os.remove, error, pcall
local tohex, b64 = core.hash.tohex, core.encode.base64_encode

local DOWNLOAD_OPTS = { part_size = true, multipart_threshold = true, concurrency = true, checkpoint = true,
  progress = true,
  version_id = true, verify = true, on_part = true, headers = true, sse_customer_key = true, bwlimit = true }

local function fail(code, message, bucket, key, extra)
  return errors.failure("DownloadFile", code, message, bucket, key, extra)
end

--- The part file of a download without a checkpoint: created exclusively
-- under a random name, so a stale part file or a link planted under a
-- name objstore once used is never opened, and set to the object's size.
local function fresh_part(path, size)
  local part, err = core.fs.temp(path .. ".objstore-part-")
  if not part then return nil, err end
  local ok, serr = core.fs.open_existing(part, size)
  if not ok then
    os_remove(part)
    return nil, serr
  end
  return part
end

--- The fixed part file a checkpoint resumes into. A clean start removes
-- whatever has the name (os.remove unlinks a link itself, never its
-- target) and creates it exclusively; a resume opens the existing one only
-- if it is a regular file, never through a link. Either way it ends up
-- exactly `size` bytes long.
local function checkpoint_part(part, size, resume)
  if not resume then
    os_remove(part)
    local ok, err = core.fs.create(part)
    if not ok then return nil, err end
  end
  return core.fs.open_existing(part, size)
end

--- The finished part file is a regular file (not a link) of exactly the
-- object's size: bytes a stale file had beyond it never become the file's.
local function seal_part(part, size)
  local ok, err = core.fs.open_existing(part, size)
  if not ok then return nil, err end
  local a = lfs.symlinkattributes(part)
  if not a or a.mode ~= "file" or a.size ~= size then
    return nil, part .. " is " .. (a and (a.mode .. " of " .. a.size .. " bytes") or "gone")
      .. ", not a file of the object's " .. size .. " bytes"
  end
  return true
end

--- A single-part ETag's MD5 in lowercase hex, quoted or not (OSS-compatible
-- servers send it bare, some in uppercase), or nil.
local function plain_etag_md5(etag)
  local hex = type(etag) == "string" and etag:match('^"?(%x+)"?$')
  return hex and #hex == 32 and hex:lower() or nil
end

--- The ranges of a download: GETs guarded by If-Match, written with
-- pwrite into the part file at their offsets, their MD5/CRCs computed in C
-- as they stream (job.hashes).
local RANGES = { op = "DownloadFile", unit = "range", name_errors = true }

--- The head of a range's answer, before its body reaches the part file:
-- a problem (a message) is kept in the range and the transfer stopped.
local function check_head(job, r, status, headers)
  if status >= 300 then return true end -- an error answer: never written
  local cr = headers["content-range"]
  local want = "bytes " .. r.offset .. "-" .. (r.offset + r.length - 1) .. "/" .. job.size
  local bad
  if job.whole then
    if status == 206 and cr ~= want then bad = "a 206 with Content-Range " .. tostring(cr) end
  elseif status ~= 206 then
    bad = "status " .. status .. " (" .. (cr and ("Content-Range " .. cr) or "the whole object") .. ")"
  elseif cr ~= want then
    bad = "Content-Range " .. tostring(cr)
  end
  if not bad then return true end
  r.bad_range = "range " .. r.number .. " (Range: bytes=" .. r.offset .. "-" .. (r.offset + r.length - 1)
    .. ") was answered with " .. bad .. ", not '" .. want .. "': nothing of it was written"
  return nil, r.bad_range
end

--- A range that arrives short (a proxy that ends the body early without a
-- Content-Length) is an error of that attempt, so the runner retries it.
local function check_length(job, res, r)
  if res.bytes ~= r.length then
    return nil, fail("BodyTruncated", "range " .. r.number .. " returned " .. tostring(res.bytes)
      .. " of " .. r.length .. " bytes", job.bucket, job.key, { retryable = true })
  end
  return res
end

function RANGES.request(job, n, offset, length)
  local opts = job.opts
  local r = { number = n, offset = offset, length = length }
  local headers = common.customer_key_headers(nil, job.c, opts) or {}
  headers["If-Match"] = job.etag
  if not job.whole then headers["Range"] = "bytes=" .. offset .. "-" .. (offset + length - 1) end
  if opts.headers then common.extra_headers("download_file", 4, opts.headers, headers) end
  return request.new{ op = "GetObject", method = "GET", bucket = job.bucket, key = job.key, headers = headers,
    query = opts.version_id and { versionId = opts.version_id } or nil,
    sink = { file = job.part_path, offset = offset },
    on_head = function(status, h) return check_head(job, r, status, h) end,
    hashes = job.hashes, context = r, max_speed = job.rate,
    on_progress = progress_mod.on_progress(job.moving, n, "down"),
    parse = function(res) return check_length(job, res, r) end }
end

function RANGES.failed(job, r, err)
  if r.bad_range then err = fail("BadRange", r.bad_range, job.bucket, job.key, { retryable = false }) end
  if err.status == 412 then
    err.message = "the object changed on the server during the download (ETag no longer " .. tostring(job.etag)
      .. ")"
  end
  return err
end

--- Every range's answer is the object's (If-Match): its ETag and hashes.
function RANGES.record(job, r, res)
  local h = res.hashes or {}
  return job.m:done(r.number, job.etag, h.md5, h.crc64nvme, h.crc64ecma)
end

--- A failed or interrupted download removes its part file, unless a
-- checkpoint keeps it for the next run; there is no upload to abort.
function RANGES.abandon(_, job)
  job.track.part = nil
  if job.checkpoint then
    if job.ck then job.ck:close() end
    job.ck = nil
  else
    os_remove(job.part_path)
  end
end

--- The part file: with a checkpoint the fixed one it resumes into (a
-- clean start when it is gone), else a fresh one under a random name.
function RANGES.prepare(_, job)
  local bucket, key, size, m = job.bucket, job.key, job.size, job.m
  if not job.checkpoint then
    local part_path, perr = fresh_part(job.path, size)
    if not part_path then return nil, errors.locate(perr, "DownloadFile", bucket, key) end
    job.part_path, job.track.part = part_path, part_path
    return true
  end
  local header = { kind = "download", bucket = bucket, key = key, etag = job.etag or "", part_size = job.psize,
    object_size = size }
  local ck, resumed = state_mod.open_checkpoint(job.checkpoint, m, header, job.notices, "DownloadFile", bucket, key)
  if not ck then return nil, resumed end
  job.ck, job.part_path = ck, job.path .. ".objstore-part"
  if resumed and not checkpoint_part(job.part_path, size, true) then
    job.notices[#job.notices + 1] = "the partial file is gone or not a regular file: starting over"
    resumed = nil
    job.m = core.mpu.new{ size = size, part_size = m:part(1).length, etag_md5 = job.etag_md5 }
  end
  if not resumed then
    local ok, werr = ck:reset(header)
    if ok then ok, werr = checkpoint_part(job.part_path, size, false) end
    if not ok then return nil, errors.locate(werr, "DownloadFile", bucket, key) end
  end
  return true
end

--- Hash only what finish will check: the CRC-64/NVME objstore stored at
-- upload (any range layout), the CRC-64/ECMA on OSS, the range MD5s when
-- they add up to the ETag (one range of a single-part object, or the
-- object's own parts); nothing otherwise.
function RANGES.start(job)
  local opts, m = job.opts, job.m
  job.resumed_from = m:bytes_done()
  job.progress, job.moving = progress_mod.new(opts.progress, job.size, job.resumed_from)
  if job.verify then
    if job.stored_crc then
      job.hashes = { "crc64nvme" }
    elseif job.crc_whole then
      job.hashes = { "crc64ecma" }
    elseif job.aligned or (not job.mp_count and m:count() == 1) then
      job.hashes = { "md5" }
    end
  end
  job.whole = m:count() == 1 and not job.aligned
  job.concurrency = opts.concurrency or defaults.CONCURRENCY.download_file
  -- bwlimit: as many ways as ranges can be in flight at once
  job.rate = common.max_speed("download_file", 4, opts, state_mod.parts_in_flight(job.concurrency, m))
end

--- What the checks of finish found wrong with the bytes (nil: nothing),
-- and whether they were verified.
local function check_bytes(job)
  local m, size, etag = job.m, job.size, job.etag
  local bad
  if job.stored_crc then
    local got = m:crc("crc64nvme")
    if got ~= job.stored_crc then
      bad = "CRC-64/NVME " .. b64(got or "") .. " is not the one stored at upload " .. b64(job.stored_crc)
    end
  elseif job.crc_whole and size > 0 and m:crc("crc64ecma") then
    local got = checksum.to_decimal(m:crc("crc64ecma"))
    if got ~= job.crc_whole then bad = "CRC-64 " .. got .. " is not the object's " .. job.crc_whole end
  elseif job.etag_md5 and not job.mp_count and plain_etag_md5(etag) then
    local md5
    if size == 0 then
      md5 = checksum.md5("")
    elseif m:count() == 1 and m:part(1).md5 then
      md5 = m:part(1).md5
    else
      md5 = hashjob.file("md5", job.part_path, 0, size)
    end
    if not md5 or tohex(md5) ~= plain_etag_md5(etag) then
      bad = "MD5 " .. (md5 and tohex(md5) or "of the file unreadable") .. " does not match ETag " .. etag
    end
  elseif job.etag_md5 and job.mp_count and job.aligned then
    local want = m:etag()
    if not want or want:lower() ~= etag:gsub('"', ""):lower() then
      bad = "MD5 of the part MD5s " .. tostring(want) .. " does not match ETag " .. etag
    end
  else
    job.notices[#job.notices + 1] = "not verified: the object has no CRC stored by objstore and the server does "
      .. "not report the part layout of this multipart object"
    return nil, false
  end
  return bad, not bad
end

--- The part file sealed and verified, then renamed into place. A failure
-- removes it unless a checkpoint keeps it; wrong bytes remove the
-- checkpoint too (nothing to resume).
function RANGES.finish(c, job)
  local bucket, key, part_path, size = job.bucket, job.key, job.part_path, job.size
  local sok, serr = seal_part(part_path, size)
  if not sok then
    RANGES.abandon(c, job)
    return nil, type(serr) == "table" and errors.locate(serr, "DownloadFile", bucket, key)
      or fail("LocalFileError", serr, bucket, key)
  end
  -- Verify before the file takes its name.
  local verified = false
  if job.verify then
    local bad
    bad, verified = check_bytes(job)
    if bad then
      os_remove(part_path)
      if job.ck then job.ck:remove() end
      job.ck = nil
      return nil, fail("BadDigest", bad, bucket, key)
    end
  end
  -- A link at `path` is replaced, never written through.
  local rn, rnerr = os_rename(part_path, job.path)
  if not rn then
    RANGES.abandon(c, job)
    return nil, fail("LocalFileError", tostring(rnerr), bucket, key)
  end
  job.track.part = nil
  return { verified = verified }
end

function RANGES.result(job, fin)
  local size = job.size
  return { bucket = job.bucket, key = job.key, path = job.path, size = size, etag = job.etag,
    parts = size > 0 and job.m:count() or 0, resumed_from = job.resumed_from, verified = fin.verified,
    notices = #job.notices > 0 and job.notices or nil }
end

--- download_file(bucket, key, path, opts) -> { path, size, etag, parts, resumed_from, verified, ... } | nil, err
-- Downloads an object to `path` with parallel ranged GETs written into a
-- part file beside it (created exclusively), every range guarded by
-- If-Match; renamed into place only when complete and verified (the ETag's
-- MD5, the part layout's MD5s, or OSS's CRC-64). On failure the part file
-- is removed unless a checkpoint keeps it.
-- opts.version_id: the version to download.
-- opts.headers: extra headers of every request (HEAD and GETs).
-- opts.checkpoint: resume after a crash: true for "<path>.objstore-cp", or
--   a path; the part file is then "<path>.objstore-part".
-- result.verified: true when the bytes were checked against the store's
--   ETag or checksum; false (with a notice) when nothing could check them.
-- result.notices: messages for the user, e.g. why the file is unverified.
-- errors: BadRange (the server answered another range), BodyTruncated,
--   PreconditionFailed (the object changed during the download), BadDigest
--   (the bytes do not match the ETag or checksum), LocalFileError, Aborted.
local function download_file(self, bucket, key, path, opts, track)
  common.bucket(self, "download_file", 1, bucket)
  common.key("download_file", 2, key)
  if type(path) ~= "string" then
    common.misuse("download_file", 3, "path", "must be a string, " .. errors.got(path))
  end
  opts = common.opts("download_file", 4, opts, DOWNLOAD_OPTS)
  common.max_speed("download_file", 4, opts, 1) -- a bad bwlimit raises before any I/O
  local verify = opts.verify ~= false
  local head, herr = self:head_object(bucket, key, { version_id = opts.version_id, headers = opts.headers,
    sse_customer_key = opts.sse_customer_key })
  if not head then return nil, herr end
  local size, etag = head.content_length or 0, head.etag
  local crc_whole = head.crc64ecma
  local mp_count = etag and tonumber(etag:match('%-(%d+)"?$'))
  local cp_path = opts.checkpoint == true and (path .. ".objstore-cp") or opts.checkpoint
  local notices = {}

  -- Range layout: the object's own parts when known (and needed: a CRC
  -- stored by objstore checks any layout), else part_size.
  local stored_crc = state_mod.stored_crc(head)
  -- An SSE-KMS or SSE-C object's ETag is not the MD5 of its bytes: only a
  -- CRC (objstore's stored one, OSS's) can verify it.
  local etag_md5 = sse.etag_is_md5(self, { sse = head.sse, sse_customer_key = head.sse_customer_algorithm })
  if verify and not crc_whole and not stored_crc and not etag_md5 then
    verify = false
    notices[#notices + 1] = "not verified: the ETag of an SSE-KMS or SSE-C object is not the MD5 of its bytes "
      .. "and it has no CRC stored by objstore"
  end
  local psize, aligned = nil, false
  if mp_count and verify and size > 0 and not stored_crc and etag_md5 then
    local p1 = self:head_object(bucket, key, { part_number = 1, version_id = opts.version_id,
      headers = opts.headers, sse_customer_key = opts.sse_customer_key })
    if p1 and p1.content_length and p1.etag == etag and p1.content_length > 0
        and math.ceil(size / p1.content_length) == mp_count then
      psize, aligned = p1.content_length, true
    end
  end
  psize = psize or plan.part_size(size, self.provider, opts.part_size) or plan.DEFAULT_PART_SIZE
  local threshold = opts.multipart_threshold or psize

  local m, merr = core.mpu.new{ size = size, part_size = psize, etag_md5 = etag_md5 }
  if not m then return nil, errors.locate(merr, "DownloadFile", bucket, key) end
  if size > 0 and size < threshold and not aligned then
    m = core.mpu.new{ size = size, part_size = size, etag_md5 = etag_md5 }
  end
  return driver.transfer(self, RANGES, { m = m, bucket = bucket, key = key, checkpoint = cp_path,
    on_part = opts.on_part, opts = opts, etag = etag, size = size, path = path, psize = psize, verify = verify,
    etag_md5 = etag_md5, stored_crc = stored_crc, crc_whole = crc_whole, mp_count = mp_count, aligned = aligned,
    notices = notices, track = track, no_parts = size == 0 })
end

--- An error raised on the way (an interrupt: core.signal raises wherever
-- Lua runs next, e.g. right after the MD5 of the whole file) removes the
-- part file too, unless a checkpoint keeps it; then the error goes on.
local function download_file_guarded(self, bucket, key, path, opts)
  local track = {}
  local ok, res, err = pcall(download_file, self, bucket, key, path, opts, track)
  if ok then return res, err end
  if track.part then os_remove(track.part) end
  error(res, 0)
end

return { download_file = { call = download_file_guarded } }
