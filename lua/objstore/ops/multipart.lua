--- Multipart upload primitives: create, upload part, upload part copy,
-- complete, abort, list parts, list uploads. objstore.transfer builds
-- resumable parallel uploads on these builders.
local common = require "objstore.ops.common"
local body_mod = require "objstore.ops.body"
local request = require "objstore.engine.request"
local response = require "objstore.engine.response"
local errors = require "objstore.errors"
local mime = require "objstore.mime"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"
local clock = require "objstore.clock"
local sse = require "objstore.ops.sse"
local shapes = require "objstore.ops.shapes"
local flexsum = require "objstore.ops.flexsum"
local is_state = require("objstore.core").mpu.is

local type, ipairs, tostring = type, ipairs, tostring
local sort = table.sort

local ops = {}

local CREATE_OPTS = { checksum = true }
for k in pairs(common.UPLOAD_OPTS) do CREATE_OPTS[k] = true end

--- create_multipart_upload(bucket, key, opts) -> { upload_id, bucket, key, request_id } | nil, err
-- Starts a multipart upload. An attempt that got no answer may have
-- created an upload: those begun during this call are aborted.
-- opts.checksum: the flexible checksum every part will carry.
-- errors: MalformedResponse (no UploadId), SSENotApplied (the upload is
--   aborted).
ops.create_multipart_upload = {
  build = function(c, bucket, key, opts)
    common.bucket(c, "create_multipart_upload", 1, bucket)
    common.key("create_multipart_upload", 2, key)
    opts = common.opts("create_multipart_upload", 3, opts, CREATE_OPTS)
    local headers = {}
    local alg = flexsum.option(c, "create_multipart_upload", 3, opts)
    if alg then headers["x-amz-checksum-algorithm"] = flexsum.ALGORITHMS[alg] end
    if not opts.content_type then headers["Content-Type"] = mime.guess(key) or mime.DEFAULT end
    common.upload_headers(c, "create_multipart_upload", 3, opts, headers)
    return request.new{ op = "CreateMultipartUpload", method = "POST", bucket = bucket, key = key,
      query = { uploads = true }, headers = headers, parse = function(res, req)
        local t, err = response.xml(res, req)
        if not t then return nil, err end
        if type(t.upload_id) ~= "string" or t.upload_id == "" then
          return nil, errors.new{ code = "MalformedResponse", message = "no UploadId in the response",
            op = req.op, bucket = bucket, key = key, retryable = true }
        end
        return sse.confirm(c, req.op, bucket, key, opts, sse.info(c.dialect, res.headers,
          { upload_id = t.upload_id, bucket = bucket, key = key, request_id = response.request_id(c.dialect, res) }))
      end }
  end,
  call = function(c, bucket, key, opts)
    local req = ops.create_multipart_upload.build(c, bucket, key, opts)
    local started, lost_answer = c:now(), false
    -- An attempt that got no answer may still have created an upload.
    req.on_retry = function(e) if e.status == nil then lost_answer = true end end
    local up, err = c:send(req)
    if not up and err.code == "SSENotApplied" and err.upload_id then
      -- The upload exists but would store its parts unencrypted: not ours to keep.
      c:abort_multipart_upload(bucket, key, err.upload_id)
    end
    if up and lost_answer then
      -- Abort the uploads the unanswered attempts created: same key, begun
      -- during this call, not ours. (Another writer starting an upload of the
      -- same key in these same seconds would lose it too; S3 offers no
      -- idempotency token to tell them apart.)
      local list = c:list_multipart_uploads(bucket, { prefix = key })
      for _, u in ipairs(list and list.uploads or {}) do
        local t = clock.parse(u.initiated)
        if u.key == key and u.upload_id ~= up.upload_id and t and t >= started - 2 and t <= c:now() + 2 then
          c:abort_multipart_upload(bucket, key, u.upload_id)
        end
      end
    end
    return up, err
  end,
}

