// Connection-state recovery with a stock socket.io-client 4.8 against `ragpulse serve` with a
// SQLite store: a viewer whose connection drops mid-stream (websocket socket destroyed, or the
// polling requests cut by a loopback proxy) reconnects on its own and gets every event exactly
// once, in order, with `socket.recovered === true`, the same sid and pid; the same after
// `kill -9` of the server and a restart on the same port and store. Also: the offset rides on
// every broadcast as a last string argument, `sync {version}` follows a subscribe ack,
// --no-recovery turns all of it off, and a deliberate disconnect keeps no session.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, tcpProxy, track, waitUntil, withTimeout, sleep } from './helpers.mjs';
import { postEvents as post, sqlite3Cli as sqliteCli } from './hub-helpers.mjs';

const T = 5000;
const tmpDirs = [];
function tmpDb() {
  const d = mkdtempSync(path.join(os.tmpdir(), 'rp-store-rec-'));
  tmpDirs.push(d);
  return `sqlite:${path.join(d, 'x.db')}`;
}
after(() => { for (const d of tmpDirs) rmSync(d, { recursive: true, force: true }); });

// ---- helpers --------------------------------------------------------------------------------

/** The i-th event of a small scripted pipeline (online, then files: processing/progress/completed). */
function scripted(pid, i, type = 'local_files') {
  if (i === 0) return { type: 'pipeline:online', pipeline_id: pid, pipeline_type: type };
  const n = Math.floor((i - 1) / 3);
  const file = { id: `f${n}`, name: `doc-${n}.pdf` };
  switch ((i - 1) % 3) {
    case 0: return { type: 'file:processing', pipeline_id: pid, pipeline_type: type, file: { ...file, hash: `h${n}` } };
    case 1: return { type: 'file:progress', pipeline_id: pid, pipeline_type: type, file: { ...file, progress: 0.5 } };
    default: return { type: 'file:completed', pipeline_id: pid, pipeline_type: type, file: { ...file, chunks: 3 } };
  }
}

/**
 * A stock socket.io-client viewer with automatic reconnection that records every event it gets
 * (hub heartbeats aside), each with the number of `connect`s seen so far and whether it arrived
 * between a disconnect and the next `connect` (viaRecovery).
 */
function viewer(url, opts = {}) {
  const s = track(io(url, {
    forceNew: true, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200,
    randomizationFactor: 0, timeout: 3000, transports: ['websocket'], ...opts,
  }));
  const log = { events: [], connects: 0, disconnects: [], recoveredAt: [], sids: [], pids: [] };
  s.onAny((name, ...args) => {
    if ((name === 'heartbeat' || name === 'hub:heartbeat') && args[0]?.source === 'hub') return;
    // viaRecovery: between a disconnect and the next `connect`, which only the events a
    // recovery writes before its CONNECT reply can be (the client emits them just before `connect`).
    const viaRecovery = log.connects > 0 && log.disconnects.length >= log.connects;
    log.events.push({ name, ev: args[0], args, phase: log.connects, viaRecovery });
  });
  s.on('connect', () => {
    log.connects++;
    log.recoveredAt.push(s.recovered);
    log.sids.push(s.id);
    log.pids.push(s._pid);
  });
  s.on('disconnect', (reason) => log.disconnects.push(reason));
  // sync follows each snapshot; connecting to a type namespace sends a snapshot event first.
  const pipelineEvents = () => log.events.filter((e) => e.name !== 'sync' && e.name !== 'snapshot');
  return { s, log, pipelineEvents };
}

async function connected(v, ms = T) {
  await waitUntil(() => v.s.connected, ms, 'viewer to connect');
}

async function subscribe(v, filter) {
  const ack = await v.s.timeout(T).emitWithAck('subscribe', filter);
  assert.equal(ack.ok, true, JSON.stringify(ack));
  await waitUntil(() => v.log.events.some((e) => e.name === 'sync'), T, '"sync" after the subscribe ack');
  const sync = v.log.events.find((e) => e.name === 'sync');
  assert.deepEqual(sync.ev, { version: ack.version }, 'sync carries the version of the snapshot');
  assert.equal(sync.args.length, 2, 'sync has the offset as a second argument');
  assert.equal(sync.args[1], String(ack.version), 'the sync offset is that version, as a string');
  return ack;
}

