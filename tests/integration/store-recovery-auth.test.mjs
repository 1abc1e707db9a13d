// Connection-state recovery refuses what it cannot vouch for: a forged pid, a pid whose window
// has passed (also across a restart), an offset from the future, malformed auth, an offset older
// than the history, a pid of another namespace, the pid of a session that is still connected.
// Each gets a normal fresh connection (`recovered` false, a new sid and pid) and none of the
// other session's events; the real owner can still recover afterwards where the attempt did not
// touch the saved session. `ragpulse serve` with a SQLite store, stock socket.io-client 4.8.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, startSuiteServer, track, waitUntil, sleep } from './helpers.mjs';
import { postEvents as post } from './hub-helpers.mjs';

const T = 5000;
const tmpDirs = [];
function tmpDb() {
  const d = mkdtempSync(path.join(os.tmpdir(), 'rp-store-auth-'));
  tmpDirs.push(d);
  return `sqlite:${path.join(d, 'x.db')}`;
}

let seq = 0;
const beat = (pid) => ({ type: 'heartbeat', pipeline_id: pid, pipeline_type: 'local_files', message: `m${seq++}` });

function viewer(url, opts = {}) {
  const s = track(io(url, {
    forceNew: true, reconnection: false, timeout: 3000, transports: ['websocket'], ...opts,
  }));
  const log = { events: [], connects: 0 };
  s.onAny((name, ...args) => {
    if ((name === 'heartbeat' || name === 'hub:heartbeat') && args[0]?.source === 'hub') return;
    log.events.push({ name, ev: args[0], args, phase: log.connects });
  });
  s.on('connect', () => { log.connects++; });
  return { s, log, pipelineEvents: () => log.events.filter((e) => e.name !== 'sync' && e.name !== 'snapshot') };
}

/**
 * Stands in for watching a client for stray events: a replay is written before the CONNECT
 * reply, and a ping's answer follows everything the hub sent before it.
 */
async function quiet(v) {
  await v.s.timeout(T).emitWithAck('ping', {});
}

async function connected(v, ms = T) {
  await waitUntil(() => v.s.connected, ms, 'socket to connect');
}

/** A viewer subscribed to `pipelineId` that saw some events, then lost its connection; events
 * it missed are produced after the drop. Returns its pid, last offset, sid and the missed ids. */
async function droppedSession(base, pipelineId, nsp = '/pipeline') {
  const v = viewer(base + nsp);
  await connected(v);
  const ack = await v.s.timeout(T).emitWithAck('subscribe', { pipeline_id: pipelineId });
  assert.equal(ack.ok, true);
  for (let i = 0; i < 2; i++) await post(base, beat(pipelineId));
  await waitUntil(() => v.pipelineEvents().length === 2, T, 'the first events');
  const { _pid: pid, _lastOffset: offset, id: sid } = v.s;
  assert.equal(offset, String(v.pipelineEvents()[1].ev.id));
  const sessions = async () => (await (await fetch(`${base}/health`)).json()).sessions.websocket;
  const open = await sessions();
  v.s.io.engine.transport.ws._socket.destroy();
  await waitUntil(() => !v.s.connected, T, 'the drop');
  await waitUntil(async () => (await sessions()) < open, T, 'the server to see the close');
  const missed = [];
  for (let i = 0; i < 3; i++) missed.push((await post(base, beat(pipelineId))).id);
  return { v, pid, offset, sid, missed };
}

/** A fresh client presenting `auth`: must be a normal new session that gets nothing. */
async function assertRefused(url, auth, foreign, label) {
  const w = viewer(url, { auth });
  await connected(w);
  await quiet(w);
  assert.ok(!w.s.recovered, `${label}: recovered must be false`);
  assert.match(w.s._pid ?? '', /^[A-Za-z0-9_-]{20}$/, `${label}: a fresh pid`);
  if (foreign) {
    assert.notEqual(w.s._pid, foreign.pid, `${label}: not the other session's pid`);
    assert.notEqual(w.s.id, foreign.sid, `${label}: not the other session's sid`);
  }
  assert.deepEqual(w.pipelineEvents().map((e) => e.ev.id), [], `${label}: none of another session's events`);
  w.s.disconnect();
  return w;
}

