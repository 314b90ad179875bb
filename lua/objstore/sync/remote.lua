--- The remote side of a sync: a listing streamed page by page (one page
-- held at a time, so memory stays flat however many objects there are),
-- as entries { rel, key, size, etag, last_modified, storage_class } in the
-- store's byte order. Directory markers (keys ending in "/") are counted
-- and left out: they are not files.
local errors = require "objstore.errors"
local names = require "objstore.sync.names"

local tonumber, ipairs, type, format = tonumber, ipairs, type, string.format

local _M = {}

--- A listing entry of object o below a prefix of length plen.
local function entry(o, plen)
  return { rel = o.key:sub(plen + 1), key = o.key, size = tonumber(o.size) or 0, etag = o.etag,
    last_modified = o.last_modified, mtime = names.parse_time(o.last_modified), storage_class = o.storage_class }
end

--- The listing's own errors: not retryable (the same request would get
-- the same answer), and never a silent end of the listing.
local function fail(code, message)
  return errors.new{ code = code, message = message, op = "ListObjectsV2", retryable = false }
end

--- A checker of the page sequence: check(page) -> token | nil when the
-- listing ends | false, err. A truncated page without a token, and a
-- token this listing already sent, are errors (TruncatedListing,
-- PaginationLoop): one token string is kept a page.
local function tokens(first)
  local seen = {}
  if first then seen[first] = true end
  return function(p)
    if not p.is_truncated then return nil end
    local token = p.next_continuation_token
    if type(token) ~= "string" or token == "" then
      return false, fail("TruncatedListing", "the listing page says IsTruncated=true but gives no "
        .. "NextContinuationToken: the listing cannot go on and is incomplete")
    end
    if seen[token] then
      return false, fail("PaginationLoop", "The same next token was received twice: continuation token "
        .. format("%q", token:sub(1, 200)) .. " was already used in this listing")
    end
    seen[token] = true
    return token
  end
end

--- A checker of each key: the sync's join needs the store's byte order,
-- strictly increasing; a key at or before the last one (a page served
-- again, an unsorted store) is an error, not a wrong plan.
local function order()
  local last
  return function(key)
    if type(key) ~= "string" then
      return fail("MalformedResponse", "the listing holds an entry without a key")
    end
    -- A key no request can name (not UTF-8, a NUL, too long) goes on to
    -- the sync, which fails that one name (InvalidName) and holds back
    -- every delete: never silently left out (that would make a delete
    -- candidate), never the end of the whole run.
    if last and key <= last then
      return fail("UnsortedListing", "the listing is not in increasing key order: "
        .. format("%q", key:sub(1, 200)) .. " came after " .. format("%q", last:sub(1, 200)))
    end
    last = key
    return nil
  end
end

--- The entry of listed object o below prefix (of length plen), or nil
-- for a directory marker (counted in stats.markers: not a file) or a key
-- outside the prefix (a store that ignored prefix=).
local function take(o, prefix, plen, stats)
  local key = o.key
  if key:sub(-1) == "/" then
    stats.markers = (stats.markers or 0) + 1
  elseif key:sub(1, plen) == prefix then
    return entry(o, plen)
  end
  return nil
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
  local next_token, in_order = tokens(), order()
  return function()
    while true do
      if failed then return nil end
      if page and i <= n then
        local o = page.contents[i]
        page.contents[i] = nil -- read once: the page shrinks as it is consumed
        i = i + 1
        local key = o.key
        local oerr = in_order(key)
        if oerr then
          failed = true
          return false, oerr
        end
        local e = take(o, prefix, plen, stats)
        if e then return e end
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
        local terr
        token, terr = next_token(p)
        if token == false then
          -- The page's entries would be a part of an incomplete listing.
          failed = true
          return false, terr
        end
        done = token == nil
      end
    end
  end
end

