--- Object operations: put, get, head, delete, delete many, copy. Each is a
-- builder from arguments to a request record (objstore.engine.request) with its
-- response parser; `call` where one operation is more than one request.
local common = require "objstore.ops.common"
local body_mod = require "objstore.ops.body"
local request = require "objstore.engine.request"
local response = require "objstore.engine.response"
local errors = require "objstore.errors"
local mime = require "objstore.mime"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"
local sse = require "objstore.ops.sse"
local flexsum = require "objstore.ops.flexsum"

local core = require "objstore.core"

local type, pairs, ipairs, tostring, pcall, error = type, pairs, ipairs, tostring, pcall, error
local os_remove, os_rename = os.remove, os.rename

local ops = {}

local PUT_OPTS = { content_md5 = true, length = true, if_none_match = true, if_match = true, checksum = true,
  checksum_policy = true }
for k in pairs(common.UPLOAD_OPTS) do PUT_OPTS[k] = true end

-- Options of reads (GET_OPTS; head_object takes the conditions, version and part):
-- opts.version_id: the version to read (versioned buckets).
-- opts.part_number: read only this part of a multipart object (1-based).
-- opts.on_head: function(status, headers) called with the response head
--   before any body byte (per attempt).
-- opts.range: bytes to read: "bytes=a-b", "a-b" or { first, last }
--   (inclusive offsets; last may be nil for "to the end").
-- opts.response_content_type: the Content-Type the server answers with
--   (response-content-type; the other response_* options likewise set
--   Content-Disposition, Content-Encoding, Content-Language, Cache-Control
--   and Expires).
-- opts.response_content_disposition: the answer's Content-Disposition.
-- opts.response_content_encoding: the answer's Content-Encoding.
-- opts.response_content_language: the answer's Content-Language.
-- opts.response_cache_control: the answer's Cache-Control.
-- opts.response_expires: the answer's Expires.
local GET_OPTS = { sink = true, file = true, range = true, if_match = true, if_none_match = true,
  if_modified_since = true, if_unmodified_since = true, version_id = true, part_number = true,
  response_content_type = true, response_content_disposition = true, response_content_encoding = true,
  response_content_language = true, response_cache_control = true, response_expires = true, headers = true,
  hashes = true, sse_customer_key = true, on_head = true, sink_retryable = true }

local function range_header(r)
  if r == nil then return nil end
  if type(r) == "string" then return r:find("^bytes=") and r or ("bytes=" .. r) end
  if type(r) == "table" then
    local first, last = r[1] or r.first, r[2] or r.last
    return "bytes=" .. tostring(first) .. "-" .. (last and tostring(last) or "")
  end
  common.misuse("get_object", 3, "opts.range", "must be 'bytes=a-b', 'a-b' or {first, last}")
end

local function version_query(opts)
  local query = {}
  if opts.version_id then query.versionId = opts.version_id end
  if opts.part_number then query.partNumber = opts.part_number end
  return query
end

