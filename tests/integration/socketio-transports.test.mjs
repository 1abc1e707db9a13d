// Socket.IO over each transport with the stock socket.io-client 4.8.1: polling only,
// websocket only, polling→websocket upgrade, acks both ways, binary both ways, server-side
// disconnect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSuiteServer, client, connect, once, sleep, withTimeout, waitUntil, startDelayProxy,
} from './helpers.mjs';

let srv;
before(async () => { srv = await startSuiteServer([]); });
after(async () => { await srv?.stop(); });

const bin = (...bytes) => Buffer.from(bytes);

test('polling only: connect, message round trip, broadcast, heartbeats keep it alive', { timeout: 15000 }, async () => {
  const s = await connect(srv.url, { transports: ['polling'] });
  const tname = () => s.io.engine.transport.name;
  assert.equal(tname(), 'polling');
  let upgraded = false;
  s.io.engine.on('upgrade', () => { upgraded = true; });
  const back = once(s, 'message-back');
  s.emit('message', 'hello', 42, { nested: ['x', null, true] });
  assert.deepEqual(await back, ['hello', 42, { nested: ['x', null, true] }]);
  assert.equal(tname(), 'polling');

  // a broadcast sent by another client (over websocket) reaches the polling client
  const other = await connect(srv.url, { transports: ['websocket'] });
  const got = once(s, 'poll-news');
  assert.equal(await other.emitWithAck('broadcast', { event: 'poll-news', data: { n: 7 } }), true);
  assert.deepEqual(await got, [{ n: 7 }]);
  assert.equal(tname(), 'polling');

  // stay connected across several ping intervals (300 ms) on polling
  let disconnected = null;
  s.on('disconnect', (r) => { disconnected = r; });
  await sleep(1000); // time is the test: several ping intervals
  assert.equal(disconnected, null, `polling client was disconnected: ${disconnected}`);
  assert.equal(s.connected, true);
  const back2 = once(s, 'message-back');
  s.emit('message', 'still here');
  assert.deepEqual(await back2, ['still here']);
  assert.equal(tname(), 'polling');
  assert.equal(upgraded, false);
});

test('websocket only: connect, message round trip, broadcast, heartbeats keep it alive', { timeout: 15000 }, async () => {
  const s = await connect(srv.url, { transports: ['websocket'] });
  assert.equal(s.io.engine.transport.name, 'websocket');
  const back = once(s, 'message-back');
  s.emit('message', 'hello', 1.5, [1, [2, [3]]], null, false);
  assert.deepEqual(await back, ['hello', 1.5, [1, [2, [3]]], null, false]);

  const got = once(s, 'ws-news');
  assert.equal(await s.emitWithAck('broadcast', { event: 'ws-news', data: 'hi all' }), true);
  assert.deepEqual(await got, ['hi all']);

  let disconnected = null;
  s.on('disconnect', (r) => { disconnected = r; });
  await sleep(1000); // time is the test: several ping intervals
  assert.equal(disconnected, null, `websocket client was disconnected: ${disconnected}`);
  const back2 = once(s, 'message-back');
  s.emit('message', 'still here');
  assert.deepEqual(await back2, ['still here']);
  assert.equal(s.io.engine.transport.name, 'websocket');
});

/**
 * Emits N numbered `message` events, one per ~1 ms, while the engine upgrades to websocket,
 * starting at the engine's `open` (events before the Socket.IO CONNECT are buffered by the client)
 * or at `connect`; checks that every `message-back` arrives exactly once, in order.
 */
async function upgradeRun(url, { minBeforeUpgrade, startAt }) {
  const N = 200;
  const s = client(url); // default transports: polling, then upgrade to websocket
  const received = [];
  s.on('message-back', (i) => received.push(i));
  const connected = once(s, 'connect');
  await once(s.io, 'open');
  const engine = s.io.engine;
  assert.equal(engine.transport.name, 'polling', 'the session must start on polling');
  let phase = 'polling';
  const upgradeEvt = new Promise((resolve) => {
    engine.once('upgrading', () => { phase = 'upgrading'; });
    engine.once('upgrade', (t) => { phase = 'websocket'; resolve(t); });
  });
  if (startAt === 'connect') await connected;
  const counts = { polling: 0, upgrading: 0, websocket: 0 };
  for (let i = 0; i < N; i++) {
    counts[phase]++;
    s.emit('message', i);
    if (i === Math.floor(N * 0.75) && phase !== 'websocket') {
      // make sure the last quarter is sent after the upgrade
      await withTimeout(upgradeEvt, 5000, 'engine "upgrade" event');
    } else {
      await sleep(1); // time is the test: spread the messages across the upgrade
    }
  }
  await connected;
  const t = await withTimeout(upgradeEvt, 5000, 'engine "upgrade" event');
  console.log(`upgrade test via ${url}: messages emitted per phase ${JSON.stringify(counts)}`);
  assert.equal(t.name, 'websocket');
  assert.equal(engine.transport.name, 'websocket');
  assert.ok(counts.websocket > 0, 'some messages must be emitted after the upgrade');
  assert.ok(counts.polling + counts.upgrading >= minBeforeUpgrade,
    `at least ${minBeforeUpgrade} messages must be emitted before the upgrade completes`);

  await waitUntil(() => received.length >= N, 10000,
    () => `${N} message-back (got ${received.length}: ${JSON.stringify(received.slice(-5))}...)`);
  // A marker message after the last, on the websocket: once its echo is back, a duplicate or
  // a late echo of an earlier message (from the polling side of the upgrade) is in too.
  s.emit('message', N);
  await waitUntil(() => received.at(-1) === N, 10000, () => `the marker's echo (got ${JSON.stringify(received.slice(-5))})`);
  assert.deepEqual(received, Array.from({ length: N + 1 }, (_, i) => i));
  assert.equal(s.io.engine.transport.name, 'websocket');
}

