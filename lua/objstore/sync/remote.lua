--- The remote side of a sync: a listing streamed page by page (one page
-- held at a time, so memory stays flat however many objects there are),
-- as entries { rel, key, size, etag, last_modified, storage_class } in the
-- store's byte order. Directory markers (keys ending in "/") are counted
-- and left out: they are not files.
local names = require "objstore.sync.names"

local tonumber, ipairs = tonumber, ipairs

local _M = {}

--- A listing entry of object o below a prefix of length plen.
local function entry(o, plen)
  return { rel = o.key:sub(plen + 1), key = o.key, size = tonumber(o.size) or 0, etag = o.etag,
    last_modified = o.last_modified, mtime = names.parse_time(o.last_modified), storage_class = o.storage_class }
end

--- The pages of a bucket's listing under prefix: function(token) -> page | nil, err.
function _M.pager(c, bucket, prefix)
  return function(token)
    return c:send(c:build_request("list_objects", bucket, { prefix = prefix ~= "" and prefix or nil,
      continuation_token = token }))
  end
end

--- stream(pages, prefix, stats) -> iterator giving entries, then nil; a
-- failed page gives `false, err` once. `pages(token)` returns a
-- ListObjectsV2-shaped page ({ contents, is_truncated, next_continuation_token }).
-- stats.pages, stats.markers are counted.
function _M.stream(pages, prefix, stats)
  local plen = #prefix
  local page, i, n, token, done, failed = nil, 1, 0, nil, false, false
  return function()
    while true do
      if failed then return nil end
      if page and i <= n then
        local o = page.contents[i]
        page.contents[i] = nil -- read once: the page shrinks as it is consumed
        i = i + 1
        local key = o.key
        if key:sub(-1) == "/" then
          stats.markers = (stats.markers or 0) + 1
        elseif key:sub(1, plen) == prefix then
          return entry(o, plen)
        end
      else
        if done then return nil end
        local p, err = pages(token)
        if not p then
          failed = true
          return false, err
        end
        stats.pages = (stats.pages or 0) + 1
        page, i = p, 1
        page.contents = page.contents or {}
        n = #page.contents
        token = p.next_continuation_token
        done = not (p.is_truncated and token)
      end
    end
  end
end

--- A listing read in ranges at once: `bounds` are keys cutting the key
-- space (every 1000th name of the local side, which a store in sync has
-- too), and each range (bounds[i], bounds[i+1]] is listed from
-- start-after = bounds[i] concurrently with its neighbours, `window`
-- ranges at a time through the client's run loop. A range whose page
-- stops short of its upper bound is continued one page after another.
-- When the store is in sync this sends as many LISTs as a sequential
-- listing, all in flight together; memory stays at `window` pages.
-- Returns the same iterator as stream().
function _M.ranged(c, bucket, prefix, bounds, stats, window)
  window = window or 8
  local plen = #prefix
  local ranges = { { after = nil, upto = bounds[1] } }
  for i, b in ipairs(bounds) do ranges[#ranges + 1] = { after = b, upto = bounds[i + 1] } end
  local fetched = {} -- range index -> page | false, err
  local function list_req(after, token)
    return c:build_request("list_objects", bucket, { prefix = prefix ~= "" and prefix or nil, start_after = after,
      continuation_token = token })
  end
  local function prefetch(first)
    local i = first - 1
    local ok, err = c:run{ concurrency = window,
      next = function()
        i = i + 1
        if i >= first + window or not ranges[i] then return nil end
        local req = list_req(ranges[i].after)
        req.context = i
        return req
      end,
      done = function(req, page, perr)
        fetched[req.context] = page or { failed = perr }
        return true
      end }
    if not ok then fetched[first] = { failed = err } end
  end
  local ri, page, pi, pn, failed, finished = 0, nil, 1, 0, false, false
  local function next_range()
    ri = ri + 1
    if not ranges[ri] then return false end
    if fetched[ri] == nil then prefetch(ri) end
    page, fetched[ri] = fetched[ri], nil
    pi, pn = 1, page.contents and #page.contents or 0
    return true
  end
  return function()
    while true do
      if failed or finished then return nil end
      if not page then
        if not next_range() then
          finished = true
          return nil
        end
        if page.failed then
          failed = true
          return false, page.failed
        end
        stats.pages = (stats.pages or 0) + 1
      end
      local upto = ranges[ri].upto
      if pi <= pn then
        local o = page.contents[pi]
        page.contents[pi] = nil
        pi = pi + 1
        local key = o.key
        if upto and key >= upto then
          -- The range's upper bound (or past it: the next range's page
          -- starts there): this range is complete.
          page = nil
        end
        if upto and key > upto then -- luacheck: ignore 542
          -- Not this range's: listed again by the next range.
        elseif key:sub(-1) == "/" then
          stats.markers = (stats.markers or 0) + 1
        elseif key:sub(1, plen) == prefix then
          return entry(o, plen)
        end
      elseif not (page.is_truncated and page.next_continuation_token) then
        -- The listing ends here: no later range has anything.
        finished = true
        return nil
      else
        -- This range has more than one page: continue it.
        local p, err = c:send(list_req(nil, page.next_continuation_token))
        if not p then
          failed = true
          return false, err
        end
        stats.pages = stats.pages + 1
        page, pi, pn = p, 1, #(p.contents or {})
      end
    end
  end
end

return _M
