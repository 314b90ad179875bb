--- Content-Type from a file name's extension, for uploads that do not say.
local _M = {}

local TYPES = {
  txt = "text/plain", text = "text/plain", log = "text/plain", md = "text/markdown", csv = "text/csv",
  tsv = "text/tab-separated-values", html = "text/html", htm = "text/html", css = "text/css",
  js = "text/javascript", mjs = "text/javascript", json = "application/json", xml = "application/xml",
  yaml = "application/yaml", yml = "application/yaml", toml = "application/toml",
  pdf = "application/pdf", zip = "application/zip", gz = "application/gzip", tgz = "application/gzip",
  bz2 = "application/x-bzip2", xz = "application/x-xz", zst = "application/zstd", tar = "application/x-tar",
  ["7z"] = "application/x-7z-compressed", wasm = "application/wasm", lua = "text/x-lua",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif", webp = "image/webp",
  svg = "image/svg+xml", ico = "image/vnd.microsoft.icon", bmp = "image/bmp", tif = "image/tiff",
  tiff = "image/tiff", avif = "image/avif", heic = "image/heic",
  mp3 = "audio/mpeg", wav = "audio/wav", ogg = "audio/ogg", flac = "audio/flac", m4a = "audio/mp4",
  mp4 = "video/mp4", webm = "video/webm", mov = "video/quicktime", mkv = "video/x-matroska",
  avi = "video/x-msvideo", woff = "font/woff", woff2 = "font/woff2", ttf = "font/ttf", otf = "font/otf",
  doc = "application/msword", xls = "application/vnd.ms-excel",
  docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  parquet = "application/vnd.apache.parquet", bin = "application/octet-stream",
}

_M.DEFAULT = "application/octet-stream"

--- Guesses from the last extension of name; nil when unknown.
function _M.guess(name)
  if type(name) ~= "string" then return nil end
  local ext = name:match("%.([%w]+)$")
  return ext and TYPES[ext:lower()] or nil
end

return _M
