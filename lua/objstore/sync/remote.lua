--- The remote side of a sync: a listing streamed page by page (one page
-- held at a time, so memory stays flat however many objects there are),
-- as entries { rel, key, size, etag, last_modified, storage_class } in the
-- store's byte order. Directory markers (keys ending in "/") are counted
-- and left out: they are not files.
local names = require "objstore.sync.names"

local tonumber = tonumber

local _M = {}

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
          return { rel = key:sub(plen + 1), key = key, size = tonumber(o.size) or 0, etag = o.etag,
            last_modified = o.last_modified, mtime = names.parse_time(o.last_modified),
            storage_class = o.storage_class }
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

return _M
