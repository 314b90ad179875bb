-- Starts and drives spec/support/hostile_listing.py (a hostile S3 listing
-- server on 127.0.0.1, ports 19300-19399) for the specs:
--   local hostile = require "spec.support.hostile_listing"
--   local srv = hostile.start{ mode = "repeat_token" } -- waits at most 10 s
--   srv.url                      -- "http://127.0.0.1:PORT"
--   srv:mode("ignore_prefix", 2, 300) -- mode (page size, request budget): resets the log
--                                     -- and the objects
--   srv:reset()                  -- log cleared, objects restored, mode kept
--   srv:log()                    -- { {method=, path=, query={}, op=, delete_keys=, ...}, ... }
--   srv:count(op)                -- requests of one op ("ListObjectsV2", "DeleteObjects", ...)
--   srv:deleted()                -- every key sent in a DeleteObjects or DeleteObject
--   srv:stop()
-- The control calls go through the curl command (each bounded to 5 s).
local cjson = require "cjson"

local _M = {}

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"__rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return rc == 0, (out:gsub("__rc=%d+%s*$", ""))
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local S = {}
S.__index = S

function S:control(method, path)
  local ok, out = sh("curl -s -f -m 5 -X " .. method .. " '" .. self.url .. path .. "'")
  assert(ok, "hostile_listing control " .. path .. " failed: " .. out)
  return out
end

function S:mode(mode, page_size, budget)
  self:control("POST", "/__mode?mode=" .. mode .. "&page_size=" .. (page_size or 2) .. "&budget=" .. (budget or 300))
  return self
end

function S:reset()
  self:control("POST", "/__reset")
  return self
end

function S:log()
  return cjson.decode(self:control("GET", "/__log")).requests
end

function S:count(op)
  local n = 0
  for _, r in ipairs(self:log()) do
    if r.op == op then n = n + 1 end
  end
  return n
end

function S:deleted()
  local out = {}
  for _, r in ipairs(self:log()) do
    if r.op == "DeleteObjects" then
      for _, k in ipairs(r.delete_keys) do out[#out + 1] = k end
    elseif r.op == "DeleteObject" then
      out[#out + 1] = r.key
    end
  end
  return out
end

function S:stop()
  if self.pid then sh("kill " .. self.pid .. " 2>/dev/null") end
  self.pid = nil
  os.remove(self.logfile)
end

--- start{ mode =, page_size =, lifetime = } -> server (raises when it does not come up in 10 s)
function _M.start(opts)
  opts = opts or {}
  local logfile = os.tmpname()
  local ports = os.getenv("HOSTILE_PORTS") or "19300-19399"
  local cmd = ("python3 spec/support/hostile_listing.py --ports %s --mode %s --page-size %d --lifetime %d"):format(
    ports, opts.mode or "normal", opts.page_size or 2, opts.lifetime or 600)
  local ok, out = sh("(" .. cmd .. " >" .. logfile .. " 2>&1 & echo $!)")
  local pid = assert(ok and out:match("(%d+)"), out)
  local port
  for _ = 1, 100 do
    port = read(logfile):match("listening (%d+)")
    if port then break end
    sh("sleep 0.1")
  end
  if not port then
    sh("kill " .. pid .. " 2>/dev/null")
    error("hostile_listing.py did not start: " .. read(logfile))
  end
  return setmetatable({ pid = pid, port = tonumber(port), url = "http://127.0.0.1:" .. port, logfile = logfile }, S)
end

return _M
