--- What differs between the three ways of a sync, one table each:
-- "up" (local -> remote), "down" (remote -> local), "copy" (remote ->
-- remote). The run (objstore.sync.run) holds the state; each function
-- takes it as `r` and does its way's part of one entry:
--   action: the name of a transfer in result.actions;
--   moves_bytes: the run loop carries the bytes (bwlimit, progress);
--   sends: the progress of a request counts the bytes sent (else received);
--   heads_both: an undecided name needs the HEADs of both sides;
--   head_side(r, item): the entry, side and "s"/"d" a HEAD is for;
--   head_opts(r, which): the options of that HEAD (nil: none);
--   request(r, s): the request record of one small transfer;
--   finish(r, req, res, err, item): res, err, verified once it returned;
--   large(r, s, on_bytes): res, err, verified of one multipart transfer;
--   keep_state(r, s, d): the sync state of a name found unchanged;
--   transferred_state(r, s, info): the sync state after a transfer;
--   remove_source(r, s, a): a move's source, its copy verified;
--   refused(r, s): why a source name cannot be written (nil: it can);
--   placed(r, s): a source name that goes on to its verdict.
local names = require "objstore.sync.names"
local execute = require "objstore.sync.execute"
local delete_mod = require "objstore.sync.delete"
local digest = require "objstore.sync.digest"
local errors = require "objstore.errors"
local defaults = require "objstore.transfer.defaults"
local lfs = require "lfs"

local tostring, math_min = tostring, math.min

local same_etag = digest.same_etag

local function dst_key(r, rel) return r.dst.prefix .. rel end
local function local_path(root, rel) return root .. "/" .. rel end
local function none() return nil end

