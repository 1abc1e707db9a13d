// Pipeline status hub: who gets what. Subscriptions by pipeline id, by pipeline type, and to
// everything, on /pipeline, on /, and on a type namespace; unsubscribe; the legacy event names
// (--legacy-events) for dashboards that never subscribe; the hub's own heartbeat to every viewer.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startServer, startSuiteServer, connect, waitUntil, sleep, USE_REF,
} from './helpers.mjs';
import { T, RFC3339, storeArgs, hub, suiteHub, request, getJson } from './hub-helpers.mjs';

const SKIP = USE_REF && 'the pipeline hub exists only in ragpulse serve (RP_TEST_SERVER=ref)';




async function post(base, evs) {
  const r = await request(`${base}/api/events`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evs),
  });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** Connects to base+nsp, records events (the hub's own heartbeat apart), subscribes if asked. */
async function viewer(base, nsp, ...filters) {
  const s = await connect(base + nsp, { transports: ['websocket'] });
  const got = [];
  const beats = [];
  const syncs = [];
  const snapshots = [];
  s.onAny((name, arg, ...rest) => {
    if ((name === 'heartbeat' || name === 'hub:heartbeat') && arg?.source === 'hub') beats.push(arg);
    else if (name === 'sync') syncs.push([arg, ...rest]); // recovery's first offset; see the test below
    else if (name === 'snapshot') snapshots.push(arg); // connecting to a type namespace subscribes to it
    else got.push({ name, ev: arg });
  });
  const acks = [];
  for (const f of filters) acks.push(await s.timeout(T).emitWithAck('subscribe', f));
  return { s, got, beats, syncs, snapshots, acks, ack: acks[0], sync: () => s.timeout(T).emitWithAck('ping') };
}

const summary = (v) => v.got.map((g) => `${g.name} ${g.ev?.pipeline_id}${g.ev?.file ? `/${g.ev.file.id}` : ''}`);

const A = { pipeline_id: 'pipe-A', pipeline_type: 'local_files' };
const B = { pipeline_id: 'pipe-B', pipeline_type: 'local_files' };
const G = { pipeline_id: 'pipe-G', pipeline_type: 'google_drive' };
const S = { pipeline_id: 'pipe-S', pipeline_type: 'sharepoint' }; // a type without a namespace

/** One event of each kind per pipeline, interleaved, then a sentinel on every pipeline. */
function traffic(tag) {
  const evs = [];
  for (const p of [A, G, B, S]) evs.push({ type: 'pipeline:online', ...p, message: tag });
  for (const p of [A, G, B, S]) evs.push({ type: 'file:processing', ...p, file: { id: `${tag}-1`, name: 'n' } });
  for (const p of [B, A, S, G]) evs.push({ type: 'file:completed', ...p, file: { id: `${tag}-1`, name: 'n' } });
  for (const p of [G, S, A, B]) evs.push({ type: 'status:update', ...p, status: 'idle' });
  return evs;
}

describe('subscription scoping', { skip: SKIP }, () => {
  let srv;
  before(async () => { srv = await suiteHub(); });
  after(async () => { await srv?.stop(); });

  it('pipeline id, pipeline type, everything; /pipeline, / and type namespaces each get exactly their events', { timeout: 20000 }, async () => {
    // Some state first, so the subscribe snapshots have something to scope.
    await post(srv.url, [
      { type: 'pipeline:online', ...A }, { type: 'pipeline:online', ...B },
      { type: 'pipeline:online', ...G }, { type: 'pipeline:online', ...S },
    ]);
    const V = {
      idA: await viewer(srv.url, '/pipeline', { pipeline_id: 'pipe-A' }),
      typeGd: await viewer(srv.url, '/pipeline', { pipeline_type: 'google_drive' }),
      typeSp: await viewer(srv.url, '/pipeline', { pipeline_type: 'sharepoint' }),
      all: await viewer(srv.url, '/pipeline', {}),
      rootAll: await viewer(srv.url, '/', {}),
      rootIdG: await viewer(srv.url, '/', { pipeline_id: 'pipe-G' }),
      nspLocal: await viewer(srv.url, '/local_files', {}),
      nspLocalTyped: await viewer(srv.url, '/local_files', { pipeline_type: 'local_files' }),
      nspLocalIdB: await viewer(srv.url, '/local_files', { pipeline_id: 'pipe-B' }),
      nspLocalIdG: await viewer(srv.url, '/local_files', { pipeline_id: 'pipe-G' }), // G is not local_files
      nspDrive: await viewer(srv.url, '/google_drive', {}),
      nobody: await viewer(srv.url, '/pipeline'), // connected, never subscribes
      nobodyRoot: await viewer(srv.url, '/'),
      nobodyNsp: await viewer(srv.url, '/local_files'),
    };
    // the acks: ok, room, and a snapshot scoped like the subscription
    const ackIds = (v) => v.ack.pipelines.map((p) => p.id).sort();
    for (const [k, v] of Object.entries(V)) {
      if (!v.ack) continue;
      assert.equal(v.ack.ok, true, `${k}: ${JSON.stringify(v.ack)}`);
      assert.equal(typeof v.ack.room, 'string', k);
      assert.equal(v.ack.version, 4, k);
      assert.match(v.ack.server_time, RFC3339, k);
    }
    assert.deepEqual(ackIds(V.idA), ['pipe-A']);
    assert.deepEqual(ackIds(V.typeGd), ['pipe-G']);
    assert.deepEqual(ackIds(V.typeSp), ['pipe-S']);
    assert.deepEqual(ackIds(V.all), ['pipe-A', 'pipe-B', 'pipe-G', 'pipe-S']);
    assert.deepEqual(ackIds(V.rootAll), ['pipe-A', 'pipe-B', 'pipe-G', 'pipe-S']);
    assert.deepEqual(ackIds(V.rootIdG), ['pipe-G']);
    assert.deepEqual(ackIds(V.nspLocal), ['pipe-A', 'pipe-B'], '/local_files {} snapshot holds local_files pipelines only');
    assert.deepEqual(ackIds(V.nspLocalTyped), ['pipe-A', 'pipe-B']);
    assert.deepEqual(ackIds(V.nspLocalIdB), ['pipe-B']);
    assert.deepEqual(ackIds(V.nspDrive), ['pipe-G']);

    const evs = traffic('t1');
    const { ids } = await post(srv.url, evs);
    const last = ids[ids.length - 1];
    await waitUntil(() => V.all.got.some((g) => g.ev?.id === last), T, 'the whole traffic at the all-viewer');
    await Promise.all(Object.values(V).map((v) => v.sync()));
    const expect = (pred) => evs.map((e, i) => ({ e, id: ids[i] })).filter(({ e }) => pred(e)).map(({ id }) => id);
    const gotIds = (v) => v.got.map((g) => g.ev.id);
    assert.deepEqual(gotIds(V.idA), expect((e) => e.pipeline_id === 'pipe-A'), 'subscribed to pipeline A: A only');
    assert.deepEqual(gotIds(V.typeGd), expect((e) => e.pipeline_type === 'google_drive'), '{pipeline_type: google_drive} on /pipeline');
    assert.deepEqual(gotIds(V.typeSp), expect((e) => e.pipeline_type === 'sharepoint'), '{pipeline_type: sharepoint} on /pipeline');
    assert.deepEqual(gotIds(V.all), ids, '{} on /pipeline: everything');
    assert.deepEqual(gotIds(V.rootAll), ids, '{} on /: everything');
    assert.deepEqual(gotIds(V.rootIdG), expect((e) => e.pipeline_id === 'pipe-G'), '/ {pipeline_id: G}');
    assert.deepEqual(gotIds(V.nspLocal), expect((e) => e.pipeline_type === 'local_files'), '/local_files gets only local_files events');
    assert.deepEqual(gotIds(V.nspLocalTyped), expect((e) => e.pipeline_type === 'local_files'));
    assert.deepEqual(gotIds(V.nspLocalIdB), expect((e) => e.pipeline_id === 'pipe-B'));
    assert.deepEqual(gotIds(V.nspLocalIdG), [], 'a google_drive pipeline is never sent on /local_files');
    assert.deepEqual(gotIds(V.nspDrive), expect((e) => e.pipeline_type === 'google_drive'), '/google_drive gets only google_drive events');
    for (const k of ['nobody', 'nobodyRoot']) assert.deepEqual(V[k].got, [], `${k}: no events without a subscription`);
    // Connecting to a type namespace is subscribing to its type (the documents' clients never
    // send subscribe); an explicit subscribe replaces that (nspLocalIdB, nspLocalIdG above).
    assert.deepEqual(gotIds(V.nobodyNsp), expect((e) => e.pipeline_type === 'local_files'), '/local_files without subscribe: its type');
    for (const k of ['nobody', 'nobodyRoot', 'all', 'idA']) assert.deepEqual(V[k].snapshots, [], `${k}: no snapshot event outside type namespaces`);
    // events arrive under their type's name, with the normalised event
    for (const g of V.all.got) assert.equal(g.name, g.ev.type);
  });

  it('overlapping subscriptions on one socket deliver each event once; unsubscribe stops exactly that subscription', { timeout: 15000 }, async () => {
    const v = await viewer(srv.url, '/pipeline', { pipeline_id: 'pipe-A' }, { pipeline_type: 'local_files' }, {});
    for (const a of v.acks) assert.equal(a.ok, true, JSON.stringify(a));
    const id1 = (await post(srv.url, { type: 'heartbeat', ...A })).id;
    await waitUntil(() => v.got.length > 0, T, 'first event');
    await v.sync();
    assert.deepEqual(v.got.map((g) => g.ev.id), [id1], 'one copy although three subscriptions match');

    // drop everything-subscription: still A (by id and by type)
    v.got.length = 0;
    await v.s.timeout(T).emitWithAck('unsubscribe', {});
    let { ids } = await post(srv.url, [{ type: 'heartbeat', ...A }, { type: 'heartbeat', ...G }, { type: 'heartbeat', ...B }]);
    await waitUntil(() => v.got.length >= 2, T, 'A and B events');
    await v.sync();
    assert.deepEqual(v.got.map((g) => g.ev.id), [ids[0], ids[2]], 'after unsubscribe {}: A (id) and B (type), not G');

    // drop the type: only A
    v.got.length = 0;
    await v.s.timeout(T).emitWithAck('unsubscribe', { pipeline_type: 'local_files' });
    ({ ids } = await post(srv.url, [{ type: 'heartbeat', ...A }, { type: 'heartbeat', ...B }]));
    await waitUntil(() => v.got.length >= 1, T, 'the A event');
    await v.sync();
    assert.deepEqual(v.got.map((g) => g.ev.id), [ids[0]]);

    // drop A: nothing
    v.got.length = 0;
    await v.s.timeout(T).emitWithAck('unsubscribe', { pipeline_id: 'pipe-A' });
    await post(srv.url, [{ type: 'heartbeat', ...A }, { type: 'heartbeat', ...B }]);
    await v.sync(); // the hub broadcasts before it acks the POST: the ping's answer comes after them
    assert.deepEqual(v.got, [], 'no events after the last unsubscribe');
  });

  it('subscribe is answered by its ack; then only `sync` (the first recovery offset) until the first event of the subscription', { timeout: 10000 }, async () => {
    // The issue: the ack carries the snapshot, "then events of that subscription arrive" (as
    // Socket.IO events named by their type). With connection-state recovery on (the default,
    // durable-store issue), the hub also emits `sync` {version} with that version as offset
    // right after the ack, so a viewer of a quiet pipeline can still recover (socket.io#4968).
    const v = await viewer(srv.url, '/pipeline', { pipeline_id: 'pipe-A' });
    await v.sync();
    assert.equal(v.syncs.length, 1, `expected one sync, got ${JSON.stringify(v.syncs)}`);
    const [payload, offset] = v.syncs[0];
    assert.equal(payload.version, v.ack.version);
    assert.equal(offset, String(v.ack.version));
    assert.deepEqual(v.got, []);
  });

  it('ping acks {time}; subscribe works without an ack callback too', { timeout: 10000 }, async () => {
    const v = await viewer(srv.url, '/local_files');
    const before = Date.now();
    const r = await v.sync();
    assert.equal(typeof r.time, 'number');
    assert.ok(Math.abs(r.time - before) < 5000);
    v.s.emit('subscribe', { pipeline_id: 'pipe-B' });
    await v.sync(); // the subscribe was handled before this ping
    const { id } = await post(srv.url, { type: 'heartbeat', ...B });
    await waitUntil(() => v.got.length > 0, T, 'event after an ack-less subscribe');
    assert.equal(v.got[0].ev.id, id);
  });
});

describe('legacy events (--legacy-events)', { skip: SKIP }, () => {
  const LEGACY = ['pipeline:status', 'pipeline:file_processing_started', 'pipeline:file_completed', 'pipeline:file_failed'];
  const run = (p) => [
    { type: 'pipeline:online', ...p },
    { type: 'file:processing', ...p, file: { id: 'l1', name: 'one' } },
    { type: 'file:progress', ...p, file: { id: 'l1', name: 'one', progress: 0.5 } },
    { type: 'file:completed', ...p, file: { id: 'l1', name: 'one' } },
    { type: 'file:processing', ...p, file: { id: 'l2', name: 'two' } },
    { type: 'file:failed', ...p, file: { id: 'l2', name: 'two', error: 'boom' } },
    { type: 'status:update', ...p, status: 'idle' },
    { type: 'heartbeat', ...p },
    { type: 'pipeline:offline', ...p },
  ];

  it('on: every viewer on /pipeline and / gets the legacy names without subscribing', { timeout: 15000 }, async () => {
    const srv = await hub(['--legacy-events']);
    const vp = await viewer(srv.url, '/pipeline');
    const vr = await viewer(srv.url, '/');
    const vs = await viewer(srv.url, '/pipeline', { pipeline_id: 'pipe-A' }); // also subscribed
    const evs = run(A);
    const { ids } = await post(srv.url, evs);
    const expected = [
      ['pipeline:status', ids[0], 'pipeline:online'],
      ['pipeline:file_processing_started', ids[1], 'file:processing'],
      ['pipeline:file_completed', ids[3], 'file:completed'],
      ['pipeline:file_processing_started', ids[4], 'file:processing'],
      ['pipeline:file_failed', ids[5], 'file:failed'],
      ['pipeline:status', ids[6], 'status:update'],
      ['pipeline:status', ids[8], 'pipeline:offline'],
    ];
    for (const [label, v] of Object.entries({ vp, vr, vs })) {
      await waitUntil(() => v.got.filter((g) => LEGACY.includes(g.name)).length >= expected.length, T, `${label}: legacy events`);
      await v.sync();
      const legacy = v.got.filter((g) => LEGACY.includes(g.name));
      assert.deepEqual(legacy.map((g) => [g.name, g.ev.id, g.ev.type]), expected, `${label}: legacy names, ids, types`);
      for (const g of legacy) {
        assert.equal(g.ev.pipeline_id, 'pipe-A');
        assert.deepEqual(Object.keys(g.ev).slice(0, 2), ['id', 'ts']);
      }
      assert.deepEqual(legacy.find((g) => g.name === 'pipeline:file_failed').ev.file.error, { message: 'boom' });
    }
    // the subscribed viewer also gets the new names
    assert.deepEqual(vs.got.filter((g) => !LEGACY.includes(g.name)).map((g) => g.ev.id), ids);
    // unsubscribed viewers get only the legacy names
    assert.deepEqual(vp.got.filter((g) => !LEGACY.includes(g.name)), []);
  });

  it('off (the default): no legacy names', { timeout: 15000 }, async () => {
    const srv = await hub();
    const vp = await viewer(srv.url, '/pipeline');
    const vr = await viewer(srv.url, '/');
    const vs = await viewer(srv.url, '/pipeline', {});
    const { ids } = await post(srv.url, run(B));
    await waitUntil(() => vs.got.some((g) => g.ev?.id === ids[ids.length - 1]), T, 'the traffic');
    await Promise.all([vp.sync(), vr.sync()]);
    assert.deepEqual(vp.got, []);
    assert.deepEqual(vr.got, []);
    assert.deepEqual(vs.got.filter((g) => LEGACY.includes(g.name)), []);
    assert.deepEqual(vs.got.map((g) => g.ev.id), ids);
  });
});

describe('the hub heartbeat', { skip: SKIP }, () => {
  it('every viewer on every namespace gets {source:"hub", server_time, version, pipelines, online, files_in_flight, connections} every --server-heartbeat', { timeout: 15000 }, async () => {
    const srv = await hub(['--server-heartbeat', '0.3']);
    await post(srv.url, [
      { type: 'pipeline:online', ...A },
      { type: 'file:processing', ...A, file: { id: 'h1', name: 'h' } },
      { type: 'pipeline:online', ...G },
      { type: 'pipeline:offline', ...G },
    ]);
    const V = {
      pipeline: await viewer(srv.url, '/pipeline'),
      root: await viewer(srv.url, '/'),
      local: await viewer(srv.url, '/local_files'),
      drive: await viewer(srv.url, '/google_drive'),
      subscribed: await viewer(srv.url, '/pipeline', { pipeline_id: 'nope' }),
    };
    const t0 = Date.now();
    await waitUntil(() => Object.values(V).every((v) => v.beats.length >= 3), 4000,
      () => `3 hub heartbeats at each viewer: ${JSON.stringify(Object.fromEntries(Object.entries(V).map(([k, v]) => [k, v.beats.length])))}`);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 2500, `3 heartbeats at 0.3 s took ${elapsed} ms`);
    for (const [k, v] of Object.entries(V)) {
      const b = v.beats[v.beats.length - 1];
      assert.equal(b.source, 'hub', k);
      assert.match(b.server_time, RFC3339, k);
      assert.equal(b.version, 4, k);
      assert.equal(b.pipelines, 2, k);
      assert.equal(b.online, 1, k);
      assert.equal(b.files_in_flight, 1, k);
      assert.equal(typeof b.connections, 'number', k);
      assert.ok(b.connections >= 1, k);
      assert.deepEqual(v.got, [], `${k}: nothing but the heartbeat`);
    }
  });
});
