--- objstore.sync(client, src, dst, opts) and objstore.check(client, src, dst, opts).
--
-- src and dst are a local directory (a string) or { bucket =, prefix =,
-- client = } (client: another client for a cross-endpoint copy). The two
-- sides are read as sorted streams (the local walk sorted in the store's
-- byte order, the listing page by page) and joined name by name; each
-- name gets a verdict (objstore.sync.compare) and the transfers run
-- through the client's one `run` loop, `concurrency` (16) at a time;
-- files of `multipart_threshold` (64 MiB) and more go through the
-- transfer calls (upload_file, download_file, copy_large), one after
-- another, each with its own parallel parts. Deletes come last
-- (objstore.sync.delete). See README "Sync".
local names = require "objstore.sync.names"
local state_mod = require "objstore.sync.state"
local direction = require "objstore.sync.direction"
local run_mod = require "objstore.sync.run"
local delete_mod = require "objstore.sync.delete"
local errors = require "objstore.errors"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local floor, huge = math.floor, math.huge

local _M = {}

--- The options of sync and check (documented at objstore.sync):
-- opts.compare: "size_mtime" (default: size and the mtime kept in `mtime`
--   metadata), "checksum" (content: MD5 ETag, stored CRC-64/NVME or a
--   recomputed multipart ETag; else unverified, never "same") or
--   "size_only".
-- opts.modify_window: seconds two mtimes may differ and still match.
-- opts.delete: delete destination entries the source does not have, after
--   the transfers, and nothing when anything failed or a listing was
--   incomplete.
-- opts.max_delete: more deletes than this deletes nothing
--   (MaxDeleteExceeded).
-- opts.force: allow deleting when the source is empty (else SourceMissing).
-- opts.delete_excluded: delete excluded destination entries too.
-- opts.backup: move what would be deleted or replaced there instead: a
--   directory, or { bucket =, prefix = } (refused when it overlaps).
-- opts.move: remove each source once its transfer is verified or its
--   content proven the same (mv -r).
-- opts.include: globs of names to take ("only these"), tried before exclude.
-- opts.exclude: globs of names to leave out ("*" stops at "/", "**" does
--   not).
-- opts.filters: ordered { {"include"|"exclude", glob}, ... }: the first
--   match wins.
-- opts.dry_run: plan only: every action with its reason, no write.
-- opts.concurrency: files at once (1-1024, default 16).
-- opts.bwlimit: bytes per second for the whole sync.
-- opts.part_size: part size of multipart transfers (5 MiB to 5 GiB).
-- opts.multipart_threshold: files from this size use multipart transfers
--   (default 64 MiB).
-- opts.state: the state file path, or false for none (default under
--   $XDG_STATE_HOME/objstore/sync/).
-- opts.follow_symlinks: follow symbolic links in the local tree.
-- opts.case_insensitive: treat the local target as case-insensitive
--   (default: probed).
-- opts.content_type: the Content-Type of uploads (default: from the
--   extension).
-- opts.metadata: user metadata of uploads.
-- opts.storage_class: the storage class of uploads.
-- opts.acl: a canned ACL for uploads.
-- opts.cache_control: the Cache-Control of uploads.
-- opts.content_disposition: the Content-Disposition of uploads.
-- opts.sse: server-side encryption of uploads (as put_object).
-- opts.sse_kms_key_id: the KMS key of uploads.
-- opts.sse_customer_key: an SSE-C key (32 raw bytes) for the uploaded
--   objects (and the HEADs of them).
-- opts.on_action: function(action) for each action as it is done.
-- opts.on_notice: function(message) for each notice.
-- opts.on_plan: function(action) for each transfer planned, then
--   on_plan(nil) once both listings are complete.
-- opts.progress: function(key, done, total) with the bytes of a multipart
--   transfer.
-- opts.actions: false keeps no list of actions in the result (long runs).
-- opts.pages: an iterator of listing pages standing in for the remote
--   listing (tests).
local OPTS = { compare = true, delete = true, delete_excluded = true, max_delete = true, force = true, backup = true,
  include = true, exclude = true, filters = true, dry_run = true, concurrency = true, state = true,
  modify_window = true, follow_symlinks = true, content_type = true, metadata = true, storage_class = true,
  acl = true, bwlimit = true, part_size = true, multipart_threshold = true, case_insensitive = true,
  on_action = true, on_notice = true, actions = true, progress = true, pages = true, move = true, on_plan = true,
  cache_control = true, content_disposition = true, sse = true, sse_kms_key_id = true, sse_customer_key = true }
