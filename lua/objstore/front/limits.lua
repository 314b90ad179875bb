--- Per-tenant request limits of the S3 front, per machine: a fixed window
-- counted in a lua_shared_dict, so that every nginx worker of the machine
-- shares it. No I/O: one `incr` per request (a shared-dict operation takes
-- a short lock, never the network).
--
--     local limits = require "objstore.front.limits"
--     local ok, retry_after = limits.admit(ngx.shared.objstore_front_limits,
--       tenant.name, tenant.limits, ngx.time())
--
-- `tenant.limits` is `{ requests = N, window = S }` (objstore.front.tenants):
-- at most N requests in each window of S seconds starting at a multiple of
-- S since the epoch. A refused request does not count. Several machines
-- behind a load balancer each admit N: the limit is per machine (a
-- cluster-wide limit needs a store shared by the machines, such as Redis;
-- see docs/front.md).
-- @module objstore.front.limits

local floor, tostring = math.floor, tostring

local _M = {}

--- admit(dict, name, limits, now) -> true | false, retry_after
-- Counts one request of tenant `name` against `limits` at time `now`
-- (seconds). Refused: false and the whole seconds until the window ends
-- (at least 1), for Retry-After. A dict that cannot take the key (full of
-- non-expiring keys) admits: an outage of the limiter is not one of the
-- store.
function _M.admit(dict, name, limits, now)
  local w = limits.window
  local start = floor(now / w) * w
  -- keys: "l" NUL window-start NUL tenant name (any string)
  local key = "l\0" .. tostring(start) .. "\0" .. name
  local n = dict:incr(key, 1, 0, w + 1)
  if not n then return true end
  if n > limits.requests then
    dict:incr(key, -1)
    local retry = start + w - now
    return false, retry < 1 and 1 or math.ceil(retry)
  end
  return true
end

return _M
