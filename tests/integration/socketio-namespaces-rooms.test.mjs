// Namespaces (multiplexing, auth middleware, unknown namespace) and rooms (join, leave,
// broadcast to a room, except).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import {
  startSuiteServer, client, connect, once, sleep, withTimeout, waitUntil, track,
} from './helpers.mjs';

let srv;
before(async () => { srv = await startSuiteServer([]); });
after(async () => { await srv?.stop(); });

/** Records every event a socket receives: log[event] = [args, ...]. */
function recorder(s) {
  const log = {};
  s.onAny((ev, ...args) => { (log[ev] ??= []).push(args); });
  return log;
}

test('two namespaces multiplexed over one Manager share the engine and stay separate', { timeout: 15000 }, async () => {
  // No forceNew: the second io() for the same origin reuses the cached Manager.
  const main = track(io(srv.url, { reconnection: false, timeout: 5000 }));
  const custom = track(io(srv.url + '/custom', { reconnection: false, timeout: 5000 }));
  assert.equal(main.io, custom.io, 'io(url + "/custom") must reuse the Manager of io(url)');
  await Promise.all([once(main, 'connect'), once(custom, 'connect')]);
  assert.equal(main.nsp, '/');
  assert.equal(custom.nsp, '/custom');
  const engineId = main.io.engine.id;
  assert.equal(typeof engineId, 'string');
  assert.equal(custom.io.engine.id, engineId, 'same engine session');
  assert.notEqual(main.id, custom.id);
  const logMain = recorder(main);
  const logCustom = recorder(custom);

  // the socket ids the server knows match the client's view
  assert.equal(await main.timeout(3000).emitWithAck('whoami'), main.id);
  assert.equal(await custom.timeout(3000).emitWithAck('whoami'), custom.id);

  // a broadcast in "/" is not seen in "/custom" and vice versa
  assert.equal(await main.timeout(3000).emitWithAck('broadcast', { event: 'news', data: 'main' }), true);
  assert.equal(await custom.timeout(3000).emitWithAck('broadcast', { event: 'news', data: 'custom' }), true);
  await waitUntil(() => logMain.news?.length && logCustom.news?.length, 3000, 'broadcasts');
  // message-back stays in its namespace too
  custom.emit('message', 'only-custom');
  await waitUntil(() => logCustom['message-back']?.length, 3000, 'message-back on /custom');
  // A round trip on each namespace of the one engine connection: the server handled the
  // broadcasts and the message before these, so a stray packet would have come first.
  assert.equal(await main.timeout(3000).emitWithAck('whoami'), main.id);
  assert.equal(await custom.timeout(3000).emitWithAck('whoami'), custom.id);
  assert.deepEqual(logMain.news, [['main']]);
  assert.deepEqual(logCustom.news, [['custom']]);
  assert.equal(logMain['message-back'], undefined);
  assert.deepEqual(logCustom['message-back'], [['only-custom']]);
  assert.equal(main.io.engine.id, engineId);
});

