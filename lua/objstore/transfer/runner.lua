--- Runs many operations of one client concurrently on its transport, each
-- retried on its own: a failed part is sent again, never the whole file.
--
--   runner.run(client, { concurrency = 8, next = function() -> op | nil,
--     done = function(op, result, err) }) -> true | nil, err
--
-- `next` hands out the next operation (or nil when none is ready); `done`
-- gets each outcome once retries are over and may return false, err to
-- stop the run. Operations waiting for a retry are held back until their
-- backoff has passed. Up to `concurrency` requests are in flight at once on
-- a transport with `run` (the curl one); others get one at a time.
local core = require "objstore.core"

local monotonic, sleep = core.time.monotonic, core.time.sleep
local table_remove, math_huge = table.remove, math.huge

local _M = {}

function _M.run(client, spec)
  local concurrency = spec.concurrency or 8
  local policy = client.retry
  local waiting = {} -- ops whose retry time has not come
  local transport = client.transport

  local function take()
    local now = monotonic()
    for i = 1, #waiting do
      if waiting[i].not_before <= now then return table_remove(waiting, i).op end
    end
    return spec.next()
  end

  local function settle(op, res, terr)
    local result, err = client:_finish(op, res, terr)
    if res then client:_observe_clock(res, err) end
    if result ~= nil or err == nil then
      policy:on_success(op._retry_cost)
      return spec.done(op, result, nil)
    end
    op._attempt = (op._attempt or 1)
    err.attempts = op._attempt
    local delay, spent = policy:retry_delay(err, op._attempt, true)
    if delay then
      op._attempt = op._attempt + 1
      op._retry_cost = (op._retry_cost or 0) + (spent or 0)
      if op.on_retry then op.on_retry(err, op._attempt - 1, delay) end
      waiting[#waiting + 1] = { op = op, not_before = monotonic() + delay }
      return true
    end
    return spec.done(op, nil, err)
  end

  local function soonest_wait()
    local soonest = math_huge
    for _, w in ipairs(waiting) do
      if w.not_before < soonest then soonest = w.not_before end
    end
    local d = soonest - monotonic()
    if d > 0 then sleep(d) end
  end

  -- Pull model: a new request starts the moment a slot frees. A transport
  -- without run() (a custom one) gets the same loop, one request at a time.
  local run = transport.run and function(source, on_done)
    transport:run(source, on_done, concurrency)
  end or function(source, on_done)
    while true do
      local treq = source()
      if not treq then return end
      on_done(treq, transport:request(treq))
    end
  end
  local stop_err
  local inflight = {}
  local function source()
    while not stop_err do
      local op = take()
      if not op then return nil end
      policy:before_attempt()
      local treq, berr = client:_build(op)
      if treq then
        inflight[treq] = op
        return treq
      end
      local ok, e = spec.done(op, nil, berr)
      if ok == false then stop_err = e end
    end
    return nil
  end
  local function on_done(treq, res, terr)
    local op = inflight[treq]
    inflight[treq] = nil
    local ok, e = settle(op, res, terr)
    if ok == false and not stop_err then stop_err = e end
  end
  while true do
    run(source, on_done)
    if stop_err then return nil, stop_err end
    if #waiting == 0 then return true end
    soonest_wait()
  end
end

--- Progress reporting at most `hz` times a second (and always at the end):
-- fn(done, total, rate_bytes_per_s).
function _M.progress(fn, total, start_done, hz)
  if not fn then return function() end end
  local interval = 1 / (hz or 4)
  local t0 = monotonic()
  local last = -math_huge
  local done = start_done or 0
  local base = done
  return function(delta, final)
    done = done + (delta or 0)
    local now = monotonic()
    if final or now - last >= interval then
      last = now
      local el = now - t0
      fn(done, total, el > 0 and (done - base) / el or 0)
    end
  end
end

return _M