--- put_object(bucket, key, body, opts) -> { etag, version_id, size, crc64ecma, request_id, ... } | nil, err
-- Uploads an object in one request. body: a string, { path =, offset =,
-- length = } (a file range, read in C), a file handle, or a reader function
-- (give opts.length to stream it; otherwise it is gathered first), or nil
-- (empty). Content-Type is guessed from the path or key when not given;
-- Content-MD5 is sent by default.
-- opts.content_md5: true (default) computes the MD5 when the body can be
--   read twice, false never sends it, a string is sent as the base64 MD5.
-- opts.length: the body's length in bytes (required to stream a reader).
-- opts.if_match: write only if the object's ETag is this (If-Match).
-- opts.if_none_match: "*": write only if the key does not exist.
-- result.etag: the ETag, quoted as the server sent it.
-- result.sse: the encryption applied (with kms_key_id,
--   sse_customer_algorithm, sse_customer_key_md5), when asked for.
-- result.checksum: { algorithm, value, verified } with opts.checksum.
-- errors: PreconditionFailed (412), BadDigest, LocalFileError (a body file
--   that cannot be read), SSENotApplied, ChecksumNotVerified.
ops.put_object = { build = function(c, bucket, key, body, opts)
  common.bucket(c, "put_object", 1, bucket)
  common.key("put_object", 2, key)
  opts = common.opts("put_object", 4, opts, PUT_OPTS)
  local b, berr = body_mod.prepare("put_object", 3, body, opts)
  if not b then return request.failed("PutObject", errors.locate(berr, "PutObject", bucket, key)) end
  local headers = {}
  if not opts.content_type then
    headers["Content-Type"] = mime.guess(b.path) or mime.guess(key) or mime.DEFAULT
  end
  common.upload_headers(c, "put_object", 4, opts, headers)
  if b.md5 then headers["Content-MD5"] = b.md5 end
  common.conditional_headers(opts, headers)
  local alg = flexsum.option(c, "put_object", 4, opts)
  local sum, serr
  if alg then
    sum, serr = flexsum.body_headers(alg, b.body, headers)
    if not sum then return request.failed("PutObject", errors.locate(serr, "PutObject", bucket, key)) end
  end
  return request.new{ op = "PutObject", method = "PUT", bucket = bucket, key = key, headers = headers,
    body = b.body, body_length = b.length, rewind = b.rewind, parse = function(res)
      local info = response.object_info(c.dialect, res)
      local out, err = sse.confirm(c, "PutObject", bucket, key, opts, sse.info(c.dialect, res.headers,
        { etag = info.etag, version_id = info.version_id, request_id = info.request_id, crc64ecma = info.crc64ecma,
          size = b.length }))
      if not out then return nil, err end
      return flexsum.attach(out, "PutObject", bucket, key, alg, sum, opts.checksum_policy, res.headers)
    end }
end }

