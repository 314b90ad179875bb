--- GET /metrics: objstore's Prometheus metrics of every worker (no auth).
local common = require "common"
ngx.header["Content-Type"] = "text/plain; version=0.0.4"
ngx.print(common.registry():prometheus())
