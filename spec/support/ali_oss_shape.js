#!/usr/bin/env node
// What Alibaba's official Node SDK (ali-oss) would send, for comparison
// with objstore's prepared requests (spec/oss_shape_spec.lua). No network:
// the client is given a fake `urllib` (ali-oss's documented hook for a
// custom HTTP client: `new OSS({ urllib })`, used as
// `this.urllib.request(url, params)` in lib/client.js) that records the URL
// and headers and then fails the call, so every operation stops right
// after ali-oss has built and signed its request. The clock is fixed by
// replacing the global Date for the duration of a case: ali-oss reads the
// time only through `new Date()` (createRequest, signatureUrlV4),
// `Date.now()` (utility.timestamp in signatureUrl) and dateformat.
//
// Input (stdin, JSON): { "cases": [ case, ... ] } where a case is
//   { id, sig: "v4"|"v1", sts: token|null, time: epoch seconds,
//     access_key, secret_key, region: "cn-hangzhou", endpoint,
//     op, bucket, key, body, opts: {...}, align: {...}|null }
// `op` and `opts` use objstore's operation and option names; the mapping
// to ali-oss's API is below (one function per operation). `align` asks
// for a second run in which ali-oss's request is adjusted before ali-oss
// signs it (see applyAlign), for the documented cases where the two
// clients legitimately differ in a signed input (e.g. XML body
// formatting); the signature can then still be compared exactly.
//
// Output (stdout, JSON): { version, cases: [ { id, native, aligned?, error? } ] }
// where native/aligned = { method, url, headers, body, subres,
//   v1_date_authorization?, v1_date_string_to_sign? }.
'use strict';

const path = require('path');
const { Readable } = require('stream');

const root = path.resolve(__dirname, '..', '..');
const requireFromRoot = m => require(require.resolve(m, { paths: [root] }));
const OSS = requireFromRoot('ali-oss');
const signUtils = requireFromRoot('ali-oss/lib/common/signUtils');
const version = requireFromRoot('ali-oss/package.json').version;

// ---- fixed clock -------------------------------------------------------
const RealDate = Date;
let fixedMs = null;
class FixedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0 && fixedMs !== null) super(fixedMs);
    else super(...args);
  }
  static now() {
    return fixedMs !== null ? fixedMs : RealDate.now();
  }
}
function withClock(ms, fn) {
  fixedMs = ms;
  global.Date = FixedDate;
  const restore = () => {
    global.Date = RealDate;
    fixedMs = null;
  };
  return Promise.resolve()
    .then(fn)
    .then(
      v => {
        restore();
        return v;
      },
      e => {
        restore();
        throw e;
      }
    );
}

// ---- interception ------------------------------------------------------
const STOP = new Error('ali_oss_shape: request captured, not sent');
STOP.name = 'CapturedRequest';

function lowerKeys(h) {
  const out = {};
  Object.keys(h || {}).forEach(k => {
    if (h[k] !== undefined && h[k] !== null) out[k.toLowerCase()] = String(h[k]);
  });
  return out;
}

function deleteHeader(h, name) {
  if (!h) return;
  Object.keys(h).forEach(k => {
    if (k.toLowerCase() === name.toLowerCase()) delete h[k];
  });
}

// Adjusts ali-oss's request parameters before createRequest signs them.
//   body: send this body instead (ali-oss then computes its own Content-MD5
//         and Content-Length for it, as it does for any buffered body)
//   set_headers: { name: value } added or replaced
//   drop_headers: [ name ]; "content-type" also stops ali-oss's mime guess
function applyAlign(params, align) {
  params.headers = params.headers || {};
  if (align.body !== undefined && align.body !== null) {
    params.content = Buffer.from(align.body, 'utf8');
    delete params.stream;
    deleteHeader(params.headers, 'content-md5');
    if (params.headers['Content-Length'] !== undefined) params.headers['Content-Length'] = params.content.length;
  }
  (align.drop_headers || []).forEach(name => {
    deleteHeader(params.headers, name);
    // createRequest guesses a type from params.mime or the key's
    // extension whenever none is set; a mime without a type stops it.
    if (name.toLowerCase() === 'content-type') params.mime = '.no-such-type';
  });
  Object.keys(align.set_headers || {}).forEach(name => {
    deleteHeader(params.headers, name);
    params.headers[name] = align.set_headers[name];
  });
}

