--- Progress reporting for transfers, at most `hz` times a second (and
-- always when `final`): fn(done, total, rate_bytes_per_s).
--
-- `done` counts the bytes of finished requests (parts, ranges, a whole
-- object) plus those of the requests in flight, as their transport reports
-- them (the request's `on_progress`, absolute for the attempt under way):
-- a retried request starts again from 0 and a failed one counts nothing,
-- so `done` never counts a byte twice and never exceeds `total`.
local core = require "objstore.core"

local monotonic = core.time.monotonic
local math_huge = math.huge
local pairs = pairs

local _M = {}

local function noop() end

--- new(fn, total, start_done, hz) -> report(delta, final, id), moving(id, n):
-- report adds `delta` finished bytes (and forgets the request `id` in
-- flight, whose bytes they are); moving sets the bytes of request `id`
-- in flight so far (nil: it ended without them counting). No-ops without fn.
function _M.new(fn, total, start_done, hz)
  if not fn then return noop, noop end
  local interval = 1 / (hz or 4)
  local t0 = monotonic()
  local last = -math_huge
  local done = start_done or 0
  local base = done
  local inflight = {}
  local function emit(final)
    local now = monotonic()
    if final or now - last >= interval then
      last = now
      local d = done
      for _, n in pairs(inflight) do d = d + n end
      if total and d > total then d = total end
      local el = now - t0
      fn(d, total, el > 0 and (d - base) / el or 0)
    end
  end
  local function report(delta, final, id)
    if id ~= nil then inflight[id] = nil end
    done = done + (delta or 0)
    emit(final)
  end
  -- A request whose count went back (its retry started again from 0, or
  -- it failed: n nil) is reported at once, not at the next tick: a count
  -- that only ever rose until the retry overtook the failed attempt would
  -- hide that bytes were sent again.
  local function moving(id, n)
    local before = inflight[id]
    inflight[id] = n
    emit(before ~= nil and (n or 0) < before)
  end
  return report, moving
end

--- The request field that feeds `moving(id, ...)`: the request body bytes
-- sent (`dir` "up") or the response body bytes received ("down").
function _M.on_progress(moving, id, dir)
  if moving == noop then return nil end
  if dir == "down" then
    return function(_, received) moving(id, received) end
  end
  return function(sent) moving(id, sent) end
end

return _M