-- Hooks for a progress display: on_plan(a) for each transfer as it is
-- planned (a.key, a.action, a.size; dry runs too), then on_plan(nil) once
-- both listings are complete (the totals are known; not called when a
-- listing failed); progress(key, done, total) with the bytes done so far
-- of a file in flight, whole-file or multipart, as they move (a finished
-- file ends with its on_action).

local MiB, GiB = 1024 * 1024, 1024 * 1024 * 1024

_M.OPTS = OPTS

local MODES = { size_mtime = true, checksum = true, size_only = true }

-- Argument numbers as objstore.sync(client, src, dst, opts) counts them;
-- the methods client:sync(src, dst, opts) and client:check() do not count
-- the client (self), so theirs are one less.
local METHOD = { ["client.sync"] = true, ["client.check"] = true }
local function argn(fname, n)
  return METHOD[fname] and n - 1 or n
end

local function misuse(fname, n, name, problem)
  errors.argument(fname, argn(fname, n), name, problem)
end

--- A side of the sync, checked: { kind = "local", root } | { kind = "remote", client, bucket, prefix }.
local function side(fname, n, name, v, c)
  if type(v) == "string" then
    if v == "" then misuse(fname, n, name, "must be a directory path or {bucket=, prefix=}") end
    return { kind = "local", root = (v:gsub("(.)/+$", "%1")) }
  end
  if type(v) ~= "table" or type(v.bucket) ~= "string" or v.bucket == "" then
    misuse(fname, n, name, "must be a directory path or {bucket=, prefix=}, " .. errors.got(v))
  end
  if v.prefix ~= nil and type(v.prefix) ~= "string" then misuse(fname, n, name .. ".prefix", "must be a string") end
  return { kind = "remote", client = v.client or c, bucket = v.bucket, prefix = names.prefix(v.prefix) }
end

local function check_opts(fname, opts)
  if opts == nil then return {} end
  errors.options(fname, argn(fname, 4), opts, OPTS)
  if opts.compare ~= nil and not MODES[opts.compare] then
    misuse(fname, 4, "opts.compare", "must be 'size_mtime', 'checksum' or 'size_only'")
  end
  -- Numbers: checked before any request (NaN, fractions, negatives, infinities refused).
  local function got(v) return type(v) == "number" and "got " .. tostring(v) or errors.got(v) end
  local function integer(v) return type(v) == "number" and v == v and v == floor(v) and v > -huge and v < huge end
  local function number(v) return type(v) == "number" and v == v and v > -huge and v < huge end
  local o = opts
  if o.concurrency ~= nil and not (integer(o.concurrency) and o.concurrency >= 1 and o.concurrency <= 1024) then
    misuse(fname, 4, "opts.concurrency", "must be an integer from 1 to 1024, " .. got(o.concurrency))
  end
  if o.max_delete ~= nil and not (integer(o.max_delete) and o.max_delete >= 0) then
    misuse(fname, 4, "opts.max_delete", "must be an integer >= 0, " .. got(o.max_delete))
  end
  for _, k in ipairs{ "bwlimit", "modify_window" } do
    if o[k] ~= nil and not (number(o[k]) and o[k] >= 0) then
      misuse(fname, 4, "opts." .. k, "must be a finite number >= 0, " .. got(o[k]))
    end
  end
  if o.bwlimit ~= nil and o.bwlimit > 1e12 then
    misuse(fname, 4, "opts.bwlimit", "must be at most 1e12 bytes per second, " .. got(o.bwlimit))
  end
  if o.part_size ~= nil and not (integer(o.part_size) and o.part_size >= 5 * MiB and o.part_size <= 5 * GiB) then
    misuse(fname, 4, "opts.part_size", "must be an integer from 5 MiB to 5 GiB (5242880..5368709120), "
      .. got(o.part_size))
  end
  if o.multipart_threshold ~= nil and not (integer(o.multipart_threshold) and o.multipart_threshold >= 0
      and o.multipart_threshold <= 5 * GiB) then
    misuse(fname, 4, "opts.multipart_threshold", "must be an integer from 0 to 5 GiB (5368709120), "
      .. got(o.multipart_threshold))
  end
  if o.move ~= nil and type(o.move) ~= "boolean" then
    misuse(fname, 4, "opts.move", "must be a boolean, " .. got(o.move))
  end
  local b = o.backup
  if b ~= nil and type(b) ~= "string" and not (type(b) == "table" and (b.bucket == nil or
      (type(b.bucket) == "string" and b.bucket ~= "")) and (b.prefix == nil or type(b.prefix) == "string")) then
    misuse(fname, 4, "opts.backup", "must be a prefix, a directory or {bucket=, prefix=}, " .. errors.got(b))
  end
  return opts
