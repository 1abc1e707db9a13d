// A broadcast that excludes 100 rooms, on two rp-testserver nodes sharing one real
// redis-server: the exclusions travel with the broadcast to the other node, all of them (the
// hand-off to the cluster once kept the first 64 only, so sockets in the later rooms on the
// other node got what they were excluded from).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, startServer, waitUntil } from './helpers.mjs';
import { startRedis } from './cluster-helpers.mjs';

const T = 10000;
const ROOMS = Array.from({ length: 100 }, (_, i) => `r${i}`);

/** A connected client in `rooms` recording the `data` of every event it gets, by event name. */
async function member(url, rooms) {
  const s = await connect(url, { transports: ['websocket'] });
  const log = {};
  s.onAny((ev, data) => { (log[ev] ??= []).push(data); });
  for (const r of rooms) assert.equal(await s.timeout(T).emitWithAck('join', r), true, `join ${r}`);
  return { s, log, rooms, got: (ev, data) => (log[ev] ?? []).includes(data) };
}

test('a broadcast excluding 100 rooms skips members of any of them on both nodes', { timeout: 60000 }, async () => {
  const redis = await startRedis();
  const a = await startServer(['--cluster', redis.url]);
  const b = await startServer(['--cluster', redis.url]);
  // Excluded members on the other node sit in rooms before and after the 64th, and one on the
  // sending node; a control on each node is in no excluded room.
  const remote = await Promise.all([[0], [40], [63], [64], [65], [80], [99], [70, 99]].map(
    (ix) => member(b.url, ix.map((i) => ROOMS[i]))));
  const local = await Promise.all([[1], [98]].map((ix) => member(a.url, ix.map((i) => ROOMS[i]))));
  const controlA = await member(a.url, ['elsewhere']);
  const controlB = await member(b.url, ['elsewhere']);
  const sender = await member(a.url, []);

  // Node b reads the Redis stream once its adapter is up: broadcast until b's control hears one.
  let n = 0;
  await waitUntil(async () => {
    await sender.s.timeout(T).emitWithAck('broadcast', { event: 'warmup', data: ++n });
    return (controlB.log.warmup ?? []).length > 0;
  }, T, 'node b to receive broadcasts from node a through Redis');

  assert.equal(await sender.s.timeout(T).emitWithAck('broadcast', { event: 'news', data: 'hidden', except: ROOMS }), true);
  // A second broadcast to everyone: each connection delivers in order, so a member that has the
  // marker has everything that was sent to it before.
  assert.equal(await sender.s.timeout(T).emitWithAck('broadcast', { event: 'news', data: 'marker' }), true);
  const all = [...remote, ...local, controlA, controlB];
  await waitUntil(() => all.every((m) => m.got('news', 'marker')), T, 'every member to get the marker');

  assert.ok(controlA.got('news', 'hidden'), 'the control on the sending node got the broadcast');
  assert.ok(controlB.got('news', 'hidden'), 'the control on the other node got the broadcast');
  for (const m of local) assert.ok(!m.got('news', 'hidden'), `local member of ${m.rooms} was excluded`);
  const leaked = remote.filter((m) => m.got('news', 'hidden')).map((m) => m.rooms.join('+'));
  assert.deepEqual(leaked, [], 'no member of an excluded room on the other node got the broadcast');
});