function makeClient(c, bucket, state, align) {
  const fakeUrllib = {
    async request(url, params) {
      state.captured = { url, params };
      throw STOP;
    }
  };
  const client = new OSS({
    region: `oss-${c.region}`,
    endpoint: c.endpoint,
    secure: /^https:/.test(c.endpoint),
    accessKeyId: c.access_key,
    accessKeySecret: c.secret_key,
    stsToken: c.sts || undefined,
    // Only silences the "set refreshSTSToken" warning; without a
    // refreshSTSToken function the token is never refreshed.
    refreshSTSTokenInterval: 3600 * 1000,
    bucket: bucket || undefined,
    authorizationV4: c.sig === 'v4',
    urllib: fakeUrllib
  });
  const realRequest = OSS.prototype.request;
  client.request = async function request(params) {
    if (align) applyAlign(params, align);
    state.params = params;
    return realRequest.call(this, params);
  };
  return client;
}

function bodyString(p) {
  if (p.content === undefined || p.content === null) return null;
  return Buffer.isBuffer(p.content) ? p.content.toString('utf8') : String(p.content);
}

// ---- objstore operation -> ali-oss call ---------------------------------
function uploadHeaders(o) {
  const h = {};
  if (o.content_type) h['Content-Type'] = o.content_type;
  if (o.cache_control) h['Cache-Control'] = o.cache_control;
  if (o.content_disposition) h['Content-Disposition'] = o.content_disposition;
  if (o.content_encoding) h['Content-Encoding'] = o.content_encoding;
  if (o.acl) h['x-oss-object-acl'] = o.acl;
  if (o.storage_class) h['x-oss-storage-class'] = o.storage_class;
  // ali-oss has no encryption options: its users pass OSS's headers.
  if (o.sse) h['x-oss-server-side-encryption'] = o.sse;
  if (o.sse_kms_key_id) h['x-oss-server-side-encryption-key-id'] = o.sse_kms_key_id;
  if (o.sse_data_encryption) h['x-oss-server-side-data-encryption'] = o.sse_data_encryption;
  Object.assign(h, o.headers || {});
  return h;
}

function rangeHeader(r) {
  if (typeof r === 'string') return /^bytes=/.test(r) ? r : `bytes=${r}`;
  return `bytes=${r[0]}-${r[1] === undefined || r[1] === null ? '' : r[1]}`;
}

const RESPONSE_OVERRIDES = ['content_type', 'content_disposition', 'content_encoding', 'content_language',
  'cache_control', 'expires'];

