// Recovery of a gap larger than --max-queued (issue 13, item 2). A stock socket.io-client viewer
// is cut off (a loopback proxy refuses it) while 1,500 events of about 1 KB are produced — 1.5 MB,
// more than the 1 MiB a session may have queued. When the proxy lets it through again, the
// client comes back with its pid and offset by itself, and the hub replays the gap in rounds
// under the bound: the viewer ends up connected, recovered, with every event once and in order,
// after one disconnect (the old hub dropped the replay at 1 MiB and the client retried forever).
// Over websocket and over polling. When the gap is older than the history (--history), the
// client gets a fresh session instead and, re-subscribing as the documents' clients do, the
// right state from the snapshot; the same when the producer pushes the replay's position out of
// the history while the viewer reads slowly. /metrics counts each outcome.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer, tcpProxy, track, waitUntil } from './helpers.mjs';
import { postEvents } from './hub-helpers.mjs';

const T = 5000;
const GAP = 1500;
const TEXT = 'x'.repeat(1000); // ~1 KB per event on the wire

const update = (pid, i) => ({
  type: 'status:update', pipeline_id: pid, pipeline_type: 'local_files', status: 'running',
  message: `${i} ${TEXT}`,
});

/** Posts events i in [from, to) in batches of 500; returns their ids in order. */
async function produce(url, pid, from, to) {
  const ids = [];
  for (let i = from; i < to; i += 500) {
    const batch = [];
    for (let k = i; k < Math.min(to, i + 500); k++) batch.push(update(pid, k));
    ids.push(...(await postEvents(url, batch)).ids);
  }
  return ids;
}

/**
 * A viewer through the proxy that records its pipeline events (with offsets), connects,
 * recoveries and disconnects. On a connect that is not a recovery it subscribes to pid, as a
 * client must when its session was not recovered.
 */
function viewer(url, pid, transports) {
  const s = track(io(`${url}/pipeline`, {
    forceNew: true, transports, reconnectionDelay: 100, reconnectionDelayMax: 200,
    randomizationFactor: 0, timeout: 3000,
  }));
  const log = { events: [], connects: 0, recovered: [], disconnects: [], snapshots: [] };
  s.on('status:update', (ev, offset) => log.events.push({ id: ev.id, message: ev.message, offset }));
  s.on('connect', async () => {
    log.connects++;
    log.recovered.push(s.recovered);
    if (s.recovered) return;
    const ack = await s.timeout(T).emitWithAck('subscribe', { pipeline_id: pid });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    log.snapshots.push(ack);
  });
  s.on('disconnect', (reason) => log.disconnects.push(reason));
  return { s, log };
}

