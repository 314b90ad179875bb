--- Per-tenant request limits of the S3 front, per machine: a fixed window
-- counted in a lua_shared_dict, so that every nginx worker of the machine
-- shares it. No I/O: one `incr` per request (a shared-dict operation takes
-- a short lock, never the network).
--
--     local limits = require "objstore.front.limits"
--     local ok, retry_after = limits.admit(ngx.shared.objstore_front_limits,
--       tenant.name, tenant.limits, ngx.time())
--
-- `tenant.limits` is `{ requests = N, bytes = B, window = S }`
-- (objstore.front.tenants; N or B or both): at most N requests, and
-- requests admitted only while fewer than B bytes (bodies in and out) were
-- moved, in each window of S seconds starting at a multiple of S since the
-- epoch. A refused request does not count. The bytes of a request are
-- counted when it ends (add_bytes, from the log phase): one admitted with
-- budget left runs to its end, and the next ones wait for the next window,
-- so B is the average rate times S, not a cap on one transfer's speed. Several machines
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
-- The window of `now`: its start, and the key of `kind` ("l" requests,
-- "b" bytes) for tenant `name` in it: kind NUL start NUL name (any string).
local function window(kind, name, limits, now)
  local w = limits.window
  local start = floor(now / w) * w
  return start, kind .. "\0" .. tostring(start) .. "\0" .. name
end

local function retry_after(start, limits, now)
  local retry = start + limits.window - now
  return retry < 1 and 1 or math.ceil(retry)
end

function _M.admit(dict, name, limits, now)
  if limits.bytes then
    local start, key = window("b", name, limits, now)
    local moved = dict:get(key)
    if type(moved) == "number" and moved >= limits.bytes then return false, retry_after(start, limits, now) end
  end
  if not limits.requests then return true end
  local start, key = window("l", name, limits, now)
  local n = dict:incr(key, 1, 0, limits.window + 1)
  if not n then return true end
  if n > limits.requests then
    dict:incr(key, -1)
    return false, retry_after(start, limits, now)
  end
  return true
end

--- add_bytes(dict, name, limits, now, n)
-- Counts `n` bytes moved by a request of tenant `name` that ended at
-- `now`, against `limits.bytes` (nothing without it).
function _M.add_bytes(dict, name, limits, now, n)
  if not limits.bytes or type(n) ~= "number" or n <= 0 then return end
  local _, key = window("b", name, limits, now)
  dict:incr(key, n, 0, limits.window + 1)
end

return _M
