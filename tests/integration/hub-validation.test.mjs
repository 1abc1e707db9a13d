// Pipeline status hub: bad input. Every rule of the event schema (the rules src/hub/event.c
// implements; the docs/events.schema.json) is run through the live `ragpulse serve`,
// over HTTP (POST /api/events) and, for a few, over Socket.IO (/pipeline, acked). For every
// refusal the test checks the named field and that nothing was stored or broadcast: a viewer
// subscribed to everything got no event, /api/rag-status's version did not move, and the
// history (/api/events and ?since) is unchanged. Also: malformed JSON, wrong content types,
// unknown event types, oversize batches and bodies, all-or-nothing batches. And text the schema
// allows: a traceback (newlines, tabs) stored intact, lengths counted in characters, control
// characters refused with a reason that names that rule.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import {
  startServer, startSuiteServer, withTimeout, USE_REF,
} from './helpers.mjs';
import { T, RFC3339, storeArgs, hub, suiteHub, request, getJson } from './hub-helpers.mjs';

const SKIP = USE_REF && 'the pipeline hub exists only in ragpulse serve (RP_TEST_SERVER=ref)';


const PID = 'val-pipe';
const PTYPE = 'local_files';

// ---- small helpers (each hub-*.test.mjs is self-contained) ----------------------------------


/** POSTs `body` (serialised unless raw) to /api/events with the given Content-Type (null: none). */
function post(base, body, { ct = 'application/json', raw = false } = {}) {
  return request(`${base}/api/events`, {
    method: 'POST', headers: ct === null ? {} : { 'content-type': ct }, body: raw ? body : JSON.stringify(body),
  });
}


/** A socket.io-client viewer that is not tracked by helpers (it lives for a whole describe). */
async function suiteViewer(url, filter = {}) {
  const s = io(url, { forceNew: true, reconnection: false, timeout: T, transports: ['websocket'] });
  await withTimeout(new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', reject);
  }), T, `connect ${url}`);
  const got = [];
  // (`sync` follows a subscribe when connection-state recovery is on: not an event.)
  s.onAny((name, arg) => { if (name !== 'sync') got.push({ name, ev: arg }); });
  const ack = await s.timeout(T).emitWithAck('subscribe', filter);
  assert.equal(ack.ok, true, `subscribe ack ${JSON.stringify(ack)}`);
  return { s, got };
}

/** Everything the hub has stored, as the outside world can see it. */
async function observe(base) {
  const status = await getJson(`${base}/api/rag-status`);
  const since = await getJson(`${base}/api/rag-status?since=0`);
  const hist = await getJson(`${base}/api/events?pipeline=${PID}&limit=1000`);
  return {
    version: status.version,
    pipelines: status.pipelines.map((p) => p.id),
    ids: since.events.map((e) => e.id),
    history: hist.events.map((e) => e.id),
  };
}

/**
 * Asserts that nothing was stored or broadcast since `before` was observed: the hub's version,
 * pipelines, full event log and this pipeline's history are unchanged, and the viewer (synced
 * with a `ping` round trip on its own connection, which arrives after any broadcast the
 * refused request could have caused) received no event.
 */
async function assertNothingStored(base, viewer, before, label) {
  await viewer.s.timeout(T).emitWithAck('ping');
  assert.deepEqual(viewer.got, [], `${label}: a subscribed viewer got events after a refusal`);
  const now = await observe(base);
  assert.deepEqual(now, before, `${label}: state changed after a refusal`);
}

// ---- the schema rules ------------------------------------------------------------------------

const file = (extra = {}) => ({ id: 'f1', name: 'a.pdf', ...extra });
const ev = (type, extra = {}) => ({ type, pipeline_id: PID, pipeline_type: PTYPE, ...extra });
const progress = (fileExtra = {}, extra = {}) => ev('file:progress', { file: file({ progress: 0.5, ...fileExtra }), ...extra });
const failed = (error, extra = {}) => ev('file:failed', { file: file({ error }), ...extra });
const x = (n, c = 'a') => c.repeat(n);

