--- The sync-state file kept beside the local side of a sync: per relative
-- name, what the last sync saw of the object (ETag, size) and of the local
-- file (size, mtime). It lets a no-op run decide from the listing alone,
-- which carries no user metadata: an object whose ETag and size are the
-- ones recorded, next to a file whose size and mtime are the ones
-- recorded, is in sync, with no HEAD. Format: one JSON object per line,
-- a header line first; written with core.fs.write_atomic (an exclusive
-- temporary file, fsync, rename), so a crash leaves the previous state. A
-- state that cannot be read is ignored (the run then decides from the
-- listing and HEADs).
--
-- Default location: "$XDG_STATE_HOME/objstore/sync/<sha256>.state"
-- ($XDG_STATE_HOME defaults to ~/.local/state), one file per pair of ends,
-- named by the SHA-256 of the local root's resolved absolute path and the
-- remote's id; directories made with mode 0700. Never inside the user's
-- directory (where other tools would upload it). The former location,
-- "<local root>/.objstore-sync-<crc32 of the remote id>", is still read
-- when the new file is absent, never written.
local cjson = require "cjson.safe"
local core = require "objstore.core"
local lfs = require "lfs"

local io_open, pairs, tostring = io.open, pairs, tostring
local format, concat, getenv = string.format, table.concat, os.getenv
local fs = core.fs

local _M = {}

local VERSION = 1

--- The absolute path of p with links resolved, as far as it exists (the
-- missing tail joined as written): stable across runs that create it.
function _M.abs_path(p)
  local real = fs.realpath(p)
  if real then return real end
  if p:sub(1, 1) ~= "/" then p = lfs.currentdir() .. "/" .. p end
  local parent, base = p:match("^(.*)/([^/]+)/*$")
  if not parent then return p end
  if parent == "" then parent = "/" end
  local rp = _M.abs_path(parent)
  return (rp == "/" and "" or rp) .. "/" .. base
end

--- The directory of state files: $XDG_STATE_HOME/objstore/sync.
function _M.state_dir()
  local base = getenv("XDG_STATE_HOME")
  if not base or base:sub(1, 1) ~= "/" then
    local home = getenv("HOME")
    if not home or home == "" then return nil end
    base = home .. "/.local/state"
  end
  return base .. "/objstore/sync"
end

function _M.legacy_path(root, remote_id)
  return format("%s/.objstore-sync-%s", root, core.hash.tohex(core.crc.compute("crc32", remote_id)))
end

--- default_path(root, remote_id) -> path | nil (no HOME)
function _M.default_path(root, remote_id)
  local dir = _M.state_dir()
  if not dir then return nil end
  local h = core.hash.new("sha256")
  h:update(_M.abs_path(root))
  h:update("\0")
  h:update(remote_id)
  local name = core.hash.tohex(h:digest())
  h:close()
  return dir .. "/" .. name .. ".state"
end

--- mkdir -p of path's directory, each directory made with mode 0700.
local function make_parents(path)
  local dir = path:match("^(.*)/[^/]*$")
  if not dir or dir == "" or lfs.attributes(dir, "mode") == "directory" then return true end
  local ok, err = make_parents(dir)
  if not ok then return nil, err end
  return fs.mkdir(dir, 448) -- 0700
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
-- Parent directories are made (0700); the file is written atomically (0600).
function _M.save(path, remote_id, map)
  local ok, err = make_parents(path)
  if not ok then return nil, tostring(err and err.message or err) end
  local lines = { cjson.encode{ v = VERSION, remote = remote_id } }
  for k, r in pairs(map) do
    lines[#lines + 1] = cjson.encode{ k = k, e = r.etag, s = r.size, ls = r.local_size, lt = r.local_mtime }
  end
  lines[#lines + 1] = ""
  local wok, werr = fs.write_atomic(path, concat(lines, "\n"), 384) -- 0600
  if not wok then return nil, tostring(werr and werr.message or werr) end
  return true
end

return _M
