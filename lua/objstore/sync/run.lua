--- The state of one sync run and what every part of it reports through:
-- the result (counts, actions, errors, notices), the sync state being
-- learnt, a move's source bookkeeping. objstore.sync builds one per call;
-- the direction tables (objstore.sync.direction) take it as `r`.
local digest = require "objstore.sync.digest"
local errors = require "objstore.errors"

local setmetatable, ipairs, tostring = setmetatable, ipairs, tostring
local same_etag = digest.same_etag

local _M = {}

local Run = {}
Run.__index = Run

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

--- Move: the remote sources whose copies were verified (or proven
-- identical), deleted in DeleteObjects batches of 1000, once the
-- transfers are done. Each is HEADed again first: a source another writer
-- replaced since it was listed (its ETag is no longer the one copied) is
-- kept, the run fails (SourceChanged); one already gone counts as removed.
function Run:remove_remote_sources()
  local run, src, opts = self, self.src, self.opts
  if #run.remote_removals == 0 then return end
  local i = 0
  src.client:run{ concurrency = opts.concurrency or 16,
    next = function()
      i = i + 1
      local r = run.remote_removals[i]
      if not r then return nil end
      local req = src.client:build_request("head_object", src.bucket, r.s.key)
      req.context = r
      return req
    end,
    done = function(req, res, err)
      local r = req.context
      if res and same_etag(res.etag, r.s.etag) then
        r.current = true
      elseif not res and err and err.status == 404 then
        r.gone = true
      else
        r.why = res and ("changed since it was copied (ETag now " .. tostring(res.etag) .. ", was "
          .. tostring(r.s.etag) .. "): source kept") or ("could not be checked before its removal ("
          .. tostring(err and (err.code or err.message)) .. "): source kept")
      end
      return true
    end }
  local keys, by_key = {}, {}
  for _, r in ipairs(run.remote_removals) do
    if r.current then
      keys[#keys + 1] = r.s.key
      by_key[r.s.key] = r.a
    elseif r.gone then
      run:removed(r.a)
    else
      r.a.kept = true
      local err = errors.new{ code = "SourceChanged", message = r.s.key .. ": " .. tostring(r.why),
        retryable = false }
      r.a.remove_error = err
      run:error(r.a.key, err)
      run:notice(r.s.key .. ": " .. tostring(r.why))
    end
  end
  local out = { errors = {} }
  if #keys > 0 then
    local derr
    out, derr = src.client:delete_objects(src.bucket, keys, { quiet = true })
    out = out or derr.result -- every key is in deleted or errors either way
  end
  local bad = {}
  for _, e in ipairs(out.errors) do
    -- once per key: a server that reports a key twice fails it once
    local a = not bad[e.key] and by_key[e.key]
    bad[e.key] = true
    if a then
      local err = e.error or errors.new{ code = e.code, message = e.message, key = e.key }
      a.remove_error = err
      run:error(a.key, err)
    end
  end
  for _, k in ipairs(keys) do
    if not bad[k] then
      run:removed(by_key[k])
    end
  end
end

return _M
