--- Per-tenant counters of the S3 front, as Prometheus text: requests by
-- tenant, operation and status class, body bytes in and out by tenant, and
-- error answers by S3 code. Built on objstore.metrics (one exposition
-- format for the whole module): each worker counts in its own registry,
-- without any lock, and a timer adds the changes to a lua_shared_dict once
-- a second, which the metrics location renders for all the workers.
--
--     lua_shared_dict objstore_front_metrics 4m;
--     location / {
--       content_by_lua_block { require("objstore.front.server").handle{ ... } }
--       log_by_lua_block { require("objstore.front.counters").log("objstore_front_metrics") }
--     }
--     location = /objstore-front-metrics {
--       allow 127.0.0.1; deny all;
--       content_by_lua_block { require("objstore.front.counters").serve("objstore_front_metrics") }
--     }
--
-- The tenant label is the tenant's name in the tenants file; a request
-- that named no tenant (no or bad authentication) has tenant="". Access
-- keys and secrets are never labels. The front's own store client may be
-- given the same registry (`registry(dict)`, the handler's config.metrics)
-- to expose objstore's store-side families next to these.
-- @module objstore.front.counters

local metrics = require "objstore.metrics"
local limits = require "objstore.front.limits"

local tonumber, rawget, _G = tonumber, rawget, _G

local _M = {}

_M.FAMILIES = {
  { "objstore_front_requests_total", "Requests answered by the front, by tenant, operation and status class" },
  { "objstore_front_bytes_total", "Request body bytes read (in, after aws-chunked decoding) and response body "
    .. "bytes sent (out), by tenant" },
  { "objstore_front_errors_total", "Error answers by tenant and S3 error code" },
}

-- One registry per worker and dict name (workers share only the dict).
local registries = {}

--- registry(dict) -> objstore.metrics registry summing every worker in
-- the lua_shared_dict named `dict`.
function _M.registry(dict)
  local r = registries[dict]
  if not r then
    r = metrics.new{ shared = dict, families = _M.FAMILIES }
    registries[dict] = r
  end
  return r
end

local CLASS = { "1xx", "2xx", "3xx", "4xx", "5xx" }

--- record(registry, info) counts one answered request: info = { tenant
-- (name or nil), operation, status, bytes_in, bytes_out, code (S3 error
-- code or nil) }.
function _M.record(r, info)
  local tenant = info.tenant or ""
  r:inc("objstore_front_requests_total", { tenant = tenant, operation = info.operation or "unknown",
    class = CLASS[math.floor((tonumber(info.status) or 0) / 100)] or "other" })
  r:inc("objstore_front_bytes_total", { tenant = tenant, direction = "in" }, info.bytes_in or 0)
  r:inc("objstore_front_bytes_total", { tenant = tenant, direction = "out" }, info.bytes_out or 0)
  if info.code then r:inc("objstore_front_errors_total", { tenant = tenant, code = info.code }) end
end

--- log(dict): the log-phase handler of the front's location: counts the
-- request objstore.front.server answered (it leaves what it knows in
-- ngx.ctx.objstore_front, the body bytes it sent among them: nginx's
-- $body_bytes_sent would also count an interim "100 Continue" answer to an
-- upload's Expect header; it is used only when the handler did not finish,
-- a download cut short). Shared-dict writes happen in the flush timer,
-- never here.
function _M.log(dict)
  local ngx = rawget(_G, "ngx")
  local c = ngx.ctx.objstore_front
  if not c then return end
  local bytes_out = c.bytes_out or tonumber(ngx.var.body_bytes_sent)
  _M.record(_M.registry(dict), { tenant = c.tenant and c.tenant.name, operation = c.op, status = ngx.status,
    bytes_in = c.bytes_in, bytes_out = bytes_out, code = c.code })
  -- the tenant's byte budget (objstore.front.limits), when it has one
  local bl = c.byte_limit
  if bl then limits.add_bytes(bl.dict, bl.name, bl.limits, ngx.time(), (c.bytes_in or 0) + (bytes_out or 0)) end
end

--- serve(dict): the content handler of the metrics location (protect it
-- in nginx: it lists the tenants' names and traffic).
function _M.serve(dict)
  local ngx = rawget(_G, "ngx")
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(_M.registry(dict):prometheus())
end

return _M
