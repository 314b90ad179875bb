--- The transport chosen per call inside OpenResty: cosockets
-- (`objstore.transport.ngx`) in the phases that allow them, libcurl
-- (`objstore.transport.curl`) where nginx has no cosockets but blocking is
-- harmless (init, init_worker: before the worker serves), and a clear error
-- where I/O must not happen at all (log, header_filter, body_filter,
-- balancer, set: defer it with `objstore.openresty.defer`, which runs it in an
-- `ngx.timer.at(0, ...)` timer, a cosocket phase).
--
--    local auto = require "objstore.transport.auto"
--    local t = auto.new{ ngx = { read_timeout = 30 }, curl = { timeout = 30 } }
--    t:request(req)          -- whichever suits ngx.get_phase() now
--
-- `objstore.new{}` inside nginx uses this transport by default; outside
-- nginx (no `ngx` global) it is the curl transport itself.
-- `auto.new{ force = "curl", curl = {...} }` always uses libcurl and logs
-- one warning per worker the first time it is called in a request phase,
-- where libcurl blocks the whole worker (`objstore.new{ transport = "curl" }`
-- in nginx gives this one).
--
-- Both transports are made on first use, so nothing is done at `require`
-- or `new`. The capabilities are those both have (all of them).
-- @module objstore.transport.auto
local errors = require "objstore.errors"
local transport = require "objstore.transport"
local curl_transport = require "objstore.transport.curl"
local ngx_transport = require "objstore.transport.ngx"
local core = require "objstore.core"

local type, rawget, setmetatable = type, rawget, setmetatable
local _G = _G

local _M = { _VERSION = core._VERSION }

--- Phases where cosockets work.
_M.COSOCKET_PHASES = transport.COSOCKET_PHASES
--- Phases where no I/O may be done (nor blocking libcurl): defer it.
_M.NO_IO_PHASES = { log = true, header_filter = true, body_filter = true, balancer = true, set = true,
  exit_worker = true, ssl_session_store = true }

local warned = false -- per worker: the forced-curl warning is logged once

--- The current nginx phase, or nil outside nginx.
function _M.phase()
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then return nil end
  return ngx.get_phase()
end

--- "ngx", "curl" or nil, why: what a call in `phase` goes through.
function _M.choice(phase)
  if phase == nil then return "curl" end
  if _M.COSOCKET_PHASES[phase] then return "ngx" end
  if _M.NO_IO_PHASES[phase] then
    return nil, "no cosockets in the " .. phase .. " phase and libcurl would block the worker: "
      .. "defer the call with objstore.openresty.defer (ngx.timer.at(0, ...))"
  end
  return "curl"
end

local Auto = {}
Auto.__index = Auto

function _M.new(opts)
  opts = errors.options("transport.auto.new", 1, opts, { ngx = true, curl = true, force = true })
  if opts.force ~= nil and opts.force ~= "curl" then
    errors.argument("transport.auto.new", 1, "opts.force", "only 'curl' can be forced")
  end
  return setmetatable({ ngx_opts = opts.ngx or {}, curl_opts = opts.curl or {}, force = opts.force,
    closed = false,
    capabilities = { hashes = true, body_hashes = true, file_body = true, file_sink = true, run = true,
      progress = true } }, Auto)
end

function Auto:_curl()
  local t = self.curl_t
  if not t then
    local err
    t, err = curl_transport.new(self.curl_opts)
    if not t then return nil, err end
    self.curl_t = t
  end
  return t
end

--- What a call now goes through: "ngx", "curl", or nil, why.
function Auto:which()
  if self.force == "curl" then return "curl" end
  return _M.choice(_M.phase())
end

--- The transport for a call now, or nil, err.
function Auto:pick()
  if self.closed then errors.argument("transport.auto.request", nil, "self", "the transport is closed") end
  local phase = _M.phase()
  if self.force == "curl" then
    if phase and _M.COSOCKET_PHASES[phase] and not warned then
      warned = true
      local ngx = rawget(_G, "ngx")
      ngx.log(ngx.WARN, "objstore: the curl transport was forced in the ", phase,
        " phase: libcurl blocks this nginx worker for every request (logged once per worker)")
    end
    return self:_curl()
  end
  local which, why = _M.choice(phase)
  if not which then return nil, transport.error("TransportError", why) end
  if which == "curl" then return self:_curl() end
  local t = self.ngx_t
  if not t then
    t = ngx_transport.new(self.ngx_opts)
    self.ngx_t = t
  end
  return t
end

function Auto:request(req)
  local t, err = self:pick()
  if not t then return nil, err end
  return t:request(req)
end

function Auto:run(source, on_done, n)
  local t, err = self:pick()
  if not t then
    -- Every request the source has gets the error, as a failed transport's would.
    while true do
      local req = source()
      if req == nil then return nil, err end
      on_done(req, nil, err)
    end
  end
  return t:run(source, on_done, n)
end

function Auto:sleep(seconds)
  local phase = _M.phase()
  if self.force ~= "curl" and phase and _M.COSOCKET_PHASES[phase] then
    return rawget(_G, "ngx").sleep(seconds)
  end
  return core.time.sleep(seconds)
end

--- A semaphore of the I/O model of the phase that asks (see the
-- contract): ngx.semaphore in a phase with cosockets; none where a call
-- would go through libcurl, which blocks, so two requests of this worker
-- never wait on each other there.
function Auto:semaphore()
  if self.force == "curl" or self.closed then return nil end
  if _M.choice(_M.phase()) ~= "ngx" then return nil end
  local t = self:pick()
  return t and t:semaphore() or nil
end

function Auto:close()
  if self.closed then return end
  self.closed = true
  if self.ngx_t then self.ngx_t:close() end
  if self.curl_t then self.curl_t:close() end
end

return _M
