--- Credentials from the HTTP endpoints of the platform a program runs on,
-- each a refreshing provider (objstore.credentials.refreshing), fetched
-- through the asking client's transport with short timeouts:
--
--   container(opts)    ECS/EKS container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI
--                      or _RELATIVE_URI (on 169.254.170.2), with the Authorization
--                      header from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN
--   imds(opts)         EC2 instance metadata, IMDSv2: PUT /latest/api/token (TTL
--                      header) then GETs with X-aws-ec2-metadata-token; endpoint
--                      AWS_EC2_METADATA_SERVICE_ENDPOINT (default 169.254.169.254)
--   ecs_ram_role(opts) Alibaba Cloud ECS RAM role: 100.100.100.200 (override:
--                      ALIBABA_CLOUD_ECS_METADATA_ENDPOINT), the same token handshake
--                      with X-aliyun-ecs-metadata-token*, role ALIBABA_CLOUD_ECS_METADATA
--                      or the one the instance lists
-- opts: env (table standing in for the environment), endpoint, role_name,
-- margin, on_error. Nothing is read before the first request.
local util = require "objstore.credentials.util"
local url_mod = require "objstore.url"
local fetch = require "objstore.credentials.fetch"
local refreshing = require "objstore.credentials.refreshing"

local tostring, tonumber, type, ipairs = tostring, tonumber, type, ipairs

local _M = {}

local TOKEN_TTL = 21600

local function get(holder, client, url, source, headers, method)
  local res, err = fetch.http(holder, client, url, { op = source, headers = headers, method = method })
  if not res then
    err.message = source .. ": " .. url .. " did not answer: " .. tostring(err.message or err.code)
    err.source = source
    return nil, err
  end
  return res
end

local function status_error(source, url, res)
  return util.fail(source, url .. " answered HTTP " .. tostring(res.status), res.status == 404 and "NotFound" or nil)
end

-- Hosts the container endpoint may be reached on over plain http (as in
-- the AWS SDKs): loopback (127.0.0.0/8, ::1, localhost) and the ECS/EKS
-- agent addresses. https is allowed to any host.
local AGENT_HOSTS = { ["169.254.170.2"] = true, ["169.254.170.23"] = true, ["fd00:ec2::23"] = true,
  ["localhost"] = true, ["::1"] = true }

