// --workers N: several processes on one port (SO_REUSEPORT) share their broadcasts through the
// workers cluster adapter, so a broadcast made on one worker reaches sockets on every worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, USE_REF, waitUntil } from './helpers.mjs';

test('a broadcast from one worker reaches the room on every worker, once and in order', { skip: USE_REF && 'ragpulse only', timeout: 60000 }, async () => {
  const srv = await startServer(['--workers', '2', '--ping-interval', '2000', '--ping-timeout', '5000']);
  const clients = [];
  for (let i = 0; i < 24; i++) clients.push(await connect(srv.url, { transports: ['websocket'] }));
  const pids = await Promise.all(clients.map((c) => c.timeout(5000).emitWithAck('worker')));
  const workers = new Set(pids);
  // 24 connections over two SO_REUSEPORT listeners: the kernel spreads them (a one-sided spread
  // has a chance of 2^-23); without both workers in play this test would prove nothing.
  assert.equal(workers.size, 2, `connections landed on ${workers.size} worker(s)`);
  await Promise.all(clients.map((c) => c.timeout(5000).emitWithAck('join', 'room')));
  const got = clients.map(() => []);
  clients.forEach((c, i) => c.on('news', (n) => got[i].push(n)));
  // Producers on both workers, so deliveries cross in both directions.
  const producers = [clients.find((c, i) => pids[i] === pids[0]), clients.find((c, i) => pids[i] !== pids[0])];
  for (let k = 0; k < 20; k++)
    await producers[k % 2].timeout(5000).emitWithAck('broadcast', { room: 'room', event: 'news', data: k });
  await waitUntil(() => got.every((g) => g.length >= 20), 10000, 'every client gets all 20 broadcasts');
  for (const g of got) assert.deepEqual(g.slice().sort((a, b) => a - b), [...Array(20).keys()]);
  // Per producer, order is kept across workers.
  for (const g of got) {
    const even = g.filter((n) => n % 2 === 0), odd = g.filter((n) => n % 2 === 1);
    assert.deepEqual(even, [...even].sort((a, b) => a - b));
    assert.deepEqual(odd, [...odd].sort((a, b) => a - b));
  }
  for (const c of clients) c.disconnect();
});