/** Every pipeline event exactly once, in the order of `expected` ids, each with its offset. */
function assertExactlyOnce(v, expected, label) {
  const got = v.pipelineEvents();
  const ids = got.map((e) => e.ev.id);
  const dups = ids.filter((id, i) => ids.indexOf(id) !== i);
  assert.deepEqual(dups, [], `${label}: duplicated events`);
  assert.deepEqual(ids, expected, `${label}: events in order, none missing`);
  for (const e of got) {
    assert.equal(e.args.length, 2, `${label}: event ${e.ev.id} has [event, offset]`);
    assert.equal(e.args[1], String(e.ev.id), `${label}: the offset of event ${e.ev.id} is its id as a string`);
    assert.equal(e.name, e.ev.type, `${label}: Socket.IO event name is the event type`);
  }
}

function destroyWs(s) {
  const t = s.io.engine.transport;
  assert.equal(t.name, 'websocket');
  t.ws._socket.destroy();
}

/** Emits events of `pid` from a producer socket one after another (each acked) until stopped. */
function socketProducer(producer, pid, { from = 0, count, gapMs = 3 }) {
  const acked = [];
  let i = from;
  let stop = false;
  const done = (async () => {
    while (!stop && i < from + count) {
      const ev = scripted(pid, i++);
      const ack = await producer.timeout(T).emitWithAck(ev.type, ev);
      assert.equal(typeof ack.id, 'number', `producer ack: ${JSON.stringify(ack)}`);
      acked.push(ack.id);
      if (gapMs) await sleep(gapMs); // time is the test: a producer at a steady pace
    }
  })();
  return { acked, done, stop() { stop = true; } };
}

// ---- tests ----------------------------------------------------------------------------------

