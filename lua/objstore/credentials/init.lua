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

--- from_env(provider, env) -> { access_key, secret_key, session_token? } | nil
-- Credentials from the environment (`env` is an optional table standing in
-- for os.getenv, for tests). OSS reads OSS_* first,
-- then Alibaba Cloud's ALIBABA_CLOUD_* names.
_M.from_env = env_source.from_env

--- env(opts) -> provider
-- The environment as a provider: opts.provider "s3" or "oss"; the
-- provider answers nil, nil when the variables are unset.
_M.env = env_source.provider

--- parse_ini(text) -> { section = { key = value } }
-- Parses an INI file as the AWS CLI writes them.
_M.parse_ini = shared_files.parse_ini

--- from_shared_files(profile, env) -> credentials | nil, settings
-- Profile settings merged from the shared credentials and config files.
_M.from_shared_files = shared_files.from_shared_files

--- profile(opts) -> provider
-- A provider for an AWS profile of the shared files: static keys, a role
-- chain (role_arn with source_profile or credential_source), a
-- web_identity_token_file or a credential_process. The provider answers
-- nil, nil when the profile has nothing.
-- opts.profile: the profile name (default AWS_PROFILE, else "default").
-- opts.env: a table standing in for os.getenv (tests).
_M.profile = files.aws_profile

--- alibaba_profile(opts) -> provider
-- Alibaba Cloud profiles: the aliyun CLI's ~/.aliyun/config.json (modes
-- AK, StsToken, RamRoleArn, EcsRamRole, ...), then ~/.alibabacloud/credentials.
-- opts.profile: the profile name.
-- opts.env: a table standing in for os.getenv (tests).
_M.alibaba_profile = files.alibaba_profile

--- process(command, opts) -> provider
-- A refreshing provider running `command` (credential_process: JSON with
-- AccessKeyId, SecretAccessKey, SessionToken, Expiration on stdout). Its
-- errors name only the command's first word (arguments may hold secrets).
_M.process = process.provider

--- web_identity(opts) -> provider
-- AWS web identity (Kubernetes service account tokens, EKS): reads the
-- token file and calls STS AssumeRoleWithWebIdentity, refreshed before
-- expiry. Configured by AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN and
-- AWS_ROLE_SESSION_NAME, or opts of the same meaning.
_M.web_identity = web_identity.aws

--- oidc(opts) -> provider
-- Alibaba Cloud OIDC (ACK RRSA): the token file and STS
-- AssumeRoleWithOIDC, from ALIBABA_CLOUD_OIDC_TOKEN_FILE,
-- ALIBABA_CLOUD_ROLE_ARN and ALIBABA_CLOUD_OIDC_PROVIDER_ARN, or opts.
_M.oidc = web_identity.oidc

--- container(opts) -> provider
-- ECS/EKS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
-- _FULL_URI with its authorization token); http only to loopback or the
-- ECS/EKS agent addresses.
_M.container = metadata.container

--- imds(opts) -> provider
-- EC2 instance metadata (IMDSv2; IMDSv1 only where the token call does not
-- exist and AWS_EC2_METADATA_V1_DISABLED is not true).
_M.imds = metadata.imds

--- ecs_ram_role(opts) -> provider
-- Alibaba Cloud ECS RAM role metadata (100.100.100.200).
_M.ecs_ram_role = metadata.ecs_ram_role

--- chain(links, what) -> provider
-- The first of `links` that gives credentials; once one has, it is the one
-- asked from then on (as the SDKs do). A link answers nil, nil when its
-- source is not configured (next link), nil, err when it is but fails (the
-- chain stops with that error). links[i] is { name, provider, when =
-- function() -> configured? } or a provider; `what` names the chain in
-- errors.
_M.chain = chain.chain

--- named_profile(provider, name, env) -> provider
-- A profile asked for by name (the client's `profile` option, the command
-- line's --profile): it alone is asked, ahead of AWS_*/OSS_* keys in the
-- environment (as botocore does); a profile that is not there is a
-- ProfileNotFound error that names it.
_M.named_profile = chain.named_profile

--- default_chain(provider, opts) -> provider
-- The default chain of "s3" or "oss" (see the order above); with
-- opts.profile, named_profile instead.
-- opts.profile: a profile name.
-- opts.env: a table standing in for os.getenv (tests).
_M.default_chain = chain.default_chain

--- assume_role(opts) -> provider
-- A refreshing provider of temporary credentials from STS AssumeRole
-- (objstore.credentials.assume_role): opts as objstore.sts.assume_role,
-- plus `margin` (seconds before expiry to renew, default 300) and
-- `on_error` (called when a renewal fails; the credentials held are kept
-- until they expire).
_M.assume_role = assume_role.new

--- provider(v) -> provider | nil
-- A provider from whatever the caller gave: a function, an object with
-- :get() (or :resolve()), or a plain table of static credentials.
_M.provider = util.provider

return _M
