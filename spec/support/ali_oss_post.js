#!/usr/bin/env node
// ali-oss's PostObject policy signatures for policy documents objstore
// wrote, for spec/presigned_post_spec.lua: calculatePostSignature (V1)
// and signPostObjectPolicyV4 (V4) of the same client, given the document
// as text (ali-oss re-serialises it with JSON.stringify, so equal base64
// means objstore wrote the document exactly as ali-oss would).
//
// Input (stdin, JSON): { access_key, secret_key, region, cases: [{ id, sig: "v1"|"v4", policy, time }] }
// Output: { version, cases: [{ id, policy, signature, OSSAccessKeyId? }] }
'use strict';
const path = require('path');
const { createRequire } = require('module');

const requireFromRoot = createRequire(path.join(__dirname, '..', '..', 'package.json'));
const OSS = requireFromRoot('ali-oss');
const version = requireFromRoot('ali-oss/package.json').version;

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const client = new OSS({
    region: `oss-${input.region}`,
    accessKeyId: input.access_key,
    accessKeySecret: input.secret_key,
    bucket: 'unused'
  });
  const out = input.cases.map(c => {
    if (c.sig === 'v1') {
      const r = client.calculatePostSignature(c.policy);
      return { id: c.id, policy: r.policy, signature: r.Signature, OSSAccessKeyId: r.OSSAccessKeyId };
    }
    const policy = Buffer.from(JSON.stringify(JSON.parse(c.policy)), 'utf8').toString('base64');
    return { id: c.id, policy, signature: client.signPostObjectPolicyV4(c.policy, new Date(c.time * 1000)) };
  });
  process.stdout.write(JSON.stringify({ version, cases: out }));
}

main().catch(e => {
  process.stderr.write(`ali_oss_post: ${(e && e.stack) || e}\n`);
  process.exit(1);
});