--- The continuation token of a page that a range (upper bound upto) must
-- follow, or nil: the page is truncated with a token, and its last key is
-- before upto. The consumer checks the page sequence itself (tokens()):
-- this only decides what to fetch ahead.
local function continues(page, upto)
  if not page.is_truncated then return nil end
  local token = page.next_continuation_token
  if type(token) ~= "string" or token == "" then return nil end
  local contents = page.contents
  local last = contents and contents[#contents]
  if upto and last and (type(last.key) ~= "string" or last.key >= upto) then return nil end
  return token
end

--- A listing read in ranges at once: `bounds` are keys cutting the key
-- space (every 1000th name of the local side, which a store in sync has
-- too), and each range (bounds[i], bounds[i+1]] is listed from
-- start-after = bounds[i] concurrently with its neighbours, `window`
-- ranges at a time through the client's run loop. A store may end a page
-- before max-keys (rgw does, at about 700 keys): a range whose page stops
-- short of its upper bound gets its next page in the same run (at most
-- CHAIN pages a range ahead), later ones one page after another. With
-- `per_range` (the number of local names in each range but the last),
-- that next page asks for max-keys = the names the range still lacks (and
-- a few more), not for a whole page of which most would be the next
-- range's and thrown away. When the store is in sync this sends about as
-- many LISTs as a sequential listing, all in flight together; memory
-- stays at `window` * CHAIN pages.
-- Returns the same iterator as stream().
local CHAIN, SLACK = 2, 8
function _M.ranged(c, bucket, prefix, bounds, stats, window, per_range)
  window = window or 8
  local plen = #prefix
  local ranges = { { after = nil, upto = bounds[1] } }
  for i, b in ipairs(bounds) do ranges[#ranges + 1] = { after = b, upto = bounds[i + 1] } end
  -- range index -> { page, next page, ... } as fetched ahead ({ failed = err } for a failure)
  local fetched = {}
  local function list_req(after, token, max_keys)
    return c:build_request("list_objects", bucket, { prefix = prefix ~= "" and prefix or nil, start_after = after,
      continuation_token = token, max_keys = max_keys })
  end
  local function prefetch(first)
    local i = first - 1
    local queue = {} -- continuations to send in this run
    local ok, err = c:run{ concurrency = window,
      next = function()
        local n = #queue
        if n > 0 then
          local req = queue[n]
          queue[n] = nil
          return req
        end
        i = i + 1
        if i >= first + window or not ranges[i] then return nil end
        fetched[i] = {}
        local req = list_req(ranges[i].after)
        req.context = { range = i, n = 1, taken = 0 }
        return req
      end,
      done = function(req, page, perr)
        local ctx = req.context
        fetched[ctx.range][ctx.n] = page or { failed = perr }
        local token = page and ctx.n < CHAIN and continues(page, ranges[ctx.range].upto)
        if token then
          -- What the range still lacks, when it is known and positive;
          -- otherwise a full page.
          local taken, want = ctx.taken + #(page.contents or {}), nil
          if per_range and ranges[ctx.range].upto and taken < per_range then
            want = per_range - taken + SLACK
          end
          local nreq = list_req(nil, token, want)
          nreq.context = { range = ctx.range, n = ctx.n + 1, taken = taken }
          queue[#queue + 1] = nreq
        end
        return true
      end }
    if not ok then
      -- The run itself failed: what it did not fetch is fetched again when reached.
      for j = first, first + window - 1 do fetched[j] = nil end
      fetched[first] = { { failed = err } }
    end
  end
  local ri, page, pi, pn, failed, finished = 0, nil, 1, 0, false, false
  local ahead, ahead_i -- the current range's pages fetched ahead, and the index of the one read
  local next_token, in_order
  local last_yielded = order()
  local function next_range()
    ri = ri + 1
    if not ranges[ri] then return false end
    if fetched[ri] == nil then prefetch(ri) end
    ahead, ahead_i, fetched[ri] = fetched[ri], 1, nil
    page = ahead[1]
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
        -- Each range is its own sequence of pages and keys; a page's
        -- token is checked as it comes, before its entries are taken.
        next_token, in_order = tokens(), order()
        local terr
        page.token, terr = next_token(page)
        if page.token == false then
          failed = true
          return false, terr
        end
      end
      local upto = ranges[ri].upto
      if pi <= pn then
        local o = page.contents[pi]
        page.contents[pi] = nil
        pi = pi + 1
        local key = o.key
        local oerr = in_order(key)
        if oerr then
          failed = true
          return false, oerr
        end
        if upto and key >= upto then
          -- The range's upper bound (or past it: the next range's page
          -- starts there): this range is complete.
          page = nil
        end
        if upto and key > upto then -- luacheck: ignore 542
          -- Not this range's: listed again by the next range.
        else
          -- Across ranges too, what is taken must keep increasing.
          oerr = last_yielded(key)
          if oerr then
            failed = true
            return false, oerr
          end
          local e = take(o, prefix, plen, stats)
          if e then return e end
        end
      elseif page.token == nil then
        -- The listing ends here: no later range has anything.
        finished = true
        return nil
      else
        -- This range has more than one page: continue it, with the page
        -- fetched ahead (asked for with this very token) if there is one.
        ahead_i = ahead_i + 1
        local p, err = ahead[ahead_i], nil
        if p then
          ahead[ahead_i] = nil
          if p.failed then p, err = nil, p.failed end
        else
          p, err = c:send(list_req(nil, page.token))
        end
        if not p then
          failed = true
          return false, err
        end
        stats.pages = stats.pages + 1
        local terr
        p.token, terr = next_token(p)
        if p.token == false then
          failed = true
          return false, terr
        end
        page, pi, pn = p, 1, #(p.contents or {})
      end
    end
  end
end

return _M