/** [name, event as sent, field the refusal must name] */
const CASES = [
  // the event itself
  ['event is a number', 42, ''],
  ['event is a string', 'pipeline:online', ''],
  ['event is null', null, ''],
  ['unknown top-level field', ev('heartbeat', { colour: 'red' }), 'colour'],
  ['producer sends id', ev('heartbeat', { id: 7 }), 'id'],
  ['producer sends ts', ev('heartbeat', { ts: '2026-01-01T00:00:00.000Z' }), 'ts'],
  // type
  ['type missing', { pipeline_id: PID, pipeline_type: PTYPE }, 'type'],
  ['type unknown', ev('file:bogus'), 'type'],
  ['type not a string', ev(3), 'type'],
  ['type legacy name', ev('pipeline:status'), 'type'],
  // pipeline_id
  ['pipeline_id missing', { type: 'heartbeat', pipeline_type: PTYPE }, 'pipeline_id'],
  ['pipeline_id empty', ev('heartbeat', { pipeline_id: '' }), 'pipeline_id'],
  ['pipeline_id 129 chars', ev('heartbeat', { pipeline_id: x(129) }), 'pipeline_id'],
  ['pipeline_id with a space', ev('heartbeat', { pipeline_id: 'a b' }), 'pipeline_id'],
  ['pipeline_id with a slash', ev('heartbeat', { pipeline_id: 'a/b' }), 'pipeline_id'],
  ['pipeline_id non-ASCII', ev('heartbeat', { pipeline_id: 'café' }), 'pipeline_id'],
  ['pipeline_id a number', ev('heartbeat', { pipeline_id: 12 }), 'pipeline_id'],
  // pipeline_type
  ['pipeline_type missing', { type: 'heartbeat', pipeline_id: PID }, 'pipeline_type'],
  ['pipeline_type empty', ev('heartbeat', { pipeline_type: '' }), 'pipeline_type'],
  ['pipeline_type upper case', ev('heartbeat', { pipeline_type: 'Local_files' }), 'pipeline_type'],
  ['pipeline_type with a dash', ev('heartbeat', { pipeline_type: 'local-files' }), 'pipeline_type'],
  ['pipeline_type 65 chars', ev('heartbeat', { pipeline_type: x(65) }), 'pipeline_type'],
  // file presence
  ['file missing on file:processing', ev('file:processing'), 'file'],
  ['file missing on file:completed', ev('file:completed'), 'file'],
  ['file on pipeline:online', ev('pipeline:online', { file: file() }), 'file'],
  ['file on heartbeat', ev('heartbeat', { file: file() }), 'file'],
  ['file not an object', ev('file:processing', { file: 'a.pdf' }), 'file'],
  ['file unknown field', ev('file:processing', { file: file({ colour: 'red' }) }), 'file.colour'],
  // file fields
  ['file.id missing', ev('file:processing', { file: { name: 'a.pdf' } }), 'file.id'],
  ['file.id empty', ev('file:processing', { file: file({ id: '' }) }), 'file.id'],
  ['file.id 257 chars', ev('file:processing', { file: file({ id: x(257) }) }), 'file.id'],
  ['file.id a number', ev('file:processing', { file: file({ id: 5 }) }), 'file.id'],
  ['file.name missing', ev('file:processing', { file: { id: 'f1' } }), 'file.name'],
  ['file.name empty', ev('file:processing', { file: file({ name: '' }) }), 'file.name'],
  ['file.name 1025 chars', ev('file:processing', { file: file({ name: x(1025) }) }), 'file.name'],
  ['file.name with a control character', ev('file:processing', { file: file({ name: 'a\nb' }) }), 'file.name'],
  ['file.size negative', ev('file:processing', { file: file({ size: -1 }) }), 'file.size'],
  ['file.size fractional', ev('file:processing', { file: file({ size: 1.5 }) }), 'file.size'],
  ['file.size a string', ev('file:processing', { file: file({ size: '10' }) }), 'file.size'],
  ['file.mime_type empty', ev('file:processing', { file: file({ mime_type: '' }) }), 'file.mime_type'],
  ['file.mime_type 256 chars', ev('file:processing', { file: file({ mime_type: x(256) }) }), 'file.mime_type'],
  ['file.progress above 1', progress({ progress: 1.5 }), 'file.progress'],
  ['file.progress below 0', progress({ progress: -0.1 }), 'file.progress'],
  ['file.progress a string', progress({ progress: '0.5' }), 'file.progress'],
  ['file.progress missing on file:progress', ev('file:progress', { file: file() }), 'file.progress'],
  ['file.stage empty', progress({ stage: '' }), 'file.stage'],
  ['file.stage 65 chars', progress({ stage: x(65) }), 'file.stage'],
  ['file.chunks negative', progress({ chunks: -1 }), 'file.chunks'],
  ['file.chunks fractional', progress({ chunks: 2.5 }), 'file.chunks'],
  ['file.attempt 0', progress({ attempt: 0 }), 'file.attempt'],
  ['file.attempt a string', progress({ attempt: '2' }), 'file.attempt'],
  ['file.hash empty', progress({ hash: '' }), 'file.hash'],
  ['file.hash 129 chars', progress({ hash: x(129) }), 'file.hash'],
  // file.error
  ['file.error on file:completed', ev('file:completed', { file: file({ error: 'boom' }) }), 'file.error'],
  ['file.error on file:progress', progress({ error: 'boom' }), 'file.error'],
  ['file.error missing on file:failed', ev('file:failed', { file: file() }), 'file.error'],
  ['file.error a number', failed(42), 'file.error'],
  ['file.error an empty string', failed(''), 'file.error'],
  ['file.error 8193 chars', failed(x(8193)), 'file.error'],
  ['file.error unknown field', failed({ message: 'boom', colour: 'red' }), 'file.error'],
  ['file.error.message missing', failed({ kind: 'io' }), 'file.error.message'],
  ['file.error.message empty', failed({ message: '' }), 'file.error.message'],
  ['file.error.kind empty', failed({ message: 'boom', kind: '' }), 'file.error.kind'],
  ['file.error.kind 65 chars', failed({ message: 'boom', kind: x(65) }), 'file.error.kind'],
  ['file.error.code fractional', failed({ message: 'boom', code: 1.5 }), 'file.error.code'],
  ['file.error.code empty string', failed({ message: 'boom', code: '' }), 'file.error.code'],
  ['file.error.retryable a string', failed({ message: 'boom', retryable: 'yes' }), 'file.error.retryable'],
  // message
  ['message 4097 chars', ev('heartbeat', { message: x(4097) }), 'message'],
  ['message a number', ev('heartbeat', { message: 42 }), 'message'],
  // status
  ['status missing on status:update', ev('status:update'), 'status'],
  ['status unknown', ev('status:update', { status: 'busy' }), 'status'],
  ['status on heartbeat', ev('heartbeat', { status: 'online' }), 'status'],
  ['status on pipeline:online', ev('pipeline:online', { status: 'online' }), 'status'],
  // heartbeat_interval
  ['heartbeat_interval 0', ev('pipeline:online', { heartbeat_interval: 0 }), 'heartbeat_interval'],
  ['heartbeat_interval negative', ev('pipeline:online', { heartbeat_interval: -1 }), 'heartbeat_interval'],
  ['heartbeat_interval above a day', ev('pipeline:online', { heartbeat_interval: 86401 }), 'heartbeat_interval'],
  ['heartbeat_interval a string', ev('pipeline:online', { heartbeat_interval: '30' }), 'heartbeat_interval'],
  // files_total, files_pending
  ['files_total negative', ev('status:update', { status: 'running', files_total: -1 }), 'files_total'],
  ['files_total fractional', ev('status:update', { status: 'running', files_total: 1.5 }), 'files_total'],
  ['files_pending negative', ev('heartbeat', { files_pending: -1 }), 'files_pending'],
  ['files_pending a string', ev('heartbeat', { files_pending: '3' }), 'files_pending'],
  // meta
  ['meta a string', ev('heartbeat', { meta: 'x' }), 'meta'],
  ['meta an array', ev('heartbeat', { meta: [1] }), 'meta'],
  ['meta over 4096 bytes', ev('heartbeat', { meta: { blob: x(4200) } }), 'meta'],
];

