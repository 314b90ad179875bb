--- Progress reporting for transfers, at most `hz` times a second (and
-- always when `final`): fn(done, total, rate_bytes_per_s).
local core = require "objstore.core"

local monotonic = core.time.monotonic
local math_huge = math.huge

local _M = {}

--- new(fn, total, start_done, hz) -> report(delta, final); a no-op without fn.
function _M.new(fn, total, start_done, hz)
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
