--- The sync-state file kept beside the local side of a sync: per relative
-- name, what the last sync saw of the object (ETag, size) and of the local
-- file (size, mtime). It lets a no-op run decide from the listing alone,
-- which carries no user metadata: an object whose ETag and size are the
-- ones recorded, next to a file whose size and mtime are the ones
-- recorded, is in sync, with no HEAD. Format: one JSON object per line,
-- a header line first; written to a temporary name and renamed, so a
-- crash leaves the previous state. A state that cannot be read is ignored
-- (the run then decides from the listing and HEADs).
--
-- Default location: "<local root>/.objstore-sync-<crc32 of the remote
-- URL>" (one per remote the directory is synced with); never synced itself.
local cjson = require "cjson.safe"
local core = require "objstore.core"

local io_open, os_rename, os_remove, pairs = io.open, os.rename, os.remove, pairs
local format = string.format

local _M = {}

local VERSION = 1

function _M.default_path(root, remote_id)
  return format("%s/.objstore-sync-%s", root, core.hash.tohex(core.crc.compute("crc32", remote_id)))
end

--- load(path, remote_id) -> map rel -> { etag, size, local_size, local_mtime } (empty when absent or unreadable)
function _M.load(path, remote_id)
  local map = {}
  local f = path and io_open(path, "rb")
  if not f then return map end
  local header = cjson.decode(f:read("*l") or "")
  if type(header) ~= "table" or header.v ~= VERSION or header.remote ~= remote_id then
    f:close()
    return map
  end
  for line in f:lines() do
    local t = cjson.decode(line)
    if type(t) == "table" and type(t.k) == "string" then
      map[t.k] = { etag = t.e, size = t.s, local_size = t.ls, local_mtime = t.lt }
    end
  end
  f:close()
  return map
end

--- Whether two maps hold the same records (then nothing needs writing).
function _M.same(a, b)
  local n = 0
  for k, r in pairs(a) do
    local o = b[k]
    if not o or o.etag ~= r.etag or o.size ~= r.size or o.local_size ~= r.local_size
      or o.local_mtime ~= r.local_mtime then
      return false
    end
    n = n + 1
  end
  for _ in pairs(b) do n = n - 1 end
  return n == 0
end

--- save(path, remote_id, map) -> true | nil, message
function _M.save(path, remote_id, map)
  local tmp = path .. ".tmp"
  local f, err = io_open(tmp, "wb")
  if not f then return nil, err end
  f:write(cjson.encode{ v = VERSION, remote = remote_id }, "\n")
  for k, r in pairs(map) do
    f:write(cjson.encode{ k = k, e = r.etag, s = r.size, ls = r.local_size, lt = r.local_mtime }, "\n")
  end
  local ok, werr = f:close()
  if not ok then
    os_remove(tmp)
    return nil, werr
  end
  local rok, rerr = os_rename(tmp, path)
  if not rok then
    os_remove(tmp)
    return nil, rerr
  end
  return true
end

return _M
