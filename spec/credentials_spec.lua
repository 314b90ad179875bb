-- The credential providers, each alone and in the default chains. File-
-- and environment-based sources run against rgw with real requests (temp
-- HOME directories and `env` tables stand in for the user's). Container,
-- EC2 instance metadata and ECS RAM role endpoints cannot be real here: they
-- run against spec/support/metadata_server.py on 127.0.0.1, a small server
-- that implements the documented protocols (IMDSv2's PUT token handshake
-- with its TTL header and 401 without a token, the container endpoint's
-- Authorization check, the JSON shapes) and serves real rgw keys from an
-- AssumeRole, so the client using them still makes real requests.
local objstore = require "objstore"
local credentials = require "objstore.credentials"
local sts = require "objstore.sts"
local cjson = require "cjson"
local lfs = require "lfs"
local servers = require "spec.support.servers"
local monotonic = require("objstore.core").time.monotonic

local PORT_IMDS, PORT_CONTAINER, PORT_ECS, PORT_DEAD = 18601, 18602, 18603, 18609

local function write(path, text)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and not lfs.attributes(dir) then
    local acc = ""
    for part in dir:gmatch("[^/]+") do
      acc = acc .. "/" .. part
      lfs.mkdir(acc)
    end
  end
  servers.write_file(path, text)
end

describe("credential providers #server", function()
  local rgw
  for _, s in ipairs(servers.list()) do
    if s.name == "rgw" then rgw = s end
  end
  local role_arn = os.getenv("OBJSTORE_TEST_STS_ROLE_ARN") or "arn:aws:iam:::role/objstore-sts-test"
  local bucket = servers.bucket_name("h9-cred")
  local dir = servers.tmpdir()
  local home_n = 0

  --- A fresh HOME with `files` ({ [relative path] = text }).
  local function home(files)
    home_n = home_n + 1
    local h = dir .. "/home" .. home_n
    lfs.mkdir(h)
    for rel, text in pairs(files or {}) do write(h .. "/" .. rel, text) end
    return h
  end

  --- An environment table: HOME, no metadata probing, plus `extra`.
  local function env(h, extra)
    local e = { HOME = h or "/nonexistent-home", AWS_EC2_METADATA_DISABLED = "true",
      ALIBABA_CLOUD_ECS_METADATA_DISABLED = "true" }
    -- Every variable the chains read is pinned, so the caller's own
    -- environment cannot leak in.
    for _, k in ipairs{ "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
      "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
      "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "AWS_REGION",
      "AWS_DEFAULT_REGION", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN",
      "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
      "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CONFIG_FILE",
      "ALIBABA_CLOUD_CREDENTIALS_FILE", "AWS_ENDPOINT_URL_S3", "ALIBABA_CLOUD_STS_ENDPOINT" } do
      e[k] = ""
    end
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  local function client(opts)
    local o = { endpoint = rgw.sts_endpoint, region = rgw.region }
    for k, v in pairs(opts) do o[k] = v end
    return objstore.new(o)
  end

  --- A round trip on rgw with `c`; returns the access key it signed with.
  local n = 0
  local function works(c)
    n = n + 1
    local key = "obj/" .. n
    local ok, err = c:put_object(bucket, key, "value " .. n)
    assert(ok, tostring(err))
    assert.are.equal("value " .. n, assert(c:get_object(bucket, key)).body)
    return c.creds.access_key
  end

  --- A request any rgw user may make; returns the access key it signed with.
  local function signs_as(c)
    local ok, err = c:list_buckets()
    assert(ok, tostring(err))
    return c.creds.access_key
  end

  local temp -- rgw AssumeRole credentials the local endpoints serve
  local servers_started = {}

  local function start_metadata(port, state)
    local state_file = dir .. "/state-" .. port .. ".json"
    servers.write_file(state_file, cjson.encode(state))
    local pidfile = dir .. "/pid-" .. port
    local ok, out = servers.sh("(setsid /usr/bin/python3 spec/support/metadata_server.py " .. port .. " "
      .. servers.q(state_file) .. " 300 > " .. servers.q(dir .. "/srv-" .. port .. ".log") .. " 2>&1 & echo $! > "
      .. servers.q(pidfile) .. ")")
    assert(ok, out)
    local t0 = monotonic()
    repeat
      local up = servers.sh("curl -s -o /dev/null http://127.0.0.1:" .. port .. "/_log")
      if up then break end
      os.execute("sleep 0.1")
    until monotonic() - t0 > 10
    servers_started[#servers_started + 1] = pidfile
    return state_file
  end

  local function set_state(file, state) servers.write_file(file, cjson.encode(state)) end

  local function server_log(port)
    local p = io.popen("curl -s http://127.0.0.1:" .. port .. "/_log")
    local out = p:read("*a")
    p:close()
    local mine = {}
    for _, r in ipairs(cjson.decode(out)) do
      if r.path ~= "/_log" then mine[#mine + 1] = r end
    end
    return mine
  end

  local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

  local imds_state, container_state, ecs_state
  setup(function()
    assert(servers.sh("bash spec/support/rgw.sh sts-setup"))
    assert(servers.client(rgw):create_bucket(bucket))
    temp = assert(sts.assume_role{ endpoint = rgw.sts_endpoint, region = rgw.region, access_key = rgw.access_key,
      secret_key = rgw.secret_key, role_arn = role_arn, session_name = "h9-metadata", duration = 3600 })
    local base = { role = "h9-instance-role", access_key = temp.access_key, secret_key = temp.secret_key,
      token = temp.session_token, expiration = iso(temp.expiration) }
    local function with(t)
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      for k, v in pairs(t) do o[k] = v end
      return o
    end
    imds_state = with{ flavour = "aws" }
    container_state = with{ flavour = "aws", container_token = "Bearer h9-container-token" }
    ecs_state = with{ flavour = "ali" }
    imds_state.file = start_metadata(PORT_IMDS, imds_state)
    container_state.file = start_metadata(PORT_CONTAINER, container_state)
    ecs_state.file = start_metadata(PORT_ECS, ecs_state)
  end)

  teardown(function()
    for _, pidfile in ipairs(servers_started) do
      local pid = servers.read_file(pidfile)
      if pid and pid:match("^%d+") then os.execute("kill " .. pid:match("^%d+") .. " 2>/dev/null") end
    end
    servers.cleanup(servers.client(rgw), bucket)
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  describe("environment", function()
    it("AWS_* for S3, through objstore.new{} with no keys", function()
      local e = env(nil, { AWS_ACCESS_KEY_ID = rgw.access_key, AWS_SECRET_ACCESS_KEY = rgw.secret_key })
      assert.are.equal(rgw.access_key, works(client{ env = e }))
      local c = credentials.env{ env = e }()
      assert.are.equal(rgw.secret_key, c.secret_key)
      assert.is_nil(credentials.env{ env = env() }())
    end)

    it("a session token from AWS_SESSION_TOKEN", function()
      local e = env(nil, { AWS_ACCESS_KEY_ID = temp.access_key, AWS_SECRET_ACCESS_KEY = temp.secret_key,
        AWS_SESSION_TOKEN = temp.session_token })
      assert.are.equal(temp.access_key, works(client{ env = e }))
    end)

    it("OSS_* first, then ALIBABA_CLOUD_* for OSS", function()
      local e = env(nil, { ALIBABA_CLOUD_ACCESS_KEY_ID = "ali-ak", ALIBABA_CLOUD_ACCESS_KEY_SECRET = "ali-sk",
        ALIBABA_CLOUD_SECURITY_TOKEN = "ali-token" })
      local c = credentials.env{ provider = "oss", env = e }()
      assert.same({ "ali-ak", "ali-sk", "ali-token" }, { c.access_key, c.secret_key, c.session_token })
      e.OSS_ACCESS_KEY_ID, e.OSS_ACCESS_KEY_SECRET = "oss-ak", "oss-sk"
      c = credentials.env{ provider = "oss", env = e }()
      assert.same({ "oss-ak", "oss-sk" }, { c.access_key, c.secret_key })
      assert.is_nil(c.session_token)
    end)
  end)

  describe("shared files", function()
    local function aws_home()
      return home{
        [".aws/credentials"] = "[default]\naws_access_key_id = " .. rgw.access_key .. "\naws_secret_access_key = "
          .. rgw.secret_key .. "\n\n[other]\naws_access_key_id=" .. rgw.other_access_key
          .. "\naws_secret_access_key=" .. rgw.other_secret_key .. "\n[half]\naws_access_key_id = only-this\n",
        [".aws/config"] = "[default]\nregion = us-east-1\n\n[profile role]\nrole_arn = " .. role_arn
          .. "\nsource_profile = default\nrole_session_name = h9-profile-role\n\n[profile self]\nrole_arn = "
          .. role_arn .. "\nsource_profile = self\naws_access_key_id = " .. rgw.access_key
          .. "\naws_secret_access_key = " .. rgw.secret_key .. "\n\n[profile loop-a]\nrole_arn = " .. role_arn
          .. "\nsource_profile = loop-b\n[profile loop-b]\nrole_arn = " .. role_arn .. "\nsource_profile = loop-a\n"
          .. "[profile bad-source]\nrole_arn = " .. role_arn .. "\ncredential_source = Moon\n"
          .. "[profile conf-keys]\naws_access_key_id = " .. rgw.other_access_key .. "\naws_secret_access_key = "
          .. rgw.other_secret_key .. "\n",
      }
    end

    it("the default profile, AWS_PROFILE and the client's profile option", function()
      local h = aws_home()
      assert.are.equal(rgw.access_key, works(client{ env = env(h) }))
      assert.are.equal(rgw.other_access_key, signs_as(client{ env = env(h, { AWS_PROFILE = "other" }) }))
      -- the option wins over AWS_PROFILE (the CLI's --profile relies on it)
      assert.are.equal(rgw.other_access_key, signs_as(client{ env = env(h, { AWS_PROFILE = "default" }),
        profile = "other" }))
      -- keys in the config file's [profile name] section
      assert.are.equal(rgw.other_access_key, signs_as(client{ env = env(h), profile = "conf-keys" }))
    end)

    it("the environment comes before the files", function()
      local h = aws_home()
      local e = env(h, { AWS_ACCESS_KEY_ID = rgw.other_access_key, AWS_SECRET_ACCESS_KEY = rgw.other_secret_key })
      assert.are.equal(rgw.other_access_key, signs_as(client{ env = e }))
    end)

    it("role_arn + source_profile: AssumeRole at the STS endpoint with the source's keys", function()
      local h = aws_home()
      local e = env(h, { AWS_ENDPOINT_URL_STS = rgw.sts_endpoint })
      local ak = works(client{ env = e, profile = "role" })
      assert.are_not.equal(rgw.access_key, ak)
      local p = credentials.profile{ profile = "role", env = e }
      local c = assert(p())
      assert.is_string(c.session_token)
      assert.are.equal("arn:aws:sts:::assumed-role/objstore-sts-test/h9-profile-role", c.arn)
      -- a profile that is its own source
      assert.are_not.equal(rgw.access_key, works(client{ env = e, profile = "self" }))
    end)

    it("unusable profiles are errors naming the profile, never a secret", function()
      local h = aws_home()
      local e = env(h, { AWS_ENDPOINT_URL_STS = rgw.sts_endpoint })
      for name, pattern in pairs{ half = "profile half: has only one of", ["loop-a"] = "loops back to itself",
        ["bad-source"] = "credential_source 'Moon'" } do
        local r, err = client{ env = e, profile = name }:list_buckets()
        assert.is_nil(r)
        assert.truthy(tostring(err):find(pattern, 1, true), name .. ": " .. tostring(err))
        assert.is_nil(tostring(err):find(rgw.secret_key, 1, true))
      end
    end)

    it("a malformed file gives no credentials rather than garbage", function()
      local h = home{ [".aws/credentials"] = "this is [not\n= an ini file\n\0\n" }
      local r, err = client{ env = env(h) }:list_buckets()
      assert.is_nil(r)
      assert.are.equal("NoCredentials", err.code)
      assert.truthy(err.message:find("tried environment, profile", 1, true))
    end)

    it("nothing is read before the first request", function()
      local h = home{}
      local c = client{ env = env(h), region = rgw.region }
      -- written after the client (and its chain) exist
      write(h .. "/.aws/credentials", "[default]\naws_access_key_id = " .. rgw.access_key
        .. "\naws_secret_access_key = " .. rgw.secret_key .. "\n")
      assert.are.equal(rgw.access_key, works(c))
    end)
  end)

  describe("credential_process", function()
    local function script(body)
      home_n = home_n + 1
      local path = dir .. "/process" .. home_n .. ".sh"
      servers.write_file(path, "#!/bin/sh\n" .. body .. "\n")
      os.execute("chmod +x " .. servers.q(path))
      return path
    end

    it("its JSON (with Expiration) signs real requests, and runs again before expiry", function()
      local counter = dir .. "/process-count"
      local path = script("echo x >> " .. servers.q(counter) .. "\ncat <<EOF\n" .. cjson.encode{ Version = 1,
        AccessKeyId = temp.access_key, SecretAccessKey = temp.secret_key, SessionToken = temp.session_token,
        Expiration = iso(temp.expiration) } .. "\nEOF")
      local h = home{ [".aws/config"] = "[profile proc]\ncredential_process = " .. path .. " --flag\n" }
      local c = client{ env = env(h), profile = "proc" }
      assert.are.equal(temp.access_key, works(c))
      assert.are.equal(temp.access_key, works(c))
      assert.are.equal(1, select(2, servers.read_file(counter):gsub("x", "")))
    end)

    it("failures name the command, never its output", function()
      local cases = {
        { script("echo '{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"leaked-secret\"}'; exit 3"),
          "exited with status 3" },
        { script("echo 'not json at all: leaked-secret'"), "did not print a JSON object" },
        { script("echo '{\"Version\": 2, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"leaked-secret\"}'"),
          "printed Version 2" },
        { script("echo '{\"Version\": 1, \"AccessKeyId\": \"AK\"}'"), "has no AccessKeyId and secret" },
        { script("echo '{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"leaked-secret\", "
          .. "\"Expiration\": \"soon\"}'"), "is not an ISO 8601 time" },
      }
      for _, case in ipairs(cases) do
        local h = home{ [".aws/config"] = "[default]\ncredential_process = " .. case[1] .. " secret-arg\n" }
        local r, err = client{ env = env(h) }:list_buckets()
        assert.is_nil(r)
        local msg = tostring(err)
        assert.truthy(msg:find("credential_process " .. case[1], 1, true), msg)
        assert.truthy(msg:find(case[2], 1, true), msg)
        assert.is_nil(msg:find("leaked-secret", 1, true), msg)
        assert.is_nil(msg:find("secret-arg", 1, true), msg)
      end
    end)
  end)

  describe("web identity", function()
    it("reads the token file and asks STS, unsigned; a refusal names the source, not the token", function()
      local tok = dir .. "/web-token"
      servers.write_file(tok, "eyJ-h9-web-identity-token.payload.sig\n")
      local e = env(nil, { AWS_WEB_IDENTITY_TOKEN_FILE = tok, AWS_ROLE_ARN = role_arn,
        AWS_ENDPOINT_URL_STS = rgw.sts_endpoint, AWS_REGION = rgw.region })
      -- rgw has no OIDC provider configured here: it refuses the token.
      local r, err = client{ env = e }:list_buckets()
      assert.is_nil(r)
      assert.are.equal("AssumeRoleWithWebIdentity", err.op)
      assert.truthy(err.status == 400 or err.status == 403, tostring(err))
      assert.is_nil(tostring(err):find("h9-web-identity-token", 1, true))
      -- a missing token file
      e.AWS_WEB_IDENTITY_TOKEN_FILE = dir .. "/no-such-token"
      r, err = credentials.web_identity{ env = e }()
      assert.is_nil(r)
      assert.truthy(err.message:find("web identity: cannot read the token file", 1, true))
    end)

    it("Alibaba OIDC: the token goes to AssumeRoleWithOIDC at the STS endpoint", function()
      local tok = dir .. "/oidc-token"
      servers.write_file(tok, "oidc-h9-token")
      local e = env(nil, { ALIBABA_CLOUD_OIDC_TOKEN_FILE = tok, ALIBABA_CLOUD_ROLE_ARN = "acs:ram::1:role/r",
        ALIBABA_CLOUD_OIDC_PROVIDER_ARN = "acs:ram::1:oidc-provider/p",
        ALIBABA_CLOUD_STS_ENDPOINT = "http://127.0.0.1:" .. PORT_IMDS })
      local r, err = credentials.oidc{ env = e }()
      -- the local server answers with the container JSON, not an STS answer
      assert.is_nil(r)
      assert.are.equal("MalformedResponse", err.code)
      local log = server_log(PORT_IMDS)
      local last = log[#log]
      assert.truthy(last.path:find("Action=AssumeRoleWithOIDC", 1, true), last.path)
      assert.truthy(last.path:find("OIDCToken=oidc-h9-token", 1, true), last.path)
      assert.is_nil(last.path:find("Signature=", 1, true))
    end)
  end)

  describe("container credentials (local server)", function()
    it("FULL_URI with the token from AUTHORIZATION_TOKEN_FILE", function()
      local tokfile = dir .. "/container-token"
      servers.write_file(tokfile, container_state.container_token .. "\n")
      local e = env(nil, { AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1:" .. PORT_CONTAINER .. "/v2/creds",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = tokfile, AWS_CONTAINER_AUTHORIZATION_TOKEN = "Bearer ignored" })
      assert.are.equal(temp.access_key, works(client{ env = e }))
      local log = server_log(PORT_CONTAINER)
      assert.are.equal("/v2/creds", log[#log].path)
      assert.are.equal(container_state.container_token, log[#log].headers.authorization)
    end)

    it("a wrong token, a failing or malformed answer: errors naming the source", function()
      local e = env(nil, { AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1:" .. PORT_CONTAINER .. "/v2/creds",
        AWS_CONTAINER_AUTHORIZATION_TOKEN = "Bearer wrong" })
      local r, err = credentials.container{ env = e }()
      assert.is_nil(r)
      assert.truthy(err.message:find("container credentials: http://127.0.0.1:" .. PORT_CONTAINER
        .. "/v2/creds answered HTTP 401", 1, true), err.message)
      e.AWS_CONTAINER_AUTHORIZATION_TOKEN = container_state.container_token
      local s = {}
      for k, v in pairs(container_state) do s[k] = v end
      s.malformed = true
      set_state(container_state.file, s)
      r, err = credentials.container{ env = e }()
      set_state(container_state.file, container_state)
      assert.is_nil(r)
      assert.are.equal("MalformedResponse", err.code)
      -- plain http to anything but loopback or the ECS agent is refused
      e.AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://198.51.100.7/creds"
      r, err = credentials.container{ env = e }()
      assert.is_nil(r)
      assert.truthy(err.message:find("plain http is only allowed", 1, true))
    end)
  end)

  describe("EC2 instance metadata (local server)", function()
    local function imds_env()
      return env(nil, { AWS_EC2_METADATA_DISABLED = "", AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:"
        .. PORT_IMDS })
    end

    it("IMDSv2: token PUT with its TTL, then the role and its credentials with the token", function()
      local before = #server_log(PORT_IMDS)
      assert.are.equal(temp.access_key, works(client{ env = imds_env() }))
      local log = server_log(PORT_IMDS)
      local mine = {}
      for i = before + 1, #log do mine[#mine + 1] = log[i] end
      assert.are.equal(3, #mine)
      assert.are.equal("PUT", mine[1].method)
      assert.are.equal("/latest/api/token", mine[1].path)
      assert.are.equal("21600", mine[1].headers["x-aws-ec2-metadata-token-ttl-seconds"])
      assert.are.equal("/latest/meta-data/iam/security-credentials/", mine[2].path)
      assert.are.equal("/latest/meta-data/iam/security-credentials/h9-instance-role", mine[3].path)
      for i = 2, 3 do
        assert.are.equal("GET", mine[i].method)
        assert.is_string(mine[i].headers["x-aws-ec2-metadata-token"])
      end
    end)

    it("a failing endpoint is an error naming the source; an unreachable one fails fast", function()
      local s = {}
      for k, v in pairs(imds_state) do s[k] = v end
      s.fail = 500
      set_state(imds_state.file, s)
      local r, err = credentials.imds{ env = imds_env() }()
      set_state(imds_state.file, imds_state)
      assert.is_nil(r)
      assert.truthy(err.message:find("instance metadata:", 1, true), err.message)
      local e = env(nil, { AWS_EC2_METADATA_DISABLED = "", AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:"
        .. PORT_DEAD })
      local t0 = monotonic()
      r, err = client{ env = e }:list_buckets()
      assert.is_true(monotonic() - t0 < 5, "bounded")
      assert.is_nil(r)
      assert.are.equal("NoCredentials", err.code)
      assert.truthy(err.message:find("instance metadata (instance metadata: http://127.0.0.1:" .. PORT_DEAD, 1, true),
        err.message)
    end)

    it("IMDSv1 where the token call does not exist", function()
      local s = {}
      for k, v in pairs(imds_state) do s[k] = v end
      s.imds_v1 = true
      set_state(imds_state.file, s)
      local c, err = credentials.imds{ env = imds_env() }()
      local c2, err2 = credentials.imds{ env = env(nil, { AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:"
        .. PORT_IMDS, AWS_EC2_METADATA_V1_DISABLED = "true" }) }()
      set_state(imds_state.file, imds_state)
      assert(c, tostring(err))
      assert.are.equal(temp.access_key, c.access_key)
      assert.is_nil(c2)
      assert.truthy(err2.message:find("answered HTTP 404", 1, true))
    end)
  end)

  describe("Alibaba Cloud", function()
    it("ECS RAM role metadata (local server): token handshake, the role's credentials", function()
      local e = env(nil, { ALIBABA_CLOUD_ECS_METADATA_ENDPOINT = "http://127.0.0.1:" .. PORT_ECS })
      local c = assert(credentials.ecs_ram_role{ env = e }())
      assert.same({ temp.access_key, temp.secret_key, temp.session_token, temp.expiration },
        { c.access_key, c.secret_key, c.session_token, c.expiration })
      local log = server_log(PORT_ECS)
      assert.are.equal("21600", log[#log - 2].headers["x-aliyun-ecs-metadata-token-ttl-seconds"])
      assert.is_string(log[#log].headers["x-aliyun-ecs-metadata-token"])
      -- a role named in ALIBABA_CLOUD_ECS_METADATA is not listed first
      e.ALIBABA_CLOUD_ECS_METADATA = "h9-instance-role"
      local before = #server_log(PORT_ECS)
      assert(credentials.ecs_ram_role{ env = e }())
      assert.are.equal(before + 2, #server_log(PORT_ECS))
    end)

    it("~/.aliyun/config.json and ~/.alibabacloud/credentials profiles, in that order", function()
      local h = home{
        [".aliyun/config.json"] = cjson.encode{ current = "work", profiles = {
          { name = "work", mode = "AK", access_key_id = "cli-ak", access_key_secret = "cli-sk" },
          { name = "sts", mode = "StsToken", access_key_id = "sts-ak", access_key_secret = "sts-sk",
            sts_token = "sts-token" },
          { name = "broken", mode = "AK", access_key_id = "x" } } },
        [".alibabacloud/credentials"] = "[default]\ntype = access_key\naccess_key_id = file-ak\n"
          .. "access_key_secret = file-sk\n[temp]\ntype = sts\naccess_key_id = t-ak\naccess_key_secret = t-sk\n"
          .. "security_token = t-token\n",
      }
      local function get(extra)
        return credentials.alibaba_profile{ env = env(h, extra), profile = extra and extra.profile }()
      end
      assert.are.equal("cli-ak", get().access_key)
      local s = get{ ALIBABA_CLOUD_PROFILE = "sts" }
      assert.same({ "sts-ak", "sts-sk", "sts-token" }, { s.access_key, s.secret_key, s.session_token })
      local r, err = get{ ALIBABA_CLOUD_PROFILE = "broken" }
      assert.is_nil(r)
      assert.truthy(err.message:find("profile broken: mode AK needs", 1, true))
      -- without the CLI's file, the credentials file
      os.remove(h .. "/.aliyun/config.json")
      assert.are.equal("file-ak", get().access_key)
      s = get{ ALIBABA_CLOUD_PROFILE = "temp" }
      assert.same({ "t-ak", "t-sk", "t-token" }, { s.access_key, s.secret_key, s.session_token })
      -- and the OSS default chain finds them after the environment
      local chain = credentials.default_chain("oss", { env = env(h) })
      assert.are.equal("file-ak", chain().access_key)
      chain = credentials.default_chain("oss",
        { env = env(h, { OSS_ACCESS_KEY_ID = "o", OSS_ACCESS_KEY_SECRET = "s" }) })
      assert.are.equal("o", chain().access_key)
    end)

    it("a RAM role profile signs AssumeRole with the profile's keys", function()
      local h = home{ [".alibabacloud/credentials"] = "[default]\ntype = ram_role_arn\naccess_key_id = ram-ak\n"
        .. "access_key_secret = ram-sk\nrole_arn = acs:ram::1:role/r\nrole_session_name = h9-ram\n" }
      local r, err = credentials.alibaba_profile{ env = env(h, { ALIBABA_CLOUD_STS_ENDPOINT = "http://127.0.0.1:"
        .. PORT_IMDS }) }()
      assert.is_nil(r)
      assert.are.equal("MalformedResponse", err.code)
      local last = server_log(PORT_IMDS)
      last = last[#last]
      for _, part in ipairs{ "Action=AssumeRole", "AccessKeyId=ram-ak", "RoleSessionName=h9-ram", "Signature=" } do
        assert.truthy(last.path:find(part, 1, true), last.path)
      end
    end)
  end)
end)

-- The one credentials cache, offline: a clock of our own, a fetch that
-- yields in the middle (as a cosocket fetch does), and a client whose
-- semaphore yields too, so two requests of one nginx worker are played as
-- two coroutines.
describe("the credentials cache (credentials.refreshing)", function()
  local refreshing = require "objstore.credentials.refreshing"

  local function creds(n, exp) return { access_key = "AK" .. n, secret_key = "SK" .. n, expiration = exp } end

  -- Plain Lua 5.1 cannot yield across pcall (the cache calls its fetch in
  -- one); LuaJIT (nginx's) and 5.2+ can, and only nginx has requests that
  -- wait on each other.
  local function yields_across_pcall()
    local co = coroutine.create(function() pcall(coroutine.yield) end)
    coroutine.resume(co)
    return coroutine.status(co) == "suspended"
  end

  it("renews short-lived credentials half-way through their life, not at every call", function()
    local now, fetches = 1000, 0
    local cache = refreshing.new{ now = function() return now end, margin = 300, fetch = function()
      fetches = fetches + 1
      return creds(fetches, now + 60)
    end }
    assert.equal("AK1", cache:get().access_key)
    now = now + 29
    assert.equal("AK1", cache:get().access_key)
    assert.equal(1, fetches)
    now = now + 1 -- half of 60 s
    assert.equal("AK2", cache:get().access_key)
    -- long-lived ones: `margin` before their end
    local long = refreshing.new{ now = function() return now end, margin = 300, fetch = function()
      fetches = fetches + 1
      return creds(fetches, now + 3600)
    end }
    long:get()
    local n = fetches
    now = now + 3299
    long:get()
    assert.equal(n, fetches)
    now = now + 1
    long:get()
    assert.equal(n + 1, fetches)
    -- a refresh time given by the fetch (another worker's schedule) wins
    local given = refreshing.new{ now = function() return now end, fetch = function()
      fetches = fetches + 1
      local c = creds(fetches, now + 3600)
      c.refresh_at = now + 10
      return c
    end }
    given:get()
    n = fetches
    now = now + 10
    given:get()
    assert.equal(n + 1, fetches)
  end)

  it("lets a request without credentials wait on the semaphore, woken once when the renewal ends", function()
    if not yields_across_pcall() then return pending("Lua 5.1 cannot yield across pcall") end
    local posted, waits = {}, 0
    local client = {
      semaphore = function()
        return { wait = function() waits = waits + 1; return coroutine.yield("waiting") end,
          post = function(_, n) posted[#posted + 1] = n end }
      end,
      pause = function() error("no request may poll with sleep") end,
    }
    local fetches = 0
    local cache = refreshing.new{ now = function() return 1000 end, fetch = function()
      fetches = fetches + 1
      coroutine.yield("fetching")
      return creds(fetches, 5000)
    end }
    local a = coroutine.create(function() return cache:get(client) end)
    local b = coroutine.create(function() return cache:get(client) end)
    assert.same({ true, "fetching" }, { coroutine.resume(a) })
    assert.same({ true, "waiting" }, { coroutine.resume(b) })
    local ok, got = coroutine.resume(a) -- the fetch returns: b is woken
    assert.is_true(ok)
    assert.equal("AK1", got.access_key)
    assert.same({ 1 }, posted)
    local ok2, got2 = coroutine.resume(b, true)
    assert.is_true(ok2, tostring(got2))
    assert.equal("AK1", got2.access_key)
    assert.equal(1, fetches)
    assert.equal(1, waits)
    -- with valid credentials nobody waits for a renewal
    assert.equal("AK1", cache:get(client).access_key)
    assert.equal(1, waits)
  end)

  it("takes an ISO 8601 or numeric-string expiration, and answers an error value (no raise) for any other", function()
    local now = 1000
    local iso = refreshing.new{ now = function() return now end, fetch = function()
      return { access_key = "AK", secret_key = "SK", expiration = "1970-01-01T01:23:20Z" } -- 5000
    end }
    local c = iso:get()
    assert.equal(5000, c.expiration)
    now = 6000 -- expired: renewed, not compared as a string
    assert.equal("AK", iso:get().access_key)
    assert.equal(5000, refreshing.new{ fetch = function()
      return { access_key = "AK", secret_key = "SK", expiration = "5000" } end, now = function() return 1 end }
      :get().expiration)
    local bad = refreshing.new{ now = function() return now end, fetch = function()
      return { access_key = "AK", secret_key = "SK", expiration = { 1 } }
    end }
    local ok, got, err = pcall(bad.get, bad)
    assert.is_true(ok, tostring(got))
    assert.is_nil(got)
    assert.equal("CredentialsError", err.code)
    assert.matches("expiration", err.message, 1, true)
  end)

  it("keeps a secret out of the error of a fetch that fails or raises", function()
    for _, f in ipairs{ function() return nil, "STS said: X-Amz-Security-Token: TOPSECRETVALUE1234" end,
      function() error("STS said: X-Amz-Security-Token: TOPSECRETVALUE1234") end } do
      local _, err = refreshing.new{ fetch = f, now = function() return 1 end }:get()
      assert.equal("CredentialsError", err.code)
      assert.no_match("TOPSECRETVALUE1234", err.message, 1, true)
    end
  end)

  it("keeps its count of waiters right when a wait raises, and wakes the semaphore's own waiters", function()
    if not yields_across_pcall() then return pending("Lua 5.1 cannot yield across pcall") end
    local posted, blocked = {}, 0
    local sema = { wait = function() error("no request found") end,
      post = function(_, n) posted[#posted + 1] = n end,
      count = function() return -blocked end }
    local client = { semaphore = function() return sema end }
    local cache = refreshing.new{ now = function() return 1000 end, fetch = function()
      coroutine.yield("fetching")
      return creds(1, 5000)
    end }
    local a = coroutine.create(function() return cache:get(client) end)
    assert.same({ true, "fetching" }, { coroutine.resume(a) })
    local ok, c, err = pcall(cache.get, cache, client)
    assert.is_true(ok, tostring(c))
    assert.is_nil(c)
    assert.equal("CredentialsError", err.code)
    assert.equal(0, cache.waiting)
    blocked = 2 -- two threads the semaphore says are waiting
    local ok2, got = coroutine.resume(a)
    assert.is_true(ok2, tostring(got))
    assert.equal("AK1", got.access_key)
    assert.same({ 2 }, posted)
  end)

  it("openresty.credentials.cached: no secret in a provider's raise, no raise for an expiration not a time", function()
    local cached = require("objstore.openresty.credentials").cached
    local _, err = cached(function() error("boom: X-Amz-Security-Token: TOPSECRETVALUE1234") end)({})
    assert.equal("CredentialsError", err.code)
    assert.no_match("TOPSECRETVALUE1234", err.message, 1, true)
    local ok, c, err2 = pcall(cached(function()
      return { access_key = "AK", secret_key = "SK", expiration = true } end), {})
    assert.is_true(ok, tostring(c))
    assert.is_nil(c)
    assert.equal("CredentialsError", err2.code)
    local c3 = cached(function()
      return { access_key = "AK", secret_key = "SK", expiration = "2030-01-01T00:00:00Z" } end)({})
    assert.equal("number", type(c3.expiration))
  end)

  it("does not wait for good on a renewal whose request was killed mid-fetch (a client abort in nginx)", function()
    if not yields_across_pcall() then return pending("Lua 5.1 cannot yield across pcall") end
    local now, fetches = 1000, 0
    local cache = refreshing.new{ now = function() return now end, fetch = function()
      fetches = fetches + 1
      if fetches == 1 then coroutine.yield("fetching") end -- never resumed: its request ended
      return creds(fetches, now + 3600)
    end }
    local a = coroutine.create(function() return cache:get({}) end)
    assert.same({ true, "fetching" }, { coroutine.resume(a) })
    a = nil -- luacheck: ignore (the killed request's thread is gone)
    -- while it may still be under way, a caller that cannot wait is refused
    local c, err = cache:get({})
    assert.is_nil(c)
    assert.equal("CredentialsError", err.code)
    -- long after any fetch would have ended, the next caller renews itself
    now = now + 120
    local c2, err2 = cache:get({})
    assert.is_table(c2, tostring(err2))
    assert.equal("AK2", c2.access_key)
    assert.equal(2, fetches)
  end)

  it("answers an error value where the caller cannot wait (no semaphore), naming objstore.openresty.defer", function()
    if not yields_across_pcall() then return pending("Lua 5.1 cannot yield across pcall") end
    local cache = refreshing.new{ now = function() return 1000 end, fetch = function()
      coroutine.yield()
      return creds(1, 5000)
    end }
    local a = coroutine.create(function() return cache:get() end)
    assert(coroutine.resume(a))
    local c, err = cache:get({})
    assert.is_nil(c)
    assert.equal("CredentialsError", err.code)
    assert.matches("objstore.openresty.defer", err.message, 1, true)
  end)
end)
