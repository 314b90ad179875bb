--- The deletes of a sync, after the transfers: destination names absent
-- from the source (and, with delete_excluded, the ones the filters left
-- out). Nothing at all is deleted when a transfer failed, a listing was
-- incomplete, or the source root is missing or empty (unless `force`);
-- more than `max_delete` candidates delete nothing and are an error of
-- their own (MaxDeleteExceeded). With `backup` (a prefix in the
-- destination bucket, { bucket =, prefix = } elsewhere, or a local
-- directory) the entries are moved there instead of deleted.
--
-- A local file is removed (or moved away) only when its resolved location
-- is inside the root (the realpath of its directory is the root's or
-- below it) and, unless symbolic links are followed, no directory between
-- the root and the file is a link: a delete never reaches through a link
-- out of the destination.
local errors = require "objstore.errors"
local execute = require "objstore.sync.execute"
local names = require "objstore.sync.names"
local defaults = require "objstore.transfer.defaults"
local core = require "objstore.core"
local lfs = require "lfs"

local ipairs, tostring, type = ipairs, tostring, type
local os_remove, pcall = os.remove, pcall
local realpath = core.fs.realpath

local _M = {}

local function local_error(message, key)
  return errors.new{ code = "LocalFileError", message = message, key = key, retryable = false }
end