test('upgrade polling→websocket with 200 messages in flight, all echoed once and in order', { timeout: 20000 }, async () => {
  await upgradeRun(srv.url, { minBeforeUpgrade: 1, startAt: 'open' });
});

test('upgrade held back 150 ms (proxy delays the websocket handshake): 200 messages across polling, upgrade and websocket', { timeout: 20000 }, async () => {
  const proxy = await startDelayProxy(srv.port, { wsDelayMs: 150 });
  await upgradeRun(proxy.url, { minBeforeUpgrade: 20, startAt: 'connect' });
});

for (const transports of [['websocket'], ['polling']]) {
  const tn = transports[0];

  test(`acks both ways over ${tn}`, { timeout: 15000 }, async () => {
    const s = await connect(srv.url, { transports });
    // client → server ack
    const r = await withTimeout(
      s.timeout(3000).emitWithAck('message-with-ack', 1, '2', { 3: [true] }), 4000, 'ack');
    assert.deepEqual(r, 1); // emitWithAck resolves with the first ack argument...
    const all = await withTimeout(new Promise((resolve, reject) => {
      s.timeout(3000).emit('message-with-ack', 1, '2', { 3: [true] }, (err, ...args) =>
        (err ? reject(err) : resolve(args)));
    }), 4000, 'ack with all args');
    assert.deepEqual(all, [1, '2', { 3: [true] }]); // ...and the callback gets all of them
    assert.equal(typeof (await s.timeout(3000).emitWithAck('whoami')), 'string');

    // server → client ack: `ask` → `question` (with ack) → client acks → `answer`
    s.once('question', (x, ack) => {
      assert.deepEqual(x, { q: 'why?' });
      ack({ a: 'because', n: [1, 2] });
    });
    const answer = once(s, 'answer', 3000);
    s.emit('ask', { q: 'why?' });
    assert.deepEqual(await answer, [{ a: 'because', n: [1, 2] }]);

    // server ack timeout: never ack the question → `answer-timeout` after ~1000 ms
    s.once('question', () => { /* deliberately no ack */ });
    const t0 = Date.now();
    const timedOut = once(s, 'answer-timeout', 4000);
    let gotAnswer = false;
    s.once('answer', () => { gotAnswer = true; });
    s.emit('ask', 'silent');
    await timedOut;
    const dt = Date.now() - t0;
    assert.ok(dt >= 800, `answer-timeout came too early (${dt} ms)`);
    assert.equal(gotAnswer, false);
  });

  test(`binary both ways over ${tn}`, { timeout: 15000 }, async () => {
    const s = await connect(srv.url, { transports });
    assert.equal(s.io.engine.transport.name, tn);
    const big = Buffer.alloc(70000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const args = [
      bin(0, 1, 2, 3, 255),
      { file: { name: 'a.bin', data: bin(10, 20, 30) }, list: [bin(), 'text', bin(0xde, 0xad)] },
      'plain',
      big,
    ];
    const back = once(s, 'message-back');
    s.emit('message', ...args);
    const got = await back;
    assert.deepEqual(got, args);
    assert.ok(Buffer.isBuffer(got[0]), 'binary comes back as a Buffer');
    assert.ok(Buffer.isBuffer(got[1].file.data));
    assert.ok(Buffer.isBuffer(got[1].list[0]) && got[1].list[0].length === 0);

    const acked = await withTimeout(new Promise((resolve, reject) => {
      s.timeout(3000).emit('message-with-ack', ...args, (err, ...a) => (err ? reject(err) : resolve(a)));
    }), 4000, 'binary ack');
    assert.deepEqual(acked, args);
    assert.ok(Buffer.isBuffer(acked[1].list[2]));

    // binary in a server-initiated event with ack: `ask`(Buffer) → `question`(Buffer) → ack → `answer`
    const question = new Promise((resolve) => s.once('question', (x, ack) => {
      resolve(x);
      ack({ echo: x, extra: bin(9, 8, 7) });
    }));
    const answer = once(s, 'answer', 3000);
    s.emit('ask', bin(1, 1, 2, 3, 5, 8));
    const q = await withTimeout(question, 3000, 'question');
    assert.ok(Buffer.isBuffer(q), `"question" must carry the Buffer sent with "ask", got ${JSON.stringify(q)}`);
    assert.deepEqual(q, bin(1, 1, 2, 3, 5, 8));
    assert.deepEqual(await answer, [{ echo: bin(1, 1, 2, 3, 5, 8), extra: bin(9, 8, 7) }]);

    // binary in a broadcast
    const news = once(s, 'bin-news', 3000);
    assert.equal(await s.timeout(3000).emitWithAck('broadcast',
      { event: 'bin-news', data: { b: bin(4, 2), list: [bin(0)] } }), true);
    assert.deepEqual(await news, [{ b: bin(4, 2), list: [bin(0)] }]);
    assert.equal(s.io.engine.transport.name, tn);
  });
}

test('server disconnect: "io server disconnect" and no automatic reconnection', { timeout: 10000 }, async () => {
  const s = await connect(srv.url, {
    transports: ['websocket'], reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100,
  });
  let attempts = 0;
  s.io.on('reconnect_attempt', () => { attempts++; });
  let connects = 0;
  s.on('connect', () => { connects++; });
  const disc = once(s, 'disconnect', 3000);
  s.emit('disconnect-me');
  const [reason] = await disc;
  assert.equal(reason, 'io server disconnect');
  await sleep(600); // time is the test: longer than the reconnection delay, no attempt
  assert.equal(attempts, 0, 'the manager must not try to reconnect');
  assert.equal(connects, 0, 'the socket must not connect again');
  assert.equal(s.connected, false);
});