/** The owner comes back (socket.io-client sends its pid and last offset): recovered, missed once. */
async function assertOwnerRecovers(d, label) {
  const before = d.v.pipelineEvents().length;
  d.v.s.connect();
  await connected(d.v);
  assert.equal(d.v.s.recovered, true, `${label}: the owner still recovers`);
  assert.equal(d.v.s.id, d.sid);
  await d.v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
  assert.deepEqual(d.v.pipelineEvents().slice(before).map((e) => e.ev.id), d.missed, `${label}: the missed events once`);
}

after(() => { for (const d of tmpDirs) rmSync(d, { recursive: true, force: true }); });

describe('recovery refuses bad auth (SQLite store)', () => {
  let srv;
  before(async () => { srv = await startSuiteServer(['--store', tmpDb(), '--history', '50'], { product: true }); });
  after(async () => { await srv.stop(); });

  it('forged pid (well-formed, unknown) with a valid offset', { timeout: 10000 }, async () => {
    const d = await droppedSession(srv.url, 'auth-forged');
    const forged = d.pid.slice(0, 19) + (d.pid[19] === 'A' ? 'B' : 'A');
    await assertRefused(`${srv.url}/pipeline`, { pid: forged, offset: d.offset }, d, 'forged pid');
    await assertRefused(`${srv.url}/pipeline`, { pid: 'A'.repeat(20), offset: '0' }, d, 'pid AAAA…, offset 0');
    await assertOwnerRecovers(d, 'after forged attempts');
  });

  it('malformed auth: short/long pid, numeric offset, no offset, non-string pid', { timeout: 10000 }, async () => {
    const d = await droppedSession(srv.url, 'auth-malformed');
    const url = `${srv.url}/pipeline`;
    await assertRefused(url, { pid: d.pid.slice(0, 19), offset: d.offset }, d, 'pid of 19 chars');
    await assertRefused(url, { pid: `${d.pid}x`, offset: d.offset }, d, 'pid of 21 chars');
    await assertRefused(url, { pid: d.pid, offset: Number(d.offset) }, d, 'numeric offset');
    await assertRefused(url, { pid: d.pid }, d, 'no offset');
    await assertRefused(url, { pid: [d.pid], offset: d.offset }, d, 'pid in an array');
    await assertOwnerRecovers(d, 'after malformed attempts');
  });

  it('pid from another namespace', { timeout: 10000 }, async () => {
    const d = await droppedSession(srv.url, 'auth-nsp');
    for (const nsp of ['/', '/local_files', '/google_drive']) {
      await assertRefused(srv.url + nsp, { pid: d.pid, offset: d.offset }, d, `pid of /pipeline on ${nsp}`);
    }
    await assertOwnerRecovers(d, 'after other-namespace attempts');
  });

  it('offset from the future (patched _lastOffset before the reconnect)', { timeout: 10000 }, async () => {
    const d = await droppedSession(srv.url, 'auth-future');
    const version = (await (await fetch(`${srv.url}/health`)).json()).version;
    d.v.s._lastOffset = String(version + 1000);
    const before = d.v.pipelineEvents().length;
    d.v.s.connect();
    await connected(d.v);
    await quiet(d.v);
    assert.ok(!d.v.s.recovered, 'an offset the server never gave is not recovered');
    assert.notEqual(d.v.s.id, d.sid, 'a new sid');
    assert.notEqual(d.v.s._pid, d.pid, 'a new pid');
    assert.deepEqual(d.v.pipelineEvents().slice(before), [], 'no events (the old rooms are not restored)');
    // Rooms are gone: the next event of the pipeline does not reach it.
    await post(srv.url, beat('auth-future'));
    await d.v.s.timeout(T).emitWithAck('ping', {}); // barrier: the hub broadcasts before it acks the POST
    assert.deepEqual(d.v.pipelineEvents().slice(before), []);
  });

  it('offset that is not a number, or negative', { timeout: 10000 }, async () => {
    for (const offset of ['abc', '-1', '1e3', '']) {
      const d = await droppedSession(srv.url, `auth-nan-${offset.length}`);
      await assertRefused(`${srv.url}/pipeline`, { pid: d.pid, offset }, d, `offset ${JSON.stringify(offset)}`);
    }
  });

  it('offset older than the history (--history 50): a fresh session, no partial replay', { timeout: 15000 }, async () => {
    const d = await droppedSession(srv.url, 'auth-old');
    await post(srv.url, Array.from({ length: 60 }, () => beat('auth-other')));
    const before = d.v.pipelineEvents().length;
    d.v.s.connect();
    await connected(d.v);
    await quiet(d.v);
    assert.ok(!d.v.s.recovered, 'cannot tell what was missed: not recovered');
    assert.deepEqual(d.v.pipelineEvents().slice(before), [], 'no partial replay');
  });

  it('pid of a session that is still connected', { timeout: 10000 }, async () => {
    const z = viewer(`${srv.url}/pipeline`);
    await connected(z);
    await z.s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'auth-live' });
    await post(srv.url, beat('auth-live'));
    await waitUntil(() => z.pipelineEvents().length === 1, T, 'an event');
    const live = { pid: z.s._pid, sid: z.s.id };
    const w = await assertRefused(`${srv.url}/pipeline`, { pid: live.pid, offset: '0' }, live, 'pid of a live session');
    const id = (await post(srv.url, beat('auth-live'))).id;
    await waitUntil(() => z.pipelineEvents().length === 2, T, 'the owner to get the next event');
    assert.equal(z.s.connected, true);
    assert.equal(z.s.id, live.sid, 'the live session is untouched');
    assert.equal(z.pipelineEvents()[1].ev.id, id);
    assert.deepEqual(w.pipelineEvents(), []);
  });
});

