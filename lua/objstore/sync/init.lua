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
local filter_mod = require "objstore.sync.filter"
local walk = require "objstore.sync.walk"
local remote = require "objstore.sync.remote"
local state_mod = require "objstore.sync.state"
local compare = require "objstore.sync.compare"
local join = require "objstore.sync.join"
local direction = require "objstore.sync.direction"
local run_mod = require "objstore.sync.run"
local delete_mod = require "objstore.sync.delete"
local digest = require "objstore.sync.digest"
local defaults = require "objstore.transfer.defaults"
local errors = require "objstore.errors"
local request = require "objstore.engine.request"
local core = require "objstore.core"

local type, pairs, ipairs, tostring, pcall, error = type, pairs, ipairs, tostring, pcall, error
local floor, huge = math.floor, math.huge
local utf8_valid = core.encode.utf8_valid
local monotonic = core.time.monotonic
local os_remove = os.remove

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

local function remote_id(s)
  return s.client.provider .. " " .. s.client.endpoint.url .. " " .. s.bucket .. "/" .. s.prefix
end

--- The stream of one side: iterator of entries, plus `missing` for a local root that is not there.
-- `other` is the local side's list when there is one: its every 1000th
-- name cuts the remote listing into ranges read concurrently.
local function open_side(s, opts, notice, stats, other, is_src, skip)
  if s.kind == "local" then
    local list, missing, errs = walk.walk(s.root, { follow = opts.follow_symlinks, notice = notice, skip = skip })
    if not list then return nil, errors.new{ code = "LocalFileError", message = missing, retryable = false } end
    if missing and is_src then
      -- A missing local source is an error, never an empty source.
      return nil, errors.new{ code = "LocalFileError", message = "source directory " .. s.root .. " does not exist",
        retryable = false, path = s.root }
    end
    stats.walk_errors = errs
    return walk.iter(list), missing, list
  end
  if opts.pages then return remote.stream(opts.pages, s.prefix, stats), false end
  if other and #other >= 1000 then
    local bounds = {}
    for i = 1000, #other, 1000 do bounds[#bounds + 1] = s.prefix .. other[i].rel end
    return remote.ranged(s.client, s.bucket, s.prefix, bounds, stats, nil, 1000), false
  end
  return remote.stream(remote.pager(s.client, s.bucket, s.prefix), s.prefix, stats), false
end

--- Why no request could name entry e, or nil: a local name must be UTF-8;
-- a remote key also non-empty, without NUL and at most 1024 bytes.
local function name_problem(e)
  if not utf8_valid(e.rel) then return "is not valid UTF-8" end
  if e.key then return request.key_problem(e.key) end
  return nil
end

local function fail_code(err)
  return type(err) == "table" and err.code or tostring(err)
end

--- A full disk stops the whole run at once.
local function disk_full(err)
  local m = type(err) == "table" and tostring(err.message) or tostring(err)
  return m:find("No space left", 1, true) ~= nil or m:find("ENOSPC", 1, true) ~= nil
end


local function walk_error(e)
  return errors.new{ code = "LocalFileError", message = e.message, retryable = false, path = e.path }
end

