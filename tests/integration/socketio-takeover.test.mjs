// A client that comes back before the server has seen its old connection drop (a polling
// request that failed, a network change) presents the pid of a socket that is still
// connected: the server ends the old one and the new connection resumes its session, with
// every missed event and `recovered: true`, instead of starting a fresh session without its
// subscriptions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, connect, once, startServer, waitUntil } from './helpers.mjs';
import { T, requestJson } from './hub-helpers.mjs';

test('a pid presented while its socket is still connected takes the session over', async () => {
  const srv = await startServer(['--store', 'memory'], { product: true });
  const post = (i) => requestJson(`${srv.url}/api/events`, {
    method: 'POST', body: { type: 'heartbeat', pipeline_id: 'p', pipeline_type: 't', message: `m${i}` },
  });
  const a = await connect(`${srv.url}/pipeline`, { transports: ['polling'] });
  const got = [];
  a.on('heartbeat', (e) => e.pipeline_id === 'p' && got.push(e.message));
  assert.equal((await a.timeout(T).emitWithAck('subscribe', { pipeline_id: 'p' })).ok, true);
  await post(0);
  await waitUntil(() => got.length === 1, T, 'first event');
  // What the stock client keeps for recovery (its private fields), as if it had reconnected.
  const pid = a._pid;
  const aId = a.id;
  const offset = a._lastOffset;
  assert.match(pid, /^[A-Za-z0-9_-]{20}$/);
  a.io.engine.removeAllListeners('close'); // keep A's client quiet: it is "gone" from its own view
  for (let i = 1; i <= 3; i++) await post(i);
  const b = client(`${srv.url}/pipeline`, { auth: { pid, offset } });
  const missed = [];
  b.on('heartbeat', (e) => e.pipeline_id === 'p' && missed.push(e.message));
  await once(b, 'connect', T);
  // The stock client reads `recovered` from its own remembered pid, which b (given the pid by
  // hand) has not: the server's side shows in the same socket id and what follows.
  assert.equal(b.id, aId, 'the session (its socket id) was resumed');
  await waitUntil(() => missed.length === 3, T, 'the missed events');
  assert.deepEqual(missed, ['m1', 'm2', 'm3']);
  await post(4);
  await waitUntil(() => missed.length === 4, T, 'the subscription came along');
  assert.equal(missed[3], 'm4');
  // The old socket is gone from the server: one socket on /pipeline.
  const m = (await (await fetch(`${srv.url}/metrics`)).text());
  assert.match(m, /ragpulse_sockets\{namespace="\/pipeline"\} 1\n/);
  await once(a.io.engine, 'close', T).catch(() => {});
});
