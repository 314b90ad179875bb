-- Hostile-tenant cases of the S3 front (objstore.front.server and
-- objstore.front.tenants), found by an adversarial review: each failed
-- before its fix.
-- The #server part needs radosgw (eval "$(bash spec/support/rgw.sh env)");
-- its nginx listens on OBJSTORE_SPEC_FRONT_ATTACK_PORT (18786), its files
-- under OBJSTORE_SPEC_FRONT_ATTACK_DIR (/tmp/objstore-front-attack-spec).
local objstore = require "objstore"
local tenants = require "objstore.front.tenants"
local cjson = require "cjson"
local servers = require "servers"
local futil = require "front_util"

local PORT = os.getenv("OBJSTORE_SPEC_FRONT_ATTACK_PORT") or "18786"
local DIR = os.getenv("OBJSTORE_SPEC_FRONT_ATTACK_DIR") or "/tmp/objstore-front-attack-spec"
local URL = "http://127.0.0.1:" .. PORT
local PY = "/usr/bin/python3"

local sh, q, random_hex, code_of = futil.sh, futil.q, futil.random_hex, futil.code_of
-- written in place (same inode), as an editor or `cat >` does
local write_in_place = servers.write_file

local function doc(secret)
  return cjson.encode{ tenants = { a = { keys = { { access_key = "AKATTACKA", secret_key = secret } },
    buckets = { data = { store_bucket = "attack-store", prefix = "a/", allow = { "read" } } } } } }
end

