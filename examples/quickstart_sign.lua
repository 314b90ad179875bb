-- Quickstart: sign and presign S3 and OSS requests with objstore.engine.signer.
-- Runs offline: the signer needs no server and never reads the clock itself.
--   lua5.4 examples/quickstart_sign.lua
local signer = require "objstore.engine.signer"

local now = os.time()

-- Amazon S3 (or any S3-compatible store): SigV4.
local s3 = signer.new{
  access_key = "AKIAIOSFODNN7EXAMPLE",
  secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  region = "us-east-1",
}

-- A presigned GET valid for one hour.
local url = assert(s3:presign{
  method = "GET", host = "examplebucket.s3.us-east-1.amazonaws.com", key = "reports/2026 Q3.pdf",
  time = now, expires = 3600,
})
print("S3 presigned GET:\n  " .. url)

-- Headers for a PUT whose body is sent as is (UNSIGNED-PAYLOAD plus Content-MD5).
local headers = assert(s3:sign{
  method = "PUT", host = "examplebucket.s3.us-east-1.amazonaws.com", key = "hello.txt",
  headers = { ["Content-MD5"] = "XrY7u+Ae7tCTyyK7j1rNww==", ["Content-Type"] = "text/plain" },
  payload_hash = "UNSIGNED-PAYLOAD", time = now,
})
print("S3 PUT headers to add:")
for _, name in ipairs{ "X-Amz-Date", "x-amz-content-sha256", "Authorization" } do
  print(string.format("  %s: %s", name, headers[name]))
end

-- What the server will recompute, for diagnosing a SignatureDoesNotMatch.
print("Canonical request of that PUT:")
local canonical = assert(s3:canonical_request{
  method = "PUT", host = "examplebucket.s3.us-east-1.amazonaws.com", key = "hello.txt",
  headers = { ["Content-MD5"] = "XrY7u+Ae7tCTyyK7j1rNww==", ["Content-Type"] = "text/plain" },
  payload_hash = "UNSIGNED-PAYLOAD", time = now,
})
print("  " .. canonical:gsub("\n", "\n  "))

-- Alibaba Cloud OSS, V4 signature.
local oss = signer.new{
  algorithm = "oss4", access_key = "LTAI5tExampleAccessKey",
  secret_key = "ExampleSecretKeyForOSSVectors0123", region = "cn-hangzhou",
}
print("OSS V4 presigned GET:\n  " .. assert(oss:presign{
  method = "GET", host = "examplebucket.oss-cn-hangzhou.aliyuncs.com", bucket = "examplebucket",
  key = "dir/file name.txt", time = now, expires = 600,
}))
