--- Part sizing for multipart transfers: a pure function, so it can be
-- tested alone. Parts never exceed the provider's count limit, never fall
-- below its minimum size (the last part excepted), and are whole MiB when
-- grown, like aws-c-s3's part-size calculation.
local dialects = require "objstore.engine.dialect"
local defaults = require "objstore.transfer.defaults"

local ipairs = ipairs

local _M = {}

local MiB = 1024 * 1024

--- The part limits of each provider (the dialects' `limits`, by name).
_M.LIMITS = {}
for _, name in ipairs(dialects.names) do _M.LIMITS[name] = dialects[name].limits end
_M.DEFAULT_PART_SIZE = defaults.PART_SIZE

--- part_size(total, provider, wanted) -> size | nil, err
-- total: object size in bytes; wanted: the caller's part size (or nil).
function _M.part_size(total, provider, wanted)
  local lim = _M.LIMITS[provider or "s3"]
  if not lim then return nil, "unknown provider " .. tostring(provider) end
  if total < 0 then return nil, "size must not be negative" end
  if total > lim.max_object then
    return nil, string.format("%d bytes is more than the largest object (%d)", total, lim.max_object)
  end
  local size = wanted or _M.DEFAULT_PART_SIZE
  if size < lim.min_part then size = lim.min_part end
  if size > lim.max_part then size = lim.max_part end
  if math.ceil(total / size) > lim.max_parts then
    -- Grow to the smallest whole MiB that fits the part limit.
    size = math.ceil(total / lim.max_parts / MiB) * MiB
    if size > lim.max_part then return nil, "object too large for the part limit" end
  end
  return size
end

--- parts(total, size) -> { { number, offset, length }, ... } (at least one part).
function _M.parts(total, size)
  local list = {}
  local n = math.max(1, math.ceil(total / size))
  for i = 1, n do
    local offset = (i - 1) * size
    local length = math.min(size, total - offset)
    list[i] = { number = i, offset = offset, length = length }
  end
  return list
end

--- For streams of unknown size: the part size to use once `count` parts
-- have been sent, growing so that max_parts parts can hold the largest
-- object (the first 1000 parts at the base size, then doubling every 1000
-- parts up to the maximum part size).
function _M.stream_part_size(count, provider, base)
  local lim = _M.LIMITS[provider or "s3"]
  local size = math.max(base or _M.DEFAULT_PART_SIZE, lim.min_part)
  local steps = math.floor(count / 1000)
  for _ = 1, steps do
    size = size * 2
    if size >= lim.max_part then return lim.max_part end
  end
  return size
end

return _M
