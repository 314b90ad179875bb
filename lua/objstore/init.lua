--- objstore: object storage for Lua (Amazon S3, S3-compatible stores and
-- Alibaba Cloud OSS). This module is the entry point; submodules:
-- objstore.signer (request signing), objstore.checksum (hashes and CRCs),
-- objstore.xml (response parsing).
local core = require "objstore.core"

local _M = { _VERSION = core._VERSION }

return _M
