--- The transfers of a sync, as request records for the client's one `run`
-- loop (a single PUT, GET, server-side copy or HEAD each), and the
-- transfer calls for large files (multipart, from objstore.transfer).
-- Single PUTs carry Content-MD5 (the server checks the bytes; its ETag is
-- then the MD5, so no HEAD follows), `mtime` and the whole-object
-- CRC-64/NVME in metadata. Downloads go to "<file>.objstore-tmp-N" and are
-- renamed over the file only when complete and checked (MD5 against a
-- plain ETag), so a failed download never replaces a good file; the file
-- then gets the object's stored mtime (or its LastModified).
local digest = require "objstore.sync.digest"
local names = require "objstore.sync.names"
local request = require "objstore.request"
local errors = require "objstore.errors"
local core = require "objstore.core"
local lfs = require "lfs"

local pairs, tostring = pairs, tostring
local io_open, os_remove, os_rename = io.open, os.remove, os.rename

local _M = {}

--- Small files are read once into memory (MD5, CRC and body in one read).
_M.IN_MEMORY = 1024 * 1024

local function local_error(message, key)
  return errors.new{ code = "LocalFileError", message = message, key = key, retryable = false }
end

--- mkdir -p of the directory holding `path`.
function _M.parent_dirs(path)
  local dir = path:match("^(.*)/[^/]*$")
  if not dir or dir == "" or lfs.attributes(dir, "mode") == "directory" then return true end
  local ok, err = _M.parent_dirs(dir)
  if not ok then return nil, err end
  local made, merr = lfs.mkdir(dir)
  if not made and lfs.attributes(dir, "mode") ~= "directory" then return nil, merr end
  return true
end

--- The upload options every sync PUT/multipart upload shares.
function _M.object_opts(opts, e, crc)
  local meta = {}
  for k, v in pairs(opts.metadata or {}) do meta[k] = v end
  if e.mtime then meta.mtime = names.mtime_string(e.mtime) end
  if crc then meta[digest.CRC_META] = crc end
  return { metadata = meta, content_type = opts.content_type, storage_class = opts.storage_class, acl = opts.acl }
end

--- A single PUT of local entry e to bucket/key.
function _M.put_request(c, bucket, key, e, opts)
  local d, err = digest.file(e.path, e.size <= _M.IN_MEMORY)
  if not d then return request.failed("PutObject", errors.locate(err, "PutObject", bucket, key)) end
  if e.size <= _M.IN_MEMORY and #d.body ~= e.size then
    return request.failed("PutObject", local_error(e.path .. " changed while it was read", key))
  end
  local o = _M.object_opts(opts, e, d.crc64nvme)
  o.content_md5 = d.md5
  local body = d.body or { path = e.path, length = e.size }
  return c:build_request("put_object", bucket, key, body, o)
end

--- A GET of remote entry s into local path, via a temporary file.
-- Returns the record, with context.tmp, context.path.
function _M.get_request(c, bucket, s, path)
  local ok, err = _M.parent_dirs(path)
  if not ok then return request.failed("GetObject", local_error(tostring(err), s.key)) end
  local req = c:build_request("get_object", bucket, s.key, { file = path, hashes = { "md5" } })
  local tmp = req.sink and req.sink.file
  local f, ferr = io_open(tmp, "wb")
  if not f then return request.failed("GetObject", local_error(tostring(ferr), s.key)) end
  f:close()
  req.context = { tmp = tmp, path = path }
  return req
end

--- Finishes a GET: checks, renames into place, sets the mtime. On any
-- failure the temporary file goes and the old file stays.
function _M.finish_get(req, res, err, s)
  local ctx = req.context or {}
  if not res then
    if ctx.tmp then os_remove(ctx.tmp) end
    return nil, err
  end
  local want = digest.etag_md5(s.etag)
  local got = res.hashes and res.hashes.md5
  if want and got and core.hash.tohex(got) ~= want then
    os_remove(ctx.tmp)
    return nil, errors.failure("GetObject", "BadDigest", "downloaded bytes do not match the ETag", nil, s.key)
  end
  local ok, rerr = os_rename(ctx.tmp, ctx.path)
  if not ok then
    os_remove(ctx.tmp)
    return nil, local_error(tostring(rerr), s.key)
  end
  local mtime = names.parse_mtime((res.metadata or {}).mtime) or s.mtime
  if mtime then lfs.touch(ctx.path, mtime, mtime) end
  return { etag = res.etag or s.etag, mtime = mtime, metadata = res.metadata }
end

--- A server-side copy keeping the source's metadata.
function _M.copy_request(c, src_bucket, s, dst_bucket, dst_key, opts)
  return c:build_request("copy_object", src_bucket, s.key, dst_bucket, dst_key,
    { storage_class = opts.storage_class, acl = opts.acl })
end

--- Moves a finished temporary download into place (large files use
-- download_file, which does its own temp + rename) and sets the mtime.
function _M.set_mtime(path, mtime)
  if mtime then lfs.touch(path, mtime, mtime) end
end

--- Removes the file at path; true when gone.
function _M.remove_local(path)
  local ok, err = os_remove(path)
  if not ok and lfs.attributes(path) then return nil, local_error(tostring(err)) end
  return true
end

--- Moves path to backup_path (parent directories made).
function _M.move_local(path, backup_path)
  local ok, err = _M.parent_dirs(backup_path)
  if not ok then return nil, local_error(tostring(err)) end
  local rok, rerr = os_rename(path, backup_path)
  if not rok then return nil, local_error(tostring(rerr)) end
  return true
end

--- A copy between two clients (endpoints): the object is streamed
-- through a temporary file (bounded memory), then uploaded with the
-- source's mtime and metadata.
function _M.copy_across(src, dst, s, key)
  local tmp = os.tmpname()
  local res, err = src.client:get_object(src.bucket, s.key, { file = tmp })
  if not res then
    os_remove(tmp)
    return nil, err
  end
  local meta = res.metadata or {}
  local up, uerr = dst.client:upload_file(dst.bucket, key, tmp, { metadata = meta, content_type = res.content_type })
  os_remove(tmp)
  if not up then return nil, uerr end
  return up
end

return _M
