--- GET /metrics: objstore's Prometheus metrics of every worker; open,
-- unless OBJSTORE_DEMO_METRICS_TOKEN is set: then it wants that token as
-- `Authorization: Bearer <token>` (401 otherwise).
local common = require "common"
if common.config().metrics_token then common.authenticate("metrics_token") end
ngx.header["Content-Type"] = "text/plain; version=0.0.4"
ngx.print(common.registry():prometheus())
