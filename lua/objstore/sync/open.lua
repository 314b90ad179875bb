--- The run's first phase (methods of objstore.sync.run): the sync state
-- beside the local side, then the two sides opened as sorted streams.
local walk = require "objstore.sync.walk"
local remote = require "objstore.sync.remote"
local state_mod = require "objstore.sync.state"
local filter_mod = require "objstore.sync.filter"
local errors = require "objstore.errors"

local type, pairs, ipairs, next = type, pairs, ipairs, next

local Run = {}

local function remote_id(s)
  return s.client.provider .. " " .. s.client.endpoint.url .. " " .. s.bucket .. "/" .. s.prefix
end

--- The sync state: its path (none without a local side or with state =
-- false), what the last run learnt, and the paths the walk must skip.
function Run:load_state()
  local src, dst, opts = self.src, self.dst, self.opts
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
  self.state_path, self.state_id, self.old_state = state_path, rid, old_state
  -- A state file inside the local tree (a `state` path or $XDG_STATE_HOME
  -- there) is not a file of the sync: never uploaded, never deleted.
  -- The same for the whole state directory (every pair's state, their
  -- temporary files), whether or not this run keeps a state, and for a
  -- `state` file's temporary files (<file>.tmp-<hex>).
  if local_side then
    local root_abs = state_mod.abs_path(local_side.root)
    local function inside(p)
      local a = p and state_mod.abs_path(p)
      if a and a:sub(1, #root_abs + 1) == root_abs .. "/" then return local_side.root .. a:sub(#root_abs + 1) end
    end
    self.skip_path = { file = inside(state_path), dir = inside(state_mod.state_dir()) }
  end
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

local function walk_error(e)
  return errors.new{ code = "LocalFileError", message = e.message, retryable = false, path = e.path }
end

--- The two sides as sorted streams (src_iter, dst_iter), the local side
-- walked first (its names cut the remote listing into ranges), and what
-- the walks could not read. true | nil, err (a local side not walkable).
function Run:open_sides()
  local src, dst, opts = self.src, self.dst, self.opts
  local function notify(msg) self:notice(msg) end
  self.notify = notify
  self.filter = filter_mod.from_opts(opts)
  local stats = { src = {}, dst = {} }
  self.stats = stats
  local src_iter, dst_iter, src_missing, local_list
  if dst.kind == "local" then
    dst_iter, src_missing, local_list = open_side(dst, opts, notify, stats.dst, nil, false, self.skip_path)
    if not dst_iter then return nil, src_missing end
    src_iter, src_missing = open_side(src, opts, notify, stats.src, local_list)
  else
    src_iter, src_missing, local_list = open_side(src, opts, notify, stats.src, nil, true, self.skip_path)
    if not src_iter then return nil, src_missing end
    dst_iter = open_side(dst, opts, notify, stats.dst, self.kind == "up" and local_list or nil)
  end
  self.src_iter, self.dst_iter, self.src_missing = src_iter, dst_iter, src_missing
  self.listing_failed = false
  -- A directory of either local side that could not be read: the walk is
  -- incomplete, as a failed listing (nothing deleted, the run fails), but
  -- the names that were read still sync. Names below an unreadable
  -- destination directory are not written (what is there is unknown).
  local dst_unread, walk_failed = {}, false
  for which, st in pairs(stats) do
    for _, e in ipairs(st.walk_errors or {}) do
      walk_failed = true
      self:error(e.rel ~= "" and e.rel or e.path, walk_error(e))
      self:notice((which == "src" and "source" or "destination") .. " walk incomplete: " .. e.message)
      if which == "dst" then dst_unread[#dst_unread + 1] = e.rel end
    end
  end
  self.dst_unread, self.walk_failed = dst_unread, walk_failed
  return true
end

return Run