describe('recovery after a dropped connection (SQLite store)', () => {
  it('websocket destroyed mid-stream: every event once, in order, recovered, same sid and pid', { timeout: 15000 }, async () => {
    const srv = await startServer(['--store', tmpDb()], { product: true });
    const v = viewer(`${srv.url}/pipeline`);
    await connected(v);
    assert.equal(v.s.recovered, false, 'a first connection is not a recovery');
    assert.match(v.s._pid, /^[A-Za-z0-9_-]{20}$/, 'the CONNECT reply carries a pid');
    await subscribe(v, { pipeline_id: 'rec-ws' });
    const sid0 = v.s.id;
    const pid0 = v.s._pid;

    const producer = track(io(`${srv.url}/pipeline`, { forceNew: true, reconnection: false, transports: ['websocket'] }));
    await withTimeout(new Promise((r) => producer.once('connect', r)), T, 'producer connect');
    const prod = socketProducer(producer, 'rec-ws', { count: 60, gapMs: 4 });
    await waitUntil(() => v.pipelineEvents().length >= 15, T, 'viewer to get 15 events');
    destroyWs(v.s);
    await prod.done;
    await waitUntil(() => v.pipelineEvents().length >= 60 && v.s.connected, T,
      () => `viewer to have 60 events, has ${v.pipelineEvents().length}, connected ${v.s.connected}`);
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)

    assert.equal(prod.acked.length, 60);
    assertExactlyOnce(v, prod.acked, 'websocket drop');
    assert.deepEqual(v.log.disconnects, ['transport close']);
    assert.equal(v.log.connects, 2);
    assert.equal(v.s.recovered, true, 'socket.recovered after the reconnect');
    assert.equal(v.s.id, sid0, 'the same sid after recovery');
    assert.equal(v.s._pid, pid0, 'the same pid after recovery');
    const missed = v.pipelineEvents().filter((e) => e.viaRecovery);
    assert.ok(missed.length > 0, 'the drop happened mid-stream: some events came through the recovery, before `connect`');
  });

  it('kill -9 of the server and a restart on the same port and store: recovered, nothing lost or doubled', { timeout: 20000 }, async () => {
    const store = tmpDb();
    const dbFile = store.slice('sqlite:'.length);
    const srv1 = await startServer(['--store', store], { product: true });
    // The viewer goes through a proxy, so that it stays away until the events made after the
    // restart are in (otherwise it may come back first and get them live).
    const proxy = await tcpProxy(srv1.port);
    const v = viewer(`${proxy.url}/pipeline`);
    await connected(v);
    await subscribe(v, { pipeline_id: 'rec-kill' });
    const sid0 = v.s.id;
    const pid0 = v.s._pid;
    const acked = [];
    for (let i = 0; i < 10; i++) acked.push((await post(srv1.url, scripted('rec-kill', i))).id);
    await waitUntil(() => v.pipelineEvents().length === 10, T, 'viewer to get the first 10 events');
    // Mid-stream: a batch in flight when the server dies (acked or not; what of it is stored
    // must reach the viewer, what is not must not).
    const inflight = fetch(`${srv1.url}/api/events`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify([10, 11, 12].map((i) => scripted('rec-kill', i))),
    }).then(async (r) => (r.status === 200 ? (await r.json()).ids : null)).catch(() => null);
    await srv1.stop('SIGKILL');
    proxy.hold(); // after the kill: the server must not see the viewer go (it was connected)
    const lateAck = await inflight;
    if (lateAck) acked.push(...lateAck);
    // The session is in the file: pid, namespace, sid, rooms (expires 0: it was connected).
    const row = await sqliteCli(dbFile, `SELECT pid, nsp, sid, rooms, expires FROM sessions WHERE pid = '${pid0}'`);
    assert.equal(row, `${pid0}|/pipeline|${sid0}|["pipeline:rec-kill"]|0`);

    const srv2 = await startServer(['--listen', `127.0.0.1:${srv1.port}`, '--store', store], { product: true });
    assert.equal(srv2.port, srv1.port);
    // Produce while the viewer is held away, then let it back.
    const more = await post(srv2.url, [13, 14, 15, 16, 17].map((i) => scripted('rec-kill', i)));
    acked.push(...more.ids);
    proxy.release();
    await connected(v, 8000);
    for (let i = 18; i < 25; i++) acked.push((await post(srv2.url, scripted('rec-kill', i))).id);

    const log = await (await fetch(`${srv2.url}/api/events?pipeline=rec-kill&limit=1000`)).json();
    const stored = log.events.map((e) => e.id).reverse();
    for (const id of acked) assert.ok(stored.includes(id), `acked event ${id} is in the log`);
    await waitUntil(() => v.pipelineEvents().length >= stored.length, T,
      () => `viewer to have ${stored.length} events, has ${v.pipelineEvents().length}`);
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assertExactlyOnce(v, stored, 'kill -9 and restart');
    assert.equal(v.s.recovered, true, 'socket.recovered after the restart');
    assert.equal(v.s.id, sid0, 'the same sid after the restart');
    assert.equal(v.s._pid, pid0, 'the same pid after the restart');
    assert.ok(v.log.disconnects.length >= 1 && ['transport close', 'transport error'].includes(v.log.disconnects[0]),
      `disconnect reason: ${v.log.disconnects}`);
    assert.ok(v.pipelineEvents().some((e) => e.viaRecovery && e.ev.id >= more.ids[0]),
      'events made while the viewer was away came through the recovery, before `connect`');
  });

  it('polling only: a cut connection is recovered with every event once, in order', { timeout: 15000 }, async () => {
    const srv = await startServer(['--store', tmpDb(), '--ping-interval', '400', '--ping-timeout', '300'], { product: true });
    const proxy = await tcpProxy(srv.port);
    const v = viewer(`${proxy.url}/pipeline`, { transports: ['polling'] });
    await connected(v);
    assert.equal(v.s.io.engine.transport.name, 'polling');
    await subscribe(v, { pipeline_id: 'rec-poll' });
    const sid0 = v.s.id;
    const acked = [];
    for (let i = 0; i < 8; i++) acked.push((await post(srv.url, scripted('rec-poll', i))).id);
    await waitUntil(() => v.pipelineEvents().length === 8, T, 'viewer to get 8 events');
    proxy.cut(800); // long enough for the server to notice (closed poll or ping timeout)
    await waitUntil(() => !v.s.connected, T, 'viewer to notice the cut');
    for (let i = 8; i < 20; i++) acked.push((await post(srv.url, scripted('rec-poll', i))).id);
    await connected(v, 8000);
    for (let i = 20; i < 24; i++) acked.push((await post(srv.url, scripted('rec-poll', i))).id);
    await waitUntil(() => v.pipelineEvents().length >= 24, T,
      () => `viewer to have 24 events, has ${v.pipelineEvents().length}`);
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assertExactlyOnce(v, acked, 'polling cut');
    assert.equal(v.s.recovered, true, 'socket.recovered over polling');
    assert.equal(v.s.id, sid0);
    assert.equal(v.s.io.engine.transport.name, 'polling');
  });

  it('polling only: kill -9 and restart on the same port and store', { timeout: 20000 }, async () => {
    const store = tmpDb();
    const srv1 = await startServer(['--store', store], { product: true });
    const v = viewer(`${srv1.url}/pipeline`, { transports: ['polling'] });
    await connected(v);
    await subscribe(v, { pipeline_id: 'rec-poll-kill' });
    const sid0 = v.s.id;
    const acked = [];
    for (let i = 0; i < 6; i++) acked.push((await post(srv1.url, scripted('rec-poll-kill', i))).id);
    await waitUntil(() => v.pipelineEvents().length === 6, T, 'viewer to get 6 events');
    await srv1.stop('SIGKILL');
    const srv2 = await startServer(['--listen', `127.0.0.1:${srv1.port}`, '--store', store], { product: true });
    acked.push(...(await post(srv2.url, [6, 7, 8, 9].map((i) => scripted('rec-poll-kill', i)))).ids);
    await connected(v, 8000);
    acked.push((await post(srv2.url, scripted('rec-poll-kill', 10))).id);
    await waitUntil(() => v.pipelineEvents().length >= 11, T,
      () => `viewer to have 11 events, has ${v.pipelineEvents().length}`);
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assertExactlyOnce(v, acked, 'polling, kill -9');
    assert.equal(v.s.recovered, true);
    assert.equal(v.s.id, sid0);
  });

  it('recovery on a type namespace and on /, with rooms restored', { timeout: 15000 }, async () => {
    const srv = await startServer(['--store', tmpDb()], { product: true });
    const vt = viewer(`${srv.url}/local_files`);
    const vr = viewer(`${srv.url}/`);
    await connected(vt);
    await connected(vr);
    await subscribe(vt, {}); // the whole type namespace ("all")
    await subscribe(vr, { pipeline_type: 'google_drive' });
    const lf = [];
    const gd = [];
    const emit = async (url, ev, into) => into.push((await post(url, ev)).id);
    for (let i = 0; i < 4; i++) {
      await emit(srv.url, scripted('ns-lf', i, 'local_files'), lf);
      await emit(srv.url, scripted('ns-gd', i, 'google_drive'), gd);
    }
    await waitUntil(() => vt.pipelineEvents().length === 4 && vr.pipelineEvents().length === 4, T, 'first events');
    destroyWs(vt.s);
    destroyWs(vr.s);
    await waitUntil(() => !vt.s.connected && !vr.s.connected, T, 'both to notice the drop');
    for (let i = 4; i < 10; i++) {
      await emit(srv.url, scripted('ns-lf', i, 'local_files'), lf);
      await emit(srv.url, scripted('ns-gd', i, 'google_drive'), gd);
    }
    await connected(vt);
    await connected(vr);
    await waitUntil(() => vt.pipelineEvents().length >= 10 && vr.pipelineEvents().length >= 10, T,
      () => `10 events each, have ${vt.pipelineEvents().length} and ${vr.pipelineEvents().length}`);
    for (const w of [vt, vr]) await w.s.timeout(T).emitWithAck('ping', {}); // barrier (see above)
    assertExactlyOnce(vt, lf, '/local_files');
    assertExactlyOnce(vr, gd, '/ type:google_drive');
    assert.equal(vt.s.recovered, true);
    assert.equal(vr.s.recovered, true);
  });

  it('a viewer that saw no event yet recovers from the offset of its sync', { timeout: 10000 }, async () => {
    const srv = await startServer(['--store', tmpDb()], { product: true });
    await post(srv.url, scripted('other', 0));
    const v = viewer(`${srv.url}/pipeline`, { reconnectionDelay: 300, reconnectionDelayMax: 300 });
    await connected(v);
    const ack = await subscribe(v, { pipeline_id: 'rec-empty' });
    assert.equal(v.s._lastOffset, String(ack.version), 'the client keeps the sync offset');
    destroyWs(v.s);
    await waitUntil(() => !v.s.connected, T, 'the drop');
    const { ids } = await post(srv.url, [0, 1, 2].map((i) => scripted('rec-empty', i)));
    await connected(v);
    await waitUntil(() => v.pipelineEvents().length >= 3, T, 'the missed events');
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assertExactlyOnce(v, ids, 'no event before the drop');
    assert.equal(v.s.recovered, true);
    assert.ok(v.pipelineEvents().every((e) => e.viaRecovery), 'all three came through the recovery');
  });

  it('rooms as last recorded survive kill -9 (a subscribe and an unsubscribe after connecting)', { timeout: 15000 }, async () => {
    const store = tmpDb();
    const srv1 = await startServer(['--store', store], { product: true });
    const v = viewer(`${srv1.url}/pipeline`);
    await connected(v);
    await subscribe(v, { pipeline_id: 'rooms-a' });
    assert.equal((await v.s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'rooms-b' })).ok, true);
    assert.equal((await v.s.timeout(T).emitWithAck('subscribe', { pipeline_type: 'google_drive' })).ok, true);
    assert.equal((await v.s.timeout(T).emitWithAck('unsubscribe', { pipeline_id: 'rooms-b' })).ok, true);
    const a0 = (await post(srv1.url, scripted('rooms-a', 0))).id; // committed after the room writes
    await waitUntil(() => v.pipelineEvents().length === 1, T, 'the first event');
    await srv1.stop('SIGKILL');
    const srv2 = await startServer(['--listen', `127.0.0.1:${srv1.port}`, '--store', store], { product: true });
    const a = await post(srv2.url, [1, 2].map((i) => scripted('rooms-a', i)));
    await post(srv2.url, [0, 1].map((i) => scripted('rooms-b', i)));
    const g = await post(srv2.url, [0, 1].map((i) => scripted('rooms-g', i, 'google_drive')));
    await connected(v, 8000);
    await waitUntil(() => v.pipelineEvents().length >= 5, T, () => `5 events, have ${v.pipelineEvents().length}`);
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assert.equal(v.s.recovered, true);
    assertExactlyOnce(v, [a0, ...a.ids, ...g.ids], 'rooms after restart');
    assert.ok(!v.pipelineEvents().some((e) => e.ev.pipeline_id === 'rooms-b'), 'nothing from the room it left');
  });
});

