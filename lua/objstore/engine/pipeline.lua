--- The request pipeline: the one attempt step and the one retry loop of
-- objstore. Every request record (objstore.engine.request) a client sends - a
-- single call, a transfer part, a sync action - goes through
--
--   sign     credentials refreshed when due, the healthiest endpoint
--            picked, the record located and signed for that endpoint's
--            region and bucket;
--   send     by the client's transport (pull-model `run`, several at once);
--   classify the transport's outcome read into a result or an error value;
--   decide   done, or retry after a delay: Retry-After (seconds or an HTTP
--            date), the policy's backoff and retry quota, the adaptive
--            limiter, an immediate fail-over to another endpoint, fresh
--            credentials after ExpiredToken, the server's clock learnt from
--            its Date header.
--
-- A single call is the same loop with one request (`call`). Waiting is done
-- by the transport's sleeper, never here: the curl transport's blocks, the
-- cosocket one yields. Events (`client.hooks`) are raised from `notify`,
-- the one place observers attach: the hooks, and the client's logger
-- (objstore.log, `log`/`log_level`), which logs each event there.
local request = require "objstore.engine.request"
local errors = require "objstore.errors"
local endpoint = require "objstore.engine.endpoint"
local failover = require "objstore.engine.failover"
local response = require "objstore.engine.response"
local clock = require "objstore.clock"
local adapt = require "objstore.engine.adapt"
local core = require "objstore.core"
local url_mod = require "objstore.url"
local log = require "objstore.log"

local type, pairs, ipairs, tostring, tonumber, pcall = type, pairs, ipairs, tostring, tonumber, pcall
local os_time = os.time
local table_remove = table.remove
local math_huge, math_max = math.huge, math.max
local monotonic = core.time.monotonic
local uri_encode = core.encode.uri_encode

local _M = {}

--- Runs one hook under pcall; the first failure of the hooks in `owner`
-- (the client, or one call's hooks) is reported through its on_hook_error
-- and logged, later ones are not.
local function run_hook(client, owner, hooks, name, event)
  local fn = hooks and hooks[name]
  if not fn then return end
  local ok, herr = pcall(fn, event)
  if not ok and not owner.hook_failed then
    owner.hook_failed = true
    if client.logger then client.logger:hook_error(name, herr) end
    if hooks.on_hook_error then pcall(hooks.on_hook_error, name, herr) end
  end
end

--- Raises an event to the client's hooks (on_request, on_response,
-- on_retry, on_failover, on_error), then to the hooks of the call it
-- belongs to (`opts.hooks` of an operation: client.call, innermost first),
-- and logs it (objstore.log). A hook that raises is reported once through
-- on_hook_error (or ignored) and logged once, and never breaks the request.
local function notify(client, name, event)
  local logger = client.logger
  if logger then logger:event(name, event) end
  run_hook(client, client, client.hooks, name, event)
  local call = client.call
  while call do
    run_hook(client, call, call.hooks, name, event)
    call = call.parent
  end
end
_M.notify = notify

--- Whether anyone listens to events: hooks, a call's hooks or a logger.
local function observed(client)
  return client.hooks or client.logger or client.call
end
_M.observed = observed

--- Debug mode, on SignatureDoesNotMatch: logs the canonical request and
-- string to sign of the signer on the very input the attempt was signed
-- with (kept on the job only when debug logging is on) next to the
-- server's. Redacted by the logger.
local function signature_mismatch(client, job, e)
  local signed = job.signed
  local details
  if signed then
    local ok, d = pcall(signed.signer.details, signed.signer, signed.input)
    if ok and type(d) == "table" then details = d end
  end
  client.logger:signature_mismatch(e, details)
end