local function ipv4_loopback(host)
  local a, b, c, d = host:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if not a then return false end
  for _, o in ipairs{ a, b, c, d } do
    if tonumber(o) > 255 or (#o > 1 and o:sub(1, 1) == "0") then return false end
  end
  return a == "127"
end

--- Whether the container credentials URL may be used: the scheme read
-- case-insensitively; https to any host; http only when the host is exactly
-- a loopback address or an ECS/EKS agent address (no user info, a numeric
-- port if any). Returns true or false, why.
function _M.container_url_allowed(u)
  if type(u) ~= "string" then return false, "not a URL" end
  local scheme = u:match("^(%a[%w+.-]*)://")
  if not scheme then return false, "not an absolute http(s) URL" end
  scheme = scheme:lower()
  if scheme == "https" then return true end
  if scheme ~= "http" then return false, "scheme " .. scheme .. " is neither http nor https" end
  local p, why = url_mod.parse(u)
  if not p then return false, why end
  if p.userinfo then return false, "user information in the URL" end
  local host = p.host:lower()
  if AGENT_HOSTS[host] or ipv4_loopback(host) then return true end
  return false, "plain http is only allowed to loopback or the ECS/EKS agent"
end

--- ECS/EKS container credentials.
function _M.container(opts)
  opts = opts or {}
  local env, holder = opts.env, {}
  local source = "container credentials"
  return refreshing.new{ name = source, margin = opts.margin, on_error = opts.on_error, fetch = function(client)
    local url = util.getenv(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
    local rel = util.getenv(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    if rel then url = "http://169.254.170.2" .. rel end
    if not url then return nil, util.fail(source, "AWS_CONTAINER_CREDENTIALS_FULL_URI/RELATIVE_URI are not set",
      "NoCredentials") end
    if not rel then
      local allowed, why = _M.container_url_allowed(url)
      if not allowed then
        return nil, util.fail(source, "plain http is only allowed to loopback or the ECS/EKS agent (" .. why
          .. "), not " .. url)
      end
    end
    local headers
    local token_file = util.getenv(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    local token = util.getenv(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if token_file then
      token = util.read_file(token_file)
      if not token then return nil, util.fail(source, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") end
      token = token:gsub("%s+$", "")
    end
    if token then
      if token:find("[\r\n]") then return nil, util.fail(source, "the authorization token contains CR or LF") end
      headers = { Authorization = token }
    end
    local res, err = get(holder, client, url, source, headers)
    if not res then return nil, err end
    if res.status ~= 200 then return nil, status_error(source, url, res) end
    local t, jerr = util.json(source, res.body)
    if not t then return nil, jerr end
    return util.from_json(source, t, false)
  end }
end

--- A metadata service with a session-token handshake (EC2 IMDSv2, ECS
-- RAM role): returns fetch(client) -> credentials | nil, err.
local function token_service(spec)
  local holder, token, token_expires = {}, nil, 0
  local function session_token(client, base)
    local now = client and client.now and client:now() or os.time()
    if token and now < token_expires then return token end
    local res, err = get(holder, client, base .. spec.token_path, spec.source,
      { [spec.ttl_header] = tostring(TOKEN_TTL) }, "PUT")
    if not res then return nil, err end
    if res.status == 200 and res.body and res.body ~= "" then
      token, token_expires = res.body, now + TOKEN_TTL - 60
      return token
    end
    -- 403: the token service refuses (disabled); 404/405: an old
    -- service without tokens, asked without one (IMDSv1).
    if (res.status == 404 or res.status == 405) and not spec.v1_disabled() then return false end
    return nil, status_error(spec.source, base .. spec.token_path, res)
  end
  return function(client)
    local base = (spec.endpoint() or spec.default_endpoint):gsub("/+$", "")
    local tok, terr = session_token(client, base)
    if tok == nil then return nil, terr end
    local function ask(path)
      local res, err = get(holder, client, base .. path, spec.source, tok and { [spec.token_header] = tok } or nil)
      if res and res.status == 401 and tok then
        -- The session token expired early (or the service restarted).
        token = nil
        tok = session_token(client, base)
        if tok == nil then return nil, util.fail(spec.source, "the session token was refused") end
        res, err = get(holder, client, base .. path, spec.source, tok and { [spec.token_header] = tok } or nil)
      end
      if not res then return nil, err end
      if res.status ~= 200 then return nil, status_error(spec.source, base .. path, res) end
      return res.body or ""
    end
    local role = spec.role_name()
    if not role then
      local list, err = ask(spec.roles_path)
      if not list then return nil, err end
      role = list:match("^%s*([^\r\n]+)")
      if not role then return nil, util.fail(spec.source, "the instance has no role attached", "NoCredentials") end
    end
    local body, err = ask(spec.roles_path .. role)
    if not body then return nil, err end
    local t, jerr = util.json(spec.source, body)
    if not t then return nil, jerr end
    if t.Code ~= nil and t.Code ~= "Success" then
      return nil, util.fail(spec.source, "the role's credentials are not available (Code " .. tostring(t.Code) .. ")")
    end
    return util.from_json(spec.source, t, true)
  end
end

--- EC2 instance metadata (IMDSv2, IMDSv1 only where the token call does
-- not exist and AWS_EC2_METADATA_V1_DISABLED is not true).
function _M.imds(opts)
  opts = opts or {}
  local env = opts.env
  return refreshing.new{ name = "instance metadata", margin = opts.margin, on_error = opts.on_error,
    fetch = token_service{ source = "instance metadata", default_endpoint = "http://169.254.169.254",
      endpoint = function() return opts.endpoint or util.getenv(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT") end,
      token_path = "/latest/api/token", ttl_header = "X-aws-ec2-metadata-token-ttl-seconds",
      token_header = "X-aws-ec2-metadata-token", roles_path = "/latest/meta-data/iam/security-credentials/",
      role_name = function() return opts.role_name end,
      v1_disabled = function() return util.flag(env, "AWS_EC2_METADATA_V1_DISABLED") end } }
end

--- Alibaba Cloud ECS RAM role metadata.
function _M.ecs_ram_role(opts)
  opts = opts or {}
  local env = opts.env
  return refreshing.new{ name = "ECS RAM role", margin = opts.margin, on_error = opts.on_error,
    fetch = token_service{ source = "ECS RAM role", default_endpoint = "http://100.100.100.200",
      endpoint = function() return opts.endpoint or util.getenv(env, "ALIBABA_CLOUD_ECS_METADATA_ENDPOINT") end,
      token_path = "/latest/api/token", ttl_header = "X-aliyun-ecs-metadata-token-ttl-seconds",
      token_header = "X-aliyun-ecs-metadata-token", roles_path = "/latest/meta-data/ram/security-credentials/",
      role_name = function() return opts.role_name or util.getenv(env, "ALIBABA_CLOUD_ECS_METADATA") end,
      v1_disabled = function() return util.flag(env, "ALIBABA_CLOUD_IMDSV1_DISABLED") end } }
end

_M.TOKEN_TTL = tonumber(TOKEN_TTL)

return _M