--- upload_part(bucket, key, upload_id, part_number, body, opts) -> { etag, part_number, size, md5, ... } | nil, err
-- Uploads part `part_number` (1-10000). body: as for put_object, or a
-- core.buffer.
-- opts.content_md5: true (default) computes the part's MD5, false never, a
--   string is the base64 MD5 already known.
-- opts.length: the body's length in bytes.
-- opts.headers: extra request headers (e.g. SSE-C for this part).
-- opts.body_hashes: digests to compute over the body as it is sent, e.g.
--   { "md5" }: they come back in res.body_hashes.
-- opts.timeout: seconds for this request only.
-- opts.context: any value, handed back with the record (client:run's done).
ops.upload_part = { build = function(c, bucket, key, upload_id, part_number, body, opts)
  common.bucket(c, "upload_part", 1, bucket)
  common.key("upload_part", 2, key)
  common.upload_id("upload_part", 3, upload_id)
  common.part_number("upload_part", 4, part_number)
  opts = common.opts("upload_part", 6, opts, { content_md5 = true, length = true, body_hashes = true,
    timeout = true, headers = true, context = true, sse_customer_key = true, checksum = true,
    checksum_policy = true })
  local b, berr = body_mod.prepare("upload_part", 5, body, opts)
  if not b then
    return request.failed("UploadPart", errors.locate(berr, "UploadPart", bucket, key), opts.context)
  end
  local headers = common.extra_headers("upload_part", 6, opts.headers, sse.key_headers(c, "upload_part", 6, opts))
  if b.md5 then headers["Content-MD5"] = b.md5 end
  local alg = flexsum.option(c, "upload_part", 6, opts)
  local sum, serr
  if alg then
    sum, serr = flexsum.body_headers(alg, b.body, headers)
    if not sum then
      return request.failed("UploadPart", errors.locate(serr, "UploadPart", bucket, key), opts.context)
    end
  end
  return request.new{ op = "UploadPart", method = "PUT", bucket = bucket, key = key,
    query = { partNumber = tostring(part_number), uploadId = upload_id }, headers = headers, body = b.body,
    body_length = b.length, rewind = b.rewind, body_hashes = opts.body_hashes, timeout = opts.timeout,
    context = opts.context, parse = function(res)
      local out, err = sse.confirm(c, "UploadPart", bucket, key, { sse_customer_key = opts.sse_customer_key },
        sse.info(c.dialect, res.headers, { etag = res.headers["etag"], part_number = part_number,
        size = b.length, md5 = b.md5, crc64ecma = c.dialect.crc64 and res.headers[c.dialect.crc64] or nil,
        body_hashes = res.body_hashes, request_id = response.request_id(c.dialect, res) }))
      if not out then return nil, err end
      return flexsum.attach(out, "UploadPart", bucket, key, alg, sum, opts.checksum_policy, res.headers)
    end }
end }

--- upload_part_copy(bucket, key, upload_id, part_number, source, opts) -> { etag, ... } | nil, err
-- result.etag: the part's ETag, for complete_multipart_upload (also
--   part_number, last_modified, request_id).
-- Copies a range of another object as part `part_number` of an upload.
-- source: { bucket =, key =, version_id = } (as copy_object's).
-- opts.range: { first, last }, inclusive byte offsets of the source.
-- opts.copy_source_if_match: copy only if the source's ETag is this.
-- opts.headers: extra request headers.
-- opts.context: any value, handed back with the record.
ops.upload_part_copy = { build = function(c, bucket, key, upload_id, part_number, source, opts)
  common.bucket(c, "upload_part_copy", 1, bucket)
  common.key("upload_part_copy", 2, key)
  common.upload_id("upload_part_copy", 3, upload_id)
  common.part_number("upload_part_copy", 4, part_number)
  local src = common.source(c, "upload_part_copy", 5, source)
  opts = common.opts("upload_part_copy", 6, opts, { range = true, copy_source_if_match = true,
    headers = true, context = true, sse_customer_key = true, copy_source_sse_customer_key = true })
  local d = c.dialect
  local headers = common.extra_headers("upload_part_copy", 6, opts.headers,
    sse.key_headers(c, "upload_part_copy", 6, opts))
  if opts.range then
    headers[d.copy_source_range] = "bytes=" .. tostring(opts.range[1]) .. "-" .. tostring(opts.range[2])
  end
  if opts.copy_source_if_match then headers[d.prefix .. "copy-source-if-match"] = opts.copy_source_if_match end
  return request.new{ op = "UploadPartCopy", method = "PUT", bucket = bucket, key = key,
    query = { partNumber = tostring(part_number), uploadId = upload_id }, headers = headers,
    copy_source = src, context = opts.context, parse = function(res, req)
      local t, err = response.xml_or_error(d, res, req)
      if not t then return nil, err end
      return { etag = t.etag, part_number = part_number, last_modified = t.last_modified,
        request_id = response.request_id(d, res) }
    end }
end }

--- The CompleteMultipartUpload body for parts {{part_number, etag}, ...}
-- or a core.mpu state (every part done), whose body C writes; with `alg`,
-- every part's checksum (a list's `checksum`, base64; the state's recorded
-- one) as its Checksum<ALG>.
local function complete_body(c, parts, alg)
  if is_state(parts) then
    local body, err = parts:complete_body(common.namespace(c), alg)
    if not body then errors.argument("client.complete_multipart_upload", 4, "parts", err.message) end
    return body
  end
  local sorted = {}
  for i, p in ipairs(parts) do
    common.part_number("complete_multipart_upload", 4, p.part_number)
    if type(p.etag) ~= "string" then
      common.misuse("complete_multipart_upload", 4, "parts[" .. i .. "].etag", "must be a string")
    end
    sorted[i] = p
  end
  sort(sorted, function(a, b) return a.part_number < b.part_number end)
  local tree = {}
  for i, p in ipairs(sorted) do
    local part = { { "PartNumber", tostring(p.part_number) }, { "ETag", p.etag } }
    if alg then
      if type(p.checksum) ~= "string" then
        common.misuse("complete_multipart_upload", 4, "parts[" .. i .. "].checksum", "must be the part's base64 "
          .. alg .. " (opts.checksum is given)")
      end
      part[3] = { "Checksum" .. flexsum.ALGORITHMS[alg], p.checksum }
    end
    tree[i] = { "Part", part }
  end
  return xml.build("CompleteMultipartUpload", tree, common.namespace(c))
