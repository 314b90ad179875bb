--- Object operations: put, get, head, delete, delete many, copy.
local common = require "objstore.client.common"
local body_mod = require "objstore.client.body"
local errors = require "objstore.errors"
local mime = require "objstore.mime"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"
local core = require "objstore.core"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local os_remove, os_rename, io_open, math_random = os.remove, os.rename, io.open, math.random
local uri_encode = core.encode.uri_encode

local PUT_OPTS = { content_type = true, metadata = true, acl = true, storage_class = true, headers = true,
  content_md5 = true, cache_control = true, content_disposition = true, content_encoding = true,
  content_language = true, expires = true, length = true, if_none_match = true, if_match = true }

local GET_OPTS = { sink = true, file = true, range = true, if_match = true, if_none_match = true,
  if_modified_since = true, if_unmodified_since = true, version_id = true, part_number = true,
  response_content_type = true, response_content_disposition = true, response_content_encoding = true,
  response_content_language = true, response_cache_control = true, response_expires = true, headers = true,
  hashes = true }

local function range_header(r)
  if r == nil then return nil end
  if type(r) == "string" then return r:find("^bytes=") and r or ("bytes=" .. r) end
  if type(r) == "table" then
    local first, last = r[1] or r.first, r[2] or r.last
    return "bytes=" .. tostring(first) .. "-" .. (last and tostring(last) or "")
  end
  errors.argument("get_object", "range must be 'bytes=a-b', 'a-b' or {first, last}", 4)
end

local set_header = common.set_header

local function conditional_headers(opts, h)
  if opts.if_match then set_header(h, "If-Match", opts.if_match) end
  if opts.if_none_match then set_header(h, "If-None-Match", opts.if_none_match) end
  if opts.if_modified_since then set_header(h, "If-Modified-Since", opts.if_modified_since) end
  if opts.if_unmodified_since then set_header(h, "If-Unmodified-Since", opts.if_unmodified_since) end
end

--- "/bucket/key" for CopySource, the key percent-encoded as a path.
local function copy_source(bucket, key, version_id)
  local s = "/" .. bucket .. "/" .. uri_encode(key, true)
  if version_id then s = s .. "?versionId=" .. uri_encode(version_id) end
  return s
end