async function recoveries(url, outcome) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(new RegExp(`^ragpulse_recoveries_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm'));
  assert.ok(m, `ragpulse_recoveries_total{outcome="${outcome}"} in /metrics`);
  return Number(m[1]);
}

/**
 * The viewer ended in a fresh session, not a recovery and not a retry loop (one disconnect,
 * a new pid), and its re-subscribe brought the state as of event `lastId`, whose message is
 * that of update number `lastIndex`.
 */
async function assertFreshWithState(v, pid0, pid, lastId, lastIndex) {
  await waitUntil(() => v.log.snapshots.length === 2, 40000,
    () => `a fresh session and a second snapshot: ${v.log.connects} connects, ${v.log.disconnects.length} disconnects`);
  assert.deepEqual(v.log.recovered, [false, false], 'not a recovery');
  assert.notEqual(v.s._pid, pid0, 'a new pid');
  assert.equal(v.log.disconnects.length, 1, `one disconnect, no retry loop: ${v.log.disconnects}`);
  const snap = v.log.snapshots[1];
  assert.equal(snap.version, lastId, 'the snapshot is as of the last event');
  const p = snap.pipelines.find((x) => x.id === pid);
  assert.equal(p.message, update(pid, lastIndex).message, 'the snapshot has the last state');
}

async function pipelineMessage(url, pid) {
  const j = await (await fetch(`${url}/api/rag-status`)).json();
  return j.pipelines.find((p) => p.id === pid)?.message;
}

for (const transports of [['websocket'], ['polling']]) {
  describe(`a ${GAP}-event, 1.5 MB gap over ${transports[0]}`, () => {
    it('is replayed in rounds under --max-queued: connected, recovered, every event once, in order', { timeout: 60000 }, async () => {
      const srv = await startServer(['--event-rate', '100000', '--event-burst', '100000'], { product: true });
      const proxy = await tcpProxy(srv.port);
      const pid = `gap-${transports[0]}`;
      const v = viewer(proxy.url, pid, transports);
      await waitUntil(() => v.log.snapshots.length === 1, T, 'first subscribe ack');
      const before = await produce(srv.url, pid, 0, 10);
      await waitUntil(() => v.log.events.length === 10, T, 'the first 10 events live');
      const pid0 = v.s._pid;
      const sid0 = v.s.id;

      proxy.hold(); // the viewer is cut off and cannot come back until release()
      await waitUntil(() => v.log.disconnects.length === 1, T, 'the viewer to notice the cut');
      const missed = await produce(srv.url, pid, 10, 10 + GAP);
      proxy.release();

      await waitUntil(() => v.s.connected && v.log.events.length >= 10 + GAP, 40000,
        () => `viewer connected with ${10 + GAP} events: connected ${v.s.connected}, ` +
          `${v.log.events.length} events, ${v.log.disconnects.length} disconnects`);
      await v.s.timeout(T).emitWithAck('ping', {}); // barrier: everything sent before it has arrived
      const ids = v.log.events.map((e) => e.id);
      assert.deepEqual(ids, [...before, ...missed], 'every event once, in order');
      for (const e of v.log.events) assert.equal(e.offset, String(e.id), 'each event carries its offset');
      assert.equal(v.log.disconnects.length, 1, `one disconnect, no retry loop: ${v.log.disconnects}`);
      assert.deepEqual(v.log.recovered, [false, true], 'the reconnect was a recovery');
      assert.equal(v.s._pid, pid0, 'same pid');
      assert.equal(v.s.id, sid0, 'same sid');
      // Live events reach it after the replay, not before or twice.
      const live = await produce(srv.url, pid, 10 + GAP, 10 + GAP + 5);
      await waitUntil(() => v.log.events.length === 10 + GAP + 5, T, 'live events after the replay');
      assert.deepEqual(v.log.events.slice(-5).map((e) => e.id), live);
      assert.equal(v.log.events.at(-1).message, await pipelineMessage(srv.url, pid));
      const health = await (await fetch(`${srv.url}/health`)).json();
      assert.equal(health.status, 'ok');
      assert.equal(await recoveries(srv.url, 'resumed_in_rounds'), 1, 'counted as a recovery in rounds');
      assert.equal(await recoveries(srv.url, 'resumed'), 0);
    });

    it('older than the history: a fresh session, and the re-subscribe brings the right state', { timeout: 60000 }, async () => {
      const srv = await startServer(['--event-rate', '100000', '--event-burst', '100000', '--history', '1000'], { product: true });
      const proxy = await tcpProxy(srv.port);
      const pid = `old-${transports[0]}`;
      const v = viewer(proxy.url, pid, transports);
      await waitUntil(() => v.log.snapshots.length === 1, T, 'first subscribe ack');
      await produce(srv.url, pid, 0, 10);
      await waitUntil(() => v.log.events.length === 10, T, 'the first 10 events live');
      const pid0 = v.s._pid;

      proxy.hold();
      await waitUntil(() => v.log.disconnects.length === 1, T, 'the viewer to notice the cut');
      const missed = await produce(srv.url, pid, 10, 10 + GAP);
      proxy.release();

      await assertFreshWithState(v, pid0, pid, missed.at(-1), 10 + GAP - 1);
      assert.equal(v.log.events.length, 10, 'nothing of the old session was replayed');
      assert.equal(await recoveries(srv.url, 'fresh'), 1, 'counted as a fresh session');
    });
  });
}

describe('a replay the history overtakes', () => {
  it('ends in a fresh session and the right state, not a loop', { timeout: 60000 }, async () => {
    // Polling, so the replay moves only as fast as the client's GETs come back: after 64 KB of
    // the new connection the proxy stops passing the hub's answers on, the first round (512 KiB)
    // stays queued, and the producer writes enough to push the replay's position out of the
    // history (--history 2000) before the viewer reads again.
    const srv = await startServer(['--event-rate', '100000', '--event-burst', '100000', '--history', '2000'], { product: true });
    const proxy = await tcpProxy(srv.port);
    const pid = 'overtaken';
    const v = viewer(proxy.url, pid, ['polling']);
    await waitUntil(() => v.log.snapshots.length === 1, T, 'first subscribe ack');
    await produce(srv.url, pid, 0, 10);
    await waitUntil(() => v.log.events.length === 10, T, 'the first 10 events live');
    const pid0 = v.s._pid;

    proxy.hold();
    await waitUntil(() => v.log.disconnects.length === 1, T, 'the viewer to notice the cut');
    await produce(srv.url, pid, 10, 10 + GAP);
    proxy.stallAfter(64 * 1024);
    proxy.release();
    // 64 KB of the new connection are replayed events (nothing else is that large before the
    // CONNECT reply): the replay has begun and is held there.
    await waitUntil(() => proxy.stalled(), T, 'the replay to begin and stall');
    assert.equal(v.log.connects, 1, 'not connected again yet');
    const later = await produce(srv.url, pid, 10 + GAP, 10 + GAP + 2500);
    proxy.unstall();

    await assertFreshWithState(v, pid0, pid, later.at(-1), 10 + GAP + 2500 - 1);
    const ids = v.log.events.map((e) => e.id);
    assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), 'what the replay did send came once, in order');
    assert.equal(await recoveries(srv.url, 'overtaken'), 1, 'counted as overtaken');
    assert.equal(await recoveries(srv.url, 'resumed_in_rounds'), 0);
  });
});
