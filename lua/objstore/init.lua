--- objstore: object storage for Lua (Amazon S3, S3-compatible stores and
-- Alibaba Cloud OSS).
--
--   local objstore = require "objstore"
--   local client = objstore.new{ endpoint = "http://127.0.0.1:7480", access_key = ak, secret_key = sk }
--   local res, err = client:put_object("bucket", "key", "hello")
--
-- Submodules: objstore.client (the client and its operations),
-- objstore.engine.request (request records), objstore.engine.signer (request signing),
-- objstore.checksum (hashes and CRCs), objstore.xml (response parsing),
-- objstore.credentials, objstore.errors, objstore.transport (the contract
-- every transport meets). Reachable from here: objstore.credentials,
-- objstore.sts, objstore.metrics (modules), objstore.sync/check/replicated
-- (functions).
local core = require "objstore.core"
local Client = require "objstore.client"
local replicated = require "objstore.replicated"
local sync = require "objstore.sync"
local credentials = require "objstore.credentials"
local sts = require "objstore.sts"
local metrics = require "objstore.metrics"

local _M = { _VERSION = core._VERSION, Client = Client, credentials = credentials, sts = sts, metrics = metrics }

--- new(opts) -> client
-- Creates a client (objstore.client). Raises on misuse (an unknown option
-- names itself); never does I/O except reading the shared AWS config files
-- when region, endpoint or credentials are not given. Without credentials
-- the client uses its provider's default chain (docs/credentials.md).
-- opts.provider: "s3" (default: S3 and S3-compatible stores) or "oss"
--   (Alibaba Cloud OSS).
-- opts.endpoint: the store's URL (default for AWS
--   https://s3.<region>.amazonaws.com; AWS_ENDPOINT_URL, OSS_ENDPOINT).
-- opts.region: the signing region (AWS_REGION, AWS_DEFAULT_REGION,
--   OSS_REGION, the profile's).
-- opts.access_key: the access key id (with secret_key).
-- opts.secret_key: the secret key; never logged or put in errors.
-- opts.session_token: the session token of temporary credentials.
-- opts.credentials: a provider: a function (client, reason) -> { access_key,
--   secret_key, session_token?, expiration? } | nil, err, an object with
--   :get(), or a table of static credentials; refreshed before expiration.
-- opts.profile: the shared files' profile to take credentials, region and
--   endpoint from (it alone is asked).
-- opts.env: a table standing in for os.getenv (tests).
-- opts.addressing: "virtual" or "path" (default: virtual for AWS and OSS
--   hosts, path for IPs, localhost and other hosts; OSS refuses path).
-- opts.signature: OSS: "v4" (default) or "v1".
-- opts.retry: the retry policy, { mode = "standard" (default) |
--   "adaptive", max_attempts = 3, base_delay = 0.1, max_delay = 20,
--   quota, should_retry } (docs/architecture.md).
-- opts.deadline: seconds for a whole call, every attempt and wait
--   included (DeadlineExceeded past it); per call too.
-- opts.timeout: seconds for one attempt (default none).
-- opts.connect_timeout: seconds to connect (default 10).
-- opts.read_timeout: seconds without a byte received (default 30 with curl,
--   60 with cosockets).
-- opts.send_timeout: seconds without a byte sent (same defaults).
-- opts.tls: { ca_file, ca_path, min_version = "1.0".."1.3", insecure }
--   for the curl transport; verification is on by default.
-- opts.transport: "curl", or an object meeting the transport contract
--   (default: curl, or cosockets inside nginx where they work).
-- opts.proxy: an HTTP proxy URL (curl).
-- opts.user_agent: the User-Agent sent.
-- opts.max_connections: connections kept open (curl's pool).
-- opts.endpoints: several endpoints, URLs or { url, region, bucket }, tried
--   in order with failover (docs/architecture.md).
-- opts.failover: the failover policy of endpoints (circuit breaker
--   thresholds).
-- opts.hooks: { on_request, on_response, on_retry, on_failover, on_error,
--   on_hook_error } functions called with each event
--   (docs/events-and-metrics.md).
-- opts.metrics: a registry of objstore.metrics.new() fed by this client.
-- opts.log: function(level, message, fields) receiving log lines.
-- opts.log_level: "error", "warn", "info" or "debug" (default "warn").
function _M.new(opts)
  return Client.new(opts)
end

--- replicated(opts) -> store | nil, err
-- Several clients as one replicated store (put/delete to all, get/head
-- from the first that answers, a journal of what to repair): its methods
-- are under "replicated store" below; docs/client.md tells the
-- consistency it gives.
-- opts.clients: the replicas, a list of objstore clients (required).
-- opts.write_quorum: how many must acknowledge a write (default all).
-- opts.journal: the repair journal's file path (required: it must survive
--   restarts).
function _M.replicated(opts)
  return replicated.new(opts)
end

--- sync(client, src, dst, opts) -> result | nil, err
-- Makes dst like src: a local directory path and a remote side
-- { bucket =, prefix =, client = (default `client`) }, either way, or two
-- remote sides (server-side copies on one endpoint, streamed across
-- two). A no-op run sends only LIST requests. See docs/sync.md.
-- result.transferred: files transferred (also deleted, skipped, failed,
--   bytes, unverified, kept, removed).
-- result.actions: { { action, key, reason, size, verdict, verified,
--   removed }, ... }.
-- result.errors: { { key, error }, ... }; notices: messages.
-- errors: on any failure nil, err with the counts in err.result:
--   MaxDeleteExceeded, SourceMissing, SameSourceDestination,
--   BackupOverlap, LocalFileError, SyncFailed, ...
function _M.sync(client, src, dst, opts)
  return sync.sync(client, src, dst, opts)
end

--- check(client, src, dst, opts) -> report | nil, err
-- What a sync would change, without changing anything (a dry run with
-- delete); takes the options of sync.
-- result.ok: true when nothing differs and everything was compared.
-- result.differ: keys whose content differs (also missing, extra,
--   unverified, matched).
-- result.compared: what was compared ("size and modification time", ...).
function _M.check(client, src, dst, opts)
  return sync.check(client, src, dst, opts)
end

return _M
