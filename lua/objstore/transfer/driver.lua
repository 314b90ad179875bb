--- The one loop of every multipart transfer (upload_file, upload_stream,
-- copy_large, download_file): the parts run through the client's run loop
-- and each answer is handled the same way; a kind supplies only what
-- differs, as a strategy table (like aws-c-s3's meta-request vtable).
-- transfer is the skeleton around that loop, so the rules of the
-- checkpoint (closed on every failure, removed only after success) are
-- kept in one place.
--
-- The skeleton, per part: the kind builds the request; a failed one is
-- marked failed in the core.mpu state (to be sent again) and its bytes in
-- flight stop counting; a good one is recorded by the kind, appended to
-- the checkpoint, counted in progress and reported to on_part (false
-- stops the transfer: Aborted). A run that fails or raises (an interrupt)
-- is abandoned the kind's way: by default the upload is aborted unless a
-- checkpoint or leave_parts_on_error keeps it.
--
-- strategy:
--   op                      the transfer's error op ("UploadFile", ...)
--   unit                    what on_part's Aborted message calls a part
--                           (default "part")
--   request(job, n, offset, length) -> a request whose context is
--                           { number =, length = } (the next part of
--                           job.m, planned there)
--   next(job)               -> a request | nil: replaces m:next() and
--                           request, for parts planned as they come
--                           (upload_stream)
--   release(job, part)      after every answer, before anything else
--   failed(job, part, err)  -> the error of a failed part (default err)
--   record(job, part, res)  -> true | nil, err: what "done" records
--   ended(job, ok, err)     -> ok, err: after a run that did not raise
--   abandon(c, job)         what a failed or raised run leaves behind
--   name_errors             true: a failed run's error names the transfer
--                           (op, bucket, key), not the part's request
-- and for transfer, the skeleton around run (each hook optional but
-- finish and result):
--   prepare(c, job)         -> true | nil, err: before any upload exists:
--                           the checkpoint opened (job.ck) and resumed
--                           (job.m, job.upload_id; job.done_head when the
--                           object is already complete), local checks
--   create(c, job)          -> true | nil, err: the upload (job.upload_id),
--                           when prepare resumed none
--   start(job)              the counters (job.progress, job.moving) from
--                           what is already done, the run's settings
--   finish(c, job)          -> fin | nil, err: after a good run (Complete
--                           and its checks, or download's rename)
--   result(job, fin, already) -> the transfer's result (already: fin is
--                           job.done_head, nothing was sent)
-- job: c, m (core.mpu), bucket, key, upload_id, ck (open checkpoint),
--   checkpoint (its path), leave (leave_parts_on_error), concurrency,
--   on_part, progress, moving (progress.new's); run adds sent (parts done
--   by this run). For transfer also: done_head (prepare found the object
--   already complete), no_parts (nothing to run: an empty download).
local errors = require "objstore.errors"

local pcall, error, tostring = pcall, error, tostring

local _M = {}

--- The default abandon of a multipart upload: its checkpoint closed, the
-- upload aborted (parts are billed until then) unless a checkpoint keeps
-- it to resume or leave_parts_on_error asks to keep it.
function _M.abort_upload(c, job)
  if job.ck then job.ck:close() end
  job.ck = nil
  if not job.checkpoint and not job.leave then c:abort_multipart_upload(job.bucket, job.key, job.upload_id) end
end

--- The answer to one part, the same for every kind.
local function part_done(strategy, job, req, res, err)
  local part = req.context
  if strategy.release then strategy.release(job, part) end
  if not res then
    -- A request that failed before it was sent (request.failed) names no
    -- part of m.
    if part and part.number then
      job.m:failed(part.number)
      if job.moving then job.moving(part.number, nil) end -- its bytes count again when sent again
    end
    if strategy.failed then err = strategy.failed(job, part, err) end
    return false, err
  end
  local ok, rerr = strategy.record(job, part, res)
  if not ok then return false, errors.locate(rerr, strategy.op, job.bucket, job.key) end
  job.sent = job.sent + 1
  if job.ck then
    local sok, serr = job.ck:append(job.m, part.number)
    if not sok then return false, errors.locate(serr, strategy.op, job.bucket, job.key) end
  end
  job.progress(part.length, false, part.number)
  if job.on_part and job.on_part(part.number, job.sent) == false then
    return false, errors.failure(strategy.op, "Aborted", "stopped by on_part after " .. (strategy.unit or "part")
      .. " " .. part.number, job.bucket, job.key)
  end
  return true
end

--- Runs job's parts with `strategy`: true, or nil, err once the run was
-- abandoned (err.upload_id names the upload). An error raised out of the
-- run (an interrupt, core.signal) abandons it too and goes on; with a
-- checkpoint keeping the upload its message says how to resume.
function _M.run(c, strategy, job)
  job.c, job.sent = c, 0
  local abandon = strategy.abandon or _M.abort_upload
  local next_part = strategy.next or function()
    local n, offset, length = job.m:next()
    if not n then return nil end
    return strategy.request(job, n, offset, length)
  end
  local pok, ok, err = pcall(c.run, c, { concurrency = job.concurrency, next = function() return next_part(job) end,
    done = function(req, res, perr) return part_done(strategy, job, req, res, perr) end })
  if not pok then
    abandon(c, job)
    if job.checkpoint and job.upload_id then
      error(tostring(ok) .. "; the multipart upload " .. tostring(job.upload_id) .. " of " .. job.key
        .. " is kept: run the same call again with the same checkpoint to resume it", 0)
    end
    error(ok, 0)
  end
  if strategy.ended then ok, err = strategy.ended(job, ok, err) end
  if ok then return true end
  if job.upload_id then err.upload_id = job.upload_id end
  abandon(c, job)
  if strategy.name_errors then err.op, err.bucket, err.key = strategy.op, job.bucket, job.key end
  return nil, err
end

--- The steps of transfer, in order; any nil, err ends them there.
local function steps(c, strategy, job)
  job.c = c
  -- Everything before the upload exists: the checkpoint opened (job.ck)
  -- and what it records resumed (job.m, job.upload_id), local checks.
  if strategy.prepare then
    local ok, err = strategy.prepare(c, job)
    if not ok then return nil, err end
  end
  -- The checkpoint's parts were completed by a run that died before it
  -- removed the checkpoint: nothing to send, only to say so.
  if job.done_head then
    job.ck:remove()
    job.ck = nil
    job.progress(0, true)
    return strategy.result(job, job.done_head, true)
  end
  if not job.upload_id and strategy.create then
    local ok, err = strategy.create(c, job)
    if not ok then return nil, err end
  end
  -- The counters start from what the checkpoint already holds.
  if strategy.start then strategy.start(job) end
  if not job.no_parts then
    local ok, err = _M.run(c, strategy, job) -- a failed run was abandoned there
    if not ok then return nil, err end
  end
  local fin, err = strategy.finish(c, job)
  if not fin then return nil, err end
  -- Only now, the object complete and verified, is nothing left to resume.
  if job.ck then job.ck:remove() end
  job.ck = nil
  job.progress(0, true)
  return strategy.result(job, fin)
end

--- A whole multipart transfer with `strategy`: prepare, create (when
-- prepare left no job.upload_id and the kind has uploads), start, run,
-- finish, result -> the result | nil, err. The checkpoint (job.ck) is
-- removed only after finish succeeded; every other way out, a raised
-- error too, leaves it closed (on disk, for a resume), unless a hook
-- removed it itself (nothing worth resuming). What a failed run leaves
-- behind is the strategy's abandon (run); a failed finish aborts nothing:
-- the upload's parts may all be there.
function _M.transfer(c, strategy, job)
  local pok, res, err = pcall(steps, c, strategy, job)
  if pok and res then return res end
  if job.ck then job.ck:close() end
  job.ck = nil
  if not pok then error(res, 0) end
  return nil, err
end

return _M