describe('recovery switches', () => {
  it('--no-recovery: no pid, no offsets, no sync, a reconnect is a fresh session', { timeout: 10000 }, async () => {
    const srv = await startServer(['--store', tmpDb(), '--no-recovery'], { product: true });
    const v = viewer(`${srv.url}/pipeline`);
    await connected(v);
    assert.equal(v.s._pid, undefined, 'no pid in the CONNECT reply');
    const ack = await v.s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'norec' });
    assert.equal(ack.ok, true);
    const id = (await post(srv.url, scripted('norec', 0))).id;
    await waitUntil(() => v.log.events.length >= 1, T, 'an event');
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assert.deepEqual(v.log.events.map((e) => e.name), ['pipeline:online'], 'no sync without recovery');
    assert.equal(v.log.events[0].args.length, 1, 'no offset argument without recovery');
    assert.equal(v.log.events[0].ev.id, id);
    const sid0 = v.s.id;
    destroyWs(v.s);
    await waitUntil(() => v.log.connects === 2, T, 'reconnect');
    assert.ok(!v.s.recovered, 'not recovered (the client leaves it undefined without a pid)');
    assert.notEqual(v.s.id, sid0);
  });

  it('a deliberate disconnect keeps no session', { timeout: 10000 }, async () => {
    const srv = await startServer(['--store', tmpDb()], { product: true });
    const v = viewer(`${srv.url}/pipeline`);
    await connected(v);
    await subscribe(v, { pipeline_id: 'bye' });
    await post(srv.url, scripted('bye', 0));
    await waitUntil(() => v.pipelineEvents().length === 1, T, 'an event');
    const { _pid: pid, _lastOffset: offset } = v.s;
    const sessions = async () => (await (await fetch(`${srv.url}/health`)).json()).sessions.websocket;
    const open = await sessions();
    v.s.disconnect(); // client namespace disconnect
    await waitUntil(async () => (await sessions()) < open, T, 'the server to see the disconnect');
    await post(srv.url, scripted('bye', 1));
    const w = viewer(`${srv.url}/pipeline`, { auth: { pid, offset }, reconnection: false });
    await connected(w); // recovered or not is decided by the CONNECT reply
    assert.equal(w.s.recovered, false, 'no recovery after a deliberate disconnect');
    assert.notEqual(w.s._pid, pid);
    assert.deepEqual(w.pipelineEvents(), [], 'none of the old session\'s events');
  });
});
