--- upload_file: multipart uploads that run their parts concurrently, retry
-- each part on its own, check every part and the whole (Content-MD5 on
-- each part, the final ETag against the MD5 of the part MD5s), and resume
-- from a checkpoint reconciled with ListParts. Parts are request records
-- built by the client's upload_part builder and sent through its pipeline.
local plan = require "objstore.transfer.plan"
local checkpoint = require "objstore.transfer.checkpoint"
local progress_mod = require "objstore.transfer.progress"
local complete = require "objstore.transfer.complete"
local request = require "objstore.request"
local response = require "objstore.response"
local errors = require "objstore.errors"
local common = require "objstore.ops.common"
local sse = require "objstore.ops.sse"
local flexsum = require "objstore.ops.flexsum"
local core = require "objstore.core"
local lfs = require "lfs"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local hash_file, hash_async = core.hash.file, core.hash.file_async
local tohex, b64, unb64 = core.hash.tohex, core.encode.base64_encode, core.encode.base64_decode
local sort = table.sort

local UPLOAD_OPTS = { part_size = true, threshold = true, concurrency = true, checkpoint = true, progress = true,
  leave_parts_on_error = true, on_part = true, verify = true, part_headers = true, checksum = true,
  checksum_policy = true }
for k in pairs(common.UPLOAD_OPTS) do UPLOAD_OPTS[k] = true end

local function fail(code, message, bucket, key, extra)
  return errors.failure("UploadFile", code, message, bucket, key, extra)
end

--- The checkpoint's idea of the file must still hold: same size, same mtime.
local function same_file(cp, bucket, key, size, mtime, part_size)
  return cp.kind == "upload" and cp.bucket == bucket and cp.key == key and cp.size == size and cp.mtime == mtime
    and cp.part_size == part_size and type(cp.upload_id) == "string" and type(cp.parts) == "table"
end

--- Reconciles a checkpoint with the server's parts. Parts the server has
-- with the ETag we recorded are done; parts it has that we did not record
-- (a crash between the part and the checkpoint write) are checked against
-- the local bytes' MD5. Returns done map, or nil, err (err.status 404 for
-- a stale upload id).
local function reconcile(c, bucket, key, path, cp, parts_plan)
  local listed, err = c:list_parts(bucket, key, cp.upload_id)
  if not listed then return nil, err end
  local server = {}
  for _, p in ipairs(listed.parts) do server[tonumber(p.part_number)] = p end
  local recorded = {}
  for _, p in ipairs(cp.parts) do recorded[p.number] = p end
  local done = {}
  for _, p in ipairs(parts_plan) do
    local s = server[p.number]
    if s and tonumber(s.size) == p.length then
      local r = recorded[p.number]
      if r and r.etag == s.etag then
        done[p.number] = { number = p.number, size = p.length, etag = s.etag, md5 = r.md5 }
      else
        local md5 = hash_file("md5", path, p.offset, p.length)
        if md5 and response.etag_is_md5(s.etag, tohex(md5)) then
          done[p.number] = { number = p.number, size = p.length, etag = s.etag, md5 = b64(md5) }
        end
      end
    end
  end
  return done
end