end

--- complete_multipart_upload(bucket, key, upload_id, parts, opts) -> { etag, location, version_id, ... } | nil, err
-- Completes an upload. parts: { { part_number = n, etag = "...",
-- checksum = b64 (with opts.checksum) }, ... } in any order, or a core.mpu
-- state with every part done.
-- opts.headers: extra request headers.
-- opts.checksum: send every part's checksum of this algorithm in the body.
-- errors: InvalidPart, InvalidPartOrder, NoSuchUpload, an error after a
--   200 status line (read from the body).
ops.complete_multipart_upload = { build = function(c, bucket, key, upload_id, parts, opts)
  common.bucket(c, "complete_multipart_upload", 1, bucket)
  common.key("complete_multipart_upload", 2, key)
  common.upload_id("complete_multipart_upload", 3, upload_id)
  if not is_state(parts) and (type(parts) ~= "table" or #parts == 0) then
    common.misuse("complete_multipart_upload", 4, "parts", "must be a non-empty list of {part_number, etag}")
  end
  opts = common.opts("complete_multipart_upload", 5, opts, { headers = true, checksum = true })
  local body = complete_body(c, parts, flexsum.option(c, "complete_multipart_upload", 5, opts))
  local d = c.dialect
  local headers = common.extra_headers("complete_multipart_upload", 5, opts.headers,
    { ["Content-Type"] = "application/xml", ["Content-MD5"] = checksum.md5_base64(body) })
  return request.new{ op = "CompleteMultipartUpload", method = "POST", bucket = bucket, key = key,
    query = { uploadId = upload_id }, body = body, body_length = #body, headers = headers,
    parse = function(res, req)
      -- Like CopyObject, the error can come after a 200 status line.
      local t, err = response.xml_or_error(d, res, req)
      if not t then return nil, err end
      return sse.info(d, res.headers, { etag = t.etag, location = t.location, bucket = t.bucket, key = t.key,
        version_id = res.headers[d.version_id], crc64ecma = d.crc64 and res.headers[d.crc64] or nil,
        request_id = response.request_id(d, res) })
    end }
end }

--- abort_multipart_upload(bucket, key, upload_id) -> { request_id } | nil, err
-- Aborts an upload: its parts are deleted.
-- errors: NoSuchUpload.
ops.abort_multipart_upload = { build = function(c, bucket, key, upload_id)
  common.bucket(c, "abort_multipart_upload", 1, bucket)
  common.key("abort_multipart_upload", 2, key)
  common.upload_id("abort_multipart_upload", 3, upload_id)
  return request.new{ op = "AbortMultipartUpload", method = "DELETE", bucket = bucket, key = key,
    query = { uploadId = upload_id }, parse = function(res)
      return { request_id = response.request_id(c.dialect, res) }
    end }
end }

local function list_parts_page(bucket, key, upload_id, max_parts, marker)
  return request.new{ op = "ListParts", method = "GET", bucket = bucket, key = key,
    query = { uploadId = upload_id, ["max-parts"] = max_parts, ["part-number-marker"] = marker },
    parse = function(res, req)
      local t, err = response.xml(res, req)
      if not t then return nil, err end
      t.parts = t.part
      return shapes.pick(t, shapes.PARTS)
    end }
end

local function check_list_parts(c, bucket, key, upload_id, opts)
  common.bucket(c, "list_parts", 1, bucket)
  common.key("list_parts", 2, key)
  common.upload_id("list_parts", 3, upload_id)
  return common.opts("list_parts", 4, opts, { max_parts = true, part_number_marker = true })
end

--- list_parts(bucket, key, upload_id, opts) -> { parts, ... } | nil, err
-- The parts of an upload; pages through all of them unless opts.max_parts
-- or opts.part_number_marker is given.
-- opts.max_parts: one page of at most this many parts.
-- opts.part_number_marker: start after this part number.
-- result.parts: { { part_number, etag, size, last_modified }, ... }.
ops.list_parts = {
  build = function(c, bucket, key, upload_id, opts)
    opts = check_list_parts(c, bucket, key, upload_id, opts)
    return list_parts_page(bucket, key, upload_id, opts.max_parts, opts.part_number_marker)
  end,
  call = function(c, bucket, key, upload_id, opts)
    opts = check_list_parts(c, bucket, key, upload_id, opts)
    local all, marker, last = {}, opts.part_number_marker
    repeat
      local page, err = c:send(list_parts_page(bucket, key, upload_id, opts.max_parts, marker))
      if not page then return nil, err end
      for _, p in ipairs(page.parts) do all[#all + 1] = p end
      last = page
      marker = page.next_part_number_marker
      local more = page.is_truncated and marker and marker ~= "" and not opts.max_parts
    until not more
    last.parts = all
    return last
  end,
}

--- list_multipart_uploads(bucket, opts) -> { uploads, common_prefixes, is_truncated, ... } | nil, err
-- One page of the uploads begun and not completed or aborted.
-- opts.upload_id_marker: with key_marker, start after this upload.
-- opts.max_uploads: at most this many a page.
-- result.uploads: { { key, upload_id, initiated }, ... }.
ops.list_multipart_uploads = { build = function(c, bucket, opts)
  common.bucket(c, "list_multipart_uploads", 1, bucket)
  opts = common.opts("list_multipart_uploads", 2, opts, { prefix = true, delimiter = true, key_marker = true,
    upload_id_marker = true, max_uploads = true, encoding_type = true })
  local q = { uploads = true, prefix = opts.prefix, delimiter = opts.delimiter, ["key-marker"] = opts.key_marker,
    ["upload-id-marker"] = opts.upload_id_marker, ["max-uploads"] = opts.max_uploads,
    ["encoding-type"] = opts.encoding_type or "url" }
  if opts.encoding_type == false then q["encoding-type"] = nil end
  return request.new{ op = "ListMultipartUploads", method = "GET", bucket = bucket, query = q,
    parse = function(res, req)
      local t, err = response.xml(res, req)
      if not t then return nil, err end
      t.uploads = t.upload
      t.request_id = response.request_id(c.dialect, res)
      return shapes.pick(t, shapes.UPLOADS)
    end }
end }

return ops
