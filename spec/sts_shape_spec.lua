-- The STS requests objstore.sts sends, byte for byte against the official
-- SDKs at a fixed time (and, for Alibaba Cloud, a fixed nonce), nothing
-- sent:
--   * Alibaba Cloud STS: @alicloud/pop-core (pinned in package.json), the
--     SDK whose RPC client exposes the request it builds (its signed URL is
--     handed to httpx.request, which spec/support/aliyun_sts_shape.js
--     replaces with a recorder). Compared: method, the whole URL (query
--     order, percent-encoding, Signature) and the x-acs-* headers.
--   * AWS STS: botocore (/usr/bin/python3, spec/support/botocore_sts_shape.py,
--     a before-send recorder). Compared: method, URL, the form body, the
--     Content-Type, X-Amz-Date, X-Amz-Security-Token and Authorization.
-- Also what no SDK run here covers: AssumeRoleWithOIDC's anonymous form.
local cjson = require "cjson"
local servers = require "servers"
local sts = require "objstore.sts"

local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/sts_shape_spec.lua"
local ROOT = here:match("^(.*)/spec/[^/]*$") or "."

local T0 = 1700000000 -- 2023-11-14T22:13:20Z
local T1 = 1735689599 -- 2024-12-31T23:59:59Z

local function sh(cmd)
  local p = io.popen("cd " .. ROOT .. " && " .. cmd .. " 2>&1; echo \"__rc=$?\"")
  local out = p:read("*a")
  p:close()
  return out:match("__rc=0%s*$") ~= nil, (out:gsub("__rc=%d+%s*$", ""))
end

local function run_tool(cmd, input)
  local infile = os.tmpname()
  local f = assert(io.open(infile, "wb"))
  f:write(cjson.encode(input))
  f:close()
  local ok, out = sh(cmd .. " < " .. infile)
  os.remove(infile)
  assert(ok, cmd .. " failed:\n" .. out:sub(-3000))
  return cjson.decode(out)
end

local function ensure_pop_core() servers.node_package("@alicloud/pop-core") end

local POLICY = '{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject"],'
  .. '"Resource":["acs:oss:*:*:bucket/dir with space/*"],"Condition":{"StringLike":{"x":"é*~!()\'"}}}]}'

describe("Alibaba Cloud STS requests equal @alicloud/pop-core's", function()
  local cases = {
    { id = "assume-role", action = "AssumeRole", time = T0, nonce = "a3b1c2d4e5f60718293a4b5c6d7e8f90",
      creds = { "LTAI5tStsShapeKeyId", "stsShapeSecret/With+Chars=" },
      params = { role_arn = "acs:ram::1234567890123456:role/objstore-test", session_name = "objstore-session",
        duration = 3600 } },
    { id = "assume-role-all", action = "AssumeRole", time = T1, nonce = "nonce-with.dots_and~tilde",
      creds = { "LTAI5tStsShapeKeyId", "s", "CAIS/sts+token==" },
      params = { role_arn = "acs:ram::1234567890123456:role/r", session_name = "a.b-c_d@e",
        duration = 900, policy = POLICY, external_id = "ext id/1" } },
    { id = "caller-identity", action = "GetCallerIdentity", time = T0, nonce = "0f0e0d0c",
      creds = { "LTAI5tStsShapeKeyId", "stsShapeSecret" }, params = {} },
  }
  local WIRE = { role_arn = "RoleArn", session_name = "RoleSessionName", duration = "DurationSeconds",
    policy = "Policy", external_id = "ExternalId" }

  local theirs
  setup(function()
    ensure_pop_core()
    local input = { cases = {} }
    for _, c in ipairs(cases) do
      local params = {}
      for k, v in pairs(c.params) do params[WIRE[k]] = v end
      input.cases[#input.cases + 1] = { id = c.id, endpoint = "https://sts.cn-hangzhou.aliyuncs.com",
        access_key = c.creds[1], secret_key = c.creds[2], session_token = c.creds[3] or cjson.null,
        action = c.action, params = next(params) and params or cjson.empty_array, time = c.time, nonce = c.nonce }
    end
    local out = run_tool("node spec/support/aliyun_sts_shape.js", input)
    assert.are.equal("1.8.0", out.version)
    theirs = {}
    for _, r in ipairs(out.cases) do
      assert.is_nil(r.error, r.error)
      theirs[r.id] = r
    end
  end)

  for _, c in ipairs(cases) do
    it(c.id, function()
      local s = sts.new{ provider = "oss", region = "cn-hangzhou", access_key = c.creds[1], secret_key = c.creds[2],
        session_token = c.creds[3], nonce = c.nonce }
      local ours = assert(s:prepare(c.action, c.params, c.time))
      s:close()
      local t = theirs[c.id]
      assert.are.equal(t.method, ours.method)
      assert.are.equal(t.url, ours.url)
      assert.are.equal(t.headers["x-acs-action"], ours.headers["x-acs-action"])
      assert.are.equal(t.headers["x-acs-version"], ours.headers["x-acs-version"])
      assert.truthy(ours.url:find("&Signature=", 1, true))
    end)
  end

  it("AssumeRoleWithOIDC is anonymous: common parameters, no key, no signature", function()
    local s = sts.new{ provider = "oss", region = "cn-shanghai" }
    local r = assert(s:prepare("AssumeRoleWithOIDC", { oidc_provider_arn = "acs:ram::1:oidc-provider/p",
      role_arn = "acs:ram::1:role/r", oidc_token = "eyJ.header.sig", session_name = "s1" }, T0))
    assert.are.equal("https://sts.cn-shanghai.aliyuncs.com/?Action=AssumeRoleWithOIDC&Format=JSON"
      .. "&OIDCProviderArn=acs%3Aram%3A%3A1%3Aoidc-provider%2Fp&OIDCToken=eyJ.header.sig"
      .. "&RoleArn=acs%3Aram%3A%3A1%3Arole%2Fr&RoleSessionName=s1&Timestamp=2023-11-14T22%3A13%3A20Z"
      .. "&Version=2015-04-01", r.url)
  end)

  it("a fresh nonce per request", function()
    local s = sts.new{ provider = "oss", access_key = "k", secret_key = "s" }
    local a = assert(s:prepare("GetCallerIdentity", {}, T0)).url:match("SignatureNonce=([^&]+)")
    local b = assert(s:prepare("GetCallerIdentity", {}, T0)).url:match("SignatureNonce=([^&]+)")
    assert.is_string(a)
    assert.are_not.equal(a, b)
  end)
end)

