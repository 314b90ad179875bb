--- upload_file and upload_stream: multipart uploads that run their parts
-- concurrently, retry each part on its own, check every part and the whole
-- (Content-MD5 on each part, the final ETag against the MD5 of the part
-- MD5s), and resume from a checkpoint reconciled with ListParts.
local plan = require "objstore.transfer.plan"
local checkpoint = require "objstore.transfer.checkpoint"
local runner = require "objstore.transfer.runner"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local common = require "objstore.client.common"
local core = require "objstore.core"
local lfs = require "lfs"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local hash_file, hash_async = core.hash.file, core.hash.file_async
local tohex, b64 = core.hash.tohex, core.encode.base64_encode
local sort = table.sort

local UPLOAD_OPTS = { part_size = true, threshold = true, concurrency = true, checkpoint = true, progress = true,
  metadata = true, content_type = true, acl = true, storage_class = true, leave_parts_on_error = true,
  headers = true, cache_control = true, content_disposition = true, content_encoding = true,
  content_language = true, expires = true, on_part = true, verify = true }

local function fail(code, message, bucket, key, extra)
  return errors.failure("UploadFile", code, message, bucket, key, extra)
end

local function mpu_opts(opts)
  return { content_type = opts.content_type, metadata = opts.metadata, acl = opts.acl,
    storage_class = opts.storage_class, headers = opts.headers, cache_control = opts.cache_control,
    content_disposition = opts.content_disposition, content_encoding = opts.content_encoding,
    content_language = opts.content_language, expires = opts.expires }
end

--- The checkpoint's idea of the file must still hold: same size, same mtime.
local function same_file(cp, bucket, key, size, mtime, part_size)
  return cp.kind == "upload" and cp.bucket == bucket and cp.key == key and cp.size == size and cp.mtime == mtime
    and cp.part_size == part_size and type(cp.upload_id) == "string" and type(cp.parts) == "table"
end

--- Reconciles a checkpoint with the server's parts. Parts the server has
-- with the ETag we recorded are done; parts it has that we did not record
-- (a crash between the part and the checkpoint write) are checked against
-- the local bytes' MD5. Returns done map, or nil, err (err.code NoSuchUpload
-- for a stale upload id).
local function reconcile(client, bucket, key, path, cp, parts_plan)
  local listed, err = client:list_parts(bucket, key, cp.upload_id)
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
        if md5 and s.etag == '"' .. tohex(md5) .. '"' then
          done[p.number] = { number = p.number, size = p.length, etag = s.etag, md5 = b64(md5) }
        end
      end
    end
  end
  return done
end

