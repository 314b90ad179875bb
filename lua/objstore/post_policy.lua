--- Browser uploads: the fields of an HTML form that POSTs a file straight
-- to the store, with a signed policy saying what the form may upload
-- (S3 SigV4 POST policy; OSS PostObject policy, V1 and V4).
--
--   local form = assert(c:presigned_post("bucket", "uploads/${filename}", { expires_in = 600,
--     conditions = { content_length_range = { 1, 10 * 1024 * 1024 }, content_type = "image/png" } }))
--   -- <form action="{form.url}" method="post" enctype="multipart/form-data">
--   --   one <input type="hidden" name="{k}" value="{v}"> per form.fields entry, then the file last
--
-- key_or_prefix: a key; a key with ${filename} (the store puts the
-- uploaded file's name there: the policy says the key starts with what
-- comes before); or a prefix ending in "/" (the same as prefix ..
-- "${filename}"). Every field the form carries is also a condition of the
-- policy (S3 refuses a form field the policy does not name).
-- The policy document is JSON written by lua-cjson, compact, in a fixed
-- order: expiration, then the conditions (the caller's, in the order
-- listed below, then bucket, key and the signing scope), so one input
-- gives one document and one signature.
local cjson = require "cjson"
local core = require "objstore.core"
local xml = require "objstore.xml"
local common = require "objstore.ops.common"
local presign = require "objstore.presign"
local pipeline = require "objstore.engine.pipeline"
local request = require "objstore.engine.request"
local errors = require "objstore.errors"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local sort, concat = table.sort, table.concat
local os_date = os.date
local base64_encode = core.encode.base64_encode

local _M = {}

local F = "presigned_post"

local CONDITIONS = { content_length_range = true, starts_with = true, acl = true, content_type = true,
  metadata = true, success_action_status = true, success_action_redirect = true, tagging = true }

local OPTS = { expires_in = true, conditions = true, time = true, callback = true, callback_vars = true }

local function bad(name, problem)
  common.misuse(F, 3, name, problem)
end

--- cjson escapes "/" as "\/"; JSON does not need it and the SDKs do not
-- do it, so the document is written as they write it. ("\\" stays: the
-- escaped slash is the only "\/" cjson writes.)
local function json(v)
  return (cjson.encode(v):gsub("\\/", "/"))
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  sort(ks)
  return ks
end

