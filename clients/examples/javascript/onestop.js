#!/usr/bin/env node
// A one-stop system calling the Liên Thông gateway from JavaScript, with @grpc/grpc-js.
//
// As an officer of a connected unit it makes a lookup, a verification and an auto-fill, then a
// call the gateway refuses, and prints the refusal's details (ErrorInfo reason, the Vietnamese
// LocalizedMessage, field violations, quota and retry information) and each reply's audit
// receipt. The contract is loaded from proto/ at start (@grpc/proto-loader); the google.rpc
// error details are decoded from the `grpc-status-details-bin` trailer with protobufjs.
// Exit status: 0 when every call gave what the sample data makes it give.
//
//   npm ci
//   node onestop.js --endpoint 127.0.0.1:50051 --ca .lienthong/pki/ca.pem \
//     --cert .lienthong/pki/units/ha-tinh.pem --key .lienthong/pki/units/ha-tinh.key \
//     --token-file .lienthong/tokens/CB.H42.0001.jwt
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { randomUUID } = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const googleProtoFiles = require('google-proto-files');

const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string', default: '127.0.0.1:50051' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'token-file': { type: 'string' },
    'server-name': { type: 'string' },
    'proto-dir': { type: 'string', default: path.join(__dirname, '..', '..', '..', 'proto', 'proto') },
  },
});
for (const required of ['ca', 'cert', 'key', 'token-file']) {
  if (!args[required]) {
    console.error(`--${required} is required (see the comment at the top of this file)`);
    process.exit(2);
  }
}

const definition = protoLoader.loadSync('lienthong/gateway/v1/gateway.proto', {
  includeDirs: [args['proto-dir']],
  keepCase: true,
  enums: String,
  longs: String,
  defaults: true,
  oneofs: true,
});
const pb = grpc.loadPackageDefinition(definition).lienthong.gateway.v1;

// google.rpc.Status and its details, to read what a refusal says.
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (_origin, target) => path.join(googleProtoFiles.getProtoPath(), '..', target);
rpcRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
const Status = rpcRoot.lookupType('google.rpc.Status');

const credentials = grpc.credentials.createSsl(
  fs.readFileSync(args.ca),
  fs.readFileSync(args.key),
  fs.readFileSync(args.cert),
);
const options = args['server-name'] ? { 'grpc.ssl_target_name_override': args['server-name'] } : {};
const gateway = new pb.CitizenGateway(args.endpoint, credentials, options);
const token = fs.readFileSync(args['token-file'], 'utf8').trim();

