--- The run's last phases (methods of objstore.sync.run), once the
-- transfers are done: a move's remote sources removed, the deletes, the
-- sync state saved, and the result or the error the run ends with.
local delete_mod = require "objstore.sync.delete"
local state_mod = require "objstore.sync.state"
local digest = require "objstore.sync.digest"
local errors = require "objstore.errors"

local type, ipairs, tostring = type, ipairs, tostring
local same_etag = digest.same_etag

local Run = {}

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

--- The destination entries the source does not have (opts.delete), after
-- the transfers: objstore.sync.delete refuses them all when anything
-- failed or a listing or walk was incomplete. Returns its error, if any
-- (the run's error then).
function Run:delete_extras()
  local failed = self.listing_failed or self.walk_failed
  return delete_mod.run(self.client, { src = self.src, dst = self.dst, kind = self.kind, opts = self.opts,
    deletes = self.deletes, result = self.result, record = function(a) self:record(a) end, notice = self.notify,
    listing_failed = failed, src_missing = self.src_missing, src_count = self.src_count, dry = self.dry,
    listing_incomplete = self.walk_failed })
end

--- The sync state learnt, written when it changed (never in a dry run).
-- Names not seen this run drop out; a failed run keeps what it learnt.
function Run:save_state()
  if self.state_path and not self.dry and not state_mod.same(self.new_state, self.old_state) then
    local ok, err = state_mod.save(self.state_path, self.state_id, self.new_state)
    if not ok then self:notice("sync state not saved: " .. tostring(err)) end
  end
end

local function fail_code(err)
  return type(err) == "table" and err.code or tostring(err)
end

--- The run's answer: result, or nil and the delete phase's error, or nil
-- and SyncFailed (naming the first failure) when anything failed; the
-- error's `result` holds the counts.
function Run:outcome(delete_err)
  local result, stats = self.result, self.stats
  result.state_path = self.state_path
  result.listing_pages = (stats.src.pages or 0) + (stats.dst.pages or 0)
  result.markers = (stats.src.markers or 0) + (stats.dst.markers or 0)
  if delete_err then return nil, delete_err end
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

return Run
