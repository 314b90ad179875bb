--- Checkpoints of resumable transfers: a small JSON file, written
-- atomically (a temporary file renamed over the old one) so a process that
-- dies at any instant leaves either the previous checkpoint or the new one,
-- never half of one. Holds no secrets: ids, sizes, ETags and checksums only.
local cjson = require "cjson.safe"
local errors = require "objstore.errors"

local io_open, os_rename, os_remove, type, tostring = io.open, os.rename, os.remove, type, tostring

local _M = { VERSION = 1 }

--- Reads a checkpoint. Returns the table, or nil when there is none, or
-- nil, err when the file exists but is not a checkpoint (never silently).
function _M.read(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local t, err = cjson.decode(text)
  if type(t) ~= "table" or t.version ~= _M.VERSION or type(t.kind) ~= "string" then
    return nil, errors.new{ code = "CorruptCheckpoint",
      message = "checkpoint " .. path .. " is not readable: " .. tostring(err or "wrong shape"), retryable = false }
  end
  return t
end

--- Writes t atomically to path. Returns true or nil, err.
function _M.write(path, t)
  t.version = _M.VERSION
  local text = cjson.encode(t)
  if not text then
    return nil, errors.new{ code = "LocalFileError", message = "cannot encode checkpoint", retryable = false }
  end
  local tmp = path .. ".tmp"
  local f, err = io_open(tmp, "wb")
  if not f then return nil, errors.new{ code = "LocalFileError", message = tostring(err), retryable = false } end
  local ok, werr = f:write(text)
  if ok then ok, werr = f:flush() end
  f:close()
  if ok then ok, werr = os_rename(tmp, path) end
  if not ok then
    os_remove(tmp)
    return nil, errors.new{ code = "LocalFileError", message = tostring(werr), retryable = false }
  end
  return true
end

function _M.remove(path)
  os_remove(path)
  os_remove(path .. ".tmp")
end

return _M
