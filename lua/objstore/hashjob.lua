--- Waiting for the C core's hashing threads without blocking an nginx
-- worker.
--
-- `core.hash.file_async` and `core.hash.ranges_async` hash on a thread of
-- their own; `job:wait()` joins it. Outside nginx (and in its phases that
-- cannot yield: init, init_worker, log, ...) that is what `wait` does. In
-- a request or timer phase (the ones with cosockets) a join would stall
-- every other request of the worker for as long as the hashing takes
-- (0.36 s for a 200 MiB spooled upload), so `wait` polls the job's
-- `done()` (never blocking) between `ngx.sleep`s of 1 ms doubling to
-- 10 ms, and collects the results with `wait()` once the thread is done.
--
--    local hashjob = require "objstore.hashjob"
--    local md5s, nvmes, ecmas = hashjob.wait(core.hash.ranges_async(...))
--    local md5, err = hashjob.file("md5", path, offset, length)
--
-- Internal: used by objstore.transfer.*, objstore.ops.body and
-- objstore.ops.flexsum.
-- @module objstore.hashjob
local core = require "objstore.core"
local auto = require "objstore.transport.auto"

local rawget, type, min = rawget, type, math.min
local hash_file, file_async = core.hash.file, core.hash.file_async
local COSOCKET_PHASES = auto.COSOCKET_PHASES
local _G = _G

local _M = { _VERSION = core._VERSION }

--- The first and longest sleeps between two polls, in seconds.
_M.FIRST_SLEEP, _M.LONGEST_SLEEP = 0.001, 0.01

--- The `ngx` to yield with, or nil: nil outside nginx and in the phases
-- where ngx.sleep is not allowed (a blocking wait is all there is there).
local function yielding_ngx()
  local ngx = rawget(_G, "ngx")
  if ngx == nil or type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then return nil end
  if not COSOCKET_PHASES[ngx.get_phase()] then return nil end
  return ngx
end
_M.yielding_ngx = yielding_ngx

--- job:wait()'s results, the worker never blocked when called where nginx
-- can yield (the job's thread is polled between sleeps; `polls`, when
-- given, a table, counts them in polls.n: for specs).
function _M.wait(job, polls)
  local ngx = yielding_ngx()
  if ngx then
    local delay = _M.FIRST_SLEEP
    while not job:done() do
      if polls then polls.n = (polls.n or 0) + 1 end
      ngx.sleep(delay)
      delay = min(delay * 2, _M.LONGEST_SLEEP)
    end
  end
  return job:wait()
end

--- core.hash.file(alg, path, offset, length) -> raw digest | nil, err,
-- on a hashing thread waited for by yielding where nginx can yield (the
-- synchronous call elsewhere, and if no thread can be started). `polls`,
-- when given (specs): polls.thread = true when a thread hashed, and the
-- polls counted as by wait.
function _M.file(alg, path, offset, length, polls)
  if yielding_ngx() then
    local job = file_async(alg, path, offset or 0, length)
    if job then
      if polls then polls.thread = true end
      local digest, err = _M.wait(job, polls)
      return digest, err
    end
  end
  return hash_file(alg, path, offset or 0, length)
end

return _M