--- upload_file(bucket, key, path, opts) -> { bucket, key, etag, size, parts, resumed_from, upload_id } | nil, err
local function upload_file(c, bucket, key, path, opts)
  common.bucket(c, "upload_file", 1, bucket)
  common.key("upload_file", 2, key)
  if type(path) ~= "string" then common.misuse("upload_file", 3, "path", "must be a string, " .. errors.got(path)) end
  opts = common.opts("upload_file", 4, opts, UPLOAD_OPTS)
  local attr = lfs.attributes(path)
  if not attr or attr.mode ~= "file" then
    return nil, fail("LocalFileError", "cannot read " .. path, bucket, key)
  end
  local size, mtime = attr.size, attr.modification
  local part_size, perr = plan.part_size(size, c.provider, opts.part_size)
  if not part_size then return nil, fail("InvalidArgument", perr, bucket, key) end
  local threshold = opts.threshold or part_size
  local verify = opts.verify ~= false
  local progress = progress_mod.new(opts.progress, size, 0)
  local upload_opts = common.upload_opts(opts)

  local alg = flexsum.option(c, "upload_file", 4, opts)
  if size < threshold then
    if not verify then upload_opts.content_md5 = false end
    upload_opts.checksum, upload_opts.checksum_policy = alg, opts.checksum_policy
    upload_opts.headers = common.extra_headers("upload_file", 4, common.part_headers(opts, 1),
      common.extra_headers("upload_file", 4, opts.headers, {}))
    local res, err = c:put_object(bucket, key, { path = path }, upload_opts)
    if not res then return nil, err end
    progress(size, true)
    return { bucket = bucket, key = key, etag = res.etag, size = size, parts = 1, resumed_from = 0,
      version_id = res.version_id, sse = res.sse, kms_key_id = res.kms_key_id, checksum = res.checksum }
  end

  local parts_plan = plan.parts(size, part_size)
  local cp_path = opts.checkpoint == true and (path .. ".objstore-cp") or opts.checkpoint
  if cp_path ~= nil and type(cp_path) ~= "string" then
    common.misuse("upload_file", 4, "opts.checkpoint", "must be a path or true")
  end
  local notices = {}
  local state, done = nil, {}
  if cp_path then
    local cp, cerr = checkpoint.read(cp_path)
    if cerr then
      notices[#notices + 1] = "checkpoint was unreadable (" .. cerr.message .. "): starting a clean upload"
    elseif cp and not same_file(cp, bucket, key, size, mtime, part_size) then
      notices[#notices + 1] = "checkpoint is for another file or upload: starting a clean upload"
    elseif cp then
      local d, rerr = reconcile(c, bucket, key, path, cp, parts_plan)
      if d then
        state, done = cp, d
      elseif rerr.status == 404 then
        notices[#notices + 1] = "upload " .. cp.upload_id .. " no longer exists: starting a clean upload"
      else
        return nil, rerr
      end
    end
  end
  if not state then
    upload_opts.checksum = alg
    local up, err = c:create_multipart_upload(bucket, key, upload_opts)
    if not up then return nil, err end
    state = { kind = "upload", bucket = bucket, key = key, size = size, mtime = mtime, part_size = part_size,
      upload_id = up.upload_id, parts = {} }
  end
  local upload_id = state.upload_id

  local function save()
    if not cp_path then return true end
    local list = {}
    for _, p in pairs(done) do list[#list + 1] = p end
    sort(list, function(a, b) return a.number < b.number end)
    state.parts = list
    return checkpoint.write(cp_path, state)
  end
  if cp_path then
    local ok, werr = save()
    if not ok then return nil, werr end
  end

  local resumed_from = 0
  for _, p in pairs(done) do resumed_from = resumed_from + p.size end
  progress = progress_mod.new(opts.progress, size, resumed_from)
  progress(0, true)

  local queue = {}
  for _, p in ipairs(parts_plan) do
    if not done[p.number] then queue[#queue + 1] = p end
  end
  local qi, sent_parts = 1, 0
  -- Content-MD5s are computed on threads a couple of parts ahead, so the
  -- hashing of the next parts overlaps the sending of the current ones.
  local jobs = {}
  local function hash_ahead(i)
    local p = queue[i]
    if verify and p and not jobs[i] then jobs[i] = hash_async("md5", path, p.offset, p.length) or false end
  end
  local function next_part()
    local p = queue[qi]
    if not p then return nil end
    hash_ahead(qi)
    local job = jobs[qi]
    jobs[qi] = nil
    qi = qi + 1
    for i = qi, qi + 1 do hash_ahead(i) end
    local md5, herr
    if verify then
      if job then md5, herr = job:wait() end
      if not md5 then md5, herr = hash_file("md5", path, p.offset, p.length) end
      if not md5 then
        -- The file changed under us (shrank, vanished): a local failure.
        local e = errors.is(herr) and herr or errors.new{ code = "LocalFileError", message = tostring(herr) }
        e.code, e.retryable = "LocalFileError", false
        return request.failed("UploadPart", errors.locate(e, "UploadPart", bucket, key), { part = p })
      end
    end
    local ok_size = lfs.attributes(path, "size")
    if not ok_size or ok_size < p.offset + p.length then
      return request.failed("UploadPart", fail("LocalFileError", path .. " is shorter than when the upload began ("
        .. tostring(ok_size) .. " < " .. size .. " bytes)", bucket, key), { part = p })
    end
    return c:build_request("upload_part", bucket, key, upload_id, p.number,
      { path = path, offset = p.offset, length = p.length },
      { content_md5 = md5 and b64(md5) or false, headers = common.part_headers(opts, p.number),
        sse_customer_key = opts.sse_customer_key, checksum = alg, checksum_policy = opts.checksum_policy,
        context = { part = p, md5 = md5 } })
  end

  -- SSE-KMS and SSE-C ETags are not MD5s: the server's Content-MD5 check is then the proof.
  local etag_md5 = sse.etag_is_md5(c, opts)
  local ok, err = c:run{ concurrency = opts.concurrency or 8, next = next_part,
    done = function(req, res, perr2)
      if not res then return false, perr2 end
      local part, md5 = req.context.part, req.context.md5
      local etag = res.etag
      -- The server's ETag of a part is the MD5 of what it stored.
      if etag_md5 and complete.part_mismatch(etag, md5) then
        return false, fail("BadDigest", "part " .. part.number .. " ETag " .. tostring(etag) .. " is not its MD5 "
          .. tohex(md5), bucket, key)
      end
      if not etag and not md5 then
        return false, fail("MalformedResponse", "no ETag for part " .. part.number, bucket, key)
      end
      done[part.number] = { number = part.number, size = part.length, etag = etag or ('"' .. tohex(md5) .. '"'),
        md5 = md5 and b64(md5) or nil, checksum = res.checksum and res.checksum.value,
        checksum_verified = res.checksum and res.checksum.verified }
      sent_parts = sent_parts + 1
      local sok, serr = save()
      if not sok then return false, serr end
      progress(part.length)
      -- on_part(number, parts_sent_this_run) may return false to stop.
      if opts.on_part and opts.on_part(part.number, sent_parts) == false then
        return false, fail("Aborted", "stopped by on_part after part " .. part.number, bucket, key)
      end
      return true
    end }
  for _, j in pairs(jobs) do if j then j:wait() end end
  if not ok then
    err.op, err.bucket, err.key = "UploadFile", bucket, key
    err.upload_id = upload_id
    if not cp_path and not opts.leave_parts_on_error then c:abort_multipart_upload(bucket, key, upload_id) end
    return nil, err
  end

  -- The checksums go into Complete when the server verified them (one
  -- echo is enough: the parts found on the server after a crash are
  -- checked from the file); the result says verified only if every one was.
  local list, md5s, all_verified, any_verified = {}, {}, alg ~= nil, false
  for i, p in ipairs(parts_plan) do
    local d = done[p.number]
    list[i] = { part_number = p.number, etag = d.etag, checksum = d.checksum }
    md5s[i] = d.md5 and unb64(d.md5) or nil
    all_verified = all_verified and d.checksum_verified == true
    any_verified = any_verified or d.checksum_verified == true
  end
  for i, p in ipairs(parts_plan) do
    if any_verified and not list[i].checksum then
      local v, serr = flexsum.of_body(alg, { file = path, offset = p.offset, length = p.length })
      if not v then return nil, errors.locate(serr, "UploadFile", bucket, key) end
      list[i].checksum = v
    end
  end
  local fin, ferr = complete.complete(c, "UploadFile", bucket, key, upload_id, list,
    verify and etag_md5 and md5s or nil, common.customer_key_headers(common.part_headers(opts, 1), c, opts),
    any_verified and alg or nil)
  if not fin then return nil, ferr end
  if cp_path then checkpoint.remove(cp_path) end
  progress(0, true)
  return { bucket = bucket, key = key, etag = fin.etag, size = size, parts = #parts_plan, resumed_from = resumed_from,
    upload_id = upload_id, version_id = fin.version_id, verified = verify, sse = fin.sse, kms_key_id = fin.kms_key_id,
    checksum = alg and { algorithm = alg, verified = all_verified } or nil,
    notices = #notices > 0 and notices or nil }
end

return { upload_file = { call = upload_file } }