--- inside(root, rel, follow) -> path | nil, err: the path of rel below
-- root when removing it cannot reach outside root (see above).
function _M.inside(root, rel, follow)
  local root_real, rerr = realpath(root)
  if not root_real then return nil, rerr end
  local path = root .. "/" .. rel
  local dir_rel = rel:match("^(.*)/[^/]*$")
  if dir_rel and not follow then
    local p = root
    for seg in dir_rel:gmatch("[^/]+") do
      p = p .. "/" .. seg
      if lfs.symlinkattributes(p, "mode") == "link" then
        return nil, local_error(path .. ": not removed: " .. p .. " is a symbolic link (not followed)", rel)
      end
    end
  end
  local dir = dir_rel and (root .. "/" .. dir_rel) or root
  local dir_real, derr = realpath(dir)
  if not dir_real then return nil, derr end
  if dir_real ~= root_real and dir_real:sub(1, #root_real + 1) ~= (root_real == "/" and "/" or root_real .. "/") then
    return nil, local_error(path .. ": not removed: it resolves to " .. dir_real .. ", outside " .. root_real, rel)
  end
  return path
end

--- The backup of a remote destination: (bucket, prefix) | nil.
function _M.backup_target(backup, dst_bucket)
  if type(backup) == "string" then return dst_bucket, names.prefix(backup) end
  if type(backup) == "table" then return backup.bucket or dst_bucket, names.prefix(backup.prefix) end
  return nil
end

--- Whether a local directory's filesystem folds case. First without
-- writing: an entry with letters looked up with its case swapped (the
-- same inode: folded). With no such entry, a dry run says no (it changes
-- no byte); a real run probes with an exclusive, link-refusing file under
-- a random name, removed at once.
function _M.case_insensitive_dir(root, dry)
  if lfs.attributes(root, "mode") ~= "directory" then return false end
  local ok, iter, st = pcall(lfs.dir, root)
  if ok then
    for name in iter, st do
      local swapped = name:gsub("%a", function(ch) return ch:lower() == ch and ch:upper() or ch:lower() end)
      if swapped ~= name then
        local a, b = lfs.symlinkattributes(root .. "/" .. name), lfs.symlinkattributes(root .. "/" .. swapped)
        if a then return b ~= nil and b.ino == a.ino and b.dev == a.dev end
      end
    end
  end
  if dry then return false end
  local probe = core.fs.temp(root .. "/.objstore-sync-CaseProbe-")
  if not probe then return false end
  local dir, base = probe:match("^(.*/)([^/]*)$")
  local folded = lfs.attributes(dir .. base:lower()) ~= nil
  os_remove(probe)
  return folded
end

local function refuse(ctx, code, message)
  ctx.notice(message)
  local e = errors.new{ code = code, message = message, retryable = false }
  e.result = ctx.result
  return e
end

local function remote_deletes(ctx, list)
  local dst, opts, result = ctx.dst, ctx.opts, ctx.result
  local c = dst.client
  local backup_bucket, backup = _M.backup_target(opts.backup, dst.bucket)
  local keys = {}
  local by_key = {}
  for _, a in ipairs(list) do by_key[a.entry.key] = a end
  if backup then
    -- Server-side copies into the backup prefix first; only what was
    -- copied is deleted.
    local i = 0
    c:run{ concurrency = opts.concurrency or defaults.SYNC_CONCURRENCY,
      next = function()
        i = i + 1
        local a = list[i]
        if not a then return nil end
        local req = c:build_request("copy_object", backup_bucket, backup .. a.key,
          { bucket = dst.bucket, key = a.entry.key })
        req.context = a
        return req
      end,
      done = function(req, res, err)
        if res then keys[#keys + 1] = req.context.entry.key else ctx.fail(req.context, err) end
        return true
      end }
  else
    for i, a in ipairs(list) do keys[i] = a.entry.key end
  end
  if #keys == 0 then return end
  local out, derr = c:delete_objects(dst.bucket, keys, { quiet = true })
  out = out or derr.result -- every key is in deleted or errors either way
  local bad = {}
  for _, e in ipairs(out.errors) do
    -- once per key: a server that reports a key twice fails it once
    local a = not bad[e.key] and by_key[e.key]
    bad[e.key] = true
    if a then ctx.fail(a, e.error or errors.new{ code = e.code, message = e.message, key = e.key }) end
  end
  for _, k in ipairs(keys) do
    if not bad[k] then
      result.deleted = result.deleted + 1
      ctx.record(by_key[k])
    end
  end
end

local function local_deletes(ctx, list)
  local dst, opts, result = ctx.dst, ctx.opts, ctx.result
  for _, a in ipairs(list) do
    local path, err = _M.inside(dst.root, a.entry.path and a.entry.path:sub(#dst.root + 2) or a.key,
      opts.follow_symlinks)
    local ok
    if path and opts.backup then
      ok, err = execute.move_local(path, opts.backup .. "/" .. a.key, opts.backup)
    elseif path then
      ok, err = execute.remove_local(path)
    end
    if ok then
      result.deleted = result.deleted + 1
      ctx.record(a)
    else
      ctx.fail(a, err)
    end
  end
end

--- run(client, ctx) -> nil | err (MaxDeleteExceeded, SourceMissing)
function _M.run(_, ctx)
  local opts, result = ctx.opts, ctx.result
  if not opts.delete or #ctx.deletes == 0 then return nil end
  local n = #ctx.deletes
  if result.failed > 0 or ctx.listing_failed then
    ctx.notice("nothing deleted: " .. result.failed .. " operation(s) failed or a listing was incomplete ("
      .. n .. " delete(s) held back)")
    return nil
  end
  if (ctx.src_missing or ctx.src_count == 0) and not opts.force then
    return refuse(ctx, "SourceMissing", "nothing deleted: the source is " .. (ctx.src_missing and "missing" or
      "empty") .. " (" .. n .. " delete(s) held back; force = true to allow)")
  end
  if opts.max_delete and n > opts.max_delete then
    return refuse(ctx, "MaxDeleteExceeded", "nothing deleted: " .. n .. " deletes exceed max_delete = "
      .. tostring(opts.max_delete))
  end
  local list = {}
  for i, e in ipairs(ctx.deletes) do
    list[i] = { key = e.rel, action = opts.backup and "backup" or "delete", reason = "not in source", size = e.size,
      entry = e }
  end
  if ctx.dry then
    for _, a in ipairs(list) do
      a.entry = nil
      ctx.record(a)
    end
    return nil
  end
  ctx.fail = function(a, err)
    a.action = a.action .. "_failed"
    a.error = err
    result.failed = result.failed + 1
    result.errors[#result.errors + 1] = { key = a.key, error = err }
    a.entry = nil
    ctx.record(a)
  end
  local record = ctx.record
  ctx.record = function(a)
    a.entry = nil
    record(a)
  end
  if ctx.dst.kind == "remote" then remote_deletes(ctx, list) else local_deletes(ctx, list) end
  return nil
end

return _M
