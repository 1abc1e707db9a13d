// Connecting to a type namespace is subscribing to that type (issue 14, item 2): the documents'
// client `io("ws://localhost:8004/google_drive")` listens and never sends `subscribe`. It gets the
// current state as a first `snapshot` event, then that type's events (not the other type's);
// `unsubscribe {}` leaves the automatic subscription and `subscribe {pipeline_id}` narrows it.
// With a token for some pipelines, only those. A reconnect that recovers keeps its rooms and
// gets no second snapshot.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { BUILD_DIR, startServer, track, waitUntil } from './helpers.mjs';
import { T, postEvents } from './hub-helpers.mjs';

const ev = (type, pipeline, ptype, extra = {}) => ({ type, pipeline_id: pipeline, pipeline_type: ptype, ...extra });

/** The documents' listener: connect to the namespace, record everything (hub heartbeats aside). */
function listener(url, opts = {}) {
  const s = track(io(url, { forceNew: true, transports: ['websocket'], ...opts }));
  const got = [];
  s.onAny((name, data) => {
    if ((name === 'heartbeat' || name === 'hub:heartbeat') && data?.source === 'hub') return;
    got.push({ name, data });
  });
  return { s, got, names: () => got.map((g) => g.name) };
}

describe('a listener on a type namespace, without subscribe', () => {
  it('gets the state first, then its type\'s events only', { timeout: 20000 }, async () => {
    const srv = await startServer(['--store', 'memory'], { product: true });
    await postEvents(srv.url, [
      ev('pipeline:online', 'gdrive-prod-001', 'google_drive'),
      ev('file:processing', 'gdrive-prod-001', 'google_drive', { file: { id: 'd1', name: 'Plan.gdoc' } }),
      ev('pipeline:online', 'local-1', 'local_files'),
    ]);
    const l = listener(`${srv.url}/google_drive`);
    await waitUntil(() => l.names().includes('snapshot'), T, 'the snapshot event');
    const first = l.got.find((g) => g.name !== 'sync');
    assert.equal(first.name, 'snapshot', `the state comes first: ${l.names()}`);
    assert.equal(first.data.ok, true);
    assert.equal(first.data.room, 'type:google_drive');
    assert.equal(first.data.version, 3);
    assert.deepEqual(first.data.pipelines.map((p) => p.id), ['gdrive-prod-001'], 'only this namespace\'s type');
    assert.equal(first.data.pipelines[0].counters.in_flight, 1);
    const sync = l.got.find((g) => g.name === 'sync');
    assert.deepEqual(sync?.data, { version: 3 }, 'sync after the snapshot (recovery is on)');

    await postEvents(srv.url, [
      ev('file:completed', 'local-1', 'local_files', { file: { id: 'x', name: 'x' } }),
      ev('file:completed', 'gdrive-prod-001', 'google_drive', { file: { id: 'd1', name: 'Plan.gdoc' } }),
    ]);
    await waitUntil(() => l.names().includes('file:completed'), T, 'the google_drive event');
    await l.s.timeout(T).emitWithAck('ping', {}); // barrier: anything sent before it has arrived
    const events = l.got.filter((g) => g.name.startsWith('file:'));
    assert.deepEqual(events.map((g) => [g.name, g.data.pipeline_id]), [['file:completed', 'gdrive-prod-001']],
      'the local_files event is not on /google_drive');
  });

  it('unsubscribe {} leaves the automatic subscription; subscribe {pipeline_id} narrows it', { timeout: 20000 }, async () => {
    const srv = await startServer(['--store', 'memory'], { product: true });
    const l = listener(`${srv.url}/local_files`);
    await waitUntil(() => l.names().includes('snapshot'), T, 'the snapshot event');
    assert.deepEqual(await l.s.timeout(T).emitWithAck('unsubscribe', {}), { ok: true, room: 'all' });
    const ack = await l.s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'wanted' });
    assert.equal(ack.ok, true);
    assert.equal(ack.room, 'pipeline:wanted');
    await postEvents(srv.url, [
      ev('pipeline:online', 'other', 'local_files'),
      ev('pipeline:online', 'wanted', 'local_files'),
    ]);
    await waitUntil(() => l.names().includes('pipeline:online'), T, 'the wanted pipeline\'s event');
    await l.s.timeout(T).emitWithAck('ping', {}); // barrier
    assert.deepEqual(l.got.filter((g) => g.name === 'pipeline:online').map((g) => g.data.pipeline_id), ['wanted']);
  });

  it('a recovered reconnect keeps its subscription and gets no second snapshot', { timeout: 20000 }, async () => {
    const srv = await startServer(['--store', 'memory'], { product: true });
    const l = listener(`${srv.url}/local_files`, { reconnectionDelay: 50, reconnectionDelayMax: 50 });
    await waitUntil(() => l.names().includes('sync'), T, 'snapshot and sync');
    await postEvents(srv.url, [ev('pipeline:online', 'p1', 'local_files')]);
    await waitUntil(() => l.names().includes('pipeline:online'), T, 'a first event (it carries an offset)');
    l.s.io.engine.transport.ws._socket.destroy();
    await waitUntil(() => !l.s.connected, T, 'the drop');
    await postEvents(srv.url, [ev('pipeline:offline', 'p1', 'local_files')]);
    await waitUntil(() => l.s.connected && l.names().includes('pipeline:offline'), T, 'recovered with the missed event');
    assert.equal(l.s.recovered, true);
    assert.equal(l.names().filter((n) => n === 'snapshot').length, 1, 'no second snapshot on a recovery');
  });

  it('with a token for some pipelines: only those', { timeout: 20000 }, async () => {
    const secret = 'type-nsp-secret-0123456789';
    const srv = await startServer(['--store', 'memory', '--jwt-secret', secret], { product: true });
    const tok = await new Promise((resolve, reject) => execFile(path.join(BUILD_DIR, 'ragpulse'),
      ['token', '--role', 'viewer', '--pipelines', 'mine'], { env: { ...process.env, RAGPULSE_JWT_SECRET: secret } },
      (err, out) => (err ? reject(err) : resolve(out.trim()))));
    const admin = await new Promise((resolve, reject) => execFile(path.join(BUILD_DIR, 'ragpulse'),
      ['token', '--role', 'admin'], { env: { ...process.env, RAGPULSE_JWT_SECRET: secret } },
      (err, out) => (err ? reject(err) : resolve(out.trim()))));
    const post = (body) => fetch(`${srv.url}/api/events`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify(body),
    }).then((r) => r.json());
    await post([ev('pipeline:online', 'mine', 'local_files'), ev('pipeline:online', 'theirs', 'local_files')]);
    const l = listener(`${srv.url}/local_files`, { auth: { token: tok } });
    await waitUntil(() => l.names().includes('snapshot'), T, 'the snapshot event');
    const snap = l.got.find((g) => g.name === 'snapshot').data;
    assert.equal(snap.room, 'pipelines');
    assert.deepEqual(snap.pipelines.map((p) => p.id), ['mine']);
    await post([ev('pipeline:offline', 'theirs', 'local_files'), ev('pipeline:offline', 'mine', 'local_files')]);
    await waitUntil(() => l.names().includes('pipeline:offline'), T, 'mine goes offline');
    await l.s.timeout(T).emitWithAck('ping', {}); // barrier
    assert.deepEqual(l.got.filter((g) => g.name === 'pipeline:offline').map((g) => g.data.pipeline_id), ['mine']);
  });
});
