--- The decision for one name present on both sides (or only on the
-- source): "transfer", "skip" or "head" (undecidable from the listing and
-- the sync state: HEAD the remote side(s) and decide again), with the
-- reason. `kind` is "up" (local -> remote), "down" (remote -> local) or
-- "copy" (remote -> remote). A remote entry that was HEADed carries
-- `head = true` and `meta_mtime`, `meta_crc` (objstore-crc64nvme),
-- `crc64ecma` (OSS) from its metadata.
--
-- size_mtime (default): the source mtime is stored in `mtime` metadata on
-- upload (whole seconds since the epoch, rclone's convention) and set on
-- the local file on download, so times compare exactly both ways.
-- Objects written by other tools have no `mtime`: their LastModified
-- (the upload time) stands in, and the newer side counts as current: an
-- object uploaded after the file last changed is in sync; a local file
-- whose mtime equals the object's LastModified (our download of it) is too.
-- modify_window (seconds, default 0) is the slack for coarse filesystems.
local digest = require "objstore.sync.digest"
local names = require "objstore.sync.names"
local plan = require "objstore.transfer.plan"

local abs, ipairs, tostring = math.abs, ipairs, tostring
local MiB = 1024 * 1024

local _M = {}

local function near(a, b, win)
  return a ~= nil and b ~= nil and abs(a - b) <= win
end

--- The local file's digests, computed once per entry.
local function local_digest(e)
  if e.digest == nil then e.digest = digest.file(e.path) or false end
  return e.digest
end

--- The part sizes a multipart object of `size` bytes and `parts` parts
-- may have been uploaded with: objstore's own choice, the part_size
-- option, and the common tool defaults (8 MiB: aws cli, boto3, rclone's
-- older default; 5 MiB: s3cmd, rclone's minimum; 15 and 16 MiB: s3cmd's
-- and rclone's; 64 MiB), those whose part count is `parts`.
local function candidate_sizes(size, parts, opts, provider)
  local seen, out = {}, {}
  local function add(ps)
    if ps and ps > 0 and not seen[ps] and math.max(1, math.ceil(size / ps)) == parts then
      seen[ps] = true
      out[#out + 1] = ps
    end
  end
  add((plan.part_size(size, provider)))
  if opts.part_size then
    add(opts.part_size)
    add((plan.part_size(size, provider, opts.part_size)))
  end
  for _, mib in ipairs{ 8, 5, 16, 15, 64 } do add(mib * MiB) end
  return out
end

--- Checksum verdict between a local file and a remote entry: true (same),
-- false (differs), nil (nothing to compare with: unverified), and how.
local function same_content(l, r, opts, provider)
  local md5 = digest.etag_md5(r.etag)
  if md5 then
    local d = local_digest(l)
    return d and d.md5_hex == md5, "MD5"
  end
  if r.meta_crc then
    local d = local_digest(l)
    return d and d.crc64nvme == r.meta_crc, "stored CRC-64/NVME"
  end
  if r.crc64ecma then
    local d = local_digest(l)
    return d and d.crc64ecma == r.crc64ecma, "CRC-64"
  end
  if not r.head then return nil end
  local hex, parts = digest.etag_multipart(r.etag)
  if hex and l.path then
    local sizes = candidate_sizes(l.size, parts, opts, provider)
    if #sizes > 0 then
      local etags = digest.multipart_etags(l.path, sizes)
      local want = hex .. "-" .. parts
      for _, ps in ipairs(sizes) do
        if etags and etags[ps] == want then return true, "multipart ETag (" .. ps .. "-byte parts)" end
      end
    end
    return nil, "multipart ETag matches no known part size and no checksum is stored"
  end
  return nil, "ETag is not an MD5 and no checksum is stored"
end

--- -> verdict, reason, code ("same", "differ", "unverified", "head")
local function compare_checksum(kind, s, d, opts, provider)
  if kind == "copy" then
    if s.etag and s.etag == d.etag then return "skip", "same ETag", "same" end
    if not (s.head and d.head) then return "head", "ETags differ", "head" end
    local a, b = s.meta_crc or s.crc64ecma, d.meta_crc or d.crc64ecma
    if a and a == b then return "skip", "same stored checksum", "same" end
    return "transfer", a and b and "checksum differs" or "ETag differs", "differ"
  end
  local l, r = s, d
  if kind == "down" then l, r = d, s end
  local same, how = same_content(l, r, opts, provider)
  if same == nil and not r.head then return "head", "multipart ETag: need the stored checksum", "head" end
  if same == nil then return "skip", "not compared: " .. tostring(how), "unverified" end
  if same then return "skip", "same checksum", "same", how end
  return "transfer", "checksum differs", "differ"
end

local function compare_mtime(kind, s, d, st, win)
  if kind == "up" then
    if st and st.etag == d.etag and st.size == d.size then
      if st.local_size == s.size and near(st.local_mtime, s.mtime, win) then
        return "skip", "unchanged since last sync"
      end
      return "transfer", "file changed since last sync"
    end
    if not d.head then return "head", "no sync state for this object" end
    if d.meta_mtime then
      if near(d.meta_mtime, s.mtime, win) then return "skip", "same size and mtime" end
      return "transfer", "mtime differs"
    end
    if d.mtime and d.mtime + win >= s.mtime then return "skip", "object (no mtime metadata) newer than the file" end
    return "transfer", "file newer than the object (no mtime metadata)"
  elseif kind == "down" then
    if st and st.etag == s.etag and st.size == s.size then
      if st.local_size == d.size and near(st.local_mtime, d.mtime, win) then
        return "skip", "unchanged since last sync"
      end
      return "transfer", "file changed since last sync"
    end
    if st then return "transfer", "object changed since last sync" end
    if near(s.mtime, d.mtime, win) then return "skip", "file mtime equals LastModified" end
    if not s.head then return "head", "no sync state for this file" end
    if s.meta_mtime then
      if near(s.meta_mtime, d.mtime, win) then return "skip", "same size and mtime" end
      return "transfer", "mtime differs"
    end
    if s.mtime and s.mtime > d.mtime + win then return "transfer", "object newer than the file" end
    return "skip", "file (object without mtime metadata) newer than the object"
  end
  if s.etag and s.etag == d.etag then return "skip", "same ETag" end
  if not (s.head and d.head) then return "head", "ETags differ" end
  if s.meta_mtime and d.meta_mtime then
    if near(s.meta_mtime, d.meta_mtime, win) then return "skip", "same size and mtime" end
    return "transfer", "mtime differs"
  end
  local a, b = s.meta_crc, d.meta_crc
  if a and a == b then return "skip", "same stored checksum" end
  return "transfer", "ETag differs"
end

--- decide(kind, s, d, st, opts, provider) -> verdict, reason, code
-- verdict: "transfer", "skip" or "head"; code says what the verdict rests
-- on: "missing", "differ", "same" (the content was compared: identical),
-- "matched" (size and mtime, or size: not the content), "unverified"
-- (compare = "checksum" and nothing to compare the content with: never
-- reported as the same), "head". With opts.move the content decides
-- wherever it can be compared (a difference is transferred, sameness is
-- "same"); elsewhere the mode's verdict stands, and the sync keeps the
-- source of a "matched" skip (only "same" lets it be removed).
function _M.decide(kind, s, d, st, opts, provider)
  if not d then return "transfer", "missing on destination", "missing" end
  if s.size ~= d.size then return "transfer", "size differs", "differ" end
  local mode = opts.compare or "size_mtime"
  if opts.move then
    -- The content decides where it can be compared; where it cannot, the
    -- file is transferred again (as aws s3 mv does): a move may remove a
    -- source only after its own verified copy or a proof of identity, and
    -- leaving sources behind is not what a move is for.
    local v, why, code = compare_checksum(kind, s, d, opts, provider)
    if code ~= "unverified" then return v, why, code end
    return "transfer", why .. " (move: transferred)", "differ"
  end
  if mode == "size_only" then return "skip", "same size", "matched" end
  if mode == "checksum" then return compare_checksum(kind, s, d, opts, provider) end
  local v, why = compare_mtime(kind, s, d, st, opts.modify_window or 0)
  return v, why, v == "skip" and "matched" or (v == "head" and "head" or "differ")
end

--- What a HEAD says about an object, merged into its entry.
function _M.absorb_head(e, info, crc_meta)
  local meta = info.metadata or {}
  e.head = true
  e.meta_mtime = names.parse_mtime(meta.mtime)
  e.meta_crc = meta[crc_meta]
  e.crc64ecma = info.crc64ecma
  e.etag = info.etag or e.etag
  return e
end

return _M
