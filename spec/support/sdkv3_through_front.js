// @aws-sdk/client-s3 (v3) through the objstore front, for
// spec/front_server_spec.lua: a PutObject streamed as aws-chunked
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer, the SDK's way
// for a stream with a checksum), a plain PutObject, GetObject and
// ListObjectsV2; with a fourth argument "multipart", the payload as a
// multipart upload instead (CreateMultipartUpload with CRC32, each
// UploadPart streamed aws-chunked with its CRC32 trailer, Complete with the
// parts' checksums). FRONT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// from the environment; argv: bucket, key, file of the payload. Prints JSON.
"use strict";
const fs = require("fs");
const { Readable } = require("stream");
const { S3Client, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, CreateMultipartUploadCommand,
  UploadPartCommand, CompleteMultipartUploadCommand } = require("@aws-sdk/client-s3");

const PART = 5 * 1024 * 1024;

async function multipart(client, bucket, key, payload) {
  const up = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key,
    ChecksumAlgorithm: "CRC32" }));
  const parts = [];
  for (let n = 1, off = 0; off < payload.length; n++, off += PART) {
    const piece = payload.subarray(off, Math.min(off + PART, payload.length));
    const half = Math.floor(piece.length / 2);
    const r = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId,
      PartNumber: n, Body: Readable.from([piece.subarray(0, half), piece.subarray(half)]),
      ContentLength: piece.length, ChecksumAlgorithm: "CRC32" }));
    parts.push({ PartNumber: n, ETag: r.ETag, ChecksumCRC32: r.ChecksumCRC32 });
  }
  const done = await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key,
    UploadId: up.UploadId, MultipartUpload: { Parts: parts } }));
  return { etag: done.ETag, parts: parts.length };
}

async function main() {
  const [bucket, key, file] = process.argv.slice(2);
  const client = new S3Client({
    region: "us-east-1", endpoint: process.env.FRONT_URL, forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  });
  const payload = fs.readFileSync(file);
  const half = Math.floor(payload.length / 2);
  const out = {};
  if (process.argv[5] === "multipart") {
    const m = await multipart(client, bucket, key, payload);
    out.put_etag = m.etag;
    out.parts = m.parts;
  } else {
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key,
      Body: Readable.from([payload.subarray(0, half), payload.subarray(half)]), ContentLength: payload.length,
      ChecksumAlgorithm: "CRC32" }));
    out.put_etag = put.ETag;
  }
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
