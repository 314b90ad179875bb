--- Several endpoints for one client, each behind a circuit breaker:
--   closed    requests go to it;
--   open      after `threshold` consecutive failures it is left alone for
--             `cooldown` seconds;
--   half-open after the cool-down one probe request may go; its success
--             closes the breaker, its failure opens it again.
-- Requests go to the healthiest endpoint (closed first, in the order given,
-- then the one whose cool-down ends soonest), so while any endpoint works
-- no error reaches the caller: a failed attempt is retried on the next.
local core = require "objstore.core"

local monotonic = core.time.monotonic
local setmetatable, ipairs = setmetatable, ipairs

local _M = {}

local Set = {}
Set.__index = Set

--- new(list_of_parsed_endpoints, { threshold = 3, cooldown = 30, clock = fn })
function _M.new(eps, opts)
  opts = opts or {}
  local self = setmetatable({ threshold = opts.threshold or 3, cooldown = opts.cooldown or 30,
    clock = opts.clock or monotonic, members = {} }, Set)
  for i, ep in ipairs(eps) do
    self.members[i] = { ep = ep, index = i, state = "closed", failures = 0, opened_at = 0, probing = false,
      requests = 0, errors = 0 }
  end
  return self
end

--- The member to use now, or nil when every breaker is open and cooling.
-- `avoid` (a member) is skipped when another is usable: a retry goes elsewhere.
function Set:pick(avoid)
  local now = self.clock()
  local best, fallback
  for _, m in ipairs(self.members) do
    if m.state == "open" and now - m.opened_at >= self.cooldown then
      m.state, m.probing = "half-open", false
    end
    local usable = m.state == "closed" or (m.state == "half-open" and not m.probing)
    if usable then
      if m ~= avoid then
        best = best or m
      else
        fallback = m
      end
    end
  end
  best = best or fallback
  if not best then
    -- All open: the one whose cool-down ends first gets an early probe,
    -- so a request still has somewhere to go.
    for _, m in ipairs(self.members) do
      if not best or m.opened_at < best.opened_at then best = m end
    end
  end
  if best.state == "half-open" then best.probing = true end
  best.requests = best.requests + 1
  return best
end

--- The member a request would go to now, without counting one (for a
-- presigned URL, which objstore does not send itself): the first closed
-- or cooled-down one, else the one whose cool-down ends first.
function Set:healthiest()
  local now, best
  for _, m in ipairs(self.members) do
    if m.state ~= "open" then return m end
    -- The clock only for an open member (not read at all in the common case).
    now = now or self.clock()
    if now - m.opened_at >= self.cooldown then return m end
    if not best or m.opened_at < best.opened_at then best = m end
  end
  return best
end

function Set.success(_, m)
  m.failures, m.probing = 0, false
  m.state = "closed"
end

function Set:failure(m)
  m.errors = m.errors + 1
  m.failures = m.failures + 1
  m.probing = false
  if m.state == "half-open" or m.failures >= self.threshold then
    m.state = "open"
    m.opened_at = self.clock()
  end
end

--- Whether an error says the endpoint itself is unwell (no answer, or a
-- 5xx), as opposed to a problem with the request.
function _M.counts_against(err)
  if not err then return false end
  if err.status == nil then return err.retryable == true end
  return err.status >= 500
end

function Set:usable_count()
  local now, n = self.clock(), 0
  for _, m in ipairs(self.members) do
    if m.state ~= "open" or now - m.opened_at >= self.cooldown then n = n + 1 end
  end
  return n
end

_M.Set = Set
return _M
