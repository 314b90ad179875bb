// @aws-sdk/client-s3 (v3) through the objstore front, for
// spec/front_server_spec.lua: a PutObject streamed as aws-chunked
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer, the SDK's way
// for a stream with a checksum), a plain PutObject, GetObject and
// ListObjectsV2. FRONT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY from
// the environment; argv: bucket, key, file of the payload. Prints JSON.
"use strict";
const fs = require("fs");
const { Readable } = require("stream");
const { S3Client, PutObjectCommand, GetObjectCommand, ListObjectsV2Command } = require("@aws-sdk/client-s3");

async function main() {
  const [bucket, key, file] = process.argv.slice(2);
  const client = new S3Client({
    region: "us-east-1", endpoint: process.env.FRONT_URL, forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  });
  const payload = fs.readFileSync(file);
  const half = Math.floor(payload.length / 2);
  const out = {};
  const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key,
    Body: Readable.from([payload.subarray(0, half), payload.subarray(half)]), ContentLength: payload.length,
    ChecksumAlgorithm: "CRC32" }));
  out.put_etag = put.ETag;
  const get = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await get.Body.transformToByteArray());
  out.get_equal = bytes.equals(payload);
  const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key }));
  out.listed = (list.Contents || []).map((o) => o.Key);
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.name), status: e && e.$metadata &&
    e.$metadata.httpStatusCode, message: String(e && e.message) }) + "\n");
  process.exit(1);
});