--- S3's POST tagging field: a <Tagging> document (or the caller's own).
local function tagging_xml(tags)
  if type(tags) == "string" then return tags end
  if type(tags) ~= "table" then bad("opts.conditions.tagging", "must be XML text or a table of tags") end
  local set = {}
  for _, k in ipairs(sorted_keys(tags)) do
    set[#set + 1] = { "Tag", { { "Key", tostring(k) }, { "Value", tostring(tags[k]) } } }
  end
  return xml.build("Tagging", { { "TagSet", set } })
end

--- OSS upload callback: the callback field (base64 JSON) and the x:var fields.
local function callback_fields(cb, vars, fields)
  if cb ~= nil then
    if type(cb) ~= "table" or type(cb.url) ~= "string" or type(cb.body) ~= "string" then
      bad("opts.callback", "must be a table { url =, body = [, body_type =, host =, sni = ] }")
    end
    local doc = { callbackUrl = cb.url, callbackBody = cb.body, callbackBodyType = cb.body_type,
      callbackHost = cb.host, callbackSNI = cb.sni }
    fields.callback = base64_encode(json(doc))
  end
  for name, v in pairs(vars or {}) do
    if type(name) ~= "string" or not name:match("^[%w_%-]+$") then
      bad("opts.callback_vars", "names must be letters, digits, '_' or '-', got " .. tostring(name))
    end
    fields["x:" .. name] = tostring(v)
  end
end

--- The caller's conditions, as (conditions, fields), in a fixed order.
local function caller_conditions(c, cond, conds, fields)
  local d = c.dialect
  local function eq(name, value)
    conds[#conds + 1] = { [name] = value }
    fields[name] = value
  end
  local range = cond.content_length_range
  if range ~= nil then
    local lo, hi = type(range) == "table" and tonumber(range[1]), type(range) == "table" and tonumber(range[2])
    if not lo or not hi or lo < 0 or hi < lo or lo % 1 ~= 0 or hi % 1 ~= 0 then
      bad("opts.conditions.content_length_range", "must be { min, max } whole numbers, 0 <= min <= max")
    end
    conds[#conds + 1] = { "content-length-range", lo, hi }
  end
  if cond.starts_with ~= nil then
    if type(cond.starts_with) ~= "table" then
      bad("opts.conditions.starts_with", "must be a table { field = prefix }")
    end
    for _, name in ipairs(sorted_keys(cond.starts_with)) do
      local prefix = cond.starts_with[name]
      if type(name) ~= "string" or type(prefix) ~= "string" then
        bad("opts.conditions.starts_with", "must map field names to prefix strings")
      end
      conds[#conds + 1] = { "starts-with", "$" .. name, prefix }
      -- The browser fills the field; the form starts it with the prefix.
      if name ~= "key" and fields[name] == nil then fields[name] = prefix end
    end
  end
  if cond.acl ~= nil then eq(d.post_acl_field, tostring(cond.acl)) end
  if cond.content_type ~= nil then eq("Content-Type", tostring(cond.content_type)) end
  if cond.metadata ~= nil then
    if type(cond.metadata) ~= "table" then
      bad("opts.conditions.metadata", "must be a table, " .. errors.got(cond.metadata))
    end
    for _, k in ipairs(sorted_keys(cond.metadata)) do
      if type(k) ~= "string" or not k:match("^[%w%-_.]+$") then
        bad("opts.conditions.metadata", "name '" .. tostring(k) .. "' must be letters, digits, -, _ or .")
      end
      eq(d.meta .. k:lower(), tostring(cond.metadata[k]))
    end
  end
  if cond.success_action_status ~= nil then eq("success_action_status", tostring(cond.success_action_status)) end
  if cond.success_action_redirect ~= nil then eq("success_action_redirect", tostring(cond.success_action_redirect)) end
  if cond.tagging ~= nil then
    if not d.post_tagging then bad("opts.conditions.tagging", d.title .. " PostObject takes no tagging field") end
    eq("tagging", tagging_xml(cond.tagging))
  end
end

--- presigned_post(client, bucket, key_or_prefix, opts) -> { url, fields } | nil, err
function _M.presigned_post(c, bucket, key, opts)
  common.bucket(c, F, 1, bucket)
  if type(key) == "string" and key:sub(-1) == "/" then key = key .. "${filename}" end
  common.key(F, 2, key, "key_or_prefix")
  opts = common.opts(F, 3, opts, OPTS)
  local expires = presign.expires(F, 3, opts.expires_in)
  local cond = opts.conditions or {}
  if type(cond) ~= "table" then bad("opts.conditions", "must be a table, " .. errors.got(cond)) end
  for k in pairs(cond) do
    if not CONDITIONS[k] then bad("opts.conditions." .. tostring(k), "is not a condition of presigned_post") end
  end
  if (opts.callback or opts.callback_vars) and not c.dialect.post_callbacks then
    bad(opts.callback and "opts.callback" or "opts.callback_vars", "upload callbacks are an OSS feature")
  end
  local now = opts.time or c:now()
  local req = request.new{ op = "PostObject", method = "POST", bucket = bucket, key = key }
  return pipeline.presign_post(c, req, now, function(scope, ep_bucket)
    local conds, fields = {}, {}
    caller_conditions(c, cond, conds, fields)
    conds[#conds + 1] = { bucket = ep_bucket }
    local filename = key:find("${filename}", 1, true)
    if filename then
      conds[#conds + 1] = { "starts-with", "$key", key:sub(1, filename - 1) }
    else
      conds[#conds + 1] = { key = key }
    end
    fields.key = key
    -- The signing scope as form fields (the dialect's post_forms).
    local form = c.dialect.post_forms[c:signature_algorithm()]
    for _, f in ipairs(form.scope) do
      local v = scope[f[2]]
      if v then
        if form.scope_conditions then conds[#conds + 1] = { [f[1]] = v } end
        fields[f[1]] = v
      end
    end
    if c.dialect.post_callbacks then callback_fields(opts.callback, opts.callback_vars, fields) end
    -- OSS documents its expiration with milliseconds; S3 (and boto3) without.
    local expiration = os_date("!%Y-%m-%dT%H:%M:%S", now + expires) .. c.dialect.post_expiration_suffix
    -- Two members in a fixed order, each written by cjson: a Lua table
    -- would give them in hash order.
    local doc = concat{ '{"expiration":', json(expiration), ',"conditions":', json(conds), "}" }
    fields.policy = base64_encode(doc)
    return fields, fields.policy
  end)
end

--- The policy document of a form, decoded (for inspection and tests).
function _M.policy_document(form)
  return core.encode.base64_decode(form.fields.policy)
end

return _M
