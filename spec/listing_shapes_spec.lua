-- The listings' result shapes (objstore.ops.shapes), offline: a transport
-- that answers with a listing document carrying elements of a server's own
-- next to S3's, fed through the client's real parsers. The result holds
-- the documented fields, typed, and nothing else.
local objstore = require "objstore"

local function client(body)
  local t = {
    request = function()
      return { status = 200, headers = { ["content-type"] = "application/xml", ["x-amz-request-id"] = "rid-1" },
        body = body }
    end,
  }
  return objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b", transport = t,
    retry = { max_attempts = 1 } }
end

local NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'

describe("listing result shapes", function()
  it("ListObjectsV2: documented fields only, typed; a server's own elements dropped", function()
    local c = client('<ListBucketResult ' .. NS .. '><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>'
      .. '<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>'
      .. '<RgwShadow>1</RgwShadow>'
      .. '<Contents><Key>p/a</Key><LastModified>2026-12-07T10:00:00.000Z</LastModified><ETag>"e1"</ETag>'
      .. '<Size>3</Size><StorageClass>STANDARD</StorageClass><Owner><ID>o</ID><DisplayName>O</DisplayName>'
      .. '<Tenant>t</Tenant></Owner><Type>Normal</Type><Weird>x</Weird>'
      .. '<ChecksumAlgorithm>CRC32</ChecksumAlgorithm><ChecksumAlgorithm>SHA256</ChecksumAlgorithm></Contents>'
      .. '<Contents><Key>p/b</Key><Size>0</Size><ETag>"e2"</ETag></Contents>'
      .. '<CommonPrefixes><Prefix>p/d/</Prefix><Weird>y</Weird></CommonPrefixes></ListBucketResult>')
    local r = assert(c:list_objects("b", { prefix = "p/", encoding_type = false }))
    assert.same({
      name = "b", prefix = "p/", key_count = 2, max_keys = 1000, is_truncated = true,
      next_continuation_token = "tok", request_id = "rid-1",
      contents = {
        { key = "p/a", last_modified = "2026-12-07T10:00:00.000Z", etag = '"e1"', size = 3,
          storage_class = "STANDARD", owner = { id = "o", display_name = "O" }, type = "Normal",
          checksum_algorithm = { "CRC32", "SHA256" } },
        { key = "p/b", size = 0, etag = '"e2"' },
      },
      common_prefixes = { { prefix = "p/d/" } },
    }, r)
  end)

  it("an empty listing still has its arrays", function()
    local r = assert(client('<ListBucketResult ' .. NS .. '><Name>b</Name><IsTruncated>false</IsTruncated>'
      .. '</ListBucketResult>'):list_objects("b", { encoding_type = false }))
    assert.same({ name = "b", is_truncated = false, request_id = "rid-1", contents = {}, common_prefixes = {} }, r)
  end)

  it("ListObjectVersions, ListMultipartUploads and ListParts likewise", function()
    local v = assert(client('<ListVersionsResult ' .. NS .. '><Name>b</Name><IsTruncated>false</IsTruncated>'
      .. '<Version><Key>k</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest><Size>5</Size><ETag>"e"</ETag>'
      .. '<Extra>x</Extra></Version><DeleteMarker><Key>k</Key><VersionId>v0</VersionId><IsLatest>false</IsLatest>'
      .. '<Size>9</Size></DeleteMarker></ListVersionsResult>'):list_object_versions("b", { encoding_type = false }))
    assert.same({ name = "b", is_truncated = false, request_id = "rid-1",
      versions = { { key = "k", version_id = "v1", is_latest = true, size = 5, etag = '"e"' } },
      delete_markers = { { key = "k", version_id = "v0", is_latest = false } }, common_prefixes = {} }, v)
    local u = assert(client('<ListMultipartUploadsResult ' .. NS .. '><Bucket>b</Bucket>'
      .. '<IsTruncated>false</IsTruncated><Upload><Key>k</Key><UploadId>u1</UploadId>'
      .. '<Initiated>2026-12-07T10:00:00.000Z</Initiated><Placement>x</Placement></Upload>'
      .. '</ListMultipartUploadsResult>'):list_multipart_uploads("b", { encoding_type = false }))
    assert.same({ bucket = "b", is_truncated = false, request_id = "rid-1",
      uploads = { { key = "k", upload_id = "u1", initiated = "2026-12-07T10:00:00.000Z" } }, common_prefixes = {} },
      u)
    local p = assert(client('<ListPartsResult ' .. NS .. '><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId>'
      .. '<IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><ETag>"p1"</ETag><Size>5242880</Size>'
      .. '<Mystery>m</Mystery></Part><Part><PartNumber>2</PartNumber><ETag>"p2"</ETag><Size>1</Size></Part>'
      .. '</ListPartsResult>'):list_parts("b", "k", "u1"))
    assert.same({ bucket = "b", key = "k", upload_id = "u1", is_truncated = false,
      parts = { { part_number = 1, etag = '"p1"', size = 5242880 }, { part_number = 2, etag = '"p2"', size = 1 } } },
      p)
  end)
end)