end

--- Whether two remote sides overlap: the same bucket on the same endpoint,
-- one prefix a prefix of the other (a sync or move onto itself).
local function overlap(a, b)
  if a.kind ~= "remote" or b.kind ~= "remote" or a.bucket ~= b.bucket then return false end
  if a.client ~= b.client and (a.client.endpoint or {}).url ~= (b.client.endpoint or {}).url then return false end
  local p, q = a.prefix, b.prefix
  return p:sub(1, #q) == q or q:sub(1, #p) == p
end

--- The sides of a sync, checked before any request: src, dst and the
-- direction's name, or nil, err (the two overlap, or the backup overlaps
-- one of them). Misuse raises.
local function checked_sides(fname, c, src_arg, dst_arg, opts)
  local src = side(fname, 2, "src", src_arg, c)
  local dst = side(fname, 3, "dst", dst_arg, c)
  if src.kind == "local" and dst.kind == "local" then
    misuse(fname, 3, "dst", "one side must be remote ({bucket=, prefix=})")
  end
  local kind = src.kind == "local" and "up" or (dst.kind == "local" and "down" or "copy")
  if dst.kind == "local" and type(opts.backup) == "table" then
    misuse(fname, 4, "opts.backup", "must be a directory when the destination is local")
  end
  if overlap(src, dst) then
    return nil, errors.new{ code = "SameSourceDestination", retryable = false, message = "s3://" .. src.bucket .. "/"
      .. src.prefix .. " and s3://" .. dst.bucket .. "/" .. dst.prefix .. " overlap: cannot " .. (opts.move and "move"
      or "sync") .. " a tree onto itself" }
  end
  -- A backup overlapping the destination (or a remote source) would be
  -- listed as part of it: moved again into itself on every run, or a
  -- backed-up key landing on a key of the destination ("bk/" backing up
  -- "bk/x/" writes stale "bk/x/x/a" over "bk/x/a"). Refused before any
  -- request, as rclone does.
  if opts.delete and opts.backup ~= nil then
    local bad
    if dst.kind == "remote" then
      local bb, bp = delete_mod.backup_target(opts.backup, dst.bucket)
      local b = { kind = "remote", bucket = bb, prefix = bp, client = dst.client }
      if overlap(b, dst) then bad = "the destination" elseif overlap(b, src) then bad = "the source" end
    elseif type(opts.backup) == "string" then
      local b, r = state_mod.abs_path(opts.backup), state_mod.abs_path(dst.root)
      if b == r or b:sub(1, #r + 1) == r .. "/" or r:sub(1, #b + 1) == b .. "/" or b == "/" then
        bad = "the destination"
      end
    end
    if bad then
      return nil, errors.new{ code = "BackupOverlap", retryable = false, message = "the backup "
        .. tostring(type(opts.backup) == "table" and ((opts.backup.bucket or dst.bucket) .. "/"
        .. tostring(opts.backup.prefix or "")) or opts.backup) .. " overlaps " .. bad
        .. ": nothing done (give a backup outside it)" }
    end
  end
  return src, dst, kind
end

--- A sync as its phases, each a method of the run (objstore.sync.run):
-- the state and the two sides opened, the join classified and
-- transferred batch by batch, a move's remote sources removed, the
-- deletes (only after complete listings), the state saved, the answer.
local function run_sync(fname, c, src_arg, dst_arg, opts)
  if type(c) ~= "table" or type(c.run) ~= "function" then
    misuse(fname, 1, "client", "must be an objstore client, " .. errors.got(c))
  end
  opts = check_opts(fname, opts)
  local src, dst, kind = checked_sides(fname, c, src_arg, dst_arg, opts)
  if not src then return nil, dst end
  local run = run_mod.new{ client = c, src = src, dst = dst, kind = kind, opts = opts, dir = direction[kind] }
  run:load_state()
  local opened, err = run:open_sides()
  if not opened then return nil, err end
  run:ready_transfers()
  run:join_and_transfer()
  run:remove_remote_sources()
  local delete_err = run:delete_extras()
  run:save_state()
  return run:outcome(delete_err)
end

--- objstore.sync(client, src, dst, opts) -> result | nil, err (err.result holds the counts)
function _M.sync(c, src, dst, opts)
  return run_sync("sync", c, src, dst, opts)
end

--- client:sync(src, dst, opts), the same as a method.
function _M.method_sync(c, src, dst, opts)
  return run_sync("client.sync", c, src, dst, opts)
end

--- objstore.check(client, src, dst, opts) -> report | nil, err: what a
-- sync would do, sending no write. report: { ok, matched, differ = {keys},
-- missing = {keys on src only}, extra = {keys on dst only}, unverified =
-- {keys whose content could not be compared: compare = "checksum" with a
-- multipart ETag, no stored checksum and no part size that reproduces the
-- ETag}, compared = "size and modification time" | "size" |
-- "content (MD5/CRC)", actions, errors }. ok is false when anything
-- differs, is missing, extra or unverified, or an error occurred.
local COMPARED = { size_mtime = "size and modification time", size_only = "size", checksum = "content (MD5/CRC)" }

local function check(fname, c, src, dst, opts)
  check_opts(fname, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.dry_run, o.delete, o.state = true, true, o.state or false
  o.max_delete, o.move = nil, nil
  local res, err = run_sync(fname, c, src, dst, o)
  local r = res or (err and err.result)
  if not r then return nil, err end
  local report = { matched = 0, differ = {}, missing = {}, extra = {}, unverified = {}, actions = r.actions,
    errors = r.errors, compared = COMPARED[o.compare or "size_mtime"] }
  for _, a in ipairs(r.actions) do
    if a.action == "skip" and a.verdict == "unverified" then
      report.unverified[#report.unverified + 1] = a.key
    elseif a.action == "skip" then
      report.matched = report.matched + 1
    elseif a.action == "delete" then
      report.extra[#report.extra + 1] = a.key
    elseif a.verdict == "missing" then
      report.missing[#report.missing + 1] = a.key
    elseif a.action ~= "refuse" and a.action ~= "refuse_failed" and a.action ~= "head_failed"
        and a.action ~= "delete_failed" then
      report.differ[#report.differ + 1] = a.key
    end
  end
  report.ok = #report.differ == 0 and #report.missing == 0 and #report.extra == 0 and #report.unverified == 0
    and #r.errors == 0
  if err and err.code ~= "MaxDeleteExceeded" then return nil, err end
  return report
end

function _M.check(c, src, dst, opts)
  return check("check", c, src, dst, opts)
end

--- client:check(src, dst, opts), the same as a method.
function _M.method_check(c, src, dst, opts)
  return check("client.check", c, src, dst, opts)
end

return _M