--- The fields every event of an attempt carries, plus `extra`; the
-- server's request and host ids when it answered (or its error names them).
local function event(client, job, res, err, extra)
  local req, d = job.req, client.dialect
  local h = res and res.headers
  local e = { op = req.op, method = req.method, bucket = req.bucket, key = req.key, attempt = job.attempt,
    endpoint = job.member and job.member.ep.url,
    request_id = (h and h[d.request_id]) or (err and err.request_id),
    host_id = (h and d.host_id and h[d.host_id]) or (err and err.host_id) }
  for k, v in pairs(extra) do e[k] = v end
  return e
end

-- Query tables are encoded by objstore.url (sorted: one request, one URL).
local encode_query = url_mod.encode_query

--- The bucket a request for `bucket` uses on endpoint `ep`: a replica in
-- another region usually has another name (ep.bucket: a name, or a map).
local function endpoint_bucket(ep, bucket)
  local map = ep.bucket
  if map == nil or bucket == nil then return bucket end
  if type(map) == "string" then return map end
  return map[bucket] or bucket
end

--- "/bucket/key[?versionId=v]", the copy source header's value.
function _M.copy_source(bucket, key, version_id)
  local s = "/" .. bucket .. "/" .. uri_encode(key, true)
  if version_id then s = s .. "?versionId=" .. uri_encode(version_id) end
  return s
end

--- Current credentials, refreshed when about to expire; (re)keys the
-- signer of every region the client's endpoints are in. The secret goes
-- into the signers (C memory, wiped on close) and is kept nowhere else.
-- The provider is called as provider(client, reason): reason "rejected"
-- when the server refused the current ones (ExpiredToken), so a refreshing
-- provider renews them even before their stated expiration.
local function credentials(client, now)
  local c = client.creds
  if c and (not c.expiration or c.expiration - client.refresh_margin > now) then return true end
  local reason = client.creds_rejected and "rejected" or nil
  local ok, got, perr = pcall(client.creds_provider, client, reason)
  if not ok then
    return nil, errors.new{ code = "CredentialsError", message = "credentials provider failed: " .. tostring(got),
      retryable = false }
  end
  if type(got) ~= "table" or type(got.access_key) ~= "string" or type(got.secret_key) ~= "string" then
    if errors.is(perr) then
      -- The provider's own error (an STS refusal, an unreadable file): a
      -- copy, so the request's context does not land in the provider's.
      local e = {}
      for k, v in pairs(perr) do e[k] = v end
      e.retryable = false
      return nil, errors.new(e)
    end
    return nil, errors.new{ code = "NoCredentials", message = tostring(perr or "no credentials"), retryable = false }
  end
  for _, region in ipairs(client.regions) do
    local s = client.signers[region]
    local sok, serr
    -- What a provider returned is data, not the caller's code: a value the
    -- signer refuses (NUL, CR, LF) is a CredentialsError, not a raise.
    if s then
      local pok, r1, r2 = pcall(s.set_credentials, s, got.access_key, got.secret_key, got.session_token)
      sok, serr = pok and r1, pok and r2 or r1
    else
      local pok, r1, r2 = pcall(client.new_signer, region, got.access_key, got.secret_key, got.session_token)
      s, serr = pok and r1 or nil, pok and r2 or r1
      client.signers[region], sok = s, s ~= nil
    end
    if not sok then
      return nil, errors.new{ code = "CredentialsError", message = "cannot use these credentials: "
        .. tostring(errors.is(serr) and serr.message or serr), retryable = false }
    end
  end
  client.creds = { expiration = got.expiration, access_key = got.access_key }
  -- What a server echoes of the secrets is replaced by value (classify):
  -- the values live only in this function's upvalues.
  client.redact_secrets = log.value_redactor{ got.secret_key, got.session_token }
  client.creds_rejected = nil
  return true
end

--- Where a request goes on an endpoint: (scheme, hostport, path, query, region).
local function locate(client, req, ep)
  local hostport, path = endpoint.locate(ep, client.addressing, endpoint_bucket(ep, req.bucket), req.key)
  return hostport, path, encode_query(req.query), ep.region or client.region
end

