--- download_file: parallel ranged GETs written with pwrite into
-- "<path>.objstore-part", renamed into place only when complete and
-- verified; resumable from a checkpoint, every range guarded by If-Match so
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
local plan = require "objstore.transfer.plan"
local checkpoint = require "objstore.transfer.checkpoint"
local progress_mod = require "objstore.transfer.progress"
local request = require "objstore.request"
local response = require "objstore.response"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local common = require "objstore.ops.common"
local sse = require "objstore.ops.sse"
local core = require "objstore.core"
local lfs = require "lfs"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local os_rename, os_remove, io_open = os.rename, os.remove, io.open
local tohex, b64, unb64 = core.hash.tohex, core.encode.base64_encode, core.encode.base64_decode

local DOWNLOAD_OPTS = { part_size = true, threshold = true, concurrency = true, checkpoint = true, progress = true,
  version_id = true, verify = true, on_part = true, headers = true, sse_customer_key = true }

local function fail(code, message, bucket, key, extra)
  return errors.failure("DownloadFile", code, message, bucket, key, extra)
end

local function touch(path)
  local f, err = io_open(path, "ab")
  if not f then return nil, err end
  f:close()
  return true
end

--- download_file(bucket, key, path, opts) -> { bucket, key, path, size, etag, parts, resumed_from, verified }
local function download_file(self, bucket, key, path, opts)
  common.bucket(self, "download_file", 1, bucket)
  common.key("download_file", 2, key)
  if type(path) ~= "string" then
    common.misuse("download_file", 3, "path", "must be a string, " .. errors.got(path))
  end
  opts = common.opts("download_file", 4, opts, DOWNLOAD_OPTS)
  local verify = opts.verify ~= false
  local head, herr = self:head_object(bucket, key, { version_id = opts.version_id, headers = opts.headers,
    sse_customer_key = opts.sse_customer_key })
  if not head then return nil, herr end
  local size, etag = head.content_length or 0, head.etag
  local crc_whole = head.crc64ecma
  local mp_count = etag and tonumber(etag:match('%-(%d+)"?$'))
  local part_path = path .. ".objstore-part"
  local cp_path = opts.checkpoint == true and (path .. ".objstore-cp") or opts.checkpoint
  local notices = {}
  if verify and not crc_whole and not sse.etag_is_md5(self, { sse = head.sse,
      sse_customer_key = head.sse_customer_algorithm }) then
    verify = false
    notices[#notices + 1] = "not verified: the ETag of an SSE-KMS or SSE-C object is not the MD5 of its bytes"
  end

  -- Range layout: the object's own parts when known, else part_size.
  local psize, aligned = nil, false
  if mp_count and verify and size > 0 then
    local p1 = self:head_object(bucket, key, { part_number = 1, version_id = opts.version_id,
      headers = opts.headers, sse_customer_key = opts.sse_customer_key })
    if p1 and p1.content_length and p1.etag == etag and p1.content_length > 0
        and math.ceil(size / p1.content_length) == mp_count then
      psize, aligned = p1.content_length, true
    end
  end
  psize = psize or plan.part_size(size, self.provider, opts.part_size) or plan.DEFAULT_PART_SIZE
  local ranges = plan.parts(size, psize)
  local threshold = opts.threshold or psize

  local state, done = nil, {}
  if cp_path then
    local cp, cerr = checkpoint.read(cp_path)
    if cerr then
      notices[#notices + 1] = "checkpoint was unreadable: starting over"
    elseif cp and (cp.kind ~= "download" or cp.bucket ~= bucket or cp.key ~= key or cp.etag ~= etag
        or cp.size ~= size or cp.part_size ~= psize or not lfs.attributes(part_path)) then
      notices[#notices + 1] = "checkpoint is for another object version or file: starting over"
    elseif cp then
      state = cp
      for _, r in ipairs(cp.done or {}) do done[r.number] = r end
    end
  end
  if not state then
    os_remove(part_path)
    state = { kind = "download", bucket = bucket, key = key, etag = etag, size = size, part_size = psize }
  end
  local ok, terr = touch(part_path)
  if not ok then return nil, fail("LocalFileError", tostring(terr), bucket, key) end

  local function save()
    if not cp_path then return true end
    local list = {}
    for _, r in pairs(done) do list[#list + 1] = r end
    table.sort(list, function(a, b) return a.number < b.number end)
    state.done = list
    return checkpoint.write(cp_path, state)
  end

  local resumed_from = 0
  for _, r in pairs(done) do resumed_from = resumed_from + r.length end
  local progress = progress_mod.new(opts.progress, size, resumed_from)
  -- Hash only what the check below will use: the CRC-64 on OSS, the range
  -- MD5s when they add up to the ETag (one range of a single-part object,
  -- or the object's own parts); nothing otherwise.
  local hashes
  if verify then
    if crc_whole then
      hashes = { "crc64ecma" }
    elseif aligned or (not mp_count and (size <= threshold or #ranges == 1)) then
      hashes = { "md5" }
    end
  end

  local queue = {}
  if size > 0 then
    if size <= threshold and not aligned then ranges = { { number = 1, offset = 0, length = size } } end
    for _, r in ipairs(ranges) do
      if not done[r.number] then queue[#queue + 1] = r end
    end
  end
  -- A range that arrives short (a proxy that ends the body early without a
  -- Content-Length) is an error of that attempt, so the runner retries it.
  local function check_length(res, r)
    if res.bytes ~= r.length then
      return nil, fail("BodyTruncated", "range " .. r.number .. " returned " .. tostring(res.bytes)
        .. " of " .. r.length .. " bytes", bucket, key, { retryable = true })
    end
    return res
  end
  local qi, ranges_done = 1, 0
  local rok, rerr = self:run{
    concurrency = opts.concurrency or 8,
    next = function()
      local r = queue[qi]
      if not r then return nil end
      qi = qi + 1
      local headers = common.customer_key_headers(nil, self, opts) or {}
      headers["If-Match"] = etag
      if #ranges > 1 or aligned then
        headers["Range"] = "bytes=" .. r.offset .. "-" .. (r.offset + r.length - 1)
      end
      if opts.headers then common.extra_headers("download_file", 4, opts.headers, headers) end
      return request.new{ op = "GetObject", method = "GET", bucket = bucket, key = key, headers = headers,
        query = opts.version_id and { versionId = opts.version_id } or nil,
        sink = { file = part_path, offset = r.offset }, hashes = hashes, context = r,
        parse = function(res) return check_length(res, r) end }
    end,
    done = function(req, res, err)
      if not res then
        if err.status == 412 then
          err.message = "the object changed on the server during the download (ETag no longer " .. tostring(etag)
            .. ")"
        end
        return false, err
      end
      local r = req.context
      local h = res.hashes or {}
      done[r.number] = { number = r.number, offset = r.offset, length = r.length,
        md5 = h.md5 and b64(h.md5) or nil, crc64 = h.crc64ecma and b64(h.crc64ecma) or nil }
      local sok, serr = save()
      if not sok then return false, serr end
      progress(r.length)
      ranges_done = ranges_done + 1
      if opts.on_part and opts.on_part(r.number, ranges_done) == false then
        return false, fail("Aborted", "stopped by on_part after range " .. r.number, bucket, key)
      end
      return true
    end,
  }
  if not rok then
    rerr.op, rerr.bucket, rerr.key = "DownloadFile", bucket, key
    if not cp_path then os_remove(part_path) end
    return nil, rerr
  end

  -- Verify before the file takes its name.
  local verified = false
  if verify then
    local list = {}
    if size > 0 then
      for i, r in ipairs(ranges) do list[i] = done[r.number] end
    end
    local bad
    if crc_whole and #list > 0 and list[1].crc64 then
      local parts = {}
      for i, r in ipairs(list) do parts[i] = { crc = unb64(r.crc64), length = r.length } end
      local whole = checksum.combine_parts("crc64ecma", parts)
      if checksum.to_decimal(whole) ~= crc_whole then
        bad = "CRC-64 " .. checksum.to_decimal(whole) .. " is not the object's " .. crc_whole
      end
      verified = not bad
    elseif etag and not mp_count and etag:match('^"%x+"$') then
      local md5
      if #list == 1 then
        md5 = unb64(list[1].md5)
      elseif size == 0 then
        md5 = checksum.md5("")
      else
        md5 = core.hash.file("md5", part_path, 0, size)
      end
      if md5 and not response.etag_is_md5(etag, tohex(md5)) then
        bad = "MD5 " .. tohex(md5) .. " does not match ETag " .. etag
      end
      verified = not bad
    elseif mp_count and aligned then
      local md5s = {}
      for i, r in ipairs(list) do md5s[i] = unb64(r.md5) end
      local want = checksum.multipart_etag(md5s)
      if want:lower() ~= etag:gsub('"', ""):lower() then
        bad = "MD5 of the part MD5s " .. want .. " does not match ETag " .. etag
      end
      verified = not bad
    else
      notices[#notices + 1] = "not verified: the server does not report the part layout of this multipart object"
    end
    if bad then
      os_remove(part_path)
      if cp_path then checkpoint.remove(cp_path) end
      return nil, fail("BadDigest", bad, bucket, key)
    end
  end
  local rn, rnerr = os_rename(part_path, path)
  if not rn then return nil, fail("LocalFileError", tostring(rnerr), bucket, key) end
  if cp_path then checkpoint.remove(cp_path) end
  progress(0, true)
  return { bucket = bucket, key = key, path = path, size = size, etag = etag, parts = #ranges,
    resumed_from = resumed_from, verified = verified, notices = #notices > 0 and notices or nil }
end

return { download_file = { call = download_file } }
