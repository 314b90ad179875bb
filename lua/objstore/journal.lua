--- The repair journal of objstore.replicated: a small JSON document
-- rewritten whole and durably (a temporary file, fsync, rename over the old
-- one, fsync of the directory, all in C), so a crash at any instant leaves
-- either the previous journal or the new one, and an acknowledged write is
-- on disk. Holds bucket and key names and replica numbers, never secrets.
local cjson = require "cjson.safe"
local core = require "objstore.core"
local errors = require "objstore.errors"

local io_open, type, tostring = io.open, type, tostring

local _M = { VERSION = 1 }

--- Reads the journal at path: the table, nil when there is none, or nil,
-- err (code CorruptJournal) when the file is not a journal.
function _M.read(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local t, err = cjson.decode(text)
  if type(t) ~= "table" or t.version ~= _M.VERSION or t.kind ~= "journal" or type(t.entries) ~= "table" then
    return nil, errors.new{ code = "CorruptJournal", retryable = false,
      message = "repair journal " .. path .. " is not readable: " .. tostring(err or "wrong shape") }
  end
  return t
end

--- Writes journal t to path durably. Returns true or nil, err.
function _M.write(path, t)
  t.version = _M.VERSION
  local text = cjson.encode(t)
  if not text then
    return nil, errors.new{ code = "LocalFileError", message = "cannot encode the journal", retryable = false }
  end
  return core.fs.write_atomic(path, text, 384) -- 0600
end

return _M