function metadata() {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

function context(procedure, dossier) {
  return { request_id: randomUUID(), procedure_code: procedure, dossier_id: dossier };
}

const failures = [];

function receipt(trailers) {
  const get = (k) => (trailers && trailers.get(k)[0]) || '?';
  if (get('x-audit-sequence') === '?') failures.push('a reply without its audit receipt');
  return `chain ${get('x-audit-chain')} sequence ${get('x-audit-sequence')} hash ${String(get('x-audit-hash')).slice(0, 16)}…`;
}

// The delay a RESOURCE_EXHAUSTED refusal's RetryInfo asks for, in milliseconds, or null.
function retryDelayMs(err) {
  if (err.code !== grpc.status.RESOURCE_EXHAUSTED || !err.metadata) return null;
  const bin = err.metadata.get('grpc-status-details-bin')[0];
  if (!bin) return null;
  for (const any of Status.decode(bin).details) {
    if (any.type_url.endsWith('/google.rpc.RetryInfo')) {
      const RetryInfo = rpcRoot.lookupType('google.rpc.RetryInfo');
      const d = RetryInfo.toObject(RetryInfo.decode(any.value), { defaults: true, longs: Number }).retryDelay;
      return d.seconds * 1000 + d.nanos / 1e6;
    }
  }
  return null;
}

// One call; when a rate limit refuses it, waits as its RetryInfo says and tries again (a few
// times, and only for short waits: a daily budget is not waited out).
function call(method, request) {
  return withRetry(() => callOnce(method, request));
}

async function withRetry(attemptOnce) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await attemptOnce();
    } catch (err) {
      const delay = retryDelayMs(err);
      if (delay === null || delay > 5000 || attempt === 3) throw err;
      console.log(`  rate limited: retrying in ${Math.round(delay)} ms, as its RetryInfo says`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

// A unary call: resolves to { reply, trailers } or rejects with the error and its trailers.
function callOnce(method, request) {
  return new Promise((resolve, reject) => {
    let error;
    let reply;
    const c = gateway[method](request, metadata(), { deadline: Date.now() + 10000 }, (err, r) => {
      error = err;
      reply = r;
    });
    // The status (with the trailers) comes after the callback.
    c.on('status', (s) => (error ? reject(error) : resolve({ reply, trailers: s.metadata })));
  });
}

// Everything a refusal says; returns its reason and Vietnamese message.
function explain(err) {
  const said = { code: grpc.status[err.code], reason: '', messageVi: '' };
  console.log(`  refused: ${said.code}: ${err.details}`);
  const bin = err.metadata && err.metadata.get('grpc-status-details-bin')[0];
  if (bin) {
    const status = Status.decode(bin);
    for (const any of status.details) {
      const type = rpcRoot.lookupType(any.type_url.split('/').pop());
      const detail = type.toObject(type.decode(any.value), { defaults: true });
      switch (type.name) {
        case 'ErrorInfo':
          said.reason = detail.reason;
          console.log(`    reason      ${detail.reason} (${detail.domain})`);
          break;
        case 'LocalizedMessage':
          said.messageVi = detail.message;
          console.log(`    ${detail.locale}       ${detail.message}`);
          break;
        case 'BadRequest':
          for (const v of detail.fieldViolations) console.log(`    field       ${v.field}: ${v.description}`);
          break;
        case 'QuotaFailure':
          for (const v of detail.violations) console.log(`    quota       ${v.subject}: ${v.description}`);
          break;
        case 'RetryInfo':
          console.log(`    retry after ${detail.retryDelay.seconds}s ${detail.retryDelay.nanos}ns`);
          break;
        default:
          console.log(`    ${type.name}`);
      }
    }
  }
  console.log(`    receipt     ${receipt(err.metadata)}`);
  return said;
}

async function main() {
  console.log('LookupCitizen 042188999005 for 1.004222 (certification of a copy)');
  let { reply, trailers } = await call('LookupCitizen', {
    context: context('1.004222', 'H42.01-0001'),
    personal_id: '042188999005',
  });
  console.log(`  ${reply.citizen.full_name}, fields ${reply.disclosed_fields.join(', ')}`);
  console.log(`  receipt ${receipt(trailers)}`);
  if (reply.citizen.full_name !== 'Trần Thị Minh Thư') failures.push('lookup: unexpected name');

  console.log("VerifyCitizen 042092999014: declared 'Nguyễn Văn Hà' (the record has Hạ)");
  ({ reply, trailers } = await call('VerifyCitizen', {
    context: context('1.004222', 'H42.01-0002'),
    personal_id: '042092999014',
    claims: [{ field: 'full_name', value: 'Nguyễn Văn Hà' }],
  }));
  for (const f of reply.fields) console.log(`  ${f.field}: ${f.result} — ${f.explanation_vi}`);
  console.log(`  overall ${reply.result}; receipt ${receipt(trailers)}`);
  if (reply.result !== 'OVERALL_RESULT_NEEDS_REVIEW') failures.push(`verify: expected NEEDS_REVIEW, got ${reply.result}`);

  console.log('AutofillForm LT.KHAISINH for the declaring mother 042190999002');
  ({ reply, trailers } = await call('AutofillForm', {
    context: context('LT.KHAISINH', 'H42.01-0003'),
    personal_id: '042190999002',
  }));
  for (const f of reply.filled) console.log(`  ${f.label}: ${f.value}`);
  for (const f of reply.unfilled) console.log(`  (${f.label}: ${f.explanation_vi})`);
  console.log(`  form ${reply.form_id}; receipt ${receipt(trailers)}`);
  if (reply.filled.length === 0) failures.push('autofill: nothing filled');

  console.log('GetHousehold 042085999001 for 1.004227 (permanent residence registration)');
  ({ reply, trailers } = await call('GetHousehold', {
    context: context('1.004227', 'H42.01-0005'),
    personal_id: '042085999001',
  }));
  const household = reply.household;
  console.log(`  ${household.household_id}, head ${household.head_full_name}, ${household.members.length} members; receipt ${receipt(trailers)}`);
  if (household.members.length === 0) failures.push('household: no members');

  console.log('VerifyBatch: two declarations in one stream for 1.004227');
  const results = await withRetry(() => new Promise((resolve, reject) => {
    const got = {};
    const stream = gateway.VerifyBatch(metadata(), { deadline: Date.now() + 30000 });
    stream.on('data', (item) => {
      got[item.item_id] = item.outcome === 'result' ? item.result.result : `error ${item.error.reason}`;
      console.log(`  item ${item.item_id}: ${got[item.item_id]}`);
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(got));
    for (const [itemId, personalId, name] of [
      ['1', '042188999005', 'Trần Thị Minh Thư'],
      ['2', '042092999014', 'Nguyễn Văn Hà'],
    ]) {
      stream.write({
        context: context('1.004227', 'H42.01-0006'),
        item_id: itemId,
        personal_id: personalId,
        claims: [{ field: 'full_name', value: name }],
      });
    }
    stream.end();
  }));
  if (results['1'] !== 'OVERALL_RESULT_MATCH' || results['2'] !== 'OVERALL_RESULT_NEEDS_REVIEW') {
    failures.push(`batch: unexpected results ${JSON.stringify(results)}`);
  }

  console.log('ListProcedures: what this unit and officer may use');
  ({ reply } = await call('ListProcedures', {}));
  for (const p of reply.procedures) console.log(`  ${p.code.padEnd(12)} ${p.name}`);
  if (reply.procedures.length === 0) failures.push('procedures: none available');

  console.log("LookupCitizen for 2.000488 (a procedure the officer's role may not use)");
  try {
    await call('LookupCitizen', { context: context('2.000488', 'H42.01-0004'), personal_id: '042188999005' });
    failures.push('refusal: the call was served');
  } catch (err) {
    const said = explain(err);
    if (said.reason !== 'ROLE_NOT_ALLOWED' || !said.messageVi) failures.push(`refusal: expected ROLE_NOT_ALLOWED, got ${JSON.stringify(said)}`);
  }

  gateway.close();
  for (const f of failures) console.error(`FAILED ${f}`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((err) => {
  if (err.code !== undefined && err.metadata) {
    explain(err);
    console.error('FAILED a call that should have been served was refused (above)');
  } else {
    console.error(`FAILED ${err.stack || err}`);
  }
  process.exit(1);
});
