-- The control endpoint (same port as the proxy, paths no bucket can have):
--   GET    /__faults         the current configuration (JSON)
--   POST   /__faults         set it: JSON, e.g. {"slowdown":0.1,"internal":
--                            {"rate":0.03,"methods":["PUT"]},"stall_seconds":3}
--                            (a kind: a rate, or {rate, methods, max, match};
--                            see state.normalize)
--   DELETE /__faults         no faults (counters kept)
--   GET    /__faults/stats   the counters (JSON)
--   DELETE /__faults/stats   zero the counters
local state = require "faultproxy.state"
local cjson = require "cjson.safe"

local ngx = ngx
local type, pairs = type, pairs

local _M = {}

-- JSON null (cjson.null) read as an absent value, as a Lua table would
-- have it: {"slowdown": null} sets nothing.
local function without_nulls(v)
  if v == cjson.null then return nil end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = without_nulls(x) end
  end
  return v
end

local function reply(status, t)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(cjson.encode(t), "\n")
  return ngx.exit(status)
end

function _M.run()
  local method, uri = ngx.req.get_method(), ngx.var.uri
  if uri == "/__faults/stats" then
    if method == "GET" then return reply(200, state.stats()) end
    if method == "DELETE" then
      state.reset_stats()
      return reply(200, state.stats())
    end
  elseif uri == "/__faults" then
    if method == "GET" then
      local cfg = state.config()
      return reply(200, cfg and state.describe(cfg) or { faults = {} })
    elseif method == "POST" or method == "PUT" then
      ngx.req.read_body()
      local body = ngx.req.get_body_data()
      if not body then
        local f = ngx.req.get_body_file()
        if f then
          local fh = io.open(f, "rb")
          if fh then body = fh:read("*a"); fh:close() end
        end
      end
      local raw, err = cjson.decode(body or "")
      if raw == nil then return reply(400, { error = "invalid JSON: " .. tostring(err) }) end
      local n, verr = state.set_config(without_nulls(raw))
      if not n then return reply(400, { error = verr }) end
      return reply(200, state.describe(n))
    elseif method == "DELETE" then
      state.clear_config()
      return reply(200, { faults = {} })
    end
  end
  return reply(405, { error = "use GET/POST/DELETE /__faults or GET/DELETE /__faults/stats" })
end

return _M
