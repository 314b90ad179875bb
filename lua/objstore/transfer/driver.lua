--- The one loop of every multipart transfer (upload_file, upload_stream,
-- copy_large, download_file): the parts run through the client's run loop
-- and each answer is handled the same way; a kind supplies only what
-- differs, as a strategy table (like aws-c-s3's meta-request vtable).
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
-- job: c, m (core.mpu), bucket, key, upload_id, ck (open checkpoint),
--   checkpoint (its path), leave (leave_parts_on_error), concurrency,
--   on_part, progress, moving (progress.new's); run adds sent (parts done
--   by this run).
local errors = require "objstore.errors"

local pcall, error, tostring = pcall, error, tostring

local _M = {}

--- The default abandon of a multipart upload: its checkpoint closed, the
-- upload aborted (parts are billed until then) unless a checkpoint keeps
-- it to resume or leave_parts_on_error asks to keep it.
function _M.abort_upload(c, job)
  if job.ck then job.ck:close() end
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
  return nil, err
end

return _M