describe("AWS STS requests equal botocore's", function()
  local ARN = "arn:aws:iam::123456789012:role/objstore-test"
  local cases = {
    { id = "assume-role", op = "assume_role", action = "AssumeRole", time = T0, region = "us-west-2",
      creds = { "AKIDSTSSHAPE", "stsShape/Secret+=" },
      params = { role_arn = ARN, session_name = "objstore-session", duration = 3600 } },
    { id = "assume-role-all", op = "assume_role", action = "AssumeRole", time = T1, region = "eu-central-1",
      creds = { "ASIASTSSHAPE", "secret", "IQoJb3JpZ2luX2VjE/token+==" },
      params = { role_arn = ARN, session_name = "a.b-c_d@e=f,g", duration = 900, external_id = "ext id/1",
        policy = POLICY, policy_arns = { "arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::1:policy/p" } } },
    { id = "session-token", op = "get_session_token", action = "GetSessionToken", time = T0, region = "us-east-1",
      creds = { "AKIDSTSSHAPE", "s" }, params = { duration = 43200 } },
    { id = "caller-identity", op = "get_caller_identity", action = "GetCallerIdentity", time = T0,
      region = "ap-southeast-2", creds = { "AKIDSTSSHAPE", "s", "tok" }, params = {} },
    { id = "web-identity", op = "assume_role_with_web_identity", action = "AssumeRoleWithWebIdentity", time = T0,
      region = "us-west-2", params = { role_arn = ARN, session_name = "web-session", web_identity_token = "eyJ.a.b",
        duration = 1800 } },
  }
  local WIRE = { role_arn = "RoleArn", session_name = "RoleSessionName", duration = "DurationSeconds",
    policy = "Policy", external_id = "ExternalId", web_identity_token = "WebIdentityToken" }

  local function prepare(c)
    local creds = c.creds or {}
    local s = sts.new{ region = c.region, access_key = creds[1], secret_key = creds[2], session_token = creds[3] }
    local r = assert(s:prepare(c.action, c.params, c.time))
    s:close()
    return r
  end

  local theirs
  setup(function()
    local input = { cases = {} }
    for _, c in ipairs(cases) do
      -- botocore writes the parameters in the order they are passed: pass
      -- them in the order objstore's body has them.
      local order, seen = {}, {}
      for pair in prepare(c).body:gmatch("[^&]+") do
        local name = pair:match("^(%w+)")
        if not seen[name] and name ~= "Action" and name ~= "Version" then
          order[#order + 1], seen[name] = name, true
        end
      end
      local by_wire = {}
      for k, v in pairs(c.params) do
        if k == "policy_arns" then
          local list = {}
          for i, arn in ipairs(v) do list[i] = { arn = arn } end
          by_wire.PolicyArns = list
        else
          by_wire[WIRE[k]] = v
        end
      end
      local params = {}
      for i, name in ipairs(order) do params[i] = { name, by_wire[name] } end
      local creds = c.creds or {}
      input.cases[#input.cases + 1] = { id = c.id, endpoint = sts.default_endpoint("s3", c.region),
        region = c.region, access_key = creds[1], secret_key = creds[2], session_token = creds[3],
        operation = c.op, params = #params > 0 and params or cjson.empty_array, time = c.time }
    end
    local out = run_tool("/usr/bin/python3 spec/support/botocore_sts_shape.py", input)
    theirs = {}
    for _, r in ipairs(out.cases) do theirs[r.id] = r end
  end)

  for _, c in ipairs(cases) do
    it(c.id, function()
      local ours = prepare(c)
      local t = theirs[c.id]
      local h = {}
      for k, v in pairs(ours.headers) do h[k:lower()] = v end
      assert.are.equal(t.method, ours.method)
      assert.are.equal(t.url, ours.url)
      assert.are.equal(t.body, ours.body)
      assert.are.equal(t.headers["content-type"], h["content-type"])
      assert.are.equal(t.headers["x-amz-date"], h["x-amz-date"])
      assert.are.equal(t.headers["x-amz-security-token"], h["x-amz-security-token"])
      assert.are.equal(t.headers["authorization"], h["authorization"])
      if c.creds then assert.is_string(h["authorization"]) else assert.is_nil(h["authorization"]) end
    end)
  end

  it("regional endpoints", function()
    assert.are.equal("https://sts.us-east-1.amazonaws.com", sts.default_endpoint("s3"))
    assert.are.equal("https://sts.cn-north-1.amazonaws.com.cn", sts.default_endpoint("s3", "cn-north-1"))
    assert.are.equal("https://sts.aliyuncs.com", sts.default_endpoint("oss"))
    assert.are.equal("https://sts.cn-beijing.aliyuncs.com", sts.default_endpoint("oss", "cn-beijing"))
  end)
end)