const OPS = {
  async put_object(client, c, o) {
    await client.put(c.key, Buffer.from(c.body || '', 'utf8'), { headers: uploadHeaders(o), meta: o.metadata });
  },
  async get_object(client, c, o) {
    const headers = Object.assign({}, o.headers || {});
    if (o.range) headers.Range = rangeHeader(o.range);
    if (o.if_match) headers['If-Match'] = o.if_match;
    if (o.if_none_match) headers['If-None-Match'] = o.if_none_match;
    const subres = {};
    RESPONSE_OVERRIDES.forEach(n => {
      if (o[`response_${n}`]) subres[`response-${n.replace(/_/g, '-')}`] = o[`response_${n}`];
    });
    const opts = { headers, subres };
    if (o.version_id) opts.versionId = o.version_id;
    if (o.part_number) opts.subres.partNumber = o.part_number;
    await client.get(c.key, opts);
  },
  async head_object(client, c, o) {
    const headers = Object.assign({}, o.headers || {});
    if (o.if_match) headers['If-Match'] = o.if_match;
    if (o.if_none_match) headers['If-None-Match'] = o.if_none_match;
    const opts = { headers };
    if (o.version_id) opts.versionId = o.version_id;
    await client.head(c.key, opts);
  },
  async delete_object(client, c, o) {
    const opts = {};
    if (o.version_id) opts.versionId = o.version_id;
    await client.delete(c.key, opts);
  },
  async delete_objects(client, c, o) {
    const names = o.keys.map(k => (typeof k === 'string' ? k : { key: k.key, versionId: k.version_id }));
    await client.deleteMulti(names, { quiet: !!o.quiet });
  },
  async copy_object(client, c, o) {
    // client.copy(destination, source key, source bucket, options). copy()
    // turns every options.headers entry into an extra
    // x-oss-copy-source-<name> header as well (its way of passing source
    // conditions), so only metadata and the version go through options.
    const opts = { meta: o.metadata, headers: Object.assign({}, o.headers || {}) };
    if (o.content_type) opts.headers['Content-Type'] = o.content_type;
    if (o.source_version_id) opts.versionId = o.source_version_id;
    await client.copy(c.key, o.src_key, o.src_bucket, opts);
  },
  async list_objects(client, c, o) {
    const q = {};
    if (o.encoding_type !== false) q['encoding-type'] = o.encoding_type || 'url';
    if (o.prefix !== undefined) q.prefix = o.prefix;
    if (o.delimiter !== undefined) q.delimiter = o.delimiter;
    if (o.start_after !== undefined) q['start-after'] = o.start_after;
    if (o.max_keys !== undefined) q['max-keys'] = o.max_keys;
    if (o.continuation_token !== undefined) q['continuation-token'] = o.continuation_token;
    if (o.fetch_owner) q['fetch-owner'] = 'true';
    await client.listV2(q);
  },
  async list_objects_v1(client, c, o) {
    const q = {};
    if (o.encoding_type !== false) q['encoding-type'] = o.encoding_type || 'url';
    if (o.prefix !== undefined) q.prefix = o.prefix;
    if (o.delimiter !== undefined) q.delimiter = o.delimiter;
    if (o.marker !== undefined) q.marker = o.marker;
    if (o.max_keys !== undefined) q['max-keys'] = o.max_keys;
    await client.list(q);
  },
  async create_bucket(client, c, o) {
    const opts = {};
    if (o.acl) opts.acl = o.acl;
    if (o.storage_class) opts.storageClass = o.storage_class;
    await client.putBucket(c.bucket, opts);
  },
  async delete_bucket(client, c) {
    await client.deleteBucket(c.bucket);
  },
  async get_bucket_acl(client, c) {
    await client.getBucketACL(c.bucket);
  },
  async put_bucket_acl(client, c, o) {
    await client.putBucketACL(c.bucket, o.acl);
  },
  async list_buckets(client) {
    await client.listBuckets();
  },
  async create_multipart_upload(client, c, o) {
    await client.initMultipartUpload(c.key, { headers: uploadHeaders(o), meta: o.metadata });
  },
  async upload_part(client, c, o) {
    // ali-oss's Node build streams parts (no Content-MD5); its browser
    // build sends them buffered, with one. `align.body` selects the latter.
    const buf = Buffer.from(c.body || '', 'utf8');
    await client._uploadPart(c.key, o.upload_id, o.part_number, { size: buf.length, stream: Readable.from([buf]) }, {});
  },
  async complete_multipart_upload(client, c, o) {
    const parts = o.parts.map(p => ({ number: p.part_number, etag: p.etag }));
    await client.completeMultipartUpload(c.key, o.upload_id, parts);
  },
  async abort_multipart_upload(client, c, o) {
    await client.abortMultipartUpload(c.key, o.upload_id);
  },
  async list_parts(client, c, o) {
    const q = {};
    if (o.max_parts !== undefined) q['max-parts'] = o.max_parts;
    if (o.part_number_marker !== undefined) q['part-number-marker'] = o.part_number_marker;
    await client.listParts(c.key, o.upload_id, q);
  },
  async upload_part_copy(client, c, o) {
    const range = o.range ? `${o.range[0]}-${o.range[1]}` : undefined;
    const opts = {};
    if (o.source_version_id) opts.versionId = o.source_version_id;
    await client.uploadPartCopy(c.key, o.upload_id, o.part_number, range,
      { sourceBucketName: o.src_bucket, sourceKey: o.src_key }, opts);
  },
  async list_object_versions(client, c, o) {
    const q = {};
    if (o.encoding_type !== false) q['encoding-type'] = o.encoding_type || 'url';
    if (o.prefix !== undefined) q.prefix = o.prefix;
    if (o.delimiter !== undefined) q.delimiter = o.delimiter;
    if (o.key_marker !== undefined) q['key-marker'] = o.key_marker;
    if (o.version_id_marker !== undefined) q['version-id-marker'] = o.version_id_marker;
    if (o.max_keys !== undefined) q['max-keys'] = o.max_keys;
    await client.getBucketVersions(q);
  },
  async get_bucket_location(client, c) {
    await client.getBucketLocation(c.bucket);
  },
  async bucket_exists(client, c) {
    await client.getBucketInfo(c.bucket);
  },
  async put_object_tagging(client, c, o) {
    const opts = {};
    if (o.version_id) opts.versionId = o.version_id;
    // A tag set has no order: objstore writes its keys sorted, and the
    // JSON this harness reads has none; ali-oss keeps insertion order.
    const tags = {};
    for (const k of Object.keys(o.tags).sort()) tags[k] = o.tags[k];
    await client.putObjectTagging(c.key, tags, opts);
  },
  async get_object_tagging(client, c, o) {
    const opts = {};
    if (o.version_id) opts.versionId = o.version_id;
    await client.getObjectTagging(c.key, opts);
  },
  async delete_object_tagging(client, c, o) {
    const opts = {};
    if (o.version_id) opts.versionId = o.version_id;
    await client.deleteObjectTagging(c.key, opts);
  },
  async get_bucket_versioning(client, c) {
    await client.getBucketVersioning(c.bucket);
  },
  async put_bucket_versioning(client, c, o) {
    await client.putBucketVersioning(c.bucket, o.status);
  },
  async get_bucket_policy(client, c) {
    await client.getBucketPolicy(c.bucket);
  },
  async put_bucket_policy(client, c, o) {
    await client.putBucketPolicy(c.bucket, JSON.parse(o.policy));
  },
  async delete_bucket_policy(client, c) {
    await client.deleteBucketPolicy(c.bucket);
  },
  async list_multipart_uploads(client, c, o) {
    const q = {};
    if (o.encoding_type !== false) q['encoding-type'] = o.encoding_type || 'url';
    if (o.prefix !== undefined) q.prefix = o.prefix;
    if (o.delimiter !== undefined) q.delimiter = o.delimiter;
    if (o.key_marker !== undefined) q['key-marker'] = o.key_marker;
    if (o.upload_id_marker !== undefined) q['upload-id-marker'] = o.upload_id_marker;
    if (o.max_uploads !== undefined) q['max-uploads'] = o.max_uploads;
    await client.listUploads(q);
  }
};