/** Valid events at the edges of the rules: each must be accepted (and stored). */
const ACCEPTED = [
  ['pipeline_id of 128 allowed characters', ev('heartbeat', { pipeline_id: `Az09._:-${x(120)}` })],
  ['pipeline_type of 64 characters', ev('heartbeat', { pipeline_type: x(64, 'z') })],
  ['file.progress 0', progress({ progress: 0 })],
  ['file.progress 1', progress({ progress: 1 })],
  ['message of 4096 characters', ev('heartbeat', { message: x(4096) })],
  ['message empty', ev('heartbeat', { message: '' })],
  ['file.error a string', failed('boom')],
  ['file.error an object with every field', failed({ message: 'boom', kind: 'io', code: 'E_IO', retryable: false })],
  ['file.error.code an integer', failed({ message: 'boom', code: 503 })],
  ['every status', ev('status:update', { status: 'idle' })],
  ['heartbeat_interval fractional', ev('pipeline:online', { heartbeat_interval: 0.25 })],
  ['files_total and files_pending 0', ev('heartbeat', { files_total: 0, files_pending: 0 })],
  ['meta an object', ev('heartbeat', { meta: { host: 'h1', n: 3 } })],
];

describe('schema rules over HTTP: refused with the named field, nothing stored or broadcast', { skip: SKIP }, () => {
  let srv;
  let viewer;
  before(async () => {
    srv = await suiteHub();
    // A known pipeline, so the history checks have something to compare.
    const r = await post(srv.url, ev('pipeline:online', { heartbeat_interval: 30 }));
    assert.equal(r.status, 200, r.text);
    viewer = await suiteViewer(`${srv.url}/pipeline`, {});
  });
  after(async () => {
    viewer?.s.disconnect();
    await srv?.stop();
  });

  for (const [name, body, field] of CASES) {
    it(`${name} → 400, field "${field}"`, { timeout: 10000 }, async () => {
      await viewer.s.timeout(T).emitWithAck('ping');
      viewer.got.length = 0;
      const before = await observe(srv.url);
      const r = await post(srv.url, body);
      assert.equal(r.status, 400, `status for ${JSON.stringify(body)?.slice(0, 200)}: ${r.text}`);
      assert.equal(r.json?.error, 'invalid event', r.text);
      assert.equal(r.json.field, field, `field: ${r.text}`);
      assert.equal(typeof r.json.rule, 'string');
      assert.ok(r.json.rule.length > 0, 'the rule is named');
      assert.equal(r.json.index, undefined, 'no index for a single event');
      await assertNothingStored(srv.url, viewer, before, name);
    });
  }

  it('the same rule inside a batch: 400 with the index, and the valid events of the batch are not stored either', { timeout: 10000 }, async () => {
    viewer.got.length = 0;
    const before = await observe(srv.url);
    const batch = [
      ev('heartbeat'),
      ev('file:processing', { file: file({ id: 'batch-1' }) }),
      progress({ progress: 7 }),
      ev('heartbeat'),
    ];
    const r = await post(srv.url, batch);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error, 'invalid event');
    assert.equal(r.json.field, 'file.progress');
    assert.equal(r.json.index, 2);
    assert.equal(typeof r.json.rule, 'string');
    await assertNothingStored(srv.url, viewer, before, 'batch');
    // a non-object element
    const r2 = await post(srv.url, [ev('heartbeat'), 'nope']);
    assert.equal(r2.status, 400, r2.text);
    assert.equal(r2.json.index, 1);
    assert.equal(r2.json.field, '');
    await assertNothingStored(srv.url, viewer, before, 'batch with a string');
  });

  for (const [name, body] of ACCEPTED) {
    it(`accepted at the edge: ${name}`, { timeout: 10000 }, async () => {
      const before = await observe(srv.url);
      const r = await post(srv.url, body);
      assert.equal(r.status, 200, `${JSON.stringify(body).slice(0, 200)}: ${r.text}`);
      assert.equal(r.json.id, before.version + 1);
      const since = await getJson(`${srv.url}/api/rag-status?since=${before.version}`);
      assert.deepEqual(since.events.map((e) => e.id), [r.json.id]);
    });
  }
});

