#!/usr/bin/env node
// What Alibaba Cloud's official Node SDK for RPC APIs (@alicloud/pop-core,
// pinned in package.json) sends for an STS call, for comparison with
// objstore.sts (spec/sts_shape_spec.lua). pop-core exposes its request:
// RPCClient.request builds and signs the URL itself and hands it to
// `httpx.request(url, opts)`; this script replaces httpx.request (the
// module object pop-core holds) with a recorder that fails the call, so
// nothing is sent. The clock and the nonce are fixed: pop-core reads the
// time through `new Date()` (timestamp()) and the nonce from
// kitx.makeNonce(), both replaced for the duration of a case.
//
// Input (stdin, JSON): { "cases": [ { id, endpoint, access_key, secret_key,
//   session_token|null, action, params: {...}, method: "GET"|"POST",
//   time: epoch seconds, nonce } ] }
// Output (stdout, JSON): { version, cases: [ { id, method, url, headers, body } ] }
'use strict';

const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const requireFrom = (m, from) => require(require.resolve(m, { paths: [from] }));
const RPCClient = requireFrom('@alicloud/pop-core', root).RPCClient;
const popDir = path.dirname(require.resolve('@alicloud/pop-core/package.json', { paths: [root] }));
// The very module instances pop-core's rpc.js required.
const httpx = requireFrom('httpx', popDir);
const kitx = requireFrom('kitx', popDir);
const version = requireFrom('@alicloud/pop-core/package.json', root).version;

const RealDate = Date;
let fixedMs = null;
class FixedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0 && fixedMs !== null) super(fixedMs);
    else super(...args);
  }
  static now() { return fixedMs !== null ? fixedMs : RealDate.now(); }
}
global.Date = FixedDate;

let nonce = null;
kitx.makeNonce = () => nonce;

class Captured extends Error {}
let captured = null;
httpx.request = async (url, opts) => {
  const headers = {};
  for (const [k, v] of Object.entries(opts.headers || {})) headers[k.toLowerCase()] = String(v);
  captured = { method: (opts.method || 'GET').toUpperCase(), url, headers, body: opts.data || null };
  throw new Captured('captured');
};

async function run(c) {
  fixedMs = c.time * 1000;
  nonce = c.nonce;
  captured = null;
  const client = new RPCClient({
    endpoint: c.endpoint, apiVersion: '2015-04-01', accessKeyId: c.access_key,
    accessKeySecret: c.secret_key, securityToken: c.session_token || undefined,
  });
  try {
    await client.request(c.action, c.params, { method: c.method || 'GET', formatParams: false });
  } catch (e) {
    if (!(e instanceof Captured)) return { id: c.id, error: String(e && e.stack || e) };
  }
  return Object.assign({ id: c.id }, captured);
}

(async () => {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const out = [];
  for (const c of spec.cases) out.push(await run(c));
  process.stdout.write(JSON.stringify({ version, cases: out }));
})();
