--- Where credentials come from when a client is not given them, and how
-- expiring ones are refreshed. A provider is a function
-- `provider(client, reason) -> { access_key, secret_key, session_token?,
-- expiration? (epoch seconds) } | nil, err`; the client calls it again
-- before `expiration` (reason "rejected" after the server refused them).
--
-- The default chains (nothing is read or fetched before the first request;
-- a profile named by opts.profile replaces the whole chain, see
-- named_profile):
--   S3 (the order of the AWS SDKs for Java v2 and Go): environment
--     (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), web
--     identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), the shared
--     files' profile (opts.profile / AWS_PROFILE / "default": keys, role
--     chains, credential_process), container credentials
--     (AWS_CONTAINER_CREDENTIALS_*), EC2 instance metadata (unless
--     AWS_EC2_METADATA_DISABLED=true).
--   OSS (the order of Alibaba Cloud's credentials SDKs, after ossutil's
--     OSS_* variables): OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET /
--     OSS_SESSION_TOKEN, ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET /
--     ALIBABA_CLOUD_SECURITY_TOKEN, OIDC (ALIBABA_CLOUD_OIDC_TOKEN_FILE,
--     _ROLE_ARN, _OIDC_PROVIDER_ARN), ~/.aliyun/config.json,
--     ~/.alibabacloud/credentials, ECS RAM role metadata (unless
--     ALIBABA_CLOUD_ECS_METADATA_DISABLED=true).
local util = require "objstore.credentials.util"
local env_source = require "objstore.credentials.env"
local shared_files = require "objstore.credentials.shared_files"
local chain = require "objstore.credentials.chain"
local assume_role = require "objstore.credentials.assume_role"
local files = require "objstore.credentials.files"
local process = require "objstore.credentials.process"
local web_identity = require "objstore.credentials.web_identity"
local metadata = require "objstore.credentials.metadata"

local _M = {}

-- Seconds before expiration at which credentials are refreshed, so a
-- request signed now is not rejected in flight.
_M.REFRESH_MARGIN = util.REFRESH_MARGIN

--- Credentials from the environment (`env` is an optional table standing in
-- for os.getenv, for tests). Returns a table or nil. OSS reads OSS_* first,
-- then Alibaba Cloud's ALIBABA_CLOUD_* names.
_M.from_env = env_source.from_env

--- The environment as a provider ("s3" or "oss"): nil, nil when unset.
_M.env = env_source.provider

--- Parses an INI file as the AWS CLI writes them.
_M.parse_ini = shared_files.parse_ini

--- Profile settings merged from the shared credentials and config files:
-- (credentials or nil, settings table).
_M.from_shared_files = shared_files.from_shared_files

_M.profile = files.aws_profile
_M.alibaba_profile = files.alibaba_profile
_M.process = process.provider
_M.web_identity = web_identity.aws
_M.oidc = web_identity.oidc
_M.container = metadata.container
_M.imds = metadata.imds
_M.ecs_ram_role = metadata.ecs_ram_role

_M.chain = chain.chain
_M.named_profile = chain.named_profile
_M.default_chain = chain.default_chain

--- A refreshing provider of temporary credentials from STS AssumeRole
-- (objstore.credentials.assume_role).
_M.assume_role = assume_role.new

--- A provider from whatever the caller gave: a function, an object with
-- :get() (or :resolve()), or a plain table of static credentials.
_M.provider = util.provider

return _M