describe('recovery window', () => {
  it('expired pid (--recovery-window 1, 1.5 s later): fresh session, no events', { timeout: 10000 }, async () => {
    const srv = await startServer(['--store', tmpDb(), '--recovery-window', '1'], { product: true });
    const d = await droppedSession(srv.url, 'win-expired');
    await sleep(1500); // time is the test: past the 1 s recovery window
    const before = d.v.pipelineEvents().length;
    d.v.s.connect();
    await connected(d.v);
    await quiet(d.v);
    assert.ok(!d.v.s.recovered, 'expired: not recovered');
    assert.notEqual(d.v.s.id, d.sid);
    assert.deepEqual(d.v.pipelineEvents().slice(before), []);
  });

  it('within the window (--recovery-window 1, 0.3 s later): recovered', { timeout: 10000 }, async () => {
    const srv = await startServer(['--store', tmpDb(), '--recovery-window', '1'], { product: true });
    const d = await droppedSession(srv.url, 'win-ok');
    await sleep(300); // time is the test: well within the 1 s window
    await assertOwnerRecovers(d, 'within the window');
  });

  it('expired across a kill -9 and restart (--recovery-window 1)', { timeout: 15000 }, async () => {
    const store = tmpDb();
    const srv1 = await startServer(['--store', store, '--recovery-window', '1'], { product: true });
    const v = viewer(`${srv1.url}/pipeline`);
    await connected(v);
    await v.s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'win-restart' });
    await post(srv1.url, beat('win-restart'));
    await waitUntil(() => v.pipelineEvents().length === 1, T, 'an event');
    const sid = v.s.id;
    await srv1.stop('SIGKILL');
    await waitUntil(() => !v.s.connected, T, 'the drop');
    const srv2 = await startServer(['--listen', `127.0.0.1:${srv1.port}`, '--store', store, '--recovery-window', '1'],
      { product: true });
    await post(srv2.url, beat('win-restart'));
    await sleep(1500); // time is the test: past the 1 s recovery window
    v.s.connect();
    await connected(v);
    await quiet(v);
    assert.ok(!v.s.recovered, 'expired after the restart: not recovered');
    assert.notEqual(v.s.id, sid);
    assert.equal(v.pipelineEvents().length, 1, 'nothing from the old session');
  });
});
