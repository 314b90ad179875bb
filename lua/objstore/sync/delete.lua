--- The deletes of a sync, after the transfers: destination names absent
-- from the source (and, with delete_excluded, the ones the filters left
-- out). Nothing at all is deleted when a transfer failed, a listing was
-- incomplete, or the source root is missing or empty (unless `force`);
-- more than `max_delete` candidates delete nothing and are an error of
-- their own (MaxDeleteExceeded). With `backup` (a prefix in the
-- destination bucket, or a local directory) the entries are moved there
-- instead of deleted.
local errors = require "objstore.errors"
local execute = require "objstore.sync.execute"
local names = require "objstore.sync.names"
local lfs = require "lfs"

local ipairs, tostring = ipairs, tostring
local io_open, os_remove = io.open, os.remove

local _M = {}

--- Whether a local directory's filesystem folds case (probed with a file).
function _M.case_insensitive_dir(root)
  if lfs.attributes(root, "mode") ~= "directory" then return false end
  local probe = root .. "/.objstore-sync-CaseProbe"
  local f = io_open(probe, "wb")
  if not f then return false end
  f:close()
  local folded = lfs.attributes(root .. "/.objstore-sync-caseprobe") ~= nil
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
  local backup = opts.backup and names.prefix(opts.backup)
  local keys = {}
  local by_key = {}
  for _, a in ipairs(list) do by_key[a.entry.key] = a end
  if backup then
    -- Server-side copies into the backup prefix first; only what was
    -- copied is deleted.
    local i = 0
    c:run{ concurrency = opts.concurrency or 16,
      next = function()
        i = i + 1
        local a = list[i]
        if not a then return nil end
        local req = c:build_request("copy_object", dst.bucket, a.entry.key, dst.bucket, backup .. a.key)
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
  local out = c:delete_objects(dst.bucket, keys, { quiet = true })
  local bad = {}
  for _, e in ipairs(out.errors) do
    bad[e.key] = true
    local a = by_key[e.key]
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
    local ok, err
    if opts.backup then
      ok, err = execute.move_local(a.entry.path, opts.backup .. "/" .. a.key, opts.backup)
    else
      ok, err = execute.remove_local(a.entry.path or (dst.root .. "/" .. a.key))
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