return function(Client)
  --- upload_file(bucket, key, path, opts) -> { bucket, key, etag, size, parts, resumed_from, upload_id } | nil, err
  function Client:upload_file(bucket, key, path, opts)
    common.check_bucket("upload_file", bucket)
    common.check_key("upload_file", key)
    if type(path) ~= "string" then errors.argument("upload_file", "path must be a string", 2) end
    opts = common.check_opts("upload_file", opts, UPLOAD_OPTS)
    local attr = lfs.attributes(path)
    if not attr or attr.mode ~= "file" then
      return nil, fail("LocalFileError", "cannot read " .. path, bucket, key)
    end
    local size, mtime = attr.size, attr.modification
    local part_size, perr = plan.part_size(size, self.provider, opts.part_size)
    if not part_size then return nil, fail("InvalidArgument", perr, bucket, key) end
    local threshold = opts.threshold or part_size
    local verify = opts.verify ~= false
    local progress = runner.progress(opts.progress, size, 0)

    if size < threshold then
      local o = mpu_opts(opts)
      if not verify then o.content_md5 = false end
      local res, err = self:put_object(bucket, key, { path = path }, o)
      if not res then return nil, err end
      progress(size, true)
      return { bucket = bucket, key = key, etag = res.etag, size = size, parts = 1, resumed_from = 0,
        version_id = res.version_id }
    end

    local parts_plan = plan.parts(size, part_size)
    local cp_path = opts.checkpoint == true and (path .. ".objstore-cp") or opts.checkpoint
    if cp_path ~= nil and type(cp_path) ~= "string" then
      errors.argument("upload_file", "checkpoint must be a path or true", 2)
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
        local d, rerr = reconcile(self, bucket, key, path, cp, parts_plan)
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
      local up, err = self:create_multipart_upload(bucket, key, mpu_opts(opts))
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
    progress = runner.progress(opts.progress, size, resumed_from)
    progress(0, true)

    local queue = {}
    for _, p in ipairs(parts_plan) do
      if not done[p.number] then queue[#queue + 1] = p end
    end
    local qi = 1
    local sent_parts = 0
    -- Content-MD5s are computed on threads a couple of parts ahead, so the
    -- hashing of the next parts overlaps the sending of the current ones.
    local jobs = {}
    local function hash_ahead(i)
      local p = queue[i]
      if verify and p and not jobs[i] then jobs[i] = hash_async("md5", path, p.offset, p.length) or false end
    end
    local ok, err = runner.run(self, {
      concurrency = opts.concurrency or 8,
      next = function()
        local p = queue[qi]
        if not p then return nil end
        hash_ahead(qi)
        local job = jobs[qi]
        jobs[qi] = nil
        qi = qi + 1
        for i = qi, qi + 1 do hash_ahead(i) end
        local md5, herr
        local headers = {}
        if verify then
          if job then md5, herr = job:wait() end
          if not md5 then md5, herr = hash_file("md5", path, p.offset, p.length) end
          if not md5 then return { name = "UploadPart", _fail = herr, part = p } end
          headers["Content-MD5"] = b64(md5)
        end
        return { name = "UploadPart", method = "PUT", bucket = bucket, key = key,
          query = { partNumber = tostring(p.number), uploadId = upload_id },
          headers = headers,
          body = { file = path, offset = p.offset, length = p.length }, body_length = p.length,
          part = p, md5 = md5 }
      end,
      done = function(op, res, perr2)
        if op._fail then return false, fail("LocalFileError", op._fail, bucket, key) end
        if not res then return false, perr2 end
        local etag = res.headers["etag"]
        local want = op.md5 and ('"' .. tohex(op.md5) .. '"') or nil
        -- The server's ETag of a part is the MD5 of what it stored.
        if want and etag and etag ~= want and etag:match('^"%x+"$') then
          return false, fail("BadDigest", "part " .. op.part.number .. " ETag " .. etag .. " is not its MD5 "
            .. want, bucket, key)
        end
        if not etag and not want then
          return false, fail("MalformedResponse", "no ETag for part " .. op.part.number, bucket, key)
        end
        done[op.part.number] = { number = op.part.number, size = op.part.length, etag = etag or want,
          md5 = op.md5 and b64(op.md5) or nil }
        sent_parts = sent_parts + 1
        local sok, serr = save()
        if not sok then return false, serr end
        progress(op.part.length)
        -- on_part(number, parts_sent_this_run) may return false to stop.
        if opts.on_part and opts.on_part(op.part.number, sent_parts) == false then
          return false, fail("Aborted", "stopped by on_part after part " .. op.part.number, bucket, key)
        end
        return true
      end,
    })
    if not ok then
      err.op, err.bucket, err.key = "UploadFile", bucket, key
      err.upload_id = upload_id
      if not cp_path and not opts.leave_parts_on_error then
        self:abort_multipart_upload(bucket, key, upload_id)
      end
      return nil, err
    end

    local list, md5s = {}, {}
    for i, p in ipairs(parts_plan) do
      local d = done[p.number]
      list[i] = { part_number = p.number, etag = d.etag }
      md5s[i] = d.md5 and core.encode.base64_decode(d.md5) or nil
    end
    local fin, ferr = self:complete_multipart_upload(bucket, key, upload_id, list)
    if not fin then
      ferr.upload_id = upload_id
      return nil, ferr
    end
    local etag = fin.etag
    if not verify then
      if cp_path then checkpoint.remove(cp_path) end
      progress(0, true)
      return { bucket = bucket, key = key, etag = etag, size = size, parts = #parts_plan,
        resumed_from = resumed_from, upload_id = upload_id, verified = false }
    end
    local expected = '"' .. checksum.multipart_etag(md5s) .. '"'
    if not etag or etag == "" or etag == '""' then
      -- Some servers (radosgw) answer Complete with an empty ETag: ask.
      local h, herr = self:head_object(bucket, key)
      if not h then return nil, herr end
      etag = h.etag
    end
    -- Servers differ in quoting the ETag (radosgw drops the quotes when it
    -- answers a retried Complete): compare the value.
    if etag and not etag:find('^"') then etag = '"' .. etag .. '"' end
    if etag ~= expected then
      return nil, fail("BadDigest", "object ETag " .. tostring(etag) .. " is not the MD5 of the part MD5s "
        .. expected, bucket, key)
    end
    if cp_path then checkpoint.remove(cp_path) end
    progress(0, true)
    return { bucket = bucket, key = key, etag = etag, size = size, parts = #parts_plan, resumed_from = resumed_from,
      upload_id = upload_id, version_id = fin.version_id, notices = #notices > 0 and notices or nil }
  end
end
