--- Multipart upload primitives: create, upload part, upload part copy,
-- complete, abort, list parts, list uploads. objstore.transfer builds
-- resumable parallel uploads on these.
local common = require "objstore.client.common"
local body_mod = require "objstore.client.body"
local errors = require "objstore.errors"
local mime = require "objstore.mime"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"
local core = require "objstore.core"
local clock = require "objstore.clock"

local type, ipairs, tostring = type, ipairs, tostring
local uri_encode = core.encode.uri_encode

local function check_upload_id(fname, id)
  if type(id) ~= "string" or id == "" then errors.argument(fname, "upload_id must be a non-empty string", 3) end
end

local function check_part_number(fname, n)
  if type(n) ~= "number" or n < 1 or n > 10000 or n % 1 ~= 0 then
    errors.argument(fname, "part_number must be an integer from 1 to 10000", 3)
  end
end

return function(Client)
  --- create_multipart_upload(bucket, key, opts) -> { upload_id, bucket, key } | nil, err
  function Client:create_multipart_upload(bucket, key, opts)
    common.check_bucket("create_multipart_upload", bucket)
    common.check_key("create_multipart_upload", key)
    opts = common.check_opts("create_multipart_upload", opts, { content_type = true, metadata = true, acl = true,
      storage_class = true, headers = true, cache_control = true, content_disposition = true,
      content_encoding = true, content_language = true, expires = true })
    local headers = {}
    if not opts.content_type then headers["Content-Type"] = mime.guess(key) or mime.DEFAULT end
    common.upload_headers(self, opts, headers)
    local started, lost_answer = self:now(), false
    local up, err = self:_call{ name = "CreateMultipartUpload", method = "POST", bucket = bucket, key = key,
      query = { uploads = true }, headers = headers,
      -- An attempt that got no answer may still have created an upload.
      on_retry = function(e) if e.status == nil then lost_answer = true end end,
      parse = function(res, op)
        local t, err = self:_parse_xml(res, op)
        if not t then return nil, err end
        if type(t.upload_id) ~= "string" or t.upload_id == "" then
          return nil, errors.new{ code = "MalformedResponse", message = "no UploadId in the response",
            op = op.name, bucket = bucket, key = key, retryable = true }
        end
        return { upload_id = t.upload_id, bucket = bucket, key = key, request_id = self:_request_id(res) }
      end }
    if up and lost_answer and not self._dry_run then
      -- Abort the uploads the unanswered attempts created: same key, begun
      -- during this call, not ours. (Another writer starting an upload of the
      -- same key in these same seconds would lose it too; S3 offers no
      -- idempotency token to tell them apart.)
      local list = self:list_multipart_uploads(bucket, { prefix = key })
      for _, u in ipairs(list and list.uploads or {}) do
        local t = clock.parse(u.initiated)
        if u.key == key and u.upload_id ~= up.upload_id and t and t >= started - 2 and t <= self:now() + 2 then
          self:abort_multipart_upload(bucket, key, u.upload_id)
        end
      end
    end
    return up, err
  end

  --- upload_part(bucket, key, upload_id, part_number, body, opts) -> { etag, part_number, size }
  -- body as for put_object; opts.content_md5 (true by default), opts.length.
  function Client:upload_part(bucket, key, upload_id, part_number, body, opts)
    common.check_bucket("upload_part", bucket)
    common.check_key("upload_part", key)
    check_upload_id("upload_part", upload_id)
    check_part_number("upload_part", part_number)
    opts = common.check_opts("upload_part", opts, { content_md5 = true, length = true, body_hashes = true,
      timeout = true })
    local b, berr = body_mod.prepare("upload_part", body, opts)
    if not b then
      berr.op, berr.bucket, berr.key = "UploadPart", bucket, key
      return nil, berr
    end
    local headers = {}
    if b.md5 then headers["Content-MD5"] = b.md5 end
    return self:_call{ name = "UploadPart", method = "PUT", bucket = bucket, key = key,
      query = { partNumber = tostring(part_number), uploadId = upload_id }, headers = headers, body = b.body,
      body_length = b.length, body_hashes = opts.body_hashes, timeout = opts.timeout, parse = function(res)
        return { etag = res.headers["etag"], part_number = part_number, size = b.length, md5 = b.md5,
          crc64ecma = self.dialect.crc64 and res.headers[self.dialect.crc64] or nil,
          body_hashes = res.body_hashes, request_id = self:_request_id(res) }
      end }
  end

  --- upload_part_copy(bucket, key, upload_id, part_number, src_bucket, src_key, opts)
  -- opts.range = {first, last} (inclusive byte offsets of the source),
  -- opts.source_version_id, opts.if_match (on the source).
  function Client:upload_part_copy(bucket, key, upload_id, part_number, src_bucket, src_key, opts)
    common.check_bucket("upload_part_copy", bucket)
    common.check_key("upload_part_copy", key)
    check_upload_id("upload_part_copy", upload_id)
    check_part_number("upload_part_copy", part_number)
    common.check_bucket("upload_part_copy", src_bucket)
    common.check_key("upload_part_copy", src_key)
    opts = common.check_opts("upload_part_copy", opts, { range = true, source_version_id = true, if_match = true })
    local d = self.dialect
    local src = "/" .. src_bucket .. "/" .. uri_encode(src_key, true)
    if opts.source_version_id then src = src .. "?versionId=" .. uri_encode(opts.source_version_id) end
    local headers = { [d.copy_source] = src }
    if opts.range then
      headers[d.copy_source_range] = "bytes=" .. tostring(opts.range[1]) .. "-" .. tostring(opts.range[2])
    end
    if opts.if_match then headers[d.prefix .. "copy-source-if-match"] = opts.if_match end
    return self:_call{ name = "UploadPartCopy", method = "PUT", bucket = bucket, key = key,
      query = { partNumber = tostring(part_number), uploadId = upload_id }, headers = headers,
      parse = function(res, op)
        local t, root = self:_parse_xml(res, op)
        if not t then return nil, root end
        if root == "Error" then return nil, self:_error_from_response(op, res) end
        return { etag = t.etag, part_number = part_number, last_modified = t.last_modified,
          request_id = self:_request_id(res) }
      end }
  end

  --- complete_multipart_upload(bucket, key, upload_id, parts) -> { etag, location, version_id }
  -- parts: { { part_number = n, etag = "..." }, ... } in any order.
  function Client:complete_multipart_upload(bucket, key, upload_id, parts)
    common.check_bucket("complete_multipart_upload", bucket)
    common.check_key("complete_multipart_upload", key)
    check_upload_id("complete_multipart_upload", upload_id)
    if type(parts) ~= "table" or #parts == 0 then
      errors.argument("complete_multipart_upload", "parts must be a non-empty list of {part_number, etag}", 2)
    end
    local sorted = {}
    for i, p in ipairs(parts) do
      check_part_number("complete_multipart_upload", p.part_number)
      if type(p.etag) ~= "string" then errors.argument("complete_multipart_upload", "part etag must be a string", 2) end
      sorted[i] = p
    end
    table.sort(sorted, function(a, b) return a.part_number < b.part_number end)
    local tree = {}
    for i, p in ipairs(sorted) do
      tree[i] = { "Part", { { "PartNumber", tostring(p.part_number) }, { "ETag", p.etag } } }
    end
    local ns = self.provider == "s3" and "http://s3.amazonaws.com/doc/2006-03-01/" or nil
    local body = xml.build("CompleteMultipartUpload", tree, ns)
    return self:_call{ name = "CompleteMultipartUpload", method = "POST", bucket = bucket, key = key,
      query = { uploadId = upload_id }, body = body, body_length = #body,
      headers = { ["Content-Type"] = "application/xml", ["Content-MD5"] = checksum.md5_base64(body) },
      parse = function(res, op)
        -- Like CopyObject, the error can come after a 200 status line.
        local t, root = self:_parse_xml(res, op)
        if not t then return nil, root end
        if root == "Error" then return nil, self:_error_from_response(op, res) end
        return { etag = t.etag, location = t.location, bucket = t.bucket, key = t.key,
          version_id = res.headers[self.dialect.version_id], crc64ecma = self.dialect.crc64
          and res.headers[self.dialect.crc64] or nil, request_id = self:_request_id(res) }
      end }
  end

  function Client:abort_multipart_upload(bucket, key, upload_id)
    common.check_bucket("abort_multipart_upload", bucket)
    common.check_key("abort_multipart_upload", key)
    check_upload_id("abort_multipart_upload", upload_id)
    return self:_call{ name = "AbortMultipartUpload", method = "DELETE", bucket = bucket, key = key,
      query = { uploadId = upload_id }, parse = function(res) return { request_id = self:_request_id(res) } end }
  end

  --- list_parts(bucket, key, upload_id, opts) -> { parts = {{part_number, etag, size, last_modified}}, ... }
  -- Pages through every part unless opts.max_parts / opts.part_number_marker are given.
  function Client:list_parts(bucket, key, upload_id, opts)
    common.check_bucket("list_parts", bucket)
    common.check_key("list_parts", key)
    check_upload_id("list_parts", upload_id)
    opts = common.check_opts("list_parts", opts, { max_parts = true, part_number_marker = true })
    local all = {}
    local marker = opts.part_number_marker
    local last
    repeat
      local page, err = self:_call{ name = "ListParts", method = "GET", bucket = bucket, key = key,
        query = { uploadId = upload_id, ["max-parts"] = opts.max_parts, ["part-number-marker"] = marker },
        parse = function(res, op) return self:_parse_xml(res, op) end }
      if not page then return nil, err end
      for _, p in ipairs(page.part or {}) do all[#all + 1] = p end
      last = page
      marker = page.next_part_number_marker
      local more = page.is_truncated and marker and marker ~= "" and not opts.max_parts
    until not more
    last.parts = all
    last.part = nil
    return last
  end

  --- list_multipart_uploads(bucket, opts) -> { uploads = {{key, upload_id, initiated}}, ... }
  function Client:list_multipart_uploads(bucket, opts)
    common.check_bucket("list_multipart_uploads", bucket)
    opts = common.check_opts("list_multipart_uploads", opts, { prefix = true, delimiter = true, key_marker = true,
      upload_id_marker = true, max_uploads = true, encoding_type = true })
    local q = { uploads = true, prefix = opts.prefix, delimiter = opts.delimiter, ["key-marker"] = opts.key_marker,
      ["upload-id-marker"] = opts.upload_id_marker, ["max-uploads"] = opts.max_uploads,
      ["encoding-type"] = opts.encoding_type or "url" }
    if opts.encoding_type == false then q["encoding-type"] = nil end
    return self:_call{ name = "ListMultipartUploads", method = "GET", bucket = bucket, query = q,
      parse = function(res, op)
        local t, err = self:_parse_xml(res, op)
        if not t then return nil, err end
        t.uploads = t.upload or {}
        t.upload = nil
        t.common_prefixes = t.common_prefixes or {}
        t.request_id = self:_request_id(res)
        return t
      end }
  end

end
