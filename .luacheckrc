std = "max"
max_line_length = 120
files["spec/"] = { std = "+busted" }
exclude_files = { "build/", "node_modules/" }
files["spec/support/faultproxy/"] = { std = "ngx_lua" }
-- The OpenResty transport and its contract run inside nginx.
files["lua/objstore/transport/ngx.lua"] = { std = "ngx_lua" }
files["lua/objstore/front/server.lua"] = { std = "ngx_lua" }
files["spec/support/ngx_contract_runner.lua"] = { std = "ngx_lua" }
files["spec/support/ngx_credentials_runner.lua"] = { std = "ngx_lua" }
files["spec/support/ngx_phases.lua"] = { std = "ngx_lua" }
-- The OpenResty example's handlers run inside nginx.
files["examples/openresty/"] = { std = "ngx_lua" }
-- bin/objstore is a shell and Lua script at once: its shell part is the Lua
-- string assigned to `_` (then cleared).
files["bin/objstore"] = { globals = { "_" } }
