// Captures requests made by @aws-sdk/client-s3 (v3) for
// spec/front_sdkv3_spec.lua: a listener on 127.0.0.1 (a port the kernel
// picks, so that two runs never collide) records each
// request (method, raw target, headers as sent, body bytes in hex) and
// answers 200; the capture is printed as JSON once the calls are done.
// @aws-sdk/client-s3 comes from the repository's node_modules (package.json).
"use strict";
const http = require("http");
const { Readable } = require("stream");
const { S3Client, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, UploadPartCommand } =
  require("@aws-sdk/client-s3");

const captured = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    captured.push({ method: req.method, target: req.url, headers, body_hex: Buffer.concat(chunks).toString("hex") });
    res.writeHead(200, { "Content-Type": "application/xml", ETag: '"0"', "Content-Length": "0" });
    res.end();
  });
});

async function main() {
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const PORT = server.address().port;
  const client = new S3Client({
    region: "us-east-1", endpoint: "http://127.0.0.1:" + PORT, forcePathStyle: true,
    credentials: { accessKeyId: "AKIDSDKV3", secretAccessKey: "sdk/v3+secret" }, maxAttempts: 1,
  });
  const payload = Buffer.alloc(70000, "z");
  const calls = [
    // a stream of known length: aws-chunked with a trailing checksum
    () => client.send(new PutObjectCommand({ Bucket: "bkt", Key: "stream d/ü+%~=.bin",
      Body: Readable.from([payload.subarray(0, 30000), payload.subarray(30000)]), ContentLength: payload.length,
      ChecksumAlgorithm: "CRC32" })),
    () => client.send(new PutObjectCommand({ Bucket: "bkt", Key: "small key", Body: "hello v3" })),
    () => client.send(new UploadPartCommand({ Bucket: "bkt", Key: "a b", PartNumber: 1, UploadId: "x",
      Body: "part" })),
    () => client.send(new ListObjectsV2Command({ Bucket: "bkt", Prefix: "a b" })),
    () => client.send(new GetObjectCommand({ Bucket: "bkt", Key: "k=1&x" })),
  ];
  for (const call of calls) {
    try { await call(); } catch (e) { /* the empty answers do not parse: only the requests matter */ }
  }
  server.close();
  process.stdout.write(JSON.stringify(captured));
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