describe("objstore.front.tenants under attack", function()
  it("sees a same-size in-place rewrite made within the second the file was read (a revoked key)", function()
    local path = "/tmp/objstore-front-attack-racy-" .. random_hex(6) .. ".json"
    local old, new = doc("old-secret-0001"), doc("new-secret-0002")
    assert.equal(#old, #new)
    local now = 1000
    local reg
    -- both writes and the read within one second (so size, inode, mtime and
    -- ctime are all the same); retried when a second boundary fell between
    for _ = 1, 10 do
      local t0 = os.time()
      write_in_place(path, old)
      reg = assert(tenants.new(path, { now = function() return now end }))
      write_in_place(path, new)
      if os.time() == t0 then break end
      sh("sleep 0.2")
    end
    now = now + 1
    local _, secret = reg:lookup("AKATTACKA")
    assert.equal("new-secret-0002", secret)
    os.remove(path)
  end)
end)

describe("the S3 front server under attack #server #nginx", function()
  local store, bucket, A, tmp

  local function raw(t, method, path, extra)
    local env = ("env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=/dev/null "
      .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s "
      .. "AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true FRONT_URL=%s "):format(q(t.ak), q(t.sk), q(URL))
    local ok, out = sh(env .. "timeout 60 " .. PY .. " spec/support/front_clients.py raw " .. method .. " " .. q(path)
      .. " " .. (extra or ""))
    local d = ok and cjson.decode(out:match("[^\n]*\n?$") or "") or nil
    assert(type(d) == "table", "front_clients.py raw failed:\n" .. out)
    return d
  end

  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
    local ok, out = sh("make --no-print-directory -s build LUA=luajit")
    assert(ok, "make build LUA=luajit failed: " .. out)
    tmp = DIR .. "-files"
    assert(sh("rm -rf " .. q(tmp) .. " && mkdir -p " .. q(tmp)))
    store = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"), region = "us-east-1", addressing = "path",
      access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY"),
      timeout = 60 }
    local id = random_hex(6)
    bucket = "front-attack-" .. id
    assert(store:create_bucket(bucket))
    A = { ak = "AKATTACK" .. id, sk = random_hex(16) }
    write_in_place(tmp .. "/tenants.json", cjson.encode{ tenants = { a = {
      keys = { { access_key = A.ak, secret_key = A.sk } },
      buckets = { data = { store_bucket = bucket, prefix = "tenant-a/", allow = { "read", "write", "list" } } } } } })
    ok, out = sh(("FRONT_PORT=%s FRONT_DIR=%s FRONT_TENANTS=%s timeout 120 bash examples/front/run.sh start")
      :format(q(PORT), q(DIR), q(tmp .. "/tenants.json")))
    assert(ok, "cannot start the front: " .. out)
  end)

  teardown(function()
    sh(("FRONT_PORT=%s FRONT_DIR=%s timeout 60 bash examples/front/run.sh stop"):format(q(PORT), q(DIR)))
    if store and bucket then
      local keys = {}
      for o in store:list_objects_iter(bucket) do
        if o then keys[#keys + 1] = o.key end
      end
      if #keys > 0 then store:delete_objects(bucket, keys) end
      store:delete_bucket(bucket)
    end
    if tmp then sh("rm -rf " .. q(tmp)) end
  end)

  -- First: no worker has answered a request yet (run.sh only pings a
  -- location without Lua). Each worker loads the file on its first request;
  -- one that met an invalid file answered 503 for everything.
  it("keeps the tenants nginx started with when a worker's first request meets an invalid file", function()
    local path = tmp .. "/tenants.json"
    local good = assert(io.open(path, "rb")):read("*a")
    write_in_place(path .. ".new", "{ not json")
    assert(os.rename(path .. ".new", path))
    for _ = 1, 4 do
      local r = raw(A, "GET", "/data?list-type=2&max-keys=1")
      assert.equal(200, r.status, r.body)
    end
    write_in_place(path .. ".new", good)
    assert(os.rename(path .. ".new", path))
  end)

  it("refuses a repeated Content-Type or Cache-Control on a PUT 400 InvalidArgument, nothing stored", function()
    local f = tmp .. "/dup.body"
    write_in_place(f, "abc")
    for _, h in ipairs({ "Content-Type:a/b", "Cache-Control:no-cache" }) do
      local r = raw(A, "PUT", "/data/dup.txt", "--body " .. q(f) .. " --dup " .. q(h) .. " --dup " .. q(h .. "x"))
      assert.equal(400, r.status, h .. ": " .. r.body)
      assert.equal("InvalidArgument", code_of(r.body), h)
      assert.truthy(r.request_id, h)
    end
    local res, err = store:head_object(bucket, "tenant-a/dup.txt")
    assert.is_nil(res)
    assert.equal(404, err.status)
    local r = raw(A, "PUT", "/data/dup.txt", "--body " .. q(f) .. " --header " .. q("Content-Type:a/b"))
    assert.equal(200, r.status, r.body)
  end)

  it("refuses a CR/LF in response-content-type 400 InvalidArgument (the store's answer broke: a 500)", function()
    local r = raw(A, "GET", "/data/x.txt?response-content-type=a%0D%0ASet-Cookie%3A%20x")
    assert.equal(400, r.status, r.body)
    assert.equal("InvalidArgument", code_of(r.body))
  end)

  it("refuses max-keys that is not plain decimal digits 400 InvalidArgument (tonumber took 0x10, 1e2, ' 5')", function()
    for _, v in ipairs({ "0x10", "1e2", "%205", "5.0", "-1", "inf", "99999999999", "" }) do
      local r = raw(A, "GET", "/data?list-type=2&max-keys=" .. v)
      assert.equal(400, r.status, v .. ": " .. r.body)
      assert.equal("InvalidArgument", code_of(r.body), v)
    end
    local r = raw(A, "GET", "/data?list-type=2&max-keys=0005")
    assert.equal(200, r.status, r.body)
  end)

  it("answers nginx's own refusals as S3 XML errors with an x-amz-request-id, never nginx's HTML", function()
    local hdr = tmp .. "/nginx-error.hdr"
    local function curl(args)
      local ok, out = sh("curl -s -o - -D " .. q(hdr) .. " --max-time 20 " .. args)
      assert(ok, out)
      local head = assert(io.open(hdr, "rb")):read("*a")
      return tonumber(head:match("^HTTP/%S+ (%d+)")), head, out
    end
    -- a body over client_max_body_size (5g): 413 from nginx before Lua
    local st, head, body = curl("-X PUT -H 'Content-Length: 6000000000' " .. q(URL .. "/data/big"))
    assert.equal(400, st, head .. body)
    assert.equal("EntityTooLarge", code_of(body), body)
    assert.matches("x%-amz%-request%-id: %x+", head)
    assert.not_matches("<html", body)
    -- headers over large_client_header_buffers (16k)
    st, head, body = curl("-H " .. q("X-Big: " .. ("a"):rep(20000)) .. " " .. q(URL .. "/data/k"))
    assert.equal(400, st, head .. body)
    assert.equal("RequestHeaderSectionTooLarge", code_of(body), body)
    assert.matches("x%-amz%-request%-id: %x+", head)
    -- a request line nginx cannot take (a path above the root): its 400 too
    st, head, body = curl("--path-as-is " .. q(URL .. "/data/../../k"))
    assert.equal(400, st, head .. body)
    assert.equal("BadRequest", code_of(body), body)
    assert.matches("x%-amz%-request%-id: %x+", head)
    -- a HEAD the handler refuses 400 (SigV2) keeps its status, its
    -- request's id (not error_page's) and sends no body
    st, head = curl("-I -o /dev/null -H 'Authorization: AWS AKATTACK:c2lnbmF0dXJl' " .. q(URL .. "/data/k"))
    assert.equal(400, st, head)
    assert.matches("x%-amz%-request%-id: %x+", head)
    assert.not_matches("Content%-Length: [1-9]", head)
  end)

  it("answers a NUL in prefix, delimiter or start-after 400 InvalidArgument (the store's XML breaks on it)", function()
    for _, query in ipairs({ "list-type=2&prefix=%00", "list-type=2&delimiter=%00", "list-type=2&start-after=a%00b",
      "prefix=x%00&marker=y" }) do
      local r = raw(A, "GET", "/data?" .. query)
      assert.equal(400, r.status, query .. ": " .. r.body)
      assert.equal("InvalidArgument", code_of(r.body), query)
      assert.truthy(r.request_id, query)
    end
  end)
