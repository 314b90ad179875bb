--- The state of one sync run and what every part of it reports through:
-- the result (counts, actions, errors, notices), the sync state being
-- learnt, a move's source bookkeeping. objstore.sync builds one per call
-- and runs its phases, the methods of these files, in order:
--   objstore.sync.open       load_state, open_sides
--   objstore.sync.transfers  ready_transfers (then drain, run_large)
--   objstore.sync.plan       join_and_transfer (pull, consider, plan, ...)
--   objstore.sync.finish     remove_remote_sources, delete_extras,
--                            save_state, outcome
-- The direction tables (objstore.sync.direction) take it as `r`.
local open_phase = require "objstore.sync.open"
local plan_phase = require "objstore.sync.plan"
local transfers_phase = require "objstore.sync.transfers"
local finish_phase = require "objstore.sync.finish"
local digest = require "objstore.sync.digest"
local errors = require "objstore.errors"

local setmetatable, ipairs, pairs = setmetatable, ipairs, pairs

local _M = {}

local Run = {}
Run.__index = Run

-- The phases, one file each, are methods of every run too.
for _, phase in ipairs{ open_phase, plan_phase, transfers_phase, finish_phase } do
  for name, method in pairs(phase) do Run[name] = method end
end

--- run.new(fields) -> run: fields (src, dst, kind, opts, dir, ...) kept
-- as they are; the result and the bookkeeping start empty.
function _M.new(r)
  local opts = r.opts
  r.dry = opts.dry_run
  r.move = opts.move and true or false
  r.keep_actions = opts.actions ~= false
  r.result = { transferred = 0, deleted = 0, skipped = 0, failed = 0, bytes = 0, actions = {}, notices = {},
    errors = {}, kind = r.kind, dry_run = r.dry or nil, unverified = 0, kept = 0, removed = 0, move = r.move or nil }
  r.remote_removals = {} -- a move's remote sources, their copies verified: removed at the end
  r.temps = {} -- temporary download files not yet renamed or removed
  r.ancestors = {} -- remote keys that are files locally: their "k/..." cannot be written
  r.new_state = {}
  return setmetatable(r, Run)
end

function Run:notice(msg)
  local n = self.result.notices
  n[#n + 1] = msg
  if self.opts.on_notice then self.opts.on_notice(msg) end
end

function Run:record(a)
  if self.keep_actions then self.result.actions[#self.result.actions + 1] = a end
  if self.opts.on_action then self.opts.on_action(a) end
end

--- One failure more, under `key`.
function Run:error(key, err)
  local result = self.result
  result.failed = result.failed + 1
  result.errors[#result.errors + 1] = { key = key, error = err }
end

--- Action a failed with err: counted and recorded as "<action>_failed".
function Run:failed(a, err)
  a.error = err
  self:error(a.key, err)
  a.action = a.action .. "_failed"
  self:record(a)
end

--- What the next run needs to know a name is unchanged (no state: nothing).
function Run:state_record(rel, remote_e, local_size, local_mtime)
  if self.state_path then
    self.new_state[rel] = { etag = remote_e.etag, size = remote_e.size, local_size = local_size,
      local_mtime = local_mtime }
  end
end

--- Move: a source whose copy is in place is removed (local files now,
-- remote objects in batches of 1000 at the end).
function Run:remove_source(s, a)
  if self.dry then return end
  self.dir.remove_source(self, s, a)
end

function Run:removed(a)
  a.removed = true
  self.result.removed = self.result.removed + 1
end

--- Move: a source that stays (not proven identical, or not verified).
function Run:keep_source(a, why, as_failure)
  a.kept = true
  if as_failure then
    self:error(a.key, errors.new{ code = "MoveNotVerified", message = a.key .. ": " .. why, retryable = false })
  else
    self.result.kept = self.result.kept + 1
  end
  self:notice(a.key .. ": " .. why)
end

--- Whether a finished download's bytes were checked: MD5 against a
-- plain ETag (finish_get), or, with move, the stored CRC-64/NVME
-- against the file now in place.
function Run:download_verified(res, path, md5_checked)
  if md5_checked then return true end
  local crc = res and res.metadata and res.metadata[digest.CRC_META]
  if self.move and crc then
    local d = digest.file(path)
    return d and d.crc64nvme == crc or false
  end
  return false
end

return _M
