// Server-side heartbeat (ping timeout) and client reconnection after a server restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  startServer, connect, once, sleep, withTimeout, track, pollingHandshake, waitUntil,
} from './helpers.mjs';

const HB = ['--ping-interval', '300', '--ping-timeout', '200'];

function rawWs(url) {
  const ws = track(new WebSocket(url));
  const frames = [];
  ws.on('message', (data, isBinary) => frames.push(isBinary ? data : data.toString()));
  const opened = withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  }), 3000, `websocket open ${url}`);
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })));
  return { ws, frames, opened, closed };
}

test('raw websocket client that never answers pings is closed by the server', { timeout: 10000 }, async () => {
  const srv = await startServer(HB);
  const wsUrl = srv.url.replace('http:', 'ws:') + '/socket.io/?EIO=4&transport=websocket';
  const { frames, opened, closed } = rawWs(wsUrl);
  await opened;
  const t0 = Date.now();
  await waitUntil(() => frames.length > 0, 2000, 'open packet');
  assert.equal(typeof frames[0], 'string');
  assert.equal(frames[0][0], '0', `first frame must be the open packet, got ${frames[0]}`);
  const open = JSON.parse(frames[0].slice(1));
  assert.equal(typeof open.sid, 'string');
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.deepEqual(open.upgrades, []);
  const { at } = await withTimeout(closed, 3000, 'server to close the unresponsive websocket');
  const dt = at - t0;
  assert.ok(frames.includes('2'), `server must have pinged before closing; frames: ${JSON.stringify(frames)}`);
  assert.ok(dt >= 300, `closed too early (${dt} ms)`);
});

test('raw websocket client that answers pings stays connected', { timeout: 10000 }, async () => {
  const srv = await startServer(HB);
  const wsUrl = srv.url.replace('http:', 'ws:') + '/socket.io/?EIO=4&transport=websocket';
  const { ws, frames, opened, closed } = rawWs(wsUrl);
  let pings = 0;
  ws.on('message', (d) => { if (d.toString() === '2') { pings++; ws.send('3'); } });
  await opened;
  let isClosed = false;
  closed.then(() => { isClosed = true; });
  ws.send('40'); // Socket.IO CONNECT to "/"
  await sleep(1500); // time is the test: several ping intervals answered, still open
  assert.equal(isClosed, false, 'a client that answers pings must not be dropped');
  assert.ok(pings >= 3, `expected several pings in 1.5 s at 300 ms interval, got ${pings}`);
  assert.ok(frames.some((f) => typeof f === 'string' && f.startsWith('40{')), 'CONNECT ack');
  assert.ok(frames.some((f) => typeof f === 'string' && f.startsWith('42["auth",')), 'auth event');
});

test('polling session that never polls again is closed (sid unknown afterwards)', { timeout: 10000 }, async () => {
  const srv = await startServer(HB);
  for (const p of ['/socket.io/', '/engine.io/']) {
    const { sid, open } = await pollingHandshake(srv.url, p);
    assert.equal(open.pingInterval, 300);
    assert.equal(open.pingTimeout, 200);
    assert.deepEqual(open.upgrades, ['websocket']);
    await sleep(1500); // time is the test: > pingInterval + pingTimeout, with margin
    const res = await fetch(`${srv.url}${p}?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`);
    assert.equal(res.status, 400, `${p}: session must be gone`);
    assert.deepEqual(await res.json(), { code: 1, message: 'Session ID unknown' });
  }
});

test('client reconnects by itself after the server is killed and restarted on the same port', { timeout: 20000 }, async () => {
  const srv1 = await startServer([]);
  const port = srv1.port;
  const s = await connect(srv1.url, {
    reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0,
  });
  await withTimeout(new Promise((r) => (s.io.engine.transport.name === 'websocket' ? r()
    : s.io.engine.once('upgrade', r))), 5000, 'upgrade to websocket');
  const firstId = s.id;
  let connects = 1;
  s.on('connect', () => { connects++; });
  const disc = once(s, 'disconnect', 5000);
  await srv1.stop('SIGKILL');
  const [reason] = await disc;
  assert.ok(['transport close', 'transport error', 'ping timeout'].includes(reason), `reason ${reason}`);

  await once(s.io, 'reconnect_error', 5000); // the client failed at least one reconnection attempt
  const srv2 = await startServer(['--listen', `127.0.0.1:${port}`]);
  assert.equal(srv2.port, port);
  await waitUntil(() => connects >= 2, 10000, 'the client to reconnect (second "connect")');
  assert.equal(s.connected, true);
  assert.notEqual(s.id, firstId);
  const back = once(s, 'message-back', 5000);
  s.emit('message', 'after restart', Buffer.from([1, 2, 3]));
  assert.deepEqual(await back, ['after restart', Buffer.from([1, 2, 3])]);
});