// presign: objstore's c:presign(method, bucket, key, { expires, query, headers, version_id })
async function presign(client, c, o) {
  const method = (o.method || 'GET').toUpperCase();
  const expires = o.expires || 3600;
  const query = o.query || {};
  const headers = o.headers || {};
  if (c.sig === 'v4') {
    const queries = {};
    // Value-less parameters are null for ali-oss (qs strictNullHandling).
    Object.keys(query).forEach(k => {
      queries[k] = query[k] === true ? null : query[k];
    });
    if (o.version_id) queries.versionId = o.version_id;
    return client.signatureUrlV4(method, expires, { headers, queries }, c.key);
  }
  const opts = { method, expires };
  Object.keys(query).forEach(k => {
    const v = query[k] === true ? null : query[k];
    if (/^response-/.test(k)) {
      opts.response = opts.response || {};
      opts.response[k.slice('response-'.length)] = v;
    } else {
      opts.subResource = opts.subResource || {};
      opts.subResource[k] = v;
    }
  });
  if (o.version_id) {
    opts.subResource = opts.subResource || {};
    opts.subResource.versionId = o.version_id;
  }
  Object.keys(headers).forEach(k => {
    opts[/^x-oss-/i.test(k) ? k.toLowerCase() : k] = headers[k];
  });
  return client.signatureUrl(c.key, opts);
}

async function runOnce(c, align) {
  const state = {};
  const client = makeClient(c, c.bucket, state, align);
  const o = c.opts || {};
  if (c.op === 'presign') {
    const url = await withClock(c.time * 1000, () => presign(client, c, o));
    return { method: (o.method || 'GET').toUpperCase(), url, headers: {} };
  }
  const fn = OPS[c.op];
  if (!fn) throw new Error(`unknown op ${c.op}`);
  let failure = null;
  await withClock(c.time * 1000, async () => {
    try {
      await fn(client, c, o);
    } catch (e) {
      if (e !== STOP && !state.captured) failure = e;
    }
  });
  if (failure) throw failure;
  if (!state.captured) throw new Error(`ali-oss sent no request for ${c.op}`);
  const { url, params } = state.captured;
  const out = {
    method: params.method,
    url,
    headers: lowerKeys(params.headers),
    body: bodyString(params),
    streamed: !!params.stream,
    subres: state.params.subres === undefined ? null : state.params.subres
  };
  if (c.sig === 'v1') {
    // The V1 signature of the same request with the time in a Date header
    // instead of x-oss-date (objstore's choice; OSS takes either, and
    // x-oss-date wins when both are present). Computed by ali-oss's own
    // canonicalisation: the date is the 4th line of the string to sign,
    // exactly as ali-oss does for URL signatures (where it is Expires).
    const h = Object.assign({}, params.headers);
    const date = h['x-oss-date'];
    delete h['x-oss-date'];
    delete h.authorization;
    const sts = signUtils.buildCanonicalString(
      params.method,
      client._getResource(state.params),
      { headers: h, parameters: state.params.subres },
      date
    );
    out.v1_date_string_to_sign = sts;
    out.v1_date_authorization = signUtils.authorization(c.access_key, c.secret_key, sts);
  }
  return out;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const results = [];
  for (const c of input.cases) {
    const r = { id: c.id };
    try {
      r.native = await runOnce(c, null);
      if (c.align) r.aligned = await runOnce(c, c.align);
    } catch (e) {
      r.error = String((e && e.stack) || e);
    }
    results.push(r);
  }
  process.stdout.write(JSON.stringify({ version, cases: results }));
}

main().catch(e => {
  process.stderr.write(`ali_oss_shape: ${(e && e.stack) || e}\n`);
  process.exit(1);
});
