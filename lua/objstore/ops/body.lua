--- Request bodies for uploads: a string, a core.buffer, a file path
-- ({path = ...}), an open file handle, or a reader function. Returns what the transport sends and
-- the Content-MD5 to send with it.
local checksum = require "objstore.checksum"
local errors = require "objstore.errors"
local core = require "objstore.core"
local hashjob = require "objstore.hashjob"
local lfs = require "lfs"

local type, io_type = type, io.type
local b64 = core.encode.base64_encode
local concat = table.concat

local _M = {}

local CHUNK = 1024 * 1024

--- Describes a body. `opts.content_md5`: true (default) computes it when
-- the body can be read twice, false never, a string is used as is.
-- Returns { body = <transport body>, length = n, md5 = b64|nil, path = p|nil } or nil, err.
-- Misuse raises naming client method `name`, argument #n.
function _M.prepare(name, n, body, opts)
  opts = opts or {}
  local want_md5 = opts.content_md5
  if want_md5 == nil then want_md5 = true end
  local t = type(body)
  local out
  if body == nil then
    out = { body = "", length = 0 }
  elseif t == "string" then
    out = { body = body, length = #body }
  elseif core.buffer.is(body) then
    -- A core.buffer (upload_stream's parts): sent and hashed in place.
    out = { body = body, length = body:len() }
    if want_md5 == true then out.md5 = b64(body:digest("md5")) end
  elseif t == "table" and type(body.path) == "string" then
    local size = lfs.attributes(body.path, "size")
    if not size then
      return nil, errors.new{ code = "LocalFileError", message = "cannot read " .. body.path, path = body.path,
        retryable = false }
    end
    local offset = body.offset or 0
    local length = body.length or (size - offset)
    if offset < 0 or length < 0 or offset + length > size then
      errors.argument("client." .. name, n, "body", "offset/length outside the file (size " .. size .. ")")
    end
    out = { body = { file = body.path, offset = offset, length = length }, length = length, path = body.path }
    if want_md5 == true then
      local md5, err = hashjob.file("md5", body.path, offset, length)
      if not md5 then
        return nil, errors.is(err) and err or errors.new{ code = "LocalFileError", message = tostring(err),
          retryable = false }
      end
      out.md5 = b64(md5)
    end
  elseif io_type(body) == "file" and not body:seek("cur") then
    -- Not seekable (a pipe, a terminal, a closed stream): read like a
    -- reader of unknown length, once (so never retried).
    local fh = body
    return _M.prepare(name, n, function()
      local chunk, err = fh:read(CHUNK)
      if chunk == nil and err then return nil, "reading the file handle: " .. tostring(err) end
      return chunk
    end, opts)
  elseif io_type(body) == "file" then
    local start = body:seek("cur")
    local size = body:seek("end")
    body:seek("set", start)
    local length = size - start
    if want_md5 == true then
      local h = checksum.new("md5")
      while true do
        local chunk = body:read(CHUNK)
        if not chunk then break end
        h:update(chunk)
      end
      body:seek("set", start)
      out = { md5 = h:base64digest() }
    else
      out = {}
    end
    local fh = body
    out.body = function() return fh:read(CHUNK) end
    -- A file handle can be read again from where it started: retryable.
    out.rewind = function() fh:seek("set", start) end
    out.length = length
  elseif t == "function" then
    if opts.length then
      out = { body = body, length = opts.length }
    else
      -- Unknown length: S3 needs Content-Length on a single PUT, so the
      -- stream is gathered (upload_stream sends large streams in parts).
      local parts = {}
      while true do
        local chunk, err = body()
        if chunk == nil then
          if err then return nil, errors.new{ code = "ReaderError", message = tostring(err), retryable = false } end
          break
        end
        parts[#parts + 1] = chunk
      end
      local s = concat(parts)
      out = { body = s, length = #s }
    end
  else
    errors.argument("client." .. name, n, "body",
      "must be a string, {path=...}, a file handle or a reader function, got " .. t)
  end
  if type(want_md5) == "string" then
    out.md5 = want_md5
  elseif want_md5 == true and not out.md5 and type(out.body) == "string" then
    out.md5 = checksum.md5_base64(out.body)
  end
  return out
end

return _M