describe('malformed JSON, wrong content types, unknown types, oversize input (HTTP)', { skip: SKIP }, () => {
  let srv;
  let viewer;
  before(async () => {
    srv = await suiteHub(['--max-payload', '20000']);
    const r = await post(srv.url, ev('pipeline:online'));
    assert.equal(r.status, 200, r.text);
    viewer = await suiteViewer(`${srv.url}/pipeline`, {});
  });
  after(async () => {
    viewer?.s.disconnect();
    await srv?.stop();
  });

  const MALFORMED = [
    ['unterminated object', '{"type":"heartbeat"'],
    ['bare word', '{bad'],
    ['trailing garbage', `${JSON.stringify(ev('heartbeat'))}x`],
    ['two objects', `${JSON.stringify(ev('heartbeat'))}${JSON.stringify(ev('heartbeat'))}`],
    ['single quotes', "{'type':'heartbeat'}"],
    ['NaN', '{"type":"heartbeat","pipeline_id":"p","pipeline_type":"t","heartbeat_interval":NaN}'],
    ['empty body', ''],
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"type":"heartbeat","pipeline_id":"p","pipeline_type":"t","message":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])],
  ];
  for (const [name, body] of MALFORMED) {
    it(`malformed JSON: ${name} → 400 "malformed JSON"`, { timeout: 10000 }, async () => {
      await viewer.s.timeout(T).emitWithAck('ping');
      viewer.got.length = 0;
      const before = await observe(srv.url);
      const r = await post(srv.url, body, { raw: true });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json?.error ?? '', /malformed JSON/, r.text);
      await assertNothingStored(srv.url, viewer, before, name);
    });
  }

  const BAD_TYPES = [
    ['no Content-Type', null],
    ['text/plain', 'text/plain'],
    ['form-urlencoded', 'application/x-www-form-urlencoded'],
    ['multipart/form-data', 'multipart/form-data; boundary=x'],
    ['application/xml', 'application/xml'],
    ['application/json-patch+json (another media type)', 'application/json-patch+json'],
    ['application/jsonl (another media type)', 'application/jsonl'],
  ];
  for (const [name, ct] of BAD_TYPES) {
    it(`wrong content type: ${name} → 415`, { timeout: 10000 }, async () => {
      await viewer.s.timeout(T).emitWithAck('ping');
      viewer.got.length = 0;
      const before = await observe(srv.url);
      const r = await post(srv.url, ev('heartbeat'), { ct });
      assert.equal(r.status, 415, `Content-Type ${ct}: ${r.status} ${r.text}`);
      assert.equal(typeof r.json?.error, 'string');
      await assertNothingStored(srv.url, viewer, before, name);
    });
  }

  it('application/json with parameters or in another case is accepted', { timeout: 10000 }, async () => {
    for (const ct of ['application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8']) {
      const r = await post(srv.url, ev('heartbeat'), { ct });
      assert.equal(r.status, 200, `${ct}: ${r.text}`);
      assert.equal(typeof r.json.id, 'number');
    }
  });

  it('unknown event types → 400 naming "type" (single and in a batch)', { timeout: 10000 }, async () => {
    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const before = await observe(srv.url);
    for (const type of ['file:bogus', 'pipeline:status', 'pipeline:file_completed', 'FILE:PROGRESS', '']) {
      const r = await post(srv.url, ev(type));
      assert.equal(r.status, 400, `${type}: ${r.text}`);
      assert.equal(r.json.field, 'type', `${type}: ${r.text}`);
    }
    const r = await post(srv.url, [ev('heartbeat'), ev('file:exploded')]);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.field, 'type');
    assert.equal(r.json.index, 1);
    await assertNothingStored(srv.url, viewer, before, 'unknown types');
  });

  it('a batch of 1001 events → 413, nothing stored; 1000 events are accepted', { timeout: 15000 }, async () => {
    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const before = await observe(srv.url);
    // On a server with the default --max-payload (this suite's server has a small one).
    const big = await hub();
    const small = { type: 'heartbeat', pipeline_id: 'b', pipeline_type: 'x' };
    const v0 = (await getJson(`${big.url}/api/rag-status`)).version;
    const r = await post(big.url, Array.from({ length: 1001 }, () => small));
    assert.equal(r.status, 413, r.text.slice(0, 300));
    assert.equal((await getJson(`${big.url}/api/rag-status`)).version, v0, 'nothing stored after 413');
    assert.deepEqual((await getJson(`${big.url}/api/rag-status?since=0`)).events, []);
    const ok = await post(big.url, Array.from({ length: 1000 }, () => small));
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.equal(ok.json.ids.length, 1000);
    assert.deepEqual(ok.json.ids, Array.from({ length: 1000 }, (_, i) => v0 + 1 + i), 'ids are consecutive, in batch order');
    await assertNothingStored(srv.url, viewer, before, 'other server');
  });

  it('a body over --max-payload → 413, nothing stored', { timeout: 10000 }, async () => {
    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const before = await observe(srv.url);
    // 200 valid events of ~110 bytes: ~22 KB > 20000, but well under the 1000-event limit.
    const batch = Array.from({ length: 200 }, (_, i) => ev('heartbeat', { message: `event number ${String(i).padStart(5, '0')}` }));
    assert.ok(JSON.stringify(batch).length > 20000);
    const r = await post(srv.url, batch);
    assert.equal(r.status, 413, r.text.slice(0, 300));
    // also one event whose message alone makes the body too big
    const r2 = await post(srv.url, ev('heartbeat', { message: x(21000) }));
    assert.equal(r2.status, 413, r2.text.slice(0, 300));
    await assertNothingStored(srv.url, viewer, before, 'oversize body');
  });

  it('an empty batch stores nothing', { timeout: 10000 }, async () => {
    const before = await observe(srv.url);
    const r = await post(srv.url, []);
    assert.ok(r.status === 400 || (r.status === 200 && Array.isArray(r.json?.ids) && r.json.ids.length === 0),
      `empty batch: ${r.status} ${r.text}`);
    await assertNothingStored(srv.url, viewer, before, 'empty batch');
  });
});

