--- The run's transfers (methods of objstore.sync.run): small files and
-- HEADs queued as request records for the client's one `run` loop,
-- `concurrency` at a time; large files (and every file across two
-- endpoints) through the transfer calls, one after another.
local delete_mod = require "objstore.sync.delete"
local compare = require "objstore.sync.compare"
local digest = require "objstore.sync.digest"
local defaults = require "objstore.transfer.defaults"
local core = require "objstore.core"

local type, ipairs, tostring = type, ipairs, tostring
local max, min, floor = math.max, math.min, math.floor
local monotonic = core.time.monotonic

local Run = {}

--- What the transfers need to know before the first one: the local
-- destination's case folding, the size from which a file is large, the
-- clients, the bandwidth, an empty queue.
function Run:ready_transfers()
  local src, dst, opts, kind = self.src, self.dst, self.opts, self.kind
  local case_fold = opts.case_insensitive
  if case_fold == nil and dst.kind == "local" then case_fold = delete_mod.case_insensitive_dir(dst.root, self.dry) end
  self.folded = case_fold and {} or nil

  self.threshold = opts.multipart_threshold or defaults.SYNC_THRESHOLD
  -- The threshold of the large files' transfers: the run's, so a part_size
  -- above it cannot turn a file it sent to run_large back into one request;
  -- at least 1, since an empty object has no range to send or copy in parts.
  self.large_threshold = max(self.threshold, 1)
  self.dst_client = dst.kind == "remote" and dst.client or src.client
  self.same_client = kind == "copy" and src.client == dst.client
  -- A copy between two endpoints: no HEAD of the other endpoint can join
  -- this endpoint's run loop, and every file is streamed across on its own.
  self.across = kind == "copy" and not self.same_client
  -- Every request of the run loop is for this client's endpoint.
  self.run_client = kind == "down" and src.client or dst.client
  self.provider = self.run_client.provider
  self.queue, self.qhead, self.qtail = {}, 1, 0 -- actions ready to become requests (consumed from qhead)
  self.large_files = {}
  -- bwlimit (bytes/s for the whole sync; 0: none): the whole-file
  -- requests of a batch share it as many ways as can run at once, a large
  -- file's parts have it to themselves (large files go one at a time).
  self.bwlimit = opts.bwlimit and opts.bwlimit >= 1 and floor(opts.bwlimit) or nil
end

--- A HEAD or small transfer for the run loop.
function Run:enqueue(item)
  local qtail = self.qtail + 1
  self.qtail = qtail
  self.queue[qtail] = item
end

--- The request record of a queued item.
function Run:request_of(item)
  local s, dir, opts = item.s, self.dir, self.opts
  if item.head then
    -- Undecidable from the listing and the state: HEAD the remote side(s).
    local side_e, sd, which = dir.head_side(self, item)
    item.which = which
    local req = sd.client:build_request("head_object", sd.bucket, side_e.key, dir.head_opts(self, which))
    req.context = item
    return req
  end
  local req = dir.request(self, s)
  req.context = req.context or {}
  req.context.item = item
  -- bwlimit: each of the `concurrency` requests at once gets its share,
  -- paced by the transport byte by byte (copies move no bytes here).
  if dir.moves_bytes then req.max_speed = self.small_rate end
  -- The bytes of the file in flight, as the transport moves them (each
  -- attempt from 0: a retry never counts them twice).
  if dir.moves_bytes and type(opts.progress) == "function" then
    local rel, size, up = s.rel, s.size, dir.sends
    req.on_progress = function(sent, received) opts.progress(rel, up and sent or received, size) end
  end
  item.started = monotonic()
  return req
end

--- A transfer done: counted, its state learnt, a move's source removed
-- (only when the copy was verified) and recorded.
function Run:transferred(item, info, verified)
  local s, a, result = item.s, item.a, self.result
  result.transferred = result.transferred + 1
  result.bytes = result.bytes + s.size
  a.verified = verified and true or false
  self.dir.transferred_state(self, s, info)
  if self.move then
    if verified then self:remove_source(s, a) else self:keep_source(a, "not verified: source kept", true) end
  end
  self:record(a)
end

--- A full disk stops the whole run at once.
local function disk_full(err)
  local m = type(err) == "table" and tostring(err.message) or tostring(err)
  return m:find("No space left", 1, true) ~= nil or m:find("ENOSPC", 1, true) ~= nil
end

--- The run loop's `done` of one request: a HEAD decides its name (or
-- queues the other side's HEAD), a transfer is finished and counted.
-- False (with err) stops the loop: the disk is full.
function Run:request_done(req, res, err)
  local ctx = req.context or {}
  local item = ctx.item or ctx
  if item.head then
    item.head = nil
    if not res then
      self:failed({ key = item.s.rel, action = "head", reason = item.reason, size = item.s.size }, err)
      return true
    end
    local e = item.which == "s" and item.s or item.d
    compare.absorb_head(e, res, digest.CRC_META)
    if self.dir.heads_both and not (item.s.head and item.d.head) then
      -- Both sides remote: the verdict needs both HEADs, the other is queued.
      self:enqueue{ head = true, s = item.s, d = item.d, reason = item.reason }
    else
      self:decide(item.s, item.d)
    end
    return true
  end
  local verified
  res, err, verified = self.dir.finish(self, req, res, err, item)
  if not res then
    self:failed(item.a, err)
    if disk_full(err) then
      self.stop_err = err
      return false, err
    end
    return true
  end
  self:transferred(item, res, verified)
  return true
end

--- Runs what is queued through the one run loop (HEADs may queue more).
function Run:drain()
  local opts, bwlimit = self.opts, self.bwlimit
  local function next_request()
    if self.stop_err then return nil end
    local qhead = self.qhead
    local item = self.queue[qhead]
    if not item then return nil end
    self.queue[qhead] = nil
    self.qhead = qhead + 1
    return self:request_of(item)
  end
  local function done(req, res, err) return self:request_done(req, res, err) end
  while self.qhead <= self.qtail and not self.stop_err do
    local concurrency = opts.concurrency or defaults.SYNC_CONCURRENCY
    if bwlimit then
      self.small_rate = max(1, floor(bwlimit / max(1, min(concurrency, self.qtail - self.qhead + 1))))
    end
    local ok, err = self.run_client:run{ concurrency = concurrency, next = next_request, done = done }
    if not ok and not self.stop_err then self.stop_err = err end
  end
  self.queue, self.qhead, self.qtail = {}, 1, 0
end

--- The large files planned so far, one transfer call after another.
function Run:run_large()
  local opts = self.opts
  for _, l in ipairs(self.large_files) do
    if self.stop_err then break end
    local s, a = l.s, l.a
    local on_bytes = type(opts.progress) == "function" and function(n, total) opts.progress(s.rel, n, total) end
    local res, err, verified = self.dir.large(self, s, on_bytes)
    if res then self:transferred(l, res, verified) else
      self:failed(a, err)
      if disk_full(err) then self.stop_err = err end
    end
  end
  self.large_files = {}
end

return Run
