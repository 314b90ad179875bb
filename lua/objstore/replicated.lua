--- objstore.replicated: one logical store over several clients (regions,
-- providers, servers). Writes go to every replica and succeed when
-- `write_quorum` of them acknowledge; a replica that missed a write is
-- recorded in a durable repair journal (objstore.journal: a JSON file,
-- rewritten atomically and fsync'd after every change) and brought up to date by :repair(). Reads come from
-- the first replica that answers, falling back to the next on failure.
--
-- Consistency: a successful write is on at least write_quorum replicas and
-- in the journal for the others, so it is never lost while the journal
-- file is kept; until :repair() runs, a read may be served by a replica
-- that missed the latest write (stale or missing), unless write_quorum
-- equals the number of replicas. Concurrent writers to the same key get
-- last-writer-wins per replica, with no ordering across replicas. A write
-- that misses its quorum returns an error; the replicas it did reach keep
-- it and the journal records the others, so :repair() completes it.
--
--   local r = assert(objstore.replicated{ clients = { c1, c2 }, write_quorum = 1,
--     journal = "/var/lib/app/objstore-journal.json" })
--   r:put_object(bucket, key, body, opts) ; r:get_object(bucket, key, opts)
--   r:delete_object(bucket, key) ; r:repair() -> { repaired = n, remaining = n }
local journal_file = require "objstore.journal"
local errors = require "objstore.errors"

local type, ipairs, tostring, setmetatable, os_time = type, ipairs, tostring, setmetatable, os.time

local _M = {}
local Replicated = {}
Replicated.__index = Replicated
-- The store's methods (for the reference manual and its spec).
_M.Replicated = Replicated

--- Loads the journal; a missing file is an empty journal, an unreadable one
-- is an error (it is never silently replaced).
local function load_journal(path)
  local j, err = journal_file.read(path)
  if err then
    err.message = err.message .. "; it holds writes some replicas missed and is left as it is"
    return nil, err
  end
  return j or { kind = "journal", entries = {} }
end

local OPTIONS = { clients = true, write_quorum = true, journal = true }

--- new(opts) -> store | nil, err
-- One store over several clients (objstore.replicated(opts) is this).
-- opts.clients: the replicas, a list of objstore clients (required).
-- opts.write_quorum: how many must acknowledge a write (default all).
-- opts.journal: the repair journal's file path (required: it must survive
--   restarts).
-- errors: the journal file cannot be read (it is never silently replaced).
function _M.new(opts)
  if type(opts) ~= "table" then
    errors.argument("replicated.new", 1, "opts", "must be a table, " .. errors.got(opts))
  end
  errors.options("replicated.new", 1, opts, OPTIONS)
  local clients = opts.clients
  if type(clients) ~= "table" or #clients < 1 then
    errors.argument("replicated.new", 1, "opts.clients", "must be a list of objstore clients")
  end
  for i, c in ipairs(clients) do
    if type(c) ~= "table" or type(c.put_object) ~= "function" then
      errors.argument("replicated.new", 1, "opts.clients[" .. i .. "]", "is not an objstore client")
    end
  end
  local q = opts.write_quorum or #clients
  if type(q) ~= "number" or q < 1 or q > #clients or q % 1 ~= 0 then
    errors.argument("replicated.new", 1, "opts.write_quorum", "must be a whole number from 1 to " .. #clients)
  end
  if type(opts.journal) ~= "string" then
    errors.argument("replicated.new", 1, "opts.journal",
      "must be a file path (the repair journal must survive restarts)")
  end
  local journal, err = load_journal(opts.journal)
  if not journal then return nil, err end
  return setmetatable({ clients = clients, write_quorum = q, journal_path = opts.journal, journal = journal },
    Replicated)
end

function Replicated:_save()
  return journal_file.write(self.journal_path, self.journal)
end

--- Records that replica `index` missed (op, bucket, key); `source` is a
-- replica that has the data (for puts).
function Replicated:_record(op, bucket, key, index, source)
  local entries = self.journal.entries
  -- A later write of the same key replaces an earlier pending entry.
  for i = #entries, 1, -1 do
    local e = entries[i]
    if e.bucket == bucket and e.key == key and e.replica == index then table.remove(entries, i) end
  end
  entries[#entries + 1] = { op = op, bucket = bucket, key = key, replica = index, source = source, time = os_time() }
end

local function write_all(self, op, bucket, key, fn)
  local ok_list, failed, first_err, result = {}, {}, nil, nil
  for i, c in ipairs(self.clients) do
    local r, err = fn(c)
    if r then
      ok_list[#ok_list + 1] = i
      result = result or r
    else
      failed[#failed + 1] = i
      first_err = first_err or err
    end
  end
  if #ok_list > 0 then
    for _, i in ipairs(failed) do self:_record(op, bucket, key, i, ok_list[1]) end
    -- Entries for replicas that took the write are obsolete.
    local entries = self.journal.entries
    for j = #entries, 1, -1 do
      local e = entries[j]
      if e.bucket == bucket and e.key == key then
        for _, i in ipairs(ok_list) do
          if e.replica == i then table.remove(entries, j) break end
        end
      end
    end
    local sok, serr = self:_save()
    if not sok then return nil, serr end
  end
  if #ok_list < self.write_quorum then
    local e = errors.new{ code = "QuorumNotReached", op = op, bucket = bucket, key = key, retryable = true,
      message = ("%d of %d replicas acknowledged, %d needed; first error: %s"):format(#ok_list, #self.clients,
        self.write_quorum, tostring(first_err)), acknowledged = ok_list, cause = first_err }
    return nil, e
  end
  result = result or {}
  result.replicas_ok, result.replicas_missed = ok_list, failed
  return result
end

--- put_object(bucket, key, body, opts) -> result | nil, err
-- client:put_object on every replica: body must be re-readable (a string
-- or {path=}): every replica gets the same bytes. Succeeds when
-- write_quorum replicas acknowledge; the others go into the journal.
-- errors: QuorumNotReached (the replicas reached keep it, the journal
--   records the others).
function Replicated:put_object(bucket, key, body, opts)
  if type(body) ~= "string" and not (type(body) == "table" and type(body.path) == "string") then
    errors.argument("replicated.put_object", 3, "body", "must be a string or {path=...} to go to every replica")
  end
  return write_all(self, "put", bucket, key, function(c) return c:put_object(bucket, key, body, opts) end)
end

--- delete_object(bucket, key, opts) -> result | nil, err
-- client:delete_object on every replica, with the same quorum and journal
-- as put_object.
function Replicated:delete_object(bucket, key, opts)
  return write_all(self, "delete", bucket, key, function(c) return c:delete_object(bucket, key, opts) end)
end

--- Reads from the first replica that answers; a failure (including a 404
-- from a replica that missed the write) falls back to the next.
local function read_first(self, method, bucket, key, opts)
  local first_err
  for i, c in ipairs(self.clients) do
    local r, err = c[method](c, bucket, key, opts)
    if r then
      r.replica = i
      return r
    end
    first_err = first_err or err
  end
  return nil, first_err
end

--- get_object(bucket, key, opts) -> result | nil, err
-- client:get_object from the first replica that answers (a failure, a 404
-- included, falls back to the next); result.replica says which.
function Replicated:get_object(bucket, key, opts)
  return read_first(self, "get_object", bucket, key, opts)
end

--- head_object(bucket, key, opts) -> result | nil, err
-- client:head_object from the first replica that answers.
function Replicated:head_object(bucket, key, opts)
  return read_first(self, "head_object", bucket, key, opts)
end

--- repair() -> { repaired, remaining, errors } | nil, err
-- Replays the journal: copies each missed put from a replica that has the
-- object (a GET into memory, then a PUT; files larger than memory belong in
-- a transfer-based repair) and re-sends each missed delete. Entries that
-- still fail stay in the journal.
-- result.repaired: entries brought up to date.
-- result.remaining: entries left in the journal.
-- result.errors: the failures of this run.
function Replicated:repair()
  local entries = self.journal.entries
  local keep, repaired, errs = {}, 0, {}
  for _, e in ipairs(entries) do
    local target = self.clients[e.replica]
    local ok, err
    if not target then
      ok, err = nil, errors.new{ code = "CorruptJournal", message = "no replica " .. tostring(e.replica),
        retryable = false }
    elseif e.op == "delete" then
      ok, err = target:delete_object(e.bucket, e.key)
    else
      local src = self.clients[e.source] or self.clients[1]
      local got, gerr = src:get_object(e.bucket, e.key)
      if not got and gerr and gerr.status == 404 then
        -- Deleted since: the target must not keep an old copy either.
        ok, err = target:delete_object(e.bucket, e.key)
      elseif not got then
        ok, err = nil, gerr
      else
        ok, err = target:put_object(e.bucket, e.key, got.body or "", { content_type = got.content_type,
          metadata = got.metadata })
      end
    end
    if ok then
      repaired = repaired + 1
    else
      keep[#keep + 1] = e
      errs[#errs + 1] = err
    end
  end
  self.journal.entries = keep
  local sok, serr = self:_save()
  if not sok then return nil, serr end
  return { repaired = repaired, remaining = #keep, errors = errs }
end

--- pending() -> n
-- The number of journal entries waiting for repair().
function Replicated:pending()
  return #self.journal.entries
end

return _M
