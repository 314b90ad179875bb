-- A client that did I/O with libcurl in init_by_lua (nginx's master) is
-- inherited by every worker with its pooled connections: without care, two
-- workers read answers off one shared socket and get each other's bodies.
-- Here nginx runs two workers whose init_by_lua client (transport = "curl")
-- wrote every object; at request time both workers read them back through
-- that client, many at once, and every body must name the key asked for.
-- Tagged #server (eval "$(bash spec/support/rgw.sh env)"). Port
-- OBJSTORE_SPEC_FORK_PORT (default 18130), files under
-- OBJSTORE_SPEC_FORK_DIR (default /tmp/objstore-ngx-fork).
local servers = require "servers"

local q = servers.q
local PORT = tonumber(os.getenv("OBJSTORE_SPEC_FORK_PORT") or "18130")
local DIR = os.getenv("OBJSTORE_SPEC_FORK_DIR") or "/tmp/objstore-ngx-fork"
local N = 24

local function ngx_lib(cmd)
  return servers.sh("NGX_DIR=" .. q(DIR) .. " NGX_CONF=" .. q(DIR .. "/nginx.conf") .. " NGX_PING="
    .. q("http://127.0.0.1:" .. PORT .. "/ping") .. " NGX_TAG=ngx-fork timeout 60 bash -c "
    .. q(". spec/support/ngx_lib.sh; " .. cmd))
end

local function conf(srv, bucket)
  local root = select(2, servers.sh("pwd")):gsub("%s+$", "")
  local _, cdir = servers.sh(". spec/support/ngx_lib.sh; ngx_lua51_cpath_dir")
  cdir = cdir:gsub("%s+$", "")
  local settings = string.format("{ endpoint = %q, region = %q, access_key = %q, secret_key = %q, "
    .. "addressing = 'path', transport = 'curl', retry = { max_attempts = 1 } }",
    srv.endpoint, srv.region, srv.access_key, srv.secret_key)
  local _, user = servers.sh(". spec/support/ngx_lib.sh; ngx_user_line")
  return table.concat({
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
    user,
    "worker_processes 2;",
    "daemon off;",
    "master_process on;",
    "pid " .. DIR .. "/nginx.pid;",
    "error_log " .. DIR .. "/error.log warn;",
    "events { worker_connections 256; }",
    "http {",
    "  lua_package_path '" .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;';",
    "  lua_package_cpath '" .. root .. "/build/luajit/?.so;" .. cdir .. "/?.so;;';",
    "  access_log off;",
    "  client_body_temp_path " .. DIR .. "/tmp/body;",
    "  proxy_temp_path " .. DIR .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. DIR .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. DIR .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. DIR .. "/tmp/scgi;",
    "  init_by_lua_block {",
    "    local c = require('objstore').new" .. settings,
    "    for i = 0, " .. (N - 1) .. " do",
    "      local body = ('obj' .. i .. ';'):rep(200 + i * 50)",
    "      assert(c:put_object(" .. string.format("%q", bucket) .. ", 'obj' .. i, body))",
    "    end",
    "    assert(c:get_object(" .. string.format("%q", bucket) .. ", 'obj0'))",
    "    package.loaded.fork_client = c",
    "  }",
    "  server {",
    "    listen 127.0.0.1:" .. PORT .. ";",
    "    location = /ping { return 200 'ok'; }",
    "    location /get/ {",
    "      content_by_lua_block {",
    "        local key = ngx.var.uri:sub(6)",
    "        local r, err = package.loaded.fork_client:get_object(" .. string.format("%q", bucket) .. ", key)",
    "        if not r then ngx.status = 502; ngx.say('error ', tostring(err)); return end",
    "        ngx.say(r.body:match('^(obj%d+);') or 'mangled', ' ', #r.body)",
    "      }",
    "    }",
    "  }",
    "}",
  }, "\n") .. "\n"
end

describe("a curl client inherited from init_by_lua by two nginx workers #server #nginx", function()
  local srv = servers.list()[1]
  local c, bucket

  setup(function()
    assert(servers.sh("make --no-print-directory -s build LUA=luajit"))
    c = servers.client(srv)
    bucket = servers.bucket_name("h18e-fork")
    assert(c:create_bucket(bucket))
    assert(servers.sh("mkdir -p " .. q(DIR)))
    servers.write_file(DIR .. "/nginx.conf", conf(srv, bucket))
    local ok, out = ngx_lib("ngx_check_installed; ngx_stop; ngx_temp_dirs; ngx_start")
    assert(ok, out)
  end)

  teardown(function()
    ngx_lib("ngx_stop")
    if c then servers.cleanup(c, bucket) end
  end)

  it("answers every request with the body of its own key", function()
    local cmd = "seq 0 399 | xargs -P 8 -I{} sh -c 'k=obj$(({} % " .. N .. ")); "
      .. "b=$(curl -s --max-time 20 http://127.0.0.1:" .. PORT .. "/get/$k || echo curl-failed); echo \"$k $b\"'"
    local ok, out = servers.sh("timeout 300 sh -c " .. q(cmd))
    assert(ok, out)
    local n, wrong = 0, {}
    for key, got, len in out:gmatch("(obj%d+) (%S+) ?(%d*)") do
      n = n + 1
      local i = tonumber(key:match("%d+"))
      if got ~= key or tonumber(len) ~= #("obj" .. i .. ";") * (200 + i * 50) then
        wrong[#wrong + 1] = key .. " -> " .. got .. " " .. len
      end
    end
    assert.equal(400, n, out:sub(1, 2000))
    assert.same({}, wrong)
    local log = servers.read_file(DIR .. "/error.log") or ""
    assert.is_nil(log:match("[^\n]*exited on signal[^\n]*"))
  end)
end)
