--- The run's middle phase (methods of objstore.sync.run): the join of the
-- two sorted streams, each joined pair classified (refused, skipped,
-- HEADed, queued for a transfer or a delete candidate), the queued
-- transfers run between batches of names (objstore.sync.transfers).
local join = require "objstore.sync.join"
local walk = require "objstore.sync.walk"
local names = require "objstore.sync.names"
local compare = require "objstore.sync.compare"
local errors = require "objstore.errors"
local request = require "objstore.engine.request"
local core = require "objstore.core"

local ipairs, pairs, tostring, pcall, error = ipairs, pairs, tostring, pcall, error
local utf8_valid = core.encode.utf8_valid
local os_remove = os.remove

local Run = {}

--- The next entry of one side. A remote key with one of objstore's own
-- names (<x>.objstore-part, .objstore-tmp-<hex>, .objstore-cp, ...) is
-- left out as the walk leaves such files out: never downloaded (the local
-- side would never see it again) and never deleted (a file of that name
-- is never uploaded). A failed listing reads as the end (listing_failed).
function Run:pull(iter, which)
  local e, err = iter()
  while e and e.key and walk.own_file(e.rel) do
    self:notice(e.key .. ": an objstore temporary name: left out")
    e, err = iter()
  end
  if e == false then
    self.listing_failed = true
    self:error(which .. " listing", err)
    self:notice("listing of the " .. which .. " failed: " .. tostring(err and err.message))
    return nil
  end
  return e
end

--- One name with its verdict: counted, queued, deferred or recorded.
function Run:plan(s, d, verdict, reason, code)
  if verdict == "head" and self.across then
    -- A HEAD on the other endpoint cannot join this endpoint's run loop.
    verdict, reason, code = "transfer", reason .. " (not HEADed across endpoints)", "differ"
  end
  local result = self.result
  local a = { key = s.rel, reason = reason, size = s.size, verdict = code }
  if verdict == "skip" then
    a.action = "skip"
    result.skipped = result.skipped + 1
    if code == "unverified" then result.unverified = result.unverified + 1 end
    if code ~= "unverified" then self.dir.keep_state(self, s, d) end
    if self.move then
      if code == "same" then
        self:remove_source(s, a)
      else
        self:keep_source(a, "skipped (" .. reason .. "): source kept")
      end
    end
    self:record(a)
    return
  end
  if verdict == "head" then
    self:enqueue{ head = true, s = s, d = d, reason = reason }
    return
  end
  a.action = self.dir.action
  local opts = self.opts
  if opts.on_plan then opts.on_plan(a) end
  if self.dry then
    self:record(a)
    return
  end
  if s.size >= self.threshold or self.across then
    local large = self.large_files
    large[#large + 1] = { s = s, d = d, a = a }
  else
    self:enqueue{ s = s, d = d, a = a }
  end
end

--- The verdict of a source entry s against its destination entry d (nil: none).
function Run:decide(s, d)
  local verdict, reason, code = compare.decide(self.kind, s, d, self.old_state[s.rel], self.opts, self.provider)
  self:plan(s, d, verdict, reason, code)
end

--- Why no request could name entry e, or nil: a local name must be UTF-8;
-- a remote key also non-empty, without NUL and at most 1024 bytes.
local function name_problem(e)
  if not utf8_valid(e.rel) then return "is not valid UTF-8" end
  if e.key then return request.key_problem(e.key) end
  return nil
end

--- A source name that passed the filters: refused (unsafe key), skipped
-- (archived) or decided. True when it was decided.
function Run:consider(s, d)
  self.src_count = self.src_count + 1
  local result = self.result
  local bad = name_problem(s)
  if bad then
    -- No request can name it (S3 keys are UTF-8): this name fails, the run goes on.
    self:failed({ key = s.rel, action = "refuse", reason = "name " .. bad, size = s.size },
      errors.new{ code = "InvalidName", message = "'" .. (s.path or s.key) .. "' " .. bad .. ": not synced",
        retryable = false })
    return false
  end
  for _, u in ipairs(self.dst_unread) do
    if u == "" or s.rel:sub(1, #u + 1) == u .. "/" then
      result.skipped = result.skipped + 1
      self:record{ key = s.rel, action = "skip", reason = "destination directory could not be read", size = s.size,
        verdict = "unverified" }
      return false
    end
  end
  local why = self.dir.refused(self, s)
  if why then
    self:failed({ key = s.rel, action = "refuse", reason = why, size = s.size },
      errors.new{ code = "UnsafeKey", message = "key '" .. s.key .. "' refused: " .. why, retryable = false })
    return false
  end
  if names.ARCHIVED[s.storage_class or ""] then
    result.skipped = result.skipped + 1
    self:notice(s.key .. ": storage class " .. s.storage_class .. " needs a restore: skipped")
    local a = { key = s.rel, action = "skip", reason = "archived (" .. s.storage_class .. ")", size = s.size,
      verdict = "unverified" }
    if self.move then self:keep_source(a, "archived: source kept") end
    self:record(a)
    return false
  end
  self.dir.placed(self, s)
  self:decide(s, d)
  return true
end

--- Only on the destination: a delete candidate.
function Run:candidate(d)
  local opts = self.opts
  if not (opts.delete and (self.filter(d.rel) or opts.delete_excluded)) then return end
  local bad = name_problem(d)
  if bad then
    self:failed({ key = d.rel, action = "delete", reason = "name " .. bad, size = d.size },
      errors.new{ code = "InvalidName", message = "'" .. (d.path or d.key) .. "' " .. bad
        .. ": not deleted", retryable = false })
  else
    self.deletes[#self.deletes + 1] = d
  end
end

--- The join of the two sorted streams, BATCH names at a time between
-- runs. A failed listing reads as the end of its stream: the join stops
-- at once (listing_failed), whatever the other side still holds.
local BATCH = 2000

--- Joins, classifies and transfers until both streams end, a listing
-- fails or the run must stop (a full disk). An error raised (SIGINT)
-- removes the temporary files, then propagates.
function Run:join_and_transfer()
  local opts, keep = self.opts, self.filter
  self.src_count = 0
  self.deletes = {}
  local jn = join.new(function() return self:pull(self.src_iter, "source") end,
    function() return self:pull(self.dst_iter, "destination") end)
  local ok, perr = pcall(function()
    while jn:more() and not self.stop_err and not self.listing_failed do
      local n = 0
      while jn:more() and n < BATCH and not self.listing_failed do
        local s_e, d_e = jn:next()
        if not d_e then
          if keep(s_e.rel) and self:consider(s_e, nil) then n = n + 1 end
        elseif not s_e then
          self:candidate(d_e)
        elseif keep(s_e.rel) then
          if self:consider(s_e, d_e) then n = n + 1 end
        elseif opts.delete and opts.delete_excluded then
          self.deletes[#self.deletes + 1] = d_e
        end
      end
      if not jn:more() and not self.listing_failed and opts.on_plan then opts.on_plan(nil) end
      self:drain()
      self:run_large()
    end
  end)
  if not ok then
    -- Interrupted (SIGINT) or a raised error: temporary files go, then it propagates.
    for tmp in pairs(self.temps) do os_remove(tmp) end
    error(perr, 0)
  end
  local stop_err, result = self.stop_err, self.result
  if stop_err then
    -- The stop is an error of its own (key "run"); it adds to the count only
    -- when no file failed, so a failed run always counts at least one.
    result.failed = result.failed + (result.failed == 0 and 1 or 0)
    result.errors[#result.errors + 1] = { key = "run", error = stop_err }
  end
end

return Run