--- get_object(bucket, key, opts) -> { body, etag, content_length, content_type, metadata, ... } | nil, err
-- Downloads an object: into `body` (a string) unless opts.sink or
-- opts.file takes the bytes. A built record (build_request) does no I/O,
-- so it has no file sink: get_object.to_temp(req, file) gives it one.
-- opts.file: download to this path, through a temporary file renamed into
--   place on success and removed on failure.
-- opts.sink: function(chunk) called with the body as it arrives.
-- opts.on_head: function(status, headers) called with the store's
--   response head before any body byte (per attempt).
-- opts.sink_retryable: function() -> true while a failed attempt may be
--   retried although opts.sink is given (nothing of the attempt reached
--   the sink's destination); without it a sink is never retried.
-- opts.hashes: digests to compute over the body as it streams, e.g.
--   { "md5", "crc64nvme" }: they come back in res.hashes.
-- result.body: the bytes (without sink or file); res.bytes counts them.
-- result.metadata: the user metadata (x-amz-meta-*/x-oss-meta-*), names
--   lower-case; the standard headers as for head_object.
-- result.file: the path written, with opts.file.
-- errors: NoSuchKey (404), NotModified (304) and PreconditionFailed (412)
--   for the conditions, InvalidRange (416), LocalFileError.
ops.get_object = {
  build = function(c, bucket, key, opts)
    common.bucket(c, "get_object", 1, bucket)
    common.key("get_object", 2, key)
    opts = common.opts("get_object", 3, opts, GET_OPTS)
    if opts.sink ~= nil and type(opts.sink) ~= "function" then
      common.misuse("get_object", 3, "opts.sink", "must be a function, " .. errors.got(opts.sink))
    end
    if opts.file ~= nil and type(opts.file) ~= "string" then
      common.misuse("get_object", 3, "opts.file", "must be a path string, " .. errors.got(opts.file))
    end
    local headers = common.extra_headers("get_object", 3, opts.headers,
      sse.key_headers(c, "get_object", 3, opts))
    local range = range_header(opts.range)
    if range then common.set_header(headers, "Range", range) end
    common.conditional_headers(opts, headers)
    local query = version_query(opts)
    for _, name in ipairs{ "content_type", "content_disposition", "content_encoding", "content_language",
      "cache_control", "expires" } do
      local v = opts["response_" .. name]
      if v then query["response-" .. name:gsub("_", "-")] = v end
    end
    return request.new{ op = "GetObject", method = "GET", bucket = bucket, key = key, headers = headers,
      query = query, hashes = opts.hashes, sink = opts.sink, on_head = opts.on_head, max_body = 0,
      sink_retryable = opts.sink_retryable,
      parse = function(res)
        local info = response.object_info(c.dialect, res)
        info.body, info.bytes, info.hashes = res.body, res.bytes, res.hashes
        return info
      end }
  end,
  --- Points req's sink at a new temporary file beside `file`, created
  -- exclusively (never a planted file or a link) as
  -- "<file>.objstore-tmp-<16 random lowercase hex>", the name sync's walk
  -- knows as objstore's own. Returns its name | nil, err (LocalFileError).
  to_temp = function(req, file)
    local tmp, err = core.fs.temp(file .. ".objstore-tmp-")
    if not tmp then return nil, errors.locate(err, "GetObject", req.bucket, req.key) end
    req.sink = { file = tmp, offset = 0 }
    return tmp
  end,
  call = function(c, bucket, key, opts)
    local req = ops.get_object.build(c, bucket, key, opts)
    local file = opts and opts.file
    if not file then return c:send(req) end
    local tmp, terr = ops.get_object.to_temp(req, file)
    if not tmp then return nil, terr end
    -- The transport never hands an error body to a sink, so on failure the
    -- temporary file holds nothing worth keeping; an interrupt raised out
    -- of the send removes it too.
    local pok, res, err = pcall(c.send, c, req)
    if not pok then
      os_remove(tmp)
      error(res, 0)
    end
    if not res then
      os_remove(tmp)
      return nil, err
    end
    -- A link at `file` is replaced, never written through.
    local ok, rerr = os_rename(tmp, file)
    if not ok then
      os_remove(tmp)
      return nil, errors.failure("GetObject", "LocalFileError", tostring(rerr), bucket, key)
    end
    res.file = file
    return res
  end,
}

--- head_object(bucket, key, opts) -> { etag, content_length, content_type, metadata, ... } | nil, err
-- The object's metadata, without its body.
-- result.content_length: the Content-Length, a number. The other standard
--   headers come under snake_case names (last_modified, content_type,
--   cache_control, version_id, storage_class, delete_marker, ...), all of
--   them in `headers`.
-- result.metadata: the user metadata, names lower-case.
-- errors: a 404 error (HEAD answers have no body: `code` may be the status
--   text), 304/412 for the conditions.
ops.head_object = { build = function(c, bucket, key, opts)
  common.bucket(c, "head_object", 1, bucket)
  common.key("head_object", 2, key)
  opts = common.opts("head_object", 3, opts, { version_id = true, if_match = true, if_none_match = true,
    if_modified_since = true, if_unmodified_since = true, part_number = true, headers = true,
    sse_customer_key = true, on_head = true })
  local headers = common.extra_headers("head_object", 3, opts.headers, sse.key_headers(c, "head_object", 3, opts))
  common.conditional_headers(opts, headers)
  return request.new{ op = "HeadObject", method = "HEAD", bucket = bucket, key = key, headers = headers,
    query = version_query(opts), on_head = opts.on_head,
    parse = function(res) return response.object_info(c.dialect, res) end }
end }

--- object_exists(bucket, key, opts) -> true | false | nil, err
-- A HEAD: true when it succeeds, false on 404, nil, err otherwise (403
-- included: it says nothing of the object).
ops.object_exists = {
  build = function(c, bucket, key, opts) return ops.head_object.build(c, bucket, key, opts) end,
  call = function(c, bucket, key, opts)
    local res, err = c:send(ops.head_object.build(c, bucket, key, opts))
    if res then return true end
    if err.status == 404 then return false end
    return nil, err
  end,
}

--- delete_object(bucket, key, opts) -> { delete_marker, version_id, request_id } | nil, err
-- Deletes an object (or one version of it). Deleting a key that does not
-- exist succeeds, as S3 does.
-- opts.version_id: the version to delete (versioned buckets).
-- result.delete_marker: true when the delete made a delete marker.
ops.delete_object = { build = function(c, bucket, key, opts)
  common.bucket(c, "delete_object", 1, bucket)
  common.key("delete_object", 2, key)
  opts = common.opts("delete_object", 3, opts, { version_id = true })
  return request.new{ op = "DeleteObject", method = "DELETE", bucket = bucket, key = key,
    query = opts.version_id and { versionId = opts.version_id } or nil, parse = function(res)
      local info = response.object_info(c.dialect, res)
      return { delete_marker = info.delete_marker, version_id = info.version_id, request_id = info.request_id }
    end }
end }

local DELETE_BATCH = 1000

--- The objects of delete_objects, checked: { {key=, version_id=}, ... }.
local function delete_list(keys)
  if type(keys) ~= "table" then common.misuse("delete_objects", 2, "keys", "must be a list, " .. errors.got(keys)) end
  local objects = {}
  for i, k in ipairs(keys) do
    local key, version = k, nil
    if type(k) == "table" then key, version = k.key, k.version_id end
    common.key("delete_objects", 2, key, "keys[" .. i .. "]")
    objects[i] = { key = key, version_id = version }
  end
  return objects
end

--- The request deleting objects[first .. first+999].
local function delete_batch(c, bucket, objects, first, quiet)
  local tree = { { "Quiet", quiet and "true" or "false" } }
  local last = first + DELETE_BATCH - 1
  if last > #objects then last = #objects end
  for i = first, last do
    local o = { { "Key", objects[i].key } }
    if objects[i].version_id then o[2] = { "VersionId", objects[i].version_id } end
    tree[#tree + 1] = { "Object", o }
  end
  local body = xml.build("Delete", tree, common.namespace(c))
  return request.new{ op = "DeleteObjects", method = "POST", bucket = bucket, query = { delete = true },
    headers = { ["Content-MD5"] = checksum.md5_base64(body), ["Content-Type"] = "application/xml" },
    body = body, body_length = #body, context = { first = first, last = last },
    parse = function(res, req)
      -- Quiet mode lists only the keys that failed: with none, Alibaba OSS
      -- answers 200 with an empty body (documented), which says every
      -- key was deleted.
      if quiet and not (res.body or ""):find("%S") then return { deleted = {}, error = {} } end
      local t, root = response.xml(res, req)
      if not t then return nil, root end
      -- Another document (a server that took the POST for something
      -- else) says nothing of the keys: in quiet mode its lack of <Error>
      -- would have read as every key deleted.
      if root ~= "DeleteResult" then
        return nil, errors.new{ code = "MalformedResponse", retryable = false, status = res.status, op = req.op,
          bucket = req.bucket, message = "DeleteObjects answered with a <" .. tostring(root)
            .. "> document, not a DeleteResult: no key is known deleted" }
      end
      return t
    end }
end

--- delete_objects(bucket, keys, opts) -> { deleted, errors } | nil, err
-- keys: strings or { key =, version_id = }; sent in batches of 1000, each
-- with the Content-MD5 S3 requires. Every batch is sent: a batch that
-- fails as a whole reports each of its keys in `errors` (with the batch's
-- error as `error`), and the others still run. The partial-failure rule
-- (docs/client.md): the result only when every key was deleted; otherwise
-- nil, err with err.result = { deleted, errors } all the same.
-- opts.quiet: true asks the server to list only failures: a key not in
--   `errors` was deleted; an empty 2xx body (Alibaba OSS sends one when
--   nothing failed) is no failure at all.
-- result.deleted: { { key =, version_id =, ... }, ... }.
-- result.errors: { } (err.result.errors: { { key =, version_id =, code =,
--   message =, error = }, ... }).
-- errors: the keys' own code when they all failed alike (AccessDenied,
--   a batch's SlowDown, ...), else PartialFailure; err.result always.
--- The error of a delete_objects that did not delete every key: one
-- code when every failure has it, PartialFailure otherwise; retryable only
-- when every failure is; what was done in err.result.
local function partial_failure(bucket, out, asked)
  local first, code, retryable = out.errors[1], out.errors[1].code, true
  for _, e in ipairs(out.errors) do
    if e.code ~= code then code = "PartialFailure" end
    if not (e.error and e.error.retryable) then retryable = false end
  end
  local err = errors.failure("DeleteObjects", code or "PartialFailure", ("%d of %d keys not deleted (first: %s: %s)")
    :format(#out.errors, asked, tostring(first.key), tostring(first.message or first.code)), bucket, nil,
    { retryable = retryable, result = out, status = first.error and first.error.status,
      request_id = first.error and first.error.request_id })
  return err
end

local function delete_args(c, bucket, keys, opts)
  common.bucket(c, "delete_objects", 1, bucket)
  local objects = delete_list(keys)
  return objects, common.opts("delete_objects", 3, opts, { quiet = true })
end

ops.delete_objects = {
  build = function(c, bucket, keys, opts)
    local objects
    objects, opts = delete_args(c, bucket, keys, opts)
    return delete_batch(c, bucket, objects, 1, opts.quiet)
  end,
  call = function(c, bucket, keys, opts)
    local all
    all, opts = delete_args(c, bucket, keys, opts)
    local out = { deleted = {}, errors = {} }
    -- A key with a control character cannot be said in the XML body (XML
    -- 1.0 has no \27 even as a reference; a CR becomes a LF): the store
    -- refuses the whole batch (rgw: 400), so `rm -r` deleted nothing for
    -- one such name. Those keys are deleted one request each.
    local objects = {}
    for _, o in ipairs(all) do
      if o.key:find("%c") then
        local ok, err = c:delete_object(bucket, o.key, { version_id = o.version_id })
        if ok then
          if not opts.quiet then out.deleted[#out.deleted + 1] = { key = o.key, version_id = o.version_id } end
        else
          out.errors[#out.errors + 1] = { key = o.key, version_id = o.version_id, code = err.code,
            message = err.message, error = err }
        end
      else
        objects[#objects + 1] = o
      end
    end
    for first = 1, #objects, DELETE_BATCH do
      local req = delete_batch(c, bucket, objects, first, opts.quiet)
      local res, err = c:send(req)
      if res then
        for _, d in ipairs(res.deleted or {}) do out.deleted[#out.deleted + 1] = d end
        for _, e in ipairs(res.error or {}) do out.errors[#out.errors + 1] = e end
      else
        for i = first, req.context.last do
          out.errors[#out.errors + 1] = { key = objects[i].key, version_id = objects[i].version_id,
            code = err.code, message = err.message, error = err }
        end
      end
    end
    if #out.errors > 0 then return nil, partial_failure(bucket, out, #all) end
    return out
  end,
}

local COPY_OPTS = { metadata_directive = true, copy_source_if_match = true, copy_source_if_none_match = true,
  copy_source_sse_customer_key = true }
for k in pairs(common.UPLOAD_OPTS) do COPY_OPTS[k] = true end

--- copy_object(bucket, key, source, opts) -> { etag, last_modified, version_id } | nil, err
-- Server-side copy of one object (up to 5 GiB; copy_large goes beyond)
-- to bucket/key, destination first as in boto3. The metadata is copied
-- unless metadata or content_type is given (then it is replaced).
-- source: { bucket =, key =, version_id = } (version_id: that version of
--   the source).
-- opts.metadata_directive: "COPY" (default) or "REPLACE" (with metadata,
--   content_type, ...).
-- opts.copy_source_if_match: copy only if the source's ETag is this.
-- opts.copy_source_if_none_match: copy only if the source's ETag is not
--   this.
-- opts.headers: extra request headers.
-- errors: NoSuchKey (the source), PreconditionFailed, an error sent after
--   a 200 status line (read from the body), SSENotApplied.
ops.copy_object = { build = function(c, bucket, key, source, opts)
  common.bucket(c, "copy_object", 1, bucket)
  common.key("copy_object", 2, key)
  local src = common.source(c, "copy_object", 3, source)
  opts = common.opts("copy_object", 4, opts, COPY_OPTS)
  local d = c.dialect
  local directive = opts.metadata_directive or ((opts.metadata or opts.content_type) and "REPLACE" or "COPY")
  if directive ~= "COPY" and directive ~= "REPLACE" then
    common.misuse("copy_object", 4, "opts.metadata_directive", "must be 'COPY' or 'REPLACE'")
  end
  local headers = { [d.metadata_directive] = directive }
  if opts.copy_source_if_match then headers[d.prefix .. "copy-source-if-match"] = opts.copy_source_if_match end
  if opts.copy_source_if_none_match then
    headers[d.prefix .. "copy-source-if-none-match"] = opts.copy_source_if_none_match
  end
  common.upload_headers(c, "copy_object", 4, common.upload_opts(opts), headers)
  sse.key_headers(c, "copy_object", 4, { copy_source_sse_customer_key = opts.copy_source_sse_customer_key }, headers)
  return request.new{ op = "CopyObject", method = "PUT", bucket = bucket, key = key, headers = headers,
    copy_source = src,
    parse = function(res, req)
      -- A copy can fail after the 200 status line: the error is in the body.
      local t, err = response.xml_or_error(d, res, req)
      if not t then return nil, err end
      return sse.confirm(c, "CopyObject", bucket, key, opts, sse.info(d, res.headers, { etag = t.etag,
        last_modified = t.last_modified, version_id = res.headers[d.version_id],
        request_id = response.request_id(d, res) }))
    end }
end }

return ops
