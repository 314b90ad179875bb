--- What every multipart transfer shares: its state (core.mpu, in C), its
-- checkpoint (an append-only file written by C, locked while the transfer
-- runs) and the whole-object CRC that objstore stores with what it uploads.
-- Lua decides what happens; C keeps the record.
local core = require "objstore.core"
local errors = require "objstore.errors"

local b64, unb64 = core.encode.base64_encode, core.encode.base64_decode
local hash_ranges = core.hash.ranges_async

local _M = {}

--- The user-metadata name of the whole-object CRC-64/NVME objstore stores
-- on every object it uploads (x-amz-meta-… / x-oss-meta-…). Its value is the
-- base64 of the 8 big-endian bytes, the encoding of x-amz-checksum-crc64nvme.
_M.CRC_META = "objstore-crc64nvme"

--- The metadata table of an upload with its CRC added (a copy: the
-- caller's table is not changed).
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

--- The CRCs to compute alongside MD5s: CRC-64/NVME always, and CRC-64/ECMA
-- where the server reports one to compare with (OSS).
function _M.crc_kinds(c)
  return c.provider == "oss" and { "crc64nvme", "crc64ecma" } or { "crc64nvme" }
end

--- Opens and loads the checkpoint at path for the transfer described by
-- `header` (a table for core.mpu's load/reset). Returns ck, resumed_header
-- (nil for a clean start); notes to `notices` why a checkpoint was not used;
-- nil, err when it cannot be opened (CheckpointInUse when another process
-- runs it).
function _M.open_checkpoint(path, m, header, notices, op, bucket, key)
  local ck, err = core.mpu.checkpoint(path)
  if not ck then return nil, errors.locate(err, op, bucket, key) end
  local status, h, torn = ck:load(m, header)
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
  return ck, status == "resume" and h or nil
end

-- Parts per hashing job: the lanes of the C core's multi-buffer MD5, which
-- hashes that many parts in lock step (about four times OpenSSL's speed for
-- one stream; MD5 is most of an upload's CPU time).
local BATCH = 8

--- Computes the MD5 and CRCs of parts of a file on hashing threads, BATCH
-- parts a job and up to `width` jobs at a time, recording them in m.
-- `numbers`: the parts to hash. Returns true or nil, err (the file shrank
-- or vanished).
function _M.hash_parts(m, path, numbers, kinds, width)
  local jobs, head, tail = {}, 1, 0
  local function finish(j)
    local md5s, nvmes, ecmas = j.job:wait()
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
      for i = head, tail do jobs[i].job:wait() end
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
      for k = i + 1, tail do jobs[k].job:wait() end
      return nil, err
    end
  end
  return true
end

return _M
