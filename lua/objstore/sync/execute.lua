--- The transfers of a sync, as request records for the client's one `run`
-- loop (a single PUT, GET, server-side copy or HEAD each), and the
-- transfer calls for large files (multipart, from objstore.transfer).
-- Single PUTs carry Content-MD5 (the server checks the bytes; its ETag is
-- then the MD5, so no HEAD follows), `mtime` and the whole-object
-- CRC-64/NVME in metadata. Downloads go to "<file>.objstore-tmp-<hex>"
-- (created exclusively, core.fs.temp) and are renamed over the file only
-- when complete and checked (MD5 against a plain ETag), so a failed
-- download never replaces a good file; the file then gets the object's
-- stored mtime (or its LastModified). Nothing is written through a link
-- below the destination root: a directory link on the way is refused, and
-- a link in the file's place is replaced by the rename, never followed.
local digest = require "objstore.sync.digest"
local names = require "objstore.sync.names"
local request = require "objstore.engine.request"
local object_ops = require "objstore.ops.object"
local errors = require "objstore.errors"
local core = require "objstore.core"
local lfs = require "lfs"

local pairs, tostring, pcall, error = pairs, tostring, pcall, error
local os_remove, os_rename, os_getenv = os.remove, os.rename, os.getenv

local _M = {}

--- Small files are read once into memory (MD5, CRC and body in one read).
_M.IN_MEMORY = 1024 * 1024

local function local_error(message, key)
  return errors.new{ code = "LocalFileError", message = message, key = key, retryable = false }
end

--- mkdir -p of dir, following links: for the root the user named.
local function mkdir_p(dir)
  if dir == "" or lfs.attributes(dir, "mode") == "directory" then return true end
  local ok, err = mkdir_p(dir:match("^(.*)/[^/]*$") or "")
  if not ok then return nil, err end
  local made, merr = lfs.mkdir(dir)
  if not made and lfs.attributes(dir, "mode") ~= "directory" then
    return nil, "cannot make directory " .. dir .. ": " .. tostring(merr)
  end
  return true
end

--- mkdir -p of the directories between `root` and the file at `path`
-- below it. The root is the user's (made if missing; a link there was
-- asked for); below it a component that is a link (link -> /elsewhere,
-- planted or not) or not a directory is refused, so a remote key "link/x"
-- never writes outside. Returns true | nil, message.
function _M.parent_dirs(path, root)
  if path:sub(1, #root + 1) ~= root .. "/" then return nil, path .. " is not below " .. root end
  local rok, rerr = mkdir_p(root)
  if not rok then return nil, rerr end
  local dir = root
  for name in path:sub(#root + 2):gmatch("([^/]+)/") do
    dir = dir .. "/" .. name
    local mode = lfs.symlinkattributes(dir, "mode")
    if mode == nil then
      local ok, err = lfs.mkdir(dir)
      -- another writer may have made it meanwhile: a directory is as good
      if not ok and lfs.symlinkattributes(dir, "mode") ~= "directory" then
        return nil, "cannot make directory " .. dir .. ": " .. tostring(err)
      end
    elseif mode == "link" then
      return nil, dir .. " is a symbolic link: nothing is written through it"
    elseif mode ~= "directory" then
      return nil, dir .. " is a " .. mode .. ", not a directory"
    end
  end
  return true
end

--- The upload options every sync PUT/multipart upload shares.
--- The sync options an upload stores with each object, as they are named
-- in the client's upload options.
_M.STORED = { "content_type", "storage_class", "acl", "cache_control", "content_disposition", "sse", "sse_kms_key_id",
  "sse_customer_key" }

function _M.object_opts(opts, e, crc)
  local meta = {}
  for k, v in pairs(opts.metadata or {}) do meta[k] = v end
  if e.mtime then meta.mtime = names.mtime_string(e.mtime) end
  if crc then meta[digest.CRC_META] = crc end
  local o = { metadata = meta }
  for _, k in ipairs(_M.STORED) do o[k] = opts[k] end
  return o
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

--- A GET of remote entry s into local path (below root), via a temporary
-- file. Returns the record, with context.tmp, context.path.
function _M.get_request(c, bucket, s, path, root)
  local ok, err = _M.parent_dirs(path, root)
  if not ok then return request.failed("GetObject", local_error(tostring(err), s.key)) end
  local req = c:build_request("get_object", bucket, s.key, { hashes = { "md5" } })
  local tmp, terr = object_ops.get_object.to_temp(req, path)
  if not tmp then return request.failed("GetObject", errors.locate(terr, "GetObject", bucket, s.key)) end
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
  return c:build_request("copy_object", dst_bucket, dst_key, { bucket = src_bucket, key = s.key },
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

--- Moves path to backup_path below backup_root (parent directories made,
-- never through a link; a link at backup_path is replaced, not followed).
function _M.move_local(path, backup_path, backup_root)
  local ok, err = _M.parent_dirs(backup_path, backup_root)
  if not ok then return nil, local_error(tostring(err)) end
  local rok, rerr = os_rename(path, backup_path)
  if not rok then return nil, local_error(tostring(rerr)) end
  return true
end

--- Streams the object of s into tmp, then uploads tmp to dst.
local function copy_through(src, dst, s, key, tmp)
  local req = src.client:build_request("get_object", src.bucket, s.key)
  req.sink = { file = tmp, offset = 0 }
  local res, err = src.client:send(req)
  if not res then return nil, err end
  return dst.client:upload_file(dst.bucket, key, tmp, { metadata = res.metadata or {},
    content_type = res.content_type })
end

--- A copy between two clients (endpoints): the object is streamed
-- through a temporary file (bounded memory), created exclusively in
-- $TMPDIR, then uploaded with the source's mtime and metadata. The file
-- goes on every way out, an interrupt raised meanwhile included.
function _M.copy_across(src, dst, s, key)
  local tmp, terr = core.fs.temp((os_getenv("TMPDIR") or "/tmp") .. "/objstore-copy.objstore-tmp-", 384)
  if not tmp then return nil, errors.locate(terr, "CopyObject", dst.bucket, key) end
  local pok, up, uerr = pcall(copy_through, src, dst, s, key, tmp)
  os_remove(tmp)
  if not pok then error(up, 0) end
  if not up then return nil, uerr end
  return up
end

return _M
