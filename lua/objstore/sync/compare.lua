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

local abs = math.abs

local _M = {}

local function near(a, b, win)
  return a ~= nil and b ~= nil and abs(a - b) <= win
end

--- The local file's digests, computed once per entry.
local function local_digest(e)
  if e.digest == nil then e.digest = digest.file(e.path) or false end
  return e.digest
end

--- Checksum verdict between a local file and a remote entry: true (same),
-- false (differs), nil (the remote gives nothing to compare with yet).
local function same_content(l, r)
  local md5 = digest.etag_md5(r.etag)
  if md5 then
    local d = local_digest(l)
    return d and d.md5_hex == md5
  end
  if r.meta_crc then
    local d = local_digest(l)
    return d and d.crc64nvme == r.meta_crc
  end
  if r.crc64ecma then
    local d = local_digest(l)
    return d and d.crc64ecma == r.crc64ecma
  end
  return nil
end

local function compare_checksum(kind, s, d)
  if kind == "copy" then
    if s.etag and s.etag == d.etag then return "skip", "same ETag" end
    if not (s.head and d.head) then return "head", "ETags differ" end
    local a, b = s.meta_crc or s.crc64ecma, d.meta_crc or d.crc64ecma
    if a and a == b then return "skip", "same stored checksum" end
    return "transfer", a and b and "checksum differs" or "ETag differs"
  end
  local l, r = s, d
  if kind == "down" then l, r = d, s end
  local same = same_content(l, r)
  if same == nil and not r.head then return "head", "multipart ETag: need the stored checksum" end
  if same == nil then return nil end
  if same then return "skip", "same checksum" end
  return "transfer", "checksum differs"
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

--- decide(kind, s, d, st, opts) -> verdict, reason
function _M.decide(kind, s, d, st, opts)
  if not d then return "transfer", "missing on destination" end
  if s.size ~= d.size then return "transfer", "size differs" end
  local mode = opts.compare or "size_mtime"
  if mode == "size_only" then return "skip", "same size" end
  if mode == "checksum" then
    local v, why = compare_checksum(kind, s, d)
    if v then return v, why end
    -- Nothing stored to compare a multipart object with: size and mtime.
  end
  return compare_mtime(kind, s, d, st, opts.modify_window or 0)
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
