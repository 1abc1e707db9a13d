// Fan-out under load: 200 concurrent websocket clients in one room, 1000 broadcasts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, withTimeout, waitUntil } from './helpers.mjs';

const CLIENTS = 200;
const MESSAGES = 1000;

test(`${CLIENTS} websocket clients each receive ${MESSAGES} room broadcasts in order, once`, { timeout: 60000 }, async () => {
  // Generous heartbeat: 201 clients share this one Node process, whose event loop is busy
  // while the fan-out runs; the 300/200 ms defaults would time clients out (on either side).
  const srv = await startServer(['--ping-interval', '2000', '--ping-timeout', '5000']);
  const opts = { transports: ['websocket'], timeout: 10000 };
  const clients = [];
  // connect in batches so the accept backlog is not the thing under test
  for (let i = 0; i < CLIENTS; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, CLIENTS - i) },
      () => connect(srv.url, opts, 15000)));
    clients.push(...batch);
  }
  const state = clients.map(() => ({ next: 0, errors: [] }));
  clients.forEach((c, k) => {
    c.on('tick', (d) => {
      const st = state[k];
      if (!d || d.seq !== st.next) {
        if (st.errors.length < 5) st.errors.push(`expected seq ${st.next}, got ${JSON.stringify(d)}`);
        if (d && typeof d.seq === 'number' && d.seq > st.next) st.next = d.seq + 1;
      } else {
        st.next++;
      }
    });
  });
  await withTimeout(Promise.all(clients.map((c) => c.timeout(10000).emitWithAck('join', 'r'))),
    15000, 'all clients to join room r');

  const producer = await connect(srv.url, opts);
  let producerGot = 0;
  producer.on('tick', () => { producerGot++; });
  const t0 = Date.now();
  for (let i = 0; i < MESSAGES - 1; i++) {
    producer.emit('broadcast', { room: 'r', event: 'tick', data: { seq: i } });
  }
  assert.equal(await producer.timeout(30000).emitWithAck('broadcast',
    { room: 'r', event: 'tick', data: { seq: MESSAGES - 1 } }), true);

  try {
    await waitUntil(() => state.every((s) => s.next >= MESSAGES), 45000, 'every client to receive every broadcast');
  } finally {
    const done = state.filter((s) => s.next >= MESSAGES).length;
    console.log(`fan-out: ${done}/${CLIENTS} clients complete after ${Date.now() - t0} ms; ` +
      `min next seq ${Math.min(...state.map((s) => s.next))}`);
  }
  // A marker broadcast after the last: once every client has it, anything the server sent
  // before it (a duplicate, a late copy) has arrived too, on each client's one connection.
  assert.equal(await producer.timeout(30000).emitWithAck('broadcast',
    { room: 'r', event: 'tick', data: { seq: MESSAGES } }), true);
  await waitUntil(() => state.every((s) => s.next >= MESSAGES + 1 || s.errors.length), 45000, 'every client to receive the marker');
  const bad = state.map((s, k) => ({ k, ...s })).filter((s) => s.errors.length || s.next !== MESSAGES + 1);
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} clients saw gaps/duplicates/reordering`);
  assert.equal(producerGot, 0, 'the producer is not in room r');
  assert.ok(clients.every((c) => c.connected), 'all clients still connected');
});
