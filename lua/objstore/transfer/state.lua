--- What every multipart transfer shares: its state (core.mpu, in C), its
-- checkpoint (an append-only file written by C, locked while the transfer
-- runs) and the whole-object CRC that objstore stores with what it uploads.
-- Lua decides what happens; C keeps the record.
local core = require "objstore.core"
local errors = require "objstore.errors"

local tostring = tostring
local clock = require "objstore.clock"
local hashjob = require "objstore.hashjob"

local b64, unb64 = core.encode.base64_encode, core.encode.base64_decode
local hash_ranges = core.hash.ranges_async
local wait_job = hashjob.wait

local _M = {}

--- The user-metadata name of the whole-object CRC-64/NVME objstore stores
-- on every object it uploads (x-amz-meta-… / x-oss-meta-…). Its value is the
-- base64 of the 8 big-endian bytes, the encoding of x-amz-checksum-crc64nvme.
_M.CRC_META = "objstore-crc64nvme"

--- The metadata table of an upload with its CRC added (a copy: the
-- caller's table is not changed).
--- How many parts of `m` can be in flight at once: the concurrency, or
-- fewer when fewer parts are left (a transfer's bwlimit is split that
-- many ways). m:count() returns the parts and the done ones: as the last
-- argument of math.min both counted, and the done count (0 at the start)
-- made the whole bwlimit each part's.
function _M.parts_in_flight(concurrency, m)
  local count, done = m:count()
  return math.max(1, math.min(concurrency, count - done))
end

function _M.with_crc(metadata, crc)
  local out = {}
  for k, v in pairs(metadata or {}) do out[k] = v end
  out[_M.CRC_META] = b64(crc)
  return out
end

--- The stored CRC of an object (raw 8 bytes) from its HEAD, or nil.
function _M.stored_crc(head)
  local v = head and head.metadata and head.metadata[_M.CRC_META]
  local raw = v and unb64(v)
  if raw and #raw == 8 then return raw end
  return nil
end

--- The CRCs to compute alongside MD5s (the dialect's crc_kinds): CRC-64/NVME
-- always, and CRC-64/ECMA where the server reports one to compare with (OSS).
function _M.crc_kinds(c)
  local kinds = {}
  for i, k in ipairs(c.dialect.crc_kinds) do kinds[i] = k end
  return kinds
end

--- Opens and loads the checkpoint at path for the transfer described by
-- `header` (a table for core.mpu's load/reset). Returns ck, resumed_header
-- (nil for a clean start), and for a checkpoint of another transfer its
-- header (the upload it names will never be resumed); notes to `notices`
-- why a checkpoint was not used; nil, err when it cannot be opened
-- (CheckpointInUse when another process runs it).
function _M.open_checkpoint(path, m, header, notices, op, bucket, key)
  local ck, err = core.mpu.checkpoint(path)
  if not ck then return nil, errors.locate(err, op, bucket, key) end
  local status, h, torn, other = ck:load(m, header)
  if status == nil then
    ck:close()
    return nil, errors.locate(h, op, bucket, key)
  end
  if status == "foreign" then
    notices[#notices + 1] = "checkpoint was unreadable (" .. h .. "): starting a clean transfer"
  elseif status == "other" then
    notices[#notices + 1] = "checkpoint is for " .. h .. ": starting a clean transfer"
  end
  if torn then notices[#notices + 1] = "a torn checkpoint record (a crash while writing it) was ignored" end
  return ck, status == "resume" and h or nil, status == "other" and other or nil
end

-- Uploads initiated up to this many seconds before the recorded intent
-- still count as its own (the server's clock and ours may differ a little).
local INTENT_SLACK = 2

--- After a crash between the intent and the first record: the uploads of
-- this key the crashed run may have created. Returns the newest (to adopt)
-- after aborting the others, or nil.
function _M.adopt_orphan(c, bucket, key, intent_time)
  local list = c:list_incomplete_uploads(bucket, key)
  if not list then return nil end
  local mine = {}
  for _, u in ipairs(list) do
    local t = clock.parse(u.initiated)
    if u.key == key and t and t >= intent_time - INTENT_SLACK then mine[#mine + 1] = { id = u.upload_id, t = t } end
  end
  table.sort(mine, function(a, b) return a.t > b.t end)
  for i = 2, #mine do c:abort_multipart_upload(bucket, key, mine[i].id) end
  return mine[1] and mine[1].id or nil
end

--- Opens the checkpoint of a multipart transfer (upload_file, copy_large)
-- and resumes what it records. `how` says what differs between them:
--   op, bucket, key         the transfer (bucket and key of the upload)
--   reconcile(m, upload_id) -> the part numbers newly accepted from
--                              ListParts | nil, err (status 404: gone)
--   complete(m)             -> the HEAD of the object when it is already
--                              what the recorded parts make, or nil
--   new_state()             -> a fresh core.mpu state
-- A checkpoint of another transfer of the same bucket and key that names
-- an upload has it aborted (no run will resume it). Returns ck, m, upload_id (nil: create one; then the
-- caller records the intent with create_upload), head (the object is
-- complete: finish, sending nothing); nil, err (ck closed).
function _M.open_multipart(c, path, m, header, notices, how)
  local op, bucket, key = how.op, how.bucket, how.key
  local ck, resumed, other = _M.open_checkpoint(path, m, header, notices, op, bucket, key)
  if not ck then return nil, resumed end
  -- Only an upload of this transfer's own bucket and key is ever aborted:
  -- a checkpoint file found at the path may name anything (another
  -- transfer's, or planted), and its upload is not ours to end.
  if other and other.upload_id and other.bucket == bucket and other.key == key then
    if c:abort_multipart_upload(other.bucket, other.key, other.upload_id) then
      notices[#notices + 1] = "aborted upload " .. other.upload_id .. " of that checkpoint"
    end
  end
  if not resumed then return ck, m end
  local function record(adopted)
    for _, n in ipairs(adopted) do
      local ok, err = ck:append(m, n)
      if not ok then return nil, err end
    end
    return true
  end
  local function failed(err)
    ck:close()
    return nil, errors.locate(err, op, bucket, key)
  end
  if resumed.upload_id then
    local adopted, rerr = how.reconcile(m, resumed.upload_id)
    if adopted then
      local ok, werr = record(adopted)
      if not ok then return failed(werr) end
      return ck, m, resumed.upload_id
    end
    if rerr.status ~= 404 then
      ck:close()
      return nil, rerr
    end
    local h = how.complete(m)
    if h then return ck, m, resumed.upload_id, h end
    notices[#notices + 1] = "upload " .. resumed.upload_id .. " no longer exists: starting a clean upload"
    return ck, how.new_state()
  end
  -- An intent without an upload id: the crash came between the intent and
  -- the record of the upload CreateMultipartUpload started.
  local upload_id = _M.adopt_orphan(c, bucket, key, resumed.intent_time)
  local adopted = upload_id and how.reconcile(m, upload_id)
  if not adopted then
    if upload_id then c:abort_multipart_upload(bucket, key, upload_id) end
    return ck, m
  end
  notices[#notices + 1] = "adopted upload " .. upload_id .. " left by an interrupted run"
  header.intent_time, header.upload_id = resumed.intent_time, upload_id
  local ok, werr = ck:reset(header)
  if ok then ok, werr = record(adopted) end
  if not ok then return failed(werr) end
  return ck, m, upload_id
end

--- Records the intent (header.intent_time, in ck when there is one), then
-- creates the upload and records its id. The server's refusal removes the
-- intent (no upload exists for a resume to adopt); an unanswered Create
-- keeps it for the next run. Returns the CreateMultipartUpload result, or
-- nil, err (ck closed or removed).
function _M.create_upload(c, ck, header, bucket, key, create_opts, op)
  local function failed(err)
    if ck then ck:close() end
    return nil, errors.locate(err, op, bucket, key)
  end
  header.intent_time = math.floor(c:now())
  if ck then
    local ok, werr = ck:reset(header)
    if not ok then return failed(werr) end
  end
  local up, err = c:create_multipart_upload(bucket, key, create_opts)
  if not up then
    if ck and err.status ~= nil then
      ck:remove()
      ck = nil
    end
    return failed(err)
  end
  if ck then
    header.upload_id = up.upload_id
    local ok, werr = ck:reset(header)
    if not ok then return failed(werr) end
  end
  return up
end

-- Parts per hashing job: the lanes of the C core's multi-buffer MD5, which
-- hashes that many parts in lock step (about four times OpenSSL's speed for
-- one stream; MD5 is most of an upload's CPU time).
local BATCH = 8

--- Computes the MD5 and CRCs of parts of a file on hashing threads, BATCH
-- parts a job and up to `width` jobs at a time, recording them in m. Inside
-- nginx's request phases the jobs are waited for by yielding
-- (objstore.hashjob), never by blocking the worker.
-- `numbers`: the parts to hash. Returns true or nil, err (the file shrank
-- or vanished).
function _M.hash_parts(m, path, numbers, kinds, width)
  local jobs, head, tail = {}, 1, 0
  local function finish(j)
    local md5s, nvmes, ecmas = wait_job(j.job)
    if not md5s then
      local e = errors.is(nvmes) and nvmes or errors.new{ code = "LocalFileError", message = tostring(nvmes) }
      e.code, e.retryable = "LocalFileError", false
      return nil, e
    end
    for i, n in ipairs(j.numbers) do m:digests(n, md5s[i], nvmes and nvmes[i], ecmas and ecmas[i]) end
    return true
  end
  for first = 1, #numbers, BATCH do
    local batch, ranges = {}, {}
    for i = first, math.min(first + BATCH - 1, #numbers) do
      local p = m:part(numbers[i])
      batch[#batch + 1] = numbers[i]
      ranges[#ranges + 1] = { p.offset, p.length }
    end
    local job, jerr = hash_ranges("md5", path, ranges, kinds)
    if not job then
      for i = head, tail do wait_job(jobs[i].job) end
      return nil, jerr
    end
    tail = tail + 1
    jobs[tail] = { job = job, numbers = batch }
    if tail - head + 1 >= width then
      local ok, err = finish(jobs[head])
      jobs[head] = nil
      head = head + 1
      if not ok then return nil, err end
    end
  end
  for i = head, tail do
    local ok, err = finish(jobs[i])
    if not ok then
      for k = i + 1, tail do wait_job(jobs[k].job) end
      return nil, err
    end
  end
  return true
end

return _M
