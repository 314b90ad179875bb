--- The join of a sync's two sides (rclone's march): two streams of
-- entries, each sorted by `rel` in the same byte order, walked together
-- name by name. Each step gives a source-only entry (s, nil), a
-- destination-only one (nil, d) or the pair of one name (s, d).
--
-- The ordering is the streams' own, never re-established here: the walk
-- composes local names to NFC (objstore.sync.names.nfc) and sorts them as
-- strings, a listing arrives in the store's byte order (checked by
-- objstore.sync.remote), and both are relative to a prefix ending in "/"
-- (objstore.sync.names.prefix), so "p/x" sorts before "p2/x" on both sides.
-- Strings compare with `<`, as the sort of the walk does.
--
-- A stream is read only when the join needs its next entry (after the
-- caller took the current one, or asks `more()`): a listing read page by
-- page fetches no page earlier than the sync needs it, and a failing
-- stream (the caller's `next` returning nil) reads as its end.
local setmetatable = setmetatable

local _M = {}

local Join = {}
Join.__index = Join

--- join.new(src_next, dst_next) -> join: each argument a function
-- returning the next entry of its side, nil at the end.
function _M.new(src_next, dst_next)
  return setmetatable({ src_next = src_next, dst_next = dst_next, adv_s = true, adv_d = true }, Join)
end

--- join:more() -> whether an entry is left on either side (reads the
-- streams the last step consumed, source first).
function Join:more()
  if self.adv_s then
    self.s, self.adv_s = self.src_next(), false
  end
  if self.adv_d then
    self.d, self.adv_d = self.dst_next(), false
  end
  return self.s ~= nil or self.d ~= nil
end

--- join:next() -> s, d: the next name's entries (one may be nil), or
-- nil, nil at the end of both streams.
function Join:next()
  if not self:more() then return nil, nil end
  local s, d = self.s, self.d
  if s and (not d or s.rel < d.rel) then
    self.adv_s = true
    return s, nil
  elseif not s or d.rel < s.rel then
    self.adv_d = true
    return nil, d
  end
  self.adv_s, self.adv_d = true, true
  return s, d
end

--- join.list(src, dst) -> { {s, d}, ... }: the whole join of two lists (tests, small plans).
function _M.list(src, dst)
  local i, j = 0, 0
  local jn = _M.new(function() i = i + 1 return src[i] end, function() j = j + 1 return dst[j] end)
  local out = {}
  while jn:more() do
    local s, d = jn:next()
    out[#out + 1] = { s, d }
  end
  return out
end

return _M