--- Signs `req` for `member`'s endpoint at time `now`. Returns the transport
-- request { method, url, headers, body, ... } or nil, err. With `keep` (a
-- table) the signer and its input are kept as keep.signed, for debugging.
function _M.sign(client, req, member, now, keep)
  local ok, cerr = credentials(client, now)
  if not ok then return nil, errors.locate(cerr, req.op, req.bucket, req.key) end
  local ep = member.ep
  local hostport, path, query, region = locate(client, req, ep)
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = tostring(v) end
  local cs = req.copy_source
  if cs then
    headers[client.dialect.copy_source] = _M.copy_source(endpoint_bucket(ep, cs.bucket), cs.key, cs.version_id)
  end
  local signer = client.signers[region]
  local input = { method = req.method, scheme = ep.scheme, host = hostport,
    path = path, query = query, headers = headers, payload_hash = req.payload_hash or "UNSIGNED-PAYLOAD",
    time = now, bucket = endpoint_bucket(ep, req.bucket), key = req.key, sub_resources = req.sub_resources }
  -- A signer may put its signature in the query rather than in headers
  -- (the RPC signature of Alibaba Cloud's APIs): it returns the new query.
  local added, serr, signed_query = signer:sign(input)
  if signed_query then query = signed_query end
  if keep then
    -- `headers` gets the signature headers below: keep what was signed.
    local copy = {}
    for k, v in pairs(headers) do copy[k] = v end
    input.headers = copy
    keep.signed = { signer = signer, input = input }
  end
  if not added then
    return nil, errors.new{ code = "SigningError", message = errors.is(serr) and serr.message or tostring(serr),
      op = req.op, bucket = req.bucket, key = req.key, retryable = false }
  end
  for k, v in pairs(added) do headers[k] = v end
  return { method = req.method, url = ep.scheme .. "://" .. hostport .. path .. (query ~= "" and ("?" .. query) or ""),
    headers = headers, body = req.body, body_length = req.body_length, sink = req.sink, hashes = req.hashes,
    body_hashes = req.body_hashes, timeout = req.timeout, max_speed = req.max_speed, on_head = req.on_head,
    on_progress = req.on_progress,
    max_body = req.max_body or (req.sink == nil and request.DEFAULT_MAX_BODY or nil) }
end

--- A presigned URL for `req` (its method, bucket, key, query and signed
-- headers) on the healthiest endpoint. Returns url or nil, err.
-- Without query and headers (the common URL) the signer's input is one
-- table per client, refilled (every field) for each URL: the C signer
-- reads it and keeps nothing, and nothing between the filling and the
-- signing can yield, so requests of other coroutines never see it
-- half-filled. With either, the input is a table of its own: the client
-- keeps no caller data (an SSE-C key header) past the call. The signer
-- builds the path from bucket and key, as endpoint.locate would (the
-- same encoding), in the style endpoint.host chose.
function _M.presign(client, req, expires, now)
  now = now or client:now()
  local ok, cerr = credentials(client, now)
  if not ok then return nil, errors.locate(cerr, req.op, req.bucket, req.key) end
  local ep = client.endpoints:healthiest().ep
  local bucket = endpoint_bucket(ep, req.bucket)
  local hostport, style = endpoint.host(ep, client.addressing, bucket)
  local input
  if req.query or req.headers then
    input = {}
  else
    input = client.presign_input
    if not input then
      input = {}
      client.presign_input = input
    end
  end
  input.method, input.scheme, input.host, input.addressing = req.method, ep.scheme, hostport, style
  input.query, input.headers, input.time, input.expires = req.query and encode_query(req.query), req.headers, now,
    expires
  input.bucket, input.key = bucket, req.key
  local url, err = client.signers[ep.region or client.region]:presign(input)
  if not url then
    return nil, errors.new{ code = "SigningError", message = errors.is(err) and err.message or tostring(err),
      op = req.op, bucket = req.bucket, key = req.key, retryable = false }
  end
  return url
end

--- A browser POST form for `req` (its bucket; method POST) on the
-- healthiest endpoint. `build(scope)` gets the signing scope as the form
-- fields carry it (the parameters of a presigned URL made by the same
-- signer at the same time: algorithm, credential, date, session token)
-- and returns the form fields and the base64 policy document, which is
-- signed here. Returns { url, fields } (fields with the signature) or nil, err.
function _M.presign_post(client, req, now, build)
  now = now or client:now()
  local ok, cerr = credentials(client, now)
  if not ok then return nil, errors.locate(cerr, req.op, req.bucket, req.key) end
  local ep = client.endpoints:healthiest().ep
  local bucket = endpoint_bucket(ep, req.bucket)
  local hostport, path = endpoint.locate(ep, client.addressing, bucket, nil)
  local region = ep.region or client.region
  local s = client.signers[region]
  local function failed(err)
    return nil, errors.new{ code = "SigningError", message = errors.is(err) and err.message or tostring(err),
      op = req.op, bucket = req.bucket, key = req.key, retryable = false }
  end
  local scope_url, serr = s:presign{ method = "POST", scheme = ep.scheme, host = hostport, path = "/",
    time = now, expires = 1, bucket = bucket }
  if not scope_url then return failed(serr) end
  local scope = {}
  for _, kv in ipairs(url_mod.decode_query(scope_url:match("%?(.*)$"))) do
    if kv[2] ~= true then scope[kv[1]] = kv[2] end
  end
  local fields, policy = build(scope, bucket)
  local sig, perr = s:policy_signature(policy, now)
  if not sig then return failed(perr) end
  fields[client.dialect.post_forms[client.algorithm].signature] = sig
  return { url = ep.scheme .. "://" .. hostport .. path, fields = fields }
end

local REGION_ERRORS = { PermanentRedirect = true, AuthorizationHeaderMalformed = true,
  IllegalLocationConstraintException = true, InvalidRegion = true }

-- The SSE-C keys a request sent (header values, base64).
local function customer_keys(req)
  local keys
  for k, v in pairs(req.headers or {}) do
    if type(k) == "string" and k:lower():find("server%-side%-encryption%-customer%-key$") then
      keys = keys or {}
      keys[#keys + 1] = tostring(v)
    end
  end
  return keys
end

--- Server-derived text of an error with the secrets this client sent
-- (secret key, session token, the request's SSE-C keys) replaced by value,
-- in whatever form the server echoed them.
local function scrub(client, req, err)
  if client.redact_secrets then log.scrub_error(err, client.redact_secrets) end
  local keys = customer_keys(req)
  if keys then log.scrub_error(err, log.value_redactor(nil, keys)) end
  return err
end

local function classify_raw(client, req, res, terr, member)
  if not res then
    local e = type(terr) == "table" and terr or { code = "TransportError", message = tostring(terr) }
    if not errors.is(e) then e = errors.new{ code = e.code or "TransportError", message = e.message,
      retryable = e.retryable ~= false } end
    if e.retryable == nil then e.retryable = true end
    return nil, errors.locate(e, req.op, req.bucket, req.key)
  end
  local st = res.status
  if (st >= 200 and st < 300) or (req.ok_status and req.ok_status[st]) then
    if req.parse then return req.parse(res, req) end
    return res
  end
  local err = response.error(client.dialect, req, res)
  local signed_for = member.ep.region or client.region
  if REGION_ERRORS[err.code] and err.region and err.region ~= signed_for then
    -- A bucket in another region: say which, and how to reach it.
    err.message = "bucket '" .. tostring(req.bucket) .. "' is in region '" .. err.region .. "' but endpoint "
      .. member.ep.url .. " is configured for region '" .. signed_for .. "' (" .. tostring(err.message) .. ")"
    err.retryable = false
  end
  return nil, err
end

--- Reads a transport outcome into the request's result or an error value.
local function classify(client, req, res, terr, member)
  local result, err = classify_raw(client, req, res, terr, member)
  if err ~= nil and result == nil then scrub(client, req, err) end
  return result, err
end

--- Seconds a Retry-After header asks for (delta-seconds or an HTTP date,
-- RFC 9110 10.2.3), or nil.
function _M.retry_after(headers, local_now)
  local v = headers and headers["retry-after"]
  if not v then return nil end
  local n = tonumber(v)
  if n then return n >= 0 and n or nil end
  local at = clock.parse(v)
  if not at then return nil end
  local now = clock.parse(headers["date"]) or local_now
  return math_max(0, at - now)
end

local function expired_credentials(client, err)
  return err.code == "ExpiredToken" or err.code == "ExpiredTokenException"
    or (err.code == "InvalidAccessKeyId" and client.creds and client.creds.expiration ~= nil)
end

--- The deadline of a call (objstore.new{deadline} or an operation's
-- opts.deadline, seconds): covers every attempt and every wait between
-- them. The earliest of the calls this run belongs to (client.call, set
-- by the client when the operation was entered), else the client's own
-- counted from now (client:send and client:run called directly); nil for
-- none.
local function deadline_of(client)
  local at
  local call = client.call
  while call do
    if call.deadline_at and (not at or call.deadline_at < at) then at = call.deadline_at end
    call = call.parent
  end
  if not at and client.deadline then at = monotonic() + client.deadline end
  return at
end
_M.deadline_of = deadline_of

--- DeadlineExceeded (not retryable) for `job`, naming the last failure.
local function deadline_error(job, last)
  local req = job.req
  local msg = "the deadline of " .. tostring(job.deadline) .. " s passed after " .. tostring(job.attempt)
    .. " attempt" .. (job.attempt == 1 and "" or "s")
  if last then msg = msg .. " (last: " .. tostring(last.code) .. (last.message and (" - " .. tostring(last.message))
    or "") .. ")" end
  return errors.new{ code = "DeadlineExceeded", message = msg, retryable = false, op = req.op, bucket = req.bucket,
    key = req.key, attempts = job.attempt, status = last and last.status, request_id = last and last.request_id }
end

--- What is left of a job's deadline (seconds), or nil when it has none.
local function time_left(job)
  return job.deadline_at and (job.deadline_at - monotonic()) or nil
end

--- The decision after an attempt: "done", result, err | "retry", delay.
local function decide(client, job, res, terr)
  local req, member = job.req, job.member
  local result, err = classify(client, req, res, terr, member)
  -- A parser may return more than its result (response.xml gives the root
  -- name): a result means success, whatever follows it.
  if result ~= nil then err = nil end
  if err and failover.counts_against(err) then
    client.endpoints:failure(member)
    err.endpoint = member.ep.url
  elseif res then
    client.endpoints:success(member)
  end
  -- The clock is corrected only when the endpoint this request was signed
  -- for refused it for its time (RequestTimeTooSkewed, RequestExpired...),
  -- from that answer's Date, and by at most clock.MAX_SKEW: a Date header
  -- alone (1969, 9999) never moves the clock of later requests or URLs.
  if err and clock.SKEW_CODES[err.code] and res and res.headers and res.headers["date"] then
    local off = clock.skew_from(res.headers["date"], os_time(), true)
    if off then client.clock_skew = off end
  end
  if observed(client) then
    local e = event(client, job, res, err, { status = res and res.status,
      code = err and err.code, latency = monotonic() - job.started, bytes_in = res and res.bytes or 0,
      bytes_out = res and res.sent or 0, error = err })
    notify(client, "on_response", e)
    if err and err.code == "SignatureDoesNotMatch" and client.logger and client.logger.debug then
      signature_mismatch(client, job, e)
    end
  end
  local policy = job.policy
  if err == nil then
    policy:on_success(job.cost)
    return "done", result
  end
  err.attempts = job.attempt
  -- Only the credentials this attempt was signed with are dropped: parts
  -- signed before a refresh that fail with ExpiredToken retry with the
  -- new ones rather than ask for yet another refresh.
  if expired_credentials(client, err) and client.creds == job.creds then
    client.creds, client.creds_rejected = nil, true
  end
  err.retry_after = _M.retry_after(res and res.headers, client:now()) or err.retry_after
  local rewindable = req:rewindable()
  local delay, spent = policy:retry_delay(err, job.attempt, rewindable)
  local members = client.endpoints.members
  if not delay and failover.counts_against(err) and rewindable and #members > 1
      and job.attempt < policy.max_attempts + #members - 1 and client.endpoints:usable_count() > 0 then
    -- Another endpoint may work: fail over at once rather than give up.
    delay, spent = 0, 0
  end
  local left = time_left(job)
  if left and ((delay and delay >= left) or (not delay and err.code == "Timeout" and left <= 0.05)) then
    -- The deadline is reached, or would be while waiting for the retry (a
    -- final answer that came in time, a 404 say, is returned as it is).
    err = deadline_error(job, err)
    delay = nil
  end
  if not delay then
    if observed(client) then notify(client, "on_error", event(client, job, res, err, { error = err })) end
    return "done", nil, err
  end
  job.cost = job.cost + (spent or 0)
  if observed(client) then
    notify(client, "on_retry", event(client, job, res, err, { delay = delay, reason = err.code, error = err }))
  end
  if req.on_retry then req.on_retry(err, job.attempt, delay) end
  return "retry", delay, err
end

--- Runs many requests concurrently, each retried on its own:
--   run(client, { concurrency = n, next = function() -> req | nil,
--     done = function(req, result, err) -> true | false, err })
-- `next` hands out the next request record (nil when none is ready: it is
-- asked again after each completion); `done` gets each outcome once its
-- retries are over and may return false, err to stop the run. Requests
-- waiting for a retry are held back until their delay has passed.
-- Returns true or nil, err.
function _M.run(client, spec)
  local concurrency = spec.concurrency or 8
  local sleep, drive = client.sleep, client.drive
  local waiting = {} -- jobs not to be sent before job.not_before
  local inflight, n_inflight = {}, 0 -- transport request -> job
  local stop_err
  -- One deadline for every request of the run (a transfer's parts too).
  local deadline_at = deadline_of(client)
  local deadline
  if deadline_at then
    local call = client.call
    while call and not deadline do
      deadline = call.deadline
      call = call.parent
    end
    deadline = deadline or client.deadline
  end
  -- The per-attempt timeout the client's transport has, if any: an attempt
  -- gets the smaller of it and what is left of the deadline.
  local base_timeout = client.timeout
  if not base_timeout or base_timeout <= 0 then base_timeout = math_huge end

  local function finish(job, result, err)
    local ok, e = spec.done(job.req, result, err)
    if ok == false and not stop_err then stop_err = e or errors.failure(job.req.op, "Aborted", "stopped") end
  end

  local function take()
    if #waiting > 0 then
      local now = monotonic()
      for i = 1, #waiting do
        if waiting[i].not_before <= now then return table_remove(waiting, i) end
      end
    end
    -- Requests waiting for a retry count against the concurrency too: a
    -- throttled run holds at most `concurrency` requests (and their bodies).
    if #waiting + n_inflight >= concurrency then return nil end
    local req = spec.next()
    if req == nil then return nil end
    if not request.is(req) then req = request.new(req) end
    if type(req.body) == "function" and not req.rewind and req.reader_calls == nil then
      -- A reader the transport never called (a connect that failed, an
      -- answer before the body) has given nothing away: the request may
      -- still be retried or failed over (Request:rewindable).
      local reader = req.body
      req.reader_calls = 0
      req.body = function(...)
        req.reader_calls = req.reader_calls + 1
        return reader(...)
      end
    end
    return { req = req, attempt = 0, cost = 0, policy = req.retry or client.retry, not_before = 0,
      deadline_at = deadline_at, deadline = deadline_at and deadline }
  end

  local function source()
    while not stop_err do
      local job = take()
      if not job then return nil end
      local req = job.req
      if req.error then
        if client.logger then client.logger:failure(req.error) end
        finish(job, nil, req.error)
      elseif job.deadline_at and monotonic() >= job.deadline_at then
        finish(job, nil, deadline_error(job, job.last_err))
      else
        local wait = job.admitted and 0 or job.policy:before_attempt()
        local left = time_left(job)
        if left and wait >= left then
          finish(job, nil, deadline_error(job, job.last_err))
        elseif wait > 0 then
          -- The adaptive limiter holds this attempt back (it is admitted,
          -- and goes first when its time comes); nothing more starts now.
          job.admitted, job.not_before = true, monotonic() + wait
          waiting[#waiting + 1] = job
          return nil
        else
          job.admitted = false
          if job.attempt > 0 then
            -- A retry: readers and function sinks start again from the top.
            if req.rewind then req.rewind() end
            if req.sink_rewind then req.sink_rewind() end
          end
          job.attempt = job.attempt + 1
          local before = job.member
          job.member = client.endpoints:pick(before)
          job.started = monotonic()
          if before and before ~= job.member and observed(client) then
            -- A retry that goes to another endpoint: a fail-over.
            notify(client, "on_failover", event(client, job, nil, nil, { from = before.ep.url,
              to = job.member.ep.url }))
          end
          local logger = client.logger
          local treq, err = _M.sign(client, req, job.member, client:now(), logger and logger.debug and job or nil)
          if treq then
            local tleft = time_left(job)
            if tleft then
              -- At least 10 ms: a timeout that rounds to 0 means none.
              local t = treq.timeout or base_timeout
              if tleft < t then treq.timeout = math_max(tleft, 0.01) end
            end
            job.creds = client.creds
            job.adapted = adapt.request(client.capabilities, treq)
            inflight[treq], n_inflight = job, n_inflight + 1
            if observed(client) then notify(client, "on_request", event(client, job, nil, nil, {})) end
            return treq
          end
          -- Not sent (credentials, signing): no event, but logged.
          if logger then logger:failure(err) end
          finish(job, nil, err)
        end
      end
    end
    return nil
  end

  local function on_done(treq, res, terr)
    local job = inflight[treq]
    inflight[treq], n_inflight = nil, n_inflight - 1
    if job.adapted then job.adapted(res) end
    local verdict, a, b = decide(client, job, res, terr)
    if verdict == "retry" then
      job.last_err = b
      job.not_before = monotonic() + a
      waiting[#waiting + 1] = job
    else
      finish(job, a, b)
    end
  end

  while true do
    local driven, derr = drive(source, on_done, concurrency)
    if stop_err then return nil, stop_err end
    -- The transport itself failed (what was running has had the error).
    if driven == nil and derr ~= nil then return nil, derr end
    if #waiting == 0 then return true end
    local soonest = math_huge
    for _, w in ipairs(waiting) do
      if w.not_before < soonest then soonest = w.not_before end
    end
    local d = soonest - monotonic()
    if d > 0 then sleep(d) end
    -- What was waited for is due now, whatever the clock's granularity
    -- (or an injected sleeper) made of the wait.
    for _, w in ipairs(waiting) do
      if w.not_before <= soonest then w.not_before = 0 end
    end
  end
end

--- Sends one request through the same loop. Returns result or nil, err.
function _M.call(client, req)
  local result, err
  local sent = false
  _M.run(client, { concurrency = 1,
    next = function()
      if sent then return nil end
      sent = true
      return req
    end,
    done = function(_, r, e)
      result, err = r, e
      return true
    end })
  if result == nil and err == nil then return nil, errors.failure(req.op, "TransportError", "no outcome") end
  return result, err
end

return _M
