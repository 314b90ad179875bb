--- What the layer above does for a transport that lacks a capability of
-- the contract (objstore.transport): a file range or buffer body becomes a reader, a
-- file sink a function writing at the offset, and the digests a transport
-- cannot compute while streaming are computed here. The curl transport
-- does all of it in C; a minimal custom transport gets the same requests
-- and transfers verify the same way over it.
local checksum = require "objstore.checksum"
local lfs = require "lfs"
local core = require "objstore.core"

local type, ipairs, io_open, math_min = type, ipairs, io.open, math.min

local _M = {}

local is_buffer = core.buffer.is

local CHUNK = 1024 * 1024

local function hashers(names)
  local hs = {}
  for i, name in ipairs(names) do hs[i] = checksum.new(name) end
  return hs
end

local function feed(hs, s)
  for _, h in ipairs(hs) do h:update(s) end
end

local function results(names, hs)
  local out = {}
  for i, name in ipairs(names) do out[name] = hs[i]:digest() end
  return out
end

--- Feeds `length` bytes of a file from `offset`.
local function feed_file(hs, path, offset, length)
  local f = io_open(path, "rb")
  if not f then return end
  f:seek("set", offset or 0)
  local left = length
  while left > 0 do
    local chunk = f:read(math_min(CHUNK, left))
    if not chunk then break end
    feed(hs, chunk)
    left = left - #chunk
  end
  f:close()
end

--- A reader over a file range (the whole rest of the file without length).
local function range_reader(body)
  local offset = body.offset or 0
  local length = body.length or ((lfs.attributes(body.file, "size") or offset) - offset)
  local f, left = nil, length
  local function reader()
    if not f then
      local err
      f, err = io_open(body.file, "rb")
      if not f then return nil, err end
      f:seek("set", offset)
    end
    if left <= 0 then return nil end
    local chunk = f:read(math_min(CHUNK, left))
    if not chunk then return nil, body.file .. " is shorter than the range being sent" end
    left = left - #chunk
    return chunk
  end
  return reader, length, function() if f then f:close() end end
end

--- A reader over a core.buffer, in chunks (for a transport that cannot
-- send the buffer itself).
local function buffer_reader(buf)
  local pos, len = 1, buf:len()
  return function()
    if pos > len then return nil end
    local chunk = buf:sub(pos, pos + CHUNK - 1)
    pos = pos + #chunk
    return chunk
  end
end

--- A function sink writing byte i of the body at offset + i of a file.
local function file_writer(sink)
  local f
  local function write(chunk)
    if not f then
      local err
      f, err = io_open(sink.file, "r+b")
      if not f then f, err = io_open(sink.file, "w+b") end
      if not f then return nil, err end
      f:seek("set", sink.offset or 0)
    end
    local ok, err = f:write(chunk)
    if not ok then return nil, err end
    return true
  end
  return write, function() if f then f:close() end end
end

--- Adapts transport request `treq` to capabilities `caps` (from
-- objstore.transport.capabilities). Returns nil when the transport does all
-- that was asked, else a function(res) to call with the result (it fills
-- res.hashes / res.body_hashes and closes what was opened).
function _M.request(caps, treq)
  -- Without byte progress a request's bytes count when it ends.
  if not caps.progress then treq.on_progress = nil end
  if caps.file_body and caps.file_sink and caps.hashes and caps.body_hashes and caps.buffer_body then return nil end
  local closers = {}
  if not caps.buffer_body and is_buffer(treq.body) then
    treq.body, treq.body_length = buffer_reader(treq.body), treq.body:len()
  end
  local file_sink = type(treq.sink) == "table" and treq.sink or nil
  if type(treq.body) == "table" and not caps.file_body then
    local reader, length, close = range_reader(treq.body)
    treq.body, treq.body_length = reader, length
    closers[#closers + 1] = close
  end
  if file_sink and not caps.file_sink then
    local write, close = file_writer(file_sink)
    treq.sink = write
    closers[#closers + 1] = close
  end
  local res_names = treq.hashes and #treq.hashes > 0 and not caps.hashes and treq.hashes or nil
  local body_names = treq.body_hashes and #treq.body_hashes > 0 and not caps.body_hashes and treq.body_hashes or nil
  if not res_names and not body_names and #closers == 0 then return nil end
  local res_h, body_h
  if res_names then
    treq.hashes = nil
    res_h = hashers(res_names)
    local sink = treq.sink
    if type(sink) == "function" then
      treq.sink = function(chunk)
        feed(res_h, chunk)
        return sink(chunk)
      end
    end
  end
  if body_names then
    treq.body_hashes = nil
    body_h = hashers(body_names)
    local body = treq.body
    if type(body) == "string" then
      feed(body_h, body)
    elseif type(body) == "table" then
      local offset = body.offset or 0
      feed_file(body_h, body.file, offset, body.length or ((lfs.attributes(body.file, "size") or offset) - offset))
    elseif type(body) == "function" then
      treq.body = function()
        local chunk, err = body()
        if chunk then feed(body_h, chunk) end
        return chunk, err
      end
    end
  end
  return function(res)
    for _, close in ipairs(closers) do close() end
    if not res then return end
    if res_h then
      if treq.sink == nil then
        feed(res_h, res.body or "")
      elseif type(treq.sink) == "table" and (res.status or 0) < 300 then
        feed_file(res_h, file_sink.file, file_sink.offset or 0, res.bytes or 0)
      end
      res.hashes = results(res_names, res_h)
    end
    if body_h then res.body_hashes = results(body_names, body_h) end
  end
end

return _M
