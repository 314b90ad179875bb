-- S3 aws-chunked upload: seed signature (a header-mode SigV4 signature with
-- a STREAMING payload hash), then one chained signature per chunk, and the
-- aws-c-auth trailer signature.
local signer = require "objstore.engine.signer"
local common = require "vectors.common"

local _M = { name = "chunked" }

function _M.claims(_, doc)
  local c = type(doc.cases) == "table" and doc.cases[1]
  return type(c) == "table" and c.mode == "header-streaming"
end

-- The S3 docs' framing, used when a case does not spell its own out.
local DEFAULT_WIRE_FORMAT = 'hex(len(data)) ";chunk-signature=" <sig> "\\r\\n" data "\\r\\n"'

local LITERAL_ESCAPES = { r = "\r", n = "\n", t = "\t", ['"'] = '"', ["\\"] = "\\" }

--- Reads a chunk_wire_format ("hex(len(data))", "<sig>", "data" and quoted
-- literals with \r \n escapes, separated by spaces) into a function
-- (data, signature) -> the framed chunk. nil, err for anything else.
local function wire_framer(format)
  format = format or DEFAULT_WIRE_FORMAT
  local parts, pos = {}, 1
  while pos <= #format do
    local s = format:find("%S", pos)
    if not s then break end
    if format:sub(s, s) == '"' then
      local lit, j = {}, s + 1
      while true do
        local ch = format:sub(j, j)
        if ch == "" then return nil, "unterminated literal in chunk_wire_format" end
        if ch == '"' then break end
        if ch == "\\" then
          local esc = LITERAL_ESCAPES[format:sub(j + 1, j + 1)]
          if not esc then return nil, "unknown escape in chunk_wire_format" end
          lit[#lit + 1] = esc
          j = j + 2
        else
          lit[#lit + 1] = ch
          j = j + 1
        end
      end
      local text = table.concat(lit)
      parts[#parts + 1] = function() return text end
      pos = j + 1
    else
      local word = format:match("^%S+", s)
      if word == "hex(len(data))" then
        parts[#parts + 1] = function(data) return string.format("%x", #data) end
      elseif word == "<sig>" then
        parts[#parts + 1] = function(_, sig) return sig end
      elseif word == "data" then
        parts[#parts + 1] = function(data) return data end
      else
        return nil, "chunk_wire_format: unknown part " .. word
      end
      pos = s + #word
    end
  end
  if #parts == 0 then return nil, "empty chunk_wire_format" end
  return function(data, sig)
    local out = {}
    for i, p in ipairs(parts) do out[i] = p(data, sig) end
    return table.concat(out)
  end
end

local function run_case(c, ctx)
  local cred, o, e = c.credentials, c.options or {}, c.expected
  local s = signer.new{
    algorithm = "aws4", access_key = cred.access_key, secret_key = cred.secret_key,
    session_token = cred.session_token, region = c.region, service = c.service,
    normalize_path = o.normalize_path, double_uri_encode = o.double_uri_encode,
  }
  local t = common.parse_time(c.datetime)
  local d, err = s:details({
    method = c.request.method, path = c.request.path, query = c.request.query,
    headers = common.headers_array(c.request.headers), payload_hash = o.payload_hash, time = t,
    -- false: the request carries its own x-amz-date, signed as given
    add_date_header = o.add_date_header == false and false or nil,
  }, "header")
  if not d then return ctx.fail(c.name, err) end
  local name = c.name .. " seed"
  if ctx.check(name, "canonical_request", d.canonical_request, e.seed_canonical_request)
      and ctx.check(name, "string_to_sign", d.string_to_sign, e.seed_string_to_sign)
      and ctx.check(name, "signature", d.signature, e.seed_signature)
      and ctx.check(name, "authorization", common.normalize_authorization(d.authorization),
        common.normalize_authorization(e.authorization)) then
    ctx.pass(name)
  end
  -- The body on the wire: each chunk framed as chunk_wire_format says,
  -- around the data and the signature objstore computed for it.
  local frame, ferr = wire_framer(c.chunk_wire_format)
  local prev = d.signature
  local wire, framed = 0, true
  for i, chunk in ipairs(e.chunks or {}) do
    local data = string.rep(chunk.byte, chunk.size)
    local sig, serr = s:chunk_signature(t, prev, data, { region = c.region, service = c.service })
    local cname = c.name .. " chunk " .. i
    if not sig then
      ctx.fail(cname, serr)
      framed = false
    elseif ctx.check(cname, "signature", sig, chunk.signature) then
      ctx.pass(cname)
    end
    prev = sig or chunk.signature
    if sig and frame then wire = wire + #frame(data, sig) else framed = false end
  end
  if e.total_content_length then
    local wname = c.name .. " wire length"
    if not frame then
      ctx.fail(wname, ferr)
    elseif not framed or #(e.chunks or {}) == 0 then
      ctx.fail(wname, "no framed chunks to measure")
    elseif ctx.check(wname, "Content-Length", wire, e.total_content_length) then
      ctx.pass(wname)
    end
  end
  local tr = c.trailer_extension
  if tr then
    local sig, terr = s:trailer_signature(t, tr.previous_signature, tr.trailing_headers,
      { region = c.region, service = c.service })
    if not sig then return ctx.fail(c.name .. " trailer", terr) end
    if ctx.check(c.name .. " trailer", "signature", sig, tr.expected_signature) then
      ctx.pass(c.name .. " trailer")
    end
  end
end

function _M.run(doc, ctx)
  for _, c in ipairs(doc.cases) do
    local ok, err = pcall(run_case, c, ctx)
    if not ok then ctx.fail(tostring(c.name), err) end
  end
end

return _M