end)

describe("the S3 front with a store endpoint that is down #server #nginx", function()
  -- store.endpoints (FRONT_STORE_ENDPOINTS): a dead endpoint first, rgw
  -- second: every request is served, through the client's failover.
  local FPORT = tostring(tonumber(PORT) + 1)
  local FDIR = DIR .. "-failover"
  local FURL = "http://127.0.0.1:" .. FPORT
  local store, bucket, T, tmp

  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
    tmp = FDIR .. "-files"
    assert(sh("rm -rf " .. q(tmp) .. " && mkdir -p " .. q(tmp)))
    store = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"), region = "us-east-1", addressing = "path",
      access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY"),
      timeout = 60 }
    local id = random_hex(6)
    bucket = "front-failover-" .. id
    assert(store:create_bucket(bucket))
    T = { ak = "AKFAILOVER" .. id, sk = random_hex(16) }
    write_in_place(tmp .. "/tenants.json", cjson.encode{ tenants = { t = {
      keys = { { access_key = T.ak, secret_key = T.sk } },
      buckets = { data = { store_bucket = bucket, prefix = "t/", allow = { "read", "write", "list" } } } } } })
    local ok, out = sh(("FRONT_STORE_ENDPOINTS=%s FRONT_PORT=%s FRONT_DIR=%s FRONT_TENANTS=%s timeout 120 "
      .. "bash examples/front/run.sh start"):format(q("http://127.0.0.1:1, " .. os.getenv("OBJSTORE_TEST_ENDPOINT")),
      q(FPORT), q(FDIR), q(tmp .. "/tenants.json")))
    assert(ok, "cannot start the front: " .. out)
  end)

  teardown(function()
    sh(("FRONT_PORT=%s FRONT_DIR=%s timeout 60 bash examples/front/run.sh stop"):format(q(FPORT), q(FDIR)))
    if store and bucket then
      local keys = {}
      for o in store:list_objects_iter(bucket) do
        if o then keys[#keys + 1] = o.key end
      end
      if #keys > 0 then store:delete_objects(bucket, keys) end
      store:delete_bucket(bucket)
    end
    if tmp then sh("rm -rf " .. q(tmp)) end
  end)

  it("stores and serves every request through the endpoint that answers", function()
    local env = ("env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=/dev/null "
      .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s "
      .. "AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true FRONT_URL=%s "):format(q(T.ak), q(T.sk), q(FURL))
    for i = 1, 6 do
      local f = tmp .. "/body" .. i
      write_in_place(f, "body " .. i)
      local ok, out = sh(env .. "timeout 60 " .. PY .. " spec/support/front_clients.py raw PUT /data/k" .. i
        .. " --body " .. q(f))
      assert(ok, out)
      local d = cjson.decode(out:match("[^\n]*\n?$"))
      assert.equal(200, d.status, d.body)
      ok, out = sh(env .. "timeout 60 " .. PY .. " spec/support/front_clients.py raw GET /data/k" .. i)
      assert(ok, out)
      d = cjson.decode(out:match("[^\n]*\n?$"))
      assert.equal(200, d.status, d.body)
      assert.equal("body " .. i, d.body)
    end
    assert.equal("body 6", assert(store:get_object(bucket, "t/k6")).body)
  end)
end)