describe('bad input over Socket.IO (/pipeline, acked)', { skip: SKIP }, () => {
  let srv;
  let viewer;
  let producer;
  before(async () => {
    srv = await suiteHub();
    producer = io(`${srv.url}/pipeline`, { forceNew: true, reconnection: false, timeout: T, transports: ['websocket'] });
    await withTimeout(new Promise((resolve, reject) => {
      producer.once('connect', resolve);
      producer.once('connect_error', reject);
    }), T, 'producer connect');
    const ack = await producer.timeout(T).emitWithAck('pipeline:online', { pipeline_id: PID, pipeline_type: PTYPE });
    assert.equal(typeof ack.id, 'number', JSON.stringify(ack));
    viewer = await suiteViewer(`${srv.url}/pipeline`, {});
  });
  after(async () => {
    producer?.disconnect();
    viewer?.s.disconnect();
    await srv?.stop();
  });

  const base = { pipeline_id: PID, pipeline_type: PTYPE };
  const SIO_CASES = [
    ['pipeline_id missing', 'pipeline:online', { pipeline_type: PTYPE }, 'pipeline_id'],
    ['pipeline_type with upper case', 'heartbeat', { ...base, pipeline_type: 'Drive' }, 'pipeline_type'],
    ['file.progress above 1', 'file:progress', { ...base, file: file({ progress: 2 }) }, 'file.progress'],
    ['file.error missing on file:failed', 'file:failed', { ...base, file: file() }, 'file.error'],
    ['file.error on file:completed', 'file:completed', { ...base, file: file({ error: 'x' }) }, 'file.error'],
    ['status unknown', 'status:update', { ...base, status: 'busy' }, 'status'],
    ['producer sends id', 'heartbeat', { ...base, id: 99 }, 'id'],
    ['unknown field', 'heartbeat', { ...base, colour: 'red' }, 'colour'],
    ['type differs from the event name', 'file:progress', { ...base, type: 'file:completed', file: file({ progress: 1 }) }, 'type'],
    ['unknown type in the object, known event name', 'heartbeat', { ...base, type: 'file:bogus' }, 'type'],
  ];
  for (const [name, event, data, field] of SIO_CASES) {
    it(`${event}: ${name} → ack {error:"invalid event", field:"${field}"}`, { timeout: 10000 }, async () => {
      await viewer.s.timeout(T).emitWithAck('ping');
      viewer.got.length = 0;
      const before = await observe(srv.url);
      const ack = await producer.timeout(T).emitWithAck(event, data);
      assert.equal(ack?.error, 'invalid event', JSON.stringify(ack));
      assert.equal(ack.field, field, JSON.stringify(ack));
      assert.equal(typeof ack.rule, 'string');
      assert.equal(ack.id, undefined);
      await assertNothingStored(srv.url, viewer, before, name);
    });
  }

  it('the first argument is not an object → ack {error:"invalid event"}', { timeout: 10000 }, async () => {
    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const before = await observe(srv.url);
    for (const arg of ['just a string', 42, [1, 2]]) {
      const ack = await producer.timeout(T).emitWithAck('heartbeat', arg);
      assert.equal(ack?.error, 'invalid event', `${JSON.stringify(arg)}: ${JSON.stringify(ack)}`);
      assert.equal(typeof ack.field, 'string');
      assert.equal(typeof ack.rule, 'string');
    }
    await assertNothingStored(srv.url, viewer, before, 'not an object');
  });

  it('an unknown event name (unknown event type) → ack {error:"invalid event", field:"type"}', { timeout: 10000 }, async () => {
    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const before = await observe(srv.url);
    for (const name of ['file:bogus', 'pipeline:status']) {
      let ack;
      try {
        ack = await producer.timeout(2000).emitWithAck(name, { ...base, file: file() });
      } catch (e) {
        assert.fail(`no ack within 2 s for the unknown event type "${name}" on /pipeline ` +
          `(expected {error:"invalid event", field:"type", rule}): ${e.message}`);
      }
      assert.equal(ack?.error, 'invalid event', `${name}: ${JSON.stringify(ack)}`);
      assert.equal(ack.field, 'type', `${name}: ${JSON.stringify(ack)}`);
    }
    await assertNothingStored(srv.url, viewer, before, 'unknown event name');
  });

  it('the producer connection survives refusals: a valid event right after is acked with the next id', { timeout: 10000 }, async () => {
    const before = await observe(srv.url);
    const ack = await producer.timeout(T).emitWithAck('heartbeat', base);
    assert.equal(ack.id, before.version + 1, JSON.stringify(ack));
  });
});