return function(Client)
  --- put_object(bucket, key, body, opts) -> { etag, version_id, request_id, crc64ecma } | nil, err
  -- body: string, {path=, offset=, length=}, file handle, or reader function
  -- (give opts.length to stream it; otherwise it is gathered first).
  function Client:put_object(bucket, key, body, opts)
    common.check_bucket("put_object", bucket)
    common.check_key("put_object", key)
    opts = common.check_opts("put_object", opts, PUT_OPTS)
    local b, berr = body_mod.prepare("put_object", body, opts)
    if not b then
      berr.op, berr.bucket, berr.key = "PutObject", bucket, key
      return nil, berr
    end
    local headers = {}
    if not opts.content_type then
      headers["Content-Type"] = mime.guess(b.path) or mime.guess(key) or mime.DEFAULT
    end
    common.upload_headers(self, opts, headers)
    if b.md5 then headers["Content-MD5"] = b.md5 end
    conditional_headers(opts, headers)
    return self:_call{ name = "PutObject", method = "PUT", bucket = bucket, key = key, headers = headers,
      body = b.body, body_length = b.length, parse = function(res)
        local info = common.object_info(self, res)
        return { etag = info.etag, version_id = info.version_id, request_id = info.request_id,
          crc64ecma = info.crc64ecma, size = b.length }
      end }
  end

  --- get_object(bucket, key, opts) -> info with `body` (no sink) | nil, err
  -- opts.file: download to this path (via a temporary file renamed into place
  -- on success, removed on failure); opts.sink: function(chunk) called with
  -- the body as it arrives.
  function Client:get_object(bucket, key, opts)
    common.check_bucket("get_object", bucket)
    common.check_key("get_object", key)
    opts = common.check_opts("get_object", opts, GET_OPTS)
    if opts.sink ~= nil and type(opts.sink) ~= "function" then
      errors.argument("get_object", "sink must be a function", 2)
    end
    if opts.file ~= nil and type(opts.file) ~= "string" then
      errors.argument("get_object", "file must be a path string", 2)
    end
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k] = v end
    local range = range_header(opts.range)
    if range then set_header(headers, "Range", range) end
    conditional_headers(opts, headers)
    local query = {}
    if opts.version_id then query.versionId = opts.version_id end
    if opts.part_number then query.partNumber = opts.part_number end
    for _, name in ipairs{ "content_type", "content_disposition", "content_encoding", "content_language",
      "cache_control", "expires" } do
      local v = opts["response_" .. name]
      if v then query["response-" .. name:gsub("_", "-")] = v end
    end
    local op = { name = "GetObject", method = "GET", bucket = bucket, key = key, headers = headers, query = query,
      hashes = opts.hashes }
    local tmp
    if self._dry_run then
      -- prepare(): describe the request only; no file is touched.
      op.sink = opts.file and { file = opts.file .. ".objstore-tmp", offset = 0 } or opts.sink
      return self:_call(op)
    elseif opts.file then
      tmp = opts.file .. ".objstore-tmp-" .. tostring(math_random(1, 1e9))
      local f, ferr = io_open(tmp, "wb")
      if not f then
        return nil, errors.new{ code = "LocalFileError", message = tostring(ferr), op = "GetObject", bucket = bucket,
          key = key, retryable = false }
      end
      f:close()
      op.sink = { file = tmp, offset = 0 }
    elseif opts.sink then
      op.sink = opts.sink
    end
    op.parse = function(res)
      local info = common.object_info(self, res)
      info.body = res.body
      info.bytes = res.bytes
      info.hashes = res.hashes
      return info
    end
    local res, err = self:_call(op)
    if tmp then
      if not res then
        -- The transport never hands an error body to a sink, so the
        -- temporary file holds nothing worth keeping.
        os_remove(tmp)
        return nil, err
      end
      local ok, rerr = os_rename(tmp, opts.file)
      if not ok then
        os_remove(tmp)
        return nil, errors.new{ code = "LocalFileError", message = tostring(rerr), op = "GetObject", bucket = bucket,
          key = key, retryable = false }
      end
      res.file = opts.file
    end
    return res, err
  end

  --- head_object(bucket, key, opts) -> info | nil, err
  function Client:head_object(bucket, key, opts)
    common.check_bucket("head_object", bucket)
    common.check_key("head_object", key)
    opts = common.check_opts("head_object", opts, { version_id = true, if_match = true, if_none_match = true,
      if_modified_since = true, if_unmodified_since = true, part_number = true, headers = true })
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k] = v end
    conditional_headers(opts, headers)
    local query = {}
    if opts.version_id then query.versionId = opts.version_id end
    if opts.part_number then query.partNumber = opts.part_number end
    return self:_call{ name = "HeadObject", method = "HEAD", bucket = bucket, key = key, headers = headers,
      query = query, parse = function(res) return common.object_info(self, res) end }
  end

  --- object_exists(bucket, key) -> true | false | nil, err
  function Client:object_exists(bucket, key, opts)
    local res, err = self:head_object(bucket, key, opts)
    if res then return true end
    if err.status == 404 then return false end
    return nil, err
  end

  --- delete_object(bucket, key, {version_id=}) -> { delete_marker, version_id } | nil, err
  function Client:delete_object(bucket, key, opts)
    common.check_bucket("delete_object", bucket)
    common.check_key("delete_object", key)
    opts = common.check_opts("delete_object", opts, { version_id = true })
    local query = opts.version_id and { versionId = opts.version_id } or nil
    return self:_call{ name = "DeleteObject", method = "DELETE", bucket = bucket, key = key, query = query,
      parse = function(res)
        local info = common.object_info(self, res)
        return { delete_marker = info.delete_marker, version_id = info.version_id, request_id = info.request_id }
      end }
  end

  --- delete_objects(bucket, keys, {quiet=}) -> { deleted = {...}, errors = {...} } | nil, err
  -- keys: strings or { key =, version_id = }; sent in batches of 1000, each
  -- with the Content-MD5 S3 requires. A failed batch stops the run; its
  -- keys and the ones after it are reported as errors.
  function Client:delete_objects(bucket, keys, opts)
    common.check_bucket("delete_objects", bucket)
    if type(keys) ~= "table" then errors.argument("delete_objects", "keys must be a list", 2) end
    opts = common.check_opts("delete_objects", opts, { quiet = true })
    local objects = {}
    for i, k in ipairs(keys) do
      local key, version = k, nil
      if type(k) == "table" then key, version = k.key, k.version_id end
      common.check_key("delete_objects", key)
      objects[i] = { key = key, version_id = version }
    end
    local out = { deleted = {}, errors = {} }
    local ns = self.provider == "s3" and "http://s3.amazonaws.com/doc/2006-03-01/" or nil
    for first = 1, #objects, 1000 do
      local tree = { { "Quiet", opts.quiet and "true" or "false" } }
      local last = first + 999
      if last > #objects then last = #objects end
      for i = first, last do
        local o = { { "Key", objects[i].key } }
        if objects[i].version_id then o[2] = { "VersionId", objects[i].version_id } end
        tree[#tree + 1] = { "Object", o }
      end
      local body = xml.build("Delete", tree, ns)
      local res, err = self:_call{ name = "DeleteObjects", method = "POST", bucket = bucket, query = { delete = true },
        headers = { ["Content-MD5"] = checksum.md5_base64(body), ["Content-Type"] = "application/xml" },
        body = body, body_length = #body, parse = function(r, op) return self:_parse_xml(r, op) end }
      if self._dry_run then return res end -- prepare(): the first batch's request
      if not res then return nil, err end
      for _, d in ipairs(res.deleted or {}) do out.deleted[#out.deleted + 1] = d end
      for _, e in ipairs(res.error or {}) do out.errors[#out.errors + 1] = e end
    end
    return out
  end

  --- copy_object(src_bucket, src_key, dst_bucket, dst_key, opts)
  -- opts: metadata_directive ("COPY" default, or "REPLACE" with metadata,
  -- content_type, ...), source_version_id, acl, storage_class, if_match
  -- (on the source), headers.
  function Client:copy_object(src_bucket, src_key, dst_bucket, dst_key, opts)
    common.check_bucket("copy_object", src_bucket)
    common.check_key("copy_object", src_key)
    common.check_bucket("copy_object", dst_bucket)
    common.check_key("copy_object", dst_key)
    opts = common.check_opts("copy_object", opts, { metadata_directive = true, metadata = true,
      content_type = true, acl = true, storage_class = true, source_version_id = true, if_match = true,
      if_none_match = true, headers = true, cache_control = true, content_disposition = true,
      content_encoding = true, content_language = true, expires = true })
    local d = self.dialect
    local directive = opts.metadata_directive or ((opts.metadata or opts.content_type) and "REPLACE" or "COPY")
    if directive ~= "COPY" and directive ~= "REPLACE" then
      errors.argument("copy_object", "metadata_directive must be 'COPY' or 'REPLACE'", 2)
    end
    local headers = { [d.copy_source] = copy_source(src_bucket, src_key, opts.source_version_id),
      [d.metadata_directive] = directive }
    if opts.if_match then headers[d.prefix .. "copy-source-if-match"] = opts.if_match end
    if opts.if_none_match then headers[d.prefix .. "copy-source-if-none-match"] = opts.if_none_match end
    local upload = {}
    for k, v in pairs(opts) do upload[k] = v end
    upload.if_match, upload.if_none_match = nil, nil
    common.upload_headers(self, upload, headers)
    return self:_call{ name = "CopyObject", method = "PUT", bucket = dst_bucket, key = dst_key, headers = headers,
      parse = function(res, op)
        -- A copy can fail after the 200 status line: the error is in the body.
        local t, root = self:_parse_xml(res, op)
        if not t then return nil, root end
        if root == "Error" then
          return nil, self:_error_from_response(op, { status = res.status, headers = res.headers, body = res.body })
        end
        return { etag = t.etag, last_modified = t.last_modified, version_id = res.headers[d.version_id],
          request_id = self:_request_id(res) }
      end }
  end

end