local function run_sync(fname, c, src_arg, dst_arg, opts)
  if type(c) ~= "table" or type(c.run) ~= "function" then
    misuse(fname, 1, "client", "must be an objstore client, " .. errors.got(c))
  end
  opts = check_opts(fname, opts)
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
  local dir = direction[kind]
  local run = run_mod.new{ src = src, dst = dst, kind = kind, opts = opts, dir = dir }
  local dry, move, result = run.dry, run.move, run.result

  -- The sync state lives beside the local side.
  local local_side = src.kind == "local" and src or (dst.kind == "local" and dst or nil)
  local remote_side = src.kind == "remote" and src or dst
  local state_path, rid
  if local_side and opts.state ~= false then
    rid = remote_id(remote_side)
    state_path = type(opts.state) == "string" and opts.state or state_mod.default_path(local_side.root, rid)
  end
  local old_state = state_path and state_mod.load(state_path, rid) or {}
  if state_path and not next(old_state) and opts.state == nil then
    -- The state of an older version, kept in the local root: read, never written.
    old_state = state_mod.load(state_mod.legacy_path(local_side.root, rid), rid)
  end
  local new_state = run.new_state
  run.state_path = state_path
  -- A state file inside the local tree (a `state` path or $XDG_STATE_HOME
  -- there) is not a file of the sync: never uploaded, never deleted.
  -- The same for the whole state directory (every pair's state, their
  -- temporary files), whether or not this run keeps a state, and for a
  -- `state` file's temporary files (<file>.tmp-<hex>).
  local skip_path
  if local_side then
    local root_abs = state_mod.abs_path(local_side.root)
    local function inside(p)
      local a = p and state_mod.abs_path(p)
      if a and a:sub(1, #root_abs + 1) == root_abs .. "/" then return local_side.root .. a:sub(#root_abs + 1) end
    end
    skip_path = { file = inside(state_path), dir = inside(state_mod.state_dir()) }
  end

  local function notify(msg) run:notice(msg) end
  local keep = filter_mod.from_opts(opts)
  local stats = { src = {}, dst = {} }
  local src_iter, dst_iter, src_missing, local_list
  if dst.kind == "local" then
    dst_iter, src_missing, local_list = open_side(dst, opts, notify, stats.dst, nil, false, skip_path)
    if not dst_iter then return nil, src_missing end
    src_iter, src_missing = open_side(src, opts, notify, stats.src, local_list)
  else
    src_iter, src_missing, local_list = open_side(src, opts, notify, stats.src, nil, true, skip_path)
    if not src_iter then return nil, src_missing end
    dst_iter = open_side(dst, opts, notify, stats.dst, kind == "up" and local_list or nil)
  end
  local listing_failed = false
  local src_count = 0
  -- A directory of either local side that could not be read: the walk is
  -- incomplete, as a failed listing (nothing deleted, the run fails), but
  -- the names that were read still sync. Names below an unreadable
  -- destination directory are not written (what is there is unknown).
  local dst_unread, walk_failed = {}, false
  for which, st in pairs(stats) do
    for _, e in ipairs(st.walk_errors or {}) do
      walk_failed = true
      run:error(e.rel ~= "" and e.rel or e.path, walk_error(e))
      run:notice((which == "src" and "source" or "destination") .. " walk incomplete: " .. e.message)
      if which == "dst" then dst_unread[#dst_unread + 1] = e.rel end
    end
  end

  -- A remote key with one of objstore's own names (<x>.objstore-part,
  -- .objstore-tmp-<hex>, .objstore-cp, ...) is left out as the walk leaves
  -- such files out: never downloaded (the local side would never see it
  -- again) and never deleted (a file of that name is never uploaded).
  local function pull(iter, which)
    local e, err = iter()
    while e and e.key and walk.own_file(e.rel) do
      run:notice(e.key .. ": an objstore temporary name: left out")
      e, err = iter()
    end
    if e == false then
      listing_failed = true
      run:error(which .. " listing", err)
      run:notice("listing of the " .. which .. " failed: " .. tostring(err and err.message))
      return nil
    end
    return e
  end

  local case_fold = opts.case_insensitive
  if case_fold == nil and dst.kind == "local" then case_fold = delete_mod.case_insensitive_dir(dst.root, dry) end
  run.folded = case_fold and {} or nil

  local threshold = opts.multipart_threshold or defaults.SYNC_THRESHOLD
  -- The threshold of the large files' transfers: the run's, so a part_size
  -- above it cannot turn a file it sent to run_large back into one request;
  -- at least 1, since an empty object has no range to send or copy in parts.
  local large_threshold = math.max(threshold, 1)
  run.large_threshold = large_threshold
  local dst_client = dst.kind == "remote" and dst.client or src.client
  run.dst_client = dst_client
  run.same_client = kind == "copy" and src.client == dst.client
  -- A copy between two endpoints: no HEAD of the other endpoint can join
  -- this endpoint's run loop, and every file is streamed across on its own.
  local across = kind == "copy" and not run.same_client
  -- Every request of the run loop is for this client's endpoint.
  local run_client = kind == "down" and src.client or dst.client
  local queue, qhead, qtail = {}, 1, 0 -- actions ready to become requests (consumed from qhead)
  local large = {}
  local temps = run.temps
  local deletes = {}

  --- One name with its verdict: counted, queued, deferred or recorded.
  local function plan(s, d, verdict, reason, code)
    if verdict == "head" and across then
      -- A HEAD on the other endpoint cannot join this endpoint's run loop.
      verdict, reason, code = "transfer", reason .. " (not HEADed across endpoints)", "differ"
    end
    local a = { key = s.rel, reason = reason, size = s.size, verdict = code }
    if verdict == "skip" then
      a.action = "skip"
      result.skipped = result.skipped + 1
      if code == "unverified" then result.unverified = result.unverified + 1 end
      if code ~= "unverified" then dir.keep_state(run, s, d) end
      if move then
        if code == "same" then
          run:remove_source(s, a)
        else
          run:keep_source(a, "skipped (" .. reason .. "): source kept")
        end
      end
      run:record(a)
      return
    end
    if verdict == "head" then
      qtail = qtail + 1
      queue[qtail] = { head = true, s = s, d = d, reason = reason }
      return
    end
    a.action = dir.action
    if opts.on_plan then opts.on_plan(a) end
    if dry then
      run:record(a)
      return
    end
    if s.size >= threshold or across then
      large[#large + 1] = { s = s, d = d, a = a }
    else
      qtail = qtail + 1
      queue[qtail] = { s = s, d = d, a = a }
    end
  end

  local provider = run_client.provider
  local function decide(s, d)
    local verdict, reason, code = compare.decide(kind, s, d, old_state[s.rel], opts, provider)
    plan(s, d, verdict, reason, code)
  end

  -- bwlimit (bytes/s for the whole sync; 0: none): the whole-file
  -- requests of a batch share it as many ways as can run at once, a large
  -- file's parts have it to themselves (large files go one at a time).
  local bwlimit = opts.bwlimit and opts.bwlimit >= 1 and math.floor(opts.bwlimit) or nil
  run.bwlimit = bwlimit
  local small_rate

  --- The request record of a queued item.
  local function request_of(item)
    local s = item.s
    if item.head then
      -- Undecidable from the listing and the state: HEAD the remote side(s).
      local side_e, sd, which = dir.head_side(run, item)
      item.which = which
      local req = sd.client:build_request("head_object", sd.bucket, side_e.key, dir.head_opts(run, which))
      req.context = item
      return req
    end
    local req = dir.request(run, s)
    req.context = req.context or {}
    req.context.item = item
    -- bwlimit: each of the `concurrency` requests at once gets its share,
    -- paced by the transport byte by byte (copies move no bytes here).
    if dir.moves_bytes then req.max_speed = small_rate end
    -- The bytes of the file in flight, as the transport moves them (each
    -- attempt from 0: a retry never counts them twice).
    if dir.moves_bytes and type(opts.progress) == "function" then
      local rel, size, up = s.rel, s.size, dir.sends
      req.on_progress = function(sent, received) opts.progress(rel, up and sent or received, size) end
    end
    item.started = monotonic()
    return req
  end

  local function transferred(item, info, verified)
    local s, a = item.s, item.a
    result.transferred = result.transferred + 1
    result.bytes = result.bytes + s.size
    a.verified = verified and true or false
    dir.transferred_state(run, s, info)
    if move then
      if verified then run:remove_source(s, a) else run:keep_source(a, "not verified: source kept", true) end
    end
    run:record(a)
  end

  local stop_err
  local function done(req, res, err)
    local ctx = req.context or {}
    local item = ctx.item or ctx
    if item.head then
      item.head = nil
      if not res then
        run:failed({ key = item.s.rel, action = "head", reason = item.reason, size = item.s.size }, err)
        return true
      end
      local e = item.which == "s" and item.s or item.d
      compare.absorb_head(e, res, digest.CRC_META)
      if dir.heads_both and not (item.s.head and item.d.head) then
        -- Both sides remote: the verdict needs both HEADs, the other is queued.
        qtail = qtail + 1
        queue[qtail] = { head = true, s = item.s, d = item.d, reason = item.reason }
      else
        decide(item.s, item.d)
      end
      return true
    end
    local verified
    res, err, verified = dir.finish(run, req, res, err, item)
    if not res then
      run:failed(item.a, err)
      if disk_full(err) then
        stop_err = err
        return false, err
      end
      return true
    end
    transferred(item, res, verified)
    return true
  end

  --- Runs what is queued through the one run loop.
  local function drain()
    while qhead <= qtail and not stop_err do
      local concurrency = opts.concurrency or defaults.SYNC_CONCURRENCY
      if bwlimit then
        small_rate = math.max(1, math.floor(bwlimit / math.max(1, math.min(concurrency, qtail - qhead + 1))))
      end
      local ok, err = run_client:run{ concurrency = concurrency,
        next = function()
          if stop_err then return nil end
          local item = queue[qhead]
          if not item then return nil end
          queue[qhead] = nil
          qhead = qhead + 1
          return request_of(item)
        end,
        done = done }
      if not ok and not stop_err then stop_err = err end
    end
    queue, qhead, qtail = {}, 1, 0
  end

  local function run_large()
    for _, l in ipairs(large) do
      if stop_err then break end
      local s, a = l.s, l.a
      local on_bytes = type(opts.progress) == "function" and function(n, total) opts.progress(s.rel, n, total) end
      local res, err, verified = dir.large(run, s, on_bytes)
      if res then transferred(l, res, verified) else
        run:failed(a, err)
        if disk_full(err) then stop_err = err end
      end
    end
    large = {}
  end

  --- A source name that passed the filters: refused (unsafe key), skipped
  -- (archived) or decided. True when it was decided.
  local function consider(s, d)
    src_count = src_count + 1
    local bad = name_problem(s)
    if bad then
      -- No request can name it (S3 keys are UTF-8): this name fails, the run goes on.
      run:failed({ key = s.rel, action = "refuse", reason = "name " .. bad, size = s.size },
        errors.new{ code = "InvalidName", message = "'" .. (s.path or s.key) .. "' " .. bad .. ": not synced",
          retryable = false })
      return false
    end
    for _, u in ipairs(dst_unread) do
      if u == "" or s.rel:sub(1, #u + 1) == u .. "/" then
        result.skipped = result.skipped + 1
        run:record{ key = s.rel, action = "skip", reason = "destination directory could not be read", size = s.size,
          verdict = "unverified" }
        return false
      end
    end
    local why = dir.refused(run, s)
    if why then
      run:failed({ key = s.rel, action = "refuse", reason = why, size = s.size },
        errors.new{ code = "UnsafeKey", message = "key '" .. s.key .. "' refused: " .. why, retryable = false })
      return false
    end
    if names.ARCHIVED[s.storage_class or ""] then
      result.skipped = result.skipped + 1
      run:notice(s.key .. ": storage class " .. s.storage_class .. " needs a restore: skipped")
      local a = { key = s.rel, action = "skip", reason = "archived (" .. s.storage_class .. ")", size = s.size,
        verdict = "unverified" }
      if move then run:keep_source(a, "archived: source kept") end
      run:record(a)
      return false
    end
    dir.placed(run, s)
    decide(s, d)
    return true
  end

  --- Only on the destination: a delete candidate.
  local function candidate(d)
    if not (opts.delete and (keep(d.rel) or opts.delete_excluded)) then return end
    local bad = name_problem(d)
    if bad then
      run:failed({ key = d.rel, action = "delete", reason = "name " .. bad, size = d.size },
        errors.new{ code = "InvalidName", message = "'" .. (d.path or d.key) .. "' " .. bad
          .. ": not deleted", retryable = false })
    else
      deletes[#deletes + 1] = d
    end
  end

  --- The join of the two sorted streams, BATCH names at a time between
  -- runs. A failed listing reads as the end of its stream: the join stops
  -- at once (listing_failed), whatever the other side still holds.
  local BATCH = 2000
  local jn = join.new(function() return pull(src_iter, "source") end,
    function() return pull(dst_iter, "destination") end)
  local ok, perr = pcall(function()
    while jn:more() and not stop_err and not listing_failed do
      local n = 0
      while jn:more() and n < BATCH and not listing_failed do
        local s_e, d_e = jn:next()
        if not d_e then
          if keep(s_e.rel) and consider(s_e, nil) then n = n + 1 end
        elseif not s_e then
          candidate(d_e)
        elseif keep(s_e.rel) then
          if consider(s_e, d_e) then n = n + 1 end
        elseif opts.delete and opts.delete_excluded then
          deletes[#deletes + 1] = d_e
        end
      end
      if not jn:more() and not listing_failed and opts.on_plan then opts.on_plan(nil) end
      drain()
      run_large()
    end
  end)
  if not ok then
    -- Interrupted (SIGINT) or a raised error: temporary files go, then it propagates.
    for tmp in pairs(temps) do os_remove(tmp) end
    error(perr, 0)
  end
  if stop_err then
    result.failed = result.failed + (result.failed == 0 and 1 or 0)
    result.errors[#result.errors + 1] = { key = "run", error = stop_err }
  end

  run:remove_remote_sources()

  -- Deletes: only after every transfer succeeded and both listings completed.
  local del_err = delete_mod.run(c, { src = src, dst = dst, kind = kind, opts = opts, deletes = deletes,
    result = result, record = function(a) run:record(a) end, notice = notify,
    listing_failed = listing_failed or walk_failed,
    src_missing = src_missing, src_count = src_count, dry = dry, listing_incomplete = walk_failed })

  if state_path and not dry and not state_mod.same(new_state, old_state) then
    -- Names not seen this run drop out; a failed run keeps what it learnt.
    local sok, serr = state_mod.save(state_path, rid, new_state)
    if not sok then run:notice("sync state not saved: " .. tostring(serr)) end
  end
  result.state_path = state_path
  result.listing_pages = (stats.src.pages or 0) + (stats.dst.pages or 0)
  result.markers = (stats.src.markers or 0) + (stats.dst.markers or 0)
  if del_err then return nil, del_err end
  if result.failed > 0 then
    local first = result.errors[1]
    local e = errors.new{ code = "SyncFailed", message = result.failed .. " operation(s) failed; first: "
      .. tostring(first.key) .. ": " .. tostring(fail_code(first.error)) .. " " .. tostring(first.error and
      first.error.message), retryable = false }
    e.result = result
    return nil, e
  end
  return result
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