// ---- text the schema allows (issue 13, item 8) -------------------------------------------------
// Free text (message, file.error and its message) keeps tab, newline and carriage return, so a
// producer's traceback arrives intact; every other control character is refused, everywhere,
// with a reason that says so; lengths count characters (code points), not UTF-8 bytes.

const TRACEBACK = 'Traceback (most recent call last):\n'
  + '  File "/srv/rag/ingest.py", line 42, in parse_pdf\r\n'
  + '    pages = reader.pages()\n'
  + '\tFile "/usr/lib/python3/dist-packages/pypdf/_reader.py", line 7, in pages\n'
  + 'ValueError: could not read page 3: «invalid xref» — see ✓ log';
const CONTROL_TEXT = 'must not contain control characters other than tab, newline and carriage return';
const CONTROL_LINE = 'must not contain control characters';

/** A file:failed event for file `id`. */
const failedAs = (id, error, extra = {}) => ev('file:failed', { file: file({ id, error }), ...extra });

/** This pipeline's stored events with these ids, as GET /api/events gives them back. */
async function storedById(base, ids) {
  const hist = await getJson(`${base}/api/events?pipeline=${PID}&limit=1000`);
  return ids.map((id) => hist.events.find((e) => e.id === id));
}

describe('text the schema allows: tracebacks kept intact, lengths in characters, control characters named', { skip: SKIP }, () => {
  let srv;
  let viewer;
  let producer;
  before(async () => {
    srv = await suiteHub();
    const r = await post(srv.url, ev('pipeline:online', { heartbeat_interval: 30 }));
    assert.equal(r.status, 200, r.text);
    viewer = await suiteViewer(`${srv.url}/pipeline`, {});
    producer = io(`${srv.url}/pipeline`, { forceNew: true, reconnection: false, timeout: T, transports: ['websocket'] });
    await withTimeout(new Promise((resolve, reject) => {
      producer.once('connect', resolve);
      producer.once('connect_error', reject);
    }), T, 'producer connect');
  });
  after(async () => {
    producer?.disconnect();
    viewer?.s.disconnect();
    await srv?.stop();
  });

  it('a traceback in file:failed (string and object) and in message is accepted over HTTP and stored intact', { timeout: 10000 }, async () => {
    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const sent = [
      failed(TRACEBACK, { message: TRACEBACK }),
      failedAs('f2', { message: TRACEBACK, kind: 'ValueError', retryable: false }),
    ];
    const ids = [];
    for (const e of sent) {
      const r = await post(srv.url, e);
      assert.equal(r.status, 200, `a traceback was refused: ${r.text}`);
      ids.push(r.json.id);
    }
    const [a, b] = await storedById(srv.url, ids);
    assert.equal(a?.file.error.message, TRACEBACK, 'the string error, read back');
    assert.equal(a.message, TRACEBACK, 'the message, read back');
    assert.equal(b?.file.error.message, TRACEBACK, 'the object error, read back');
    assert.equal(b.file.error.kind, 'ValueError');
    // and broadcast intact
    await viewer.s.timeout(T).emitWithAck('ping');
    const live = viewer.got.filter((g) => g.name === 'file:failed').map((g) => g.ev);
    assert.deepEqual(live.map((e) => e.id), ids);
    assert.deepEqual(live.map((e) => e.file.error.message), [TRACEBACK, TRACEBACK]);
    // and in the failures view (grouped by cause)
    const f = await getJson(`${srv.url}/api/failures?pipeline=${PID}`);
    assert.ok(JSON.stringify(f).includes(JSON.stringify(TRACEBACK).slice(1, 40)), `failures: ${JSON.stringify(f).slice(0, 300)}`);
  });

  it('a traceback over Socket.IO (acked) is accepted and stored intact', { timeout: 10000 }, async () => {
    const ack = await producer.timeout(T).emitWithAck('file:failed', {
      pipeline_id: PID, pipeline_type: PTYPE, file: file({ id: 'f3', error: { message: TRACEBACK, kind: 'ValueError' } }),
    });
    assert.equal(typeof ack?.id, 'number', `refused: ${JSON.stringify(ack)}`);
    const [e] = await storedById(srv.url, [ack.id]);
    assert.equal(e?.file.error.message, TRACEBACK);
  });

  it('lengths count characters: 200 × é as file.id is accepted, 257 × é refused with the length rule', { timeout: 10000 }, async () => {
    const id200 = 'é'.repeat(200); // 400 bytes of UTF-8
    const r = await post(srv.url, ev('file:processing', { file: file({ id: id200, name: '文'.repeat(1024) }) }));
    assert.equal(r.status, 200, r.text);
    const [e] = await storedById(srv.url, [r.json.id]);
    assert.equal(e?.file.id, id200);
    assert.equal(e.file.name, '文'.repeat(1024));
    const ack = await producer.timeout(T).emitWithAck('file:processing', { pipeline_id: PID, pipeline_type: PTYPE, file: file({ id: `s${id200}` }) });
    assert.equal(typeof ack?.id, 'number', `refused over Socket.IO: ${JSON.stringify(ack)}`);

    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const before = await observe(srv.url);
    const bad = await post(srv.url, ev('file:processing', { file: file({ id: 'é'.repeat(257) }) }));
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.field, 'file.id');
    assert.equal(bad.json.rule, 'must be 1 to 256 characters (this one has 257)');
    const sioBad = await producer.timeout(T).emitWithAck('file:processing', { pipeline_id: PID, pipeline_type: PTYPE, file: file({ id: 'é'.repeat(257) }) });
    assert.equal(sioBad?.field, 'file.id', JSON.stringify(sioBad));
    assert.equal(sioBad.rule, 'must be 1 to 256 characters (this one has 257)');
    await assertNothingStored(srv.url, viewer, before, '257 × é');
  });

  const CONTROL = [
    ['a bell in file.id', ev('file:processing', { file: file({ id: 'a\u0007b' }) }), 'file.id', CONTROL_LINE],
    ['a newline in file.name', ev('file:processing', { file: file({ name: 'a\nb' }) }), 'file.name', CONTROL_LINE],
    ['DEL in file.stage', progress({ stage: 'ocr\u007f' }), 'file.stage', CONTROL_LINE],
    ['a C1 control (U+0085) in file.name', ev('file:processing', { file: file({ name: 'a\u0085b' }) }), 'file.name', CONTROL_LINE],
    ['an ANSI colour escape in file.error', failed('\u001b[31mred\u001b[0m'), 'file.error', CONTROL_TEXT],
    ['a form feed in file.error.message', failed({ message: 'page\fbreak' }), 'file.error.message', CONTROL_TEXT],
    ['a SOH (U+0001) in message', ev('heartbeat', { message: 'a\u0001b' }), 'message', CONTROL_TEXT],
    ['a newline in pipeline_id', ev('heartbeat', { pipeline_id: 'a\nb' }), 'pipeline_id', CONTROL_LINE],
  ];
  for (const [name, body, field, rule] of CONTROL) {
    it(`${name} → 400 "${field}" ${rule}`, { timeout: 10000 }, async () => {
      await viewer.s.timeout(T).emitWithAck('ping');
      viewer.got.length = 0;
      const before = await observe(srv.url);
      const r = await post(srv.url, body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.field, field, r.text);
      assert.equal(r.json.rule, rule, r.text);
      const { type, ...data } = body;
      const ack = await producer.timeout(T).emitWithAck(type, data);
      assert.equal(ack?.field, field, JSON.stringify(ack));
      assert.equal(ack.rule, rule, JSON.stringify(ack));
      await assertNothingStored(srv.url, viewer, before, name);
    });
  }

  it('a refused event in a batch: 400 with its index and rule, nothing of the batch stored, what was stored before kept intact', { timeout: 10000 }, async () => {
    const first = await post(srv.url, [
      failedAs('kept-1', TRACEBACK),
      ev('heartbeat', { message: 'line 1\nline 2' }),
    ]);
    assert.equal(first.status, 200, first.text);
    await viewer.s.timeout(T).emitWithAck('ping');
    viewer.got.length = 0;
    const before = await observe(srv.url);
    const r = await post(srv.url, [
      ev('heartbeat', { message: 'fine\ttoo' }),
      failedAs('batch-2', TRACEBACK),
      failedAs('batch-3', '\u001b[1mbold\u001b[0m'),
      ev('heartbeat'),
    ]);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.index, 2);
    assert.equal(r.json.field, 'file.error');
    assert.equal(r.json.rule, CONTROL_TEXT);
    await assertNothingStored(srv.url, viewer, before, 'batch with a control character');
    const [a, b] = await storedById(srv.url, first.json.ids);
    assert.equal(a?.file.error.message, TRACEBACK, 'the stored traceback is still there, intact');
    assert.equal(b?.message, 'line 1\nline 2');
    // and the hub goes on: the same batch without the bad event is accepted
    const ok = await post(srv.url, [ev('heartbeat', { message: 'fine\ttoo' }), failedAs('batch-2', TRACEBACK)]);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.ids, [before.version + 1, before.version + 2]);
  });
});