--- A remote source (down, copy): removed in batches once the transfers are done.
local function remove_remote(r, s, a)
  r.remote_removals[#r.remote_removals + 1] = { s = s, a = a }
end

local up = { action = "upload", moves_bytes = true, sends = true, refused = none, placed = none }

function up.head_side(r, item) return item.d, r.dst, "d" end

function up.head_opts(r, which)
  -- An upload's SSE-C key opens the destination's objects for a HEAD too.
  local key = r.opts.sse_customer_key
  if which == "d" and key then return { sse_customer_key = key } end
  return nil
end

function up.request(r, s)
  return execute.put_request(r.dst_client, r.dst.bucket, dst_key(r, s.rel), s, r.opts)
end

function up.finish(_, _, res, err)
  return res, err, res ~= nil -- a single PUT with Content-MD5: the server checked the bytes
end

function up.large(r, s, on_bytes)
  local opts = r.opts
  local o = execute.object_opts(opts, s, nil)
  o.part_size, o.multipart_threshold = opts.part_size, r.large_threshold
  o.concurrency = math_min(opts.concurrency or defaults.CONCURRENCY.upload_file, defaults.CONCURRENCY.upload_file)
  o.bwlimit = r.bwlimit
  o.progress = on_bytes
  local res, err = r.dst_client:upload_file(r.dst.bucket, dst_key(r, s.rel), s.path, o)
  return res, err, res and res.verified
end

function up.keep_state(r, s, d) r:state_record(s.rel, d, s.size, s.mtime) end

function up.transferred_state(r, s, info)
  r:state_record(s.rel, { etag = info.etag, size = s.size }, s.size, s.mtime)
end

function up.remove_source(r, s, a)
  local src, opts = r.src, r.opts
  local path, err = delete_mod.inside(src.root, s.path:sub(#src.root + 2), opts.follow_symlinks)
  local ok
  if path then
    -- The file the walk saw (inode, size, times), or it was written to
    -- since: what was copied is then not the file, which stays.
    local now = (opts.follow_symlinks and lfs.attributes or lfs.symlinkattributes)(path)
    if now and not (now.mode == "file" and now.size == s.size and now.modification == s.mtime
        and (s.ctime == nil or now.change == s.ctime) and (s.ino == nil or now.ino == s.ino)) then
      path, err = nil, errors.new{ code = "SourceChanged", retryable = false, message = s.path
        .. " changed while it was being moved: kept" }
    end
  end
  if path then ok, err = execute.remove_local(path) end
  if ok then
    r:removed(a)
  else
    a.remove_error = err
    r:error(a.key, err)
    r:notice(s.path .. ": source not removed: " .. tostring(err and err.message or err))
  end
end

local down = { action = "download", moves_bytes = true, head_opts = none, remove_source = remove_remote }

function down.head_side(r, item) return item.s, r.src, "s" end

function down.request(r, s)
  local req = execute.get_request(r.src.client, r.src.bucket, s, local_path(r.dst.root, s.rel), r.dst.root)
  if req.context and req.context.tmp then r.temps[req.context.tmp] = true end
  return req
end

function down.finish(r, req, res, err, item)
  local ctx = req.context
  if ctx.tmp then r.temps[ctx.tmp] = nil end
  local md5_checked = res and digest.etag_md5(item.s.etag) and res.hashes and res.hashes.md5 and true
  res, err = execute.finish_get(req, res, err, item.s)
  return res, err, res and r:download_verified(res, ctx.path, md5_checked)
end

function down.large(r, s, on_bytes)
  local src, dst = r.src, r.dst
  local path = local_path(dst.root, s.rel)
  local ok, perr = execute.parent_dirs(path, dst.root)
  if not ok then return nil, errors.new{ code = "LocalFileError", message = tostring(perr), retryable = false } end
  local res, err = src.client:download_file(src.bucket, s.key, path, { part_size = r.opts.part_size,
    multipart_threshold = r.large_threshold, bwlimit = r.bwlimit, progress = on_bytes })
  if not res then return nil, err end
  local head = src.client:head_object(src.bucket, s.key)
  local mtime = head and names.parse_mtime(head.metadata.mtime) or s.mtime
  execute.set_mtime(path, mtime)
  res.mtime = mtime
  return res, nil, res.verified or (r.move and head and r:download_verified(head, path, false))
end

function down.keep_state(r, s, d) r:state_record(s.rel, s, d.size, d.mtime) end

function down.transferred_state(r, s, info)
  r:state_record(s.rel, { etag = info.etag or s.etag, size = s.size }, s.size, info.mtime)
end

--- Remote keys that cannot be files below the local root: hostile names,
-- keys below a key that is a file there, and (case-insensitive target)
-- a second spelling of one name. Keys come in order: a file's "name/"
-- range is passed once a key sorts after it.
function down.refused(r, s)
  local ancestors, folded = r.ancestors, r.folded
  local why = names.hostile(s.rel)
  if not why then
    -- Files met earlier whose "name/" range this key is past are popped.
    while #ancestors > 0 and s.rel > ancestors[#ancestors] .. "/\255" do ancestors[#ancestors] = nil end
    for i = #ancestors, 1, -1 do
      local a = ancestors[i]
      if s.rel:sub(1, #a + 1) == a .. "/" then
        why = "'" .. a .. "' is a file there"
        break
      end
    end
  end
  if not why and folded then
    local f = s.rel:lower()
    if folded[f] and folded[f] ~= s.rel then
      why = "same name as '" .. folded[f] .. "' on a case-insensitive target"
    end
    folded[f] = folded[f] or s.rel
  end
  return why
end

--- A key that will be a file there: the keys below it are refused.
function down.placed(r, s)
  r.ancestors[#r.ancestors + 1] = s.rel
end

local copy = { action = "copy", moves_bytes = false, heads_both = true, head_opts = none, refused = none, placed = none,
  keep_state = none,
  transferred_state = none, remove_source = remove_remote }

function copy.head_side(r, item)
  if item.s.head then return item.d, r.dst, "d" end
  return item.s, r.src, "s"
end

function copy.request(r, s)
  return execute.copy_request(r.dst_client, r.src.bucket, s, r.dst.bucket, dst_key(r, s.rel), r.opts)
end

function copy.finish(_, _, res, err, item)
  return res, err, res and same_etag(res.etag, item.s.etag)
end

function copy.large(r, s, on_bytes)
  local res, err
  if r.same_client then
    res, err = r.dst_client:copy_large(r.dst.bucket, dst_key(r, s.rel), { bucket = r.src.bucket, key = s.key },
      { part_size = r.opts.part_size, multipart_threshold = r.large_threshold, progress = on_bytes })
    -- One part: a CopyObject, its ETag must be the source's; more: the
    -- assembled ETag was checked against the parts' by copy_large.
    return res, err, res and ((res.parts or 1) > 1 or same_etag(res.etag, s.etag))
  end
  res, err = execute.copy_across(r.src, r.dst, s, dst_key(r, s.rel))
  return res, err, res and same_etag(res.etag, s.etag)
end

return { up = up, down = down, copy = copy }