test('rooms: join, broadcast to a room, except, leave, whole namespace', { timeout: 15000 }, async () => {
  const opts = { transports: ['websocket'] };
  const [A, B, C, D] = await Promise.all([1, 2, 3, 4].map(() => connect(srv.url, opts)));
  const E = await connect(srv.url + '/custom', opts); // other namespace, joins the same rooms
  const all = { A, B, C, D, E };
  const logs = Object.fromEntries(Object.entries(all).map(([k, s]) => [k, recorder(s)]));

  for (const [s, room] of [[A, 'a'], [B, 'b'], [C, 'a'], [C, 'b'], [E, 'a'], [E, 'b']]) {
    assert.equal(await s.timeout(3000).emitWithAck('join', room), true);
  }

  let syncN = 0;
  /** Broadcast `spec` from `sender`, then a namespace-wide sync marker, and collect who got `event`. */
  async function bcast(sender, spec) {
    assert.equal(await sender.timeout(3000).emitWithAck('broadcast', spec), true);
    const n = ++syncN;
    // the marker goes to both namespaces; per-socket ordering means that once a socket has the
    // marker, it has every earlier broadcast too
    assert.equal(await D.timeout(3000).emitWithAck('broadcast', { event: 'sync', data: n }), true);
    assert.equal(await E.timeout(3000).emitWithAck('broadcast', { event: 'sync', data: n }), true);
    await waitUntil(() => Object.values(logs).every((l) => l.sync?.some(([x]) => x === n)),
      5000, `sync marker ${n}`);
    const got = {};
    for (const [k, l] of Object.entries(logs)) {
      const hits = (l[spec.event] ?? []).length;
      if (hits) got[k] = hits;
      delete l[spec.event];
    }
    return got;
  }

  assert.deepEqual(await bcast(D, { room: 'a', event: 'ev1', data: { x: 1 } }), { A: 1, C: 1 },
    'room a reaches A and C (C once) only');
  assert.deepEqual(await bcast(A, { room: 'a', event: 'ev1b', data: 1 }), { A: 1, C: 1 },
    'the sender receives its own room broadcast');
  assert.deepEqual(await bcast(D, { except: 'b', event: 'ev2', data: 2 }), { A: 1, D: 1 },
    'except b excludes B and C');
  assert.deepEqual(await bcast(D, { room: 'a', except: 'b', event: 'ev3', data: 3 }), { A: 1 },
    'room a except b is A only');
  assert.deepEqual(await bcast(D, { room: 'b', event: 'ev4', data: 4 }), { B: 1, C: 1 });

  assert.equal(await A.timeout(3000).emitWithAck('leave', 'a'), true);
  assert.deepEqual(await bcast(D, { room: 'a', event: 'ev5', data: 5 }), { C: 1 }, 'A left room a');
  assert.equal(await C.timeout(3000).emitWithAck('leave', 'b'), true);
  assert.deepEqual(await bcast(D, { room: 'b', event: 'ev6', data: 6 }), { B: 1 }, 'C left room b');

  assert.deepEqual(await bcast(B, { event: 'ev7', data: { all: true } }), { A: 1, B: 1, C: 1, D: 1 },
    'no room: the whole namespace and only it');
  assert.deepEqual(await bcast(E, { room: 'a', event: 'ev8', data: 8 }), { E: 1 },
    'a room in /custom does not reach "/" sockets in the same-named room');

  // payload check
  const p = once(C, 'ev9');
  await D.timeout(3000).emitWithAck('broadcast', { room: 'a', event: 'ev9', data: { deep: [1, { two: 2 }] } });
  assert.deepEqual(await p, [{ deep: [1, { two: 2 }] }]);
});

test('unknown namespace → connect_error "Invalid namespace"', { timeout: 10000 }, async () => {
  const s = client(srv.url + '/nope', { transports: ['websocket'] });
  const [err] = await once(s, 'connect_error', 5000);
  assert.equal(err.message, 'Invalid namespace');
  assert.equal(s.connected, false);
});

test('/private refuses without the token', { timeout: 10000 }, async () => {
  for (const auth of [undefined, { token: 'wrong' }]) {
    const s = client(srv.url + '/private', { transports: ['websocket'], ...(auth ? { auth } : {}) });
    let connected = false;
    s.on('connect', () => { connected = true; });
    const [err] = await once(s, 'connect_error', 5000);
    assert.equal(err.message, 'not authorized');
    await sleep(100); // absence window: a refused socket must not connect afterwards
    assert.equal(connected, false);
  }
});

test('/private accepts {token:"secret"} and echoes the auth object; other namespaces too', { timeout: 10000 }, async () => {
  const s = client(srv.url + '/private', { transports: ['websocket'], auth: { token: 'secret' } });
  const authEvt = once(s, 'auth', 5000);
  await once(s, 'connect', 5000);
  assert.deepEqual(await authEvt, [{ token: 'secret' }]);
  const back = once(s, 'message-back');
  s.emit('message', 'in private');
  assert.deepEqual(await back, ['in private']);

  const plain = client(srv.url, { transports: ['polling'] });
  assert.deepEqual(await once(plain, 'auth', 5000), [{}], 'no auth → {}');
  const custom = client(srv.url + '/custom', { transports: ['websocket'], auth: { user: 'u', n: [1] } });
  assert.deepEqual(await once(custom, 'auth', 5000), [{ user: 'u', n: [1] }]);
});

test('a namespace refusal does not break the other namespaces of the same Manager', { timeout: 10000 }, async () => {
  const main = client(srv.url, { transports: ['websocket'] });
  await once(main, 'connect');
  const priv = track(main.io.socket('/private'));
  priv.connect();
  const [err] = await once(priv, 'connect_error', 5000);
  assert.equal(err.message, 'not authorized');
  const back = once(main, 'message-back');
  main.emit('message', 'still fine');
  assert.deepEqual(await back, ['still fine']);
  assert.equal(main.connected, true);
});
