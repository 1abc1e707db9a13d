// The fields, endpoints and names the seeds' documents use (issue 14, items 4, 6 and 10), as
// their clients would use them: /api/rag-status and /api/socket/info carry websocket_available,
// websocket_url (a base URL io() takes, the path apart), websocket_namespaces and fallback_mode;
// GET /api/socket/test is the round trip a page decides by, readable from any origin (as is
// /api/socket/info) while the rest of the Origin policy stays; WEBSOCKET_ROLLOUT_PERCENTAGE is
// read (--websocket-rollout wins); `ping` without an ack gets a `pong` event; --legacy-events
// names go out on the type namespaces too and are taken from producers; the hub's own beat is
// `hub:heartbeat`, apart from a pipeline's `heartbeat`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { BUILD_DIR, USE_REF, startServer, track, waitUntil, withTimeout } from './helpers.mjs';
import { T, getJson, hub, postEvents, request } from './hub-helpers.mjs';
import { launch } from './dashboard-helpers.mjs';

const SKIP = USE_REF && 'the pipeline hub exists only in ragpulse serve (RP_TEST_SERVER=ref)';
const ev = (type, pipeline, ptype, extra = {}) => ({ type, pipeline_id: pipeline, pipeline_type: ptype, ...extra });
const NAMESPACES = ['/pipeline', '/', '/google_drive', '/local_files'];

/** A GET with headers fetch may not set (Origin): {status, headers, json}. */
function rawGet(url, headers = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(body); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
  }), T, `GET ${url}`);
}

/** A socket recording every event it gets. */
function recorder(url, opts = {}) {
  const s = track(io(url, { forceNew: true, reconnection: false, transports: ['websocket'], ...opts }));
  const got = [];
  s.onAny((name, data) => got.push({ name, data }));
  return { s, got, names: () => got.map((g) => g.name) };
}

/** `ragpulse serve` with extra environment variables (spawned before startServer returns). */
async function hubWithEnv(env, args = []) {
  const saved = {};
  for (const k of Object.keys(env)) {
    saved[k] = process.env[k];
    process.env[k] = env[k];
  }
  try {
    return hub(args);
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

describe('/api/rag-status and /api/socket/info: the documents\' fields', { skip: SKIP }, () => {
  it('rag-status carries websocket_available, websocket_url, websocket_namespaces, fallback_mode', { timeout: 15000 }, async () => {
    const srv = await hub();
    await postEvents(srv.url, ev('pipeline:online', 'gdrive-dev', 'google_drive'));
    for (const q of ['', '?since=0']) {
      const st = await getJson(`${srv.url}/api/rag-status${q}`);
      assert.equal(st.websocket_available, true, q);
      assert.equal(st.websocket_url, `ws://127.0.0.1:${srv.port}`, q);
      assert.equal(st.websocket_path, '/socket.io/', q);
      assert.deepEqual([...st.websocket_namespaces].sort(), [...NAMESPACES].sort(), q);
      assert.equal(st.fallback_mode, false, q);
    }
    const http0 = await hub(['--websocket-rollout', '0']);
    assert.equal((await getJson(`${http0.url}/api/rag-status`)).fallback_mode, true, 'rollout 0: poll over HTTP');
    const polling = await hub(['--transports', 'polling']);
    const pst = await getJson(`${polling.url}/api/rag-status`);
    assert.equal(pst.websocket_available, false);
    assert.equal(pst.fallback_mode, false, 'Socket.IO over long-polling is still the live path');
  });

  it('socket/info\'s websocket_url is a base URL io() connects with, to every namespace it lists', { timeout: 15000 }, async () => {
    const srv = await hub();
    const info = await getJson(`${srv.url}/api/socket/info`);
    assert.equal(info.websocket_url, `ws://127.0.0.1:${srv.port}`);
    assert.equal(info.websocket_path, '/socket.io/');
    assert.equal(info.path, '/socket.io/');
    assert.deepEqual(info.websocket_namespaces, info.namespaces);
    assert.equal(info.fallback_mode, false);
    for (const nsp of info.websocket_namespaces) {
      const url = nsp === '/' ? info.websocket_url : info.websocket_url + nsp;
      const r = recorder(url, { path: info.websocket_path, transports: ['websocket', 'polling'] });
      await withTimeout(new Promise((resolve, reject) => {
        r.s.once('connect', resolve);
        r.s.once('connect_error', reject);
      }), T, `io(${url})`);
      r.s.disconnect();
    }
    // Behind a TLS proxy that says so, the URL is wss://.
    const tls = await rawGet(`${srv.url}/api/socket/info`, { 'x-forwarded-proto': 'https', host: 'hub.example:443' });
    assert.equal(tls.json.websocket_url, 'wss://hub.example:443');
    // fallback_mode follows the rollout for a client id.
    const zero = await hub(['--websocket-rollout', '0']);
    const z = await getJson(`${zero.url}/api/socket/info?client_id=abc`);
    assert.equal(z.mode, 'http');
    assert.equal(z.fallback_mode, true);
  });
});

describe('/api/socket/test and cross-origin pages', { skip: SKIP }, () => {
  it('answers the round trip: ok, what to use, the echo, the server time', { timeout: 15000 }, async () => {
    const srv = await hub();
    const t = await getJson(`${srv.url}/api/socket/test?t=abc-123`);
    assert.equal(t.ok, true);
    assert.equal(t.use, 'websocket');
    assert.equal(t.echo, 'abc-123');
    assert.ok(!Number.isNaN(Date.parse(t.server_time)));
    assert.equal(t.origin, null);
    assert.equal(t.origin_allowed, true);
    assert.equal(t.auth_required, false);
    assert.equal(t.websocket_url, `ws://127.0.0.1:${srv.port}`);
    assert.equal(t.fallback_mode, false);
    assert.equal((await request(`${srv.url}/api/socket/test`, { method: 'POST', body: '{}' })).status, 405);
    const zero = await hub(['--websocket-rollout', '0']);
    const z = await getJson(`${zero.url}/api/socket/test?client_id=c1`);
    assert.deepEqual([z.ok, z.use, z.fallback_mode], [true, 'http', true]);
  });

  it('a page of another origin reads socket/info and socket/test (why it may not connect); the rest stays refused', { timeout: 15000 }, async () => {
    const srv = await hub();
    const origin = 'http://localhost:3000';
    for (const p of ['/api/socket/info', '/api/socket/test']) {
      const r = await rawGet(`${srv.url}${p}`, { origin });
      assert.equal(r.status, 200, `${p}: ${r.body}`);
      assert.equal(r.headers['access-control-allow-origin'], '*', p);
      assert.equal(r.headers['access-control-allow-credentials'], undefined, `${p}: no credentials`);
      assert.equal(r.json.origin, origin);
      assert.equal(r.json.origin_allowed, false);
      assert.match(r.json.cors_hint, /--cors-origin http:\/\/localhost:3000/);
      assert.match(r.json.cors_hint, /SOCKET_IO_CORS_ORIGIN=http:\/\/localhost:3000/);
    }
    const t = (await rawGet(`${srv.url}/api/socket/test`, { origin })).json;
    assert.deepEqual([t.ok, t.use], [false, 'none']);
    // The policy itself is unchanged: the data and the socket are still refused (the refusal
    // unreadable by the page, as before), its body and the log saying what to start with.
    const before = (await getJson(`${srv.url}/api/rag-status`)).version;
    const st = await rawGet(`${srv.url}/api/rag-status`, { origin });
    assert.equal(st.status, 403);
    assert.equal(st.headers['access-control-allow-origin'], undefined, 'the refusal grants nothing');
    assert.match(st.json.error, /start the server with --cors-origin http:\/\/localhost:3000 \(or SOCKET_IO_CORS_ORIGIN=/);
    await waitUntil(() => /refused .*to allow it: --cors-origin http:\/\/localhost:3000/.test(srv.stderr()), T, 'the log line');
    const poll = await rawGet(`${srv.url}/socket.io/?EIO=4&transport=polling`, { origin });
    assert.equal(poll.status, 403);
    assert.equal((await getJson(`${srv.url}/api/rag-status`)).version, before, 'nothing stored');
    // Listed, the page gets its usual CORS headers (with credentials) and ok.
    const listed = await hub(['--cors-origin', origin]);
    const lt = await rawGet(`${listed.url}/api/socket/test`, { origin });
    assert.equal(lt.headers['access-control-allow-origin'], origin);
    assert.equal(lt.headers['access-control-allow-credentials'], 'true');
    assert.deepEqual([lt.json.ok, lt.json.origin_allowed, lt.json.cors_hint], [true, true, undefined]);
  });
});

describe('WEBSOCKET_ROLLOUT_PERCENTAGE', { skip: SKIP }, () => {
  const ids = Array.from({ length: 40 }, (_, i) => `c-${i}`);
  const modes = async (base) => {
    const out = new Set();
    for (const id of ids) out.add((await getJson(`${base}/api/socket/info?client_id=${id}`)).mode);
    return out;
  };

  it('is read like --websocket-rollout; the option wins; a bad value stops serve with the variable named', { timeout: 20000 }, async () => {
    const zero = await hubWithEnv({ WEBSOCKET_ROLLOUT_PERCENTAGE: '0' });
    assert.equal((await getJson(`${zero.url}/api/socket/info`)).rollout_percent, 0);
    assert.deepEqual(await modes(zero.url), new Set(['http']));
    const both = await hubWithEnv({ WEBSOCKET_ROLLOUT_PERCENTAGE: '0' }, ['--websocket-rollout', '100']);
    assert.equal((await getJson(`${both.url}/api/socket/info`)).rollout_percent, 100);
    assert.deepEqual(await modes(both.url), new Set(['websocket']));
    const r = await new Promise((resolve) => execFile(path.join(BUILD_DIR, 'ragpulse'),
      ['serve', '--listen', '127.0.0.1:0', '--store', 'memory'],
      { env: { ...process.env, WEBSOCKET_ROLLOUT_PERCENTAGE: 'half' }, timeout: 10000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr })));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /WEBSOCKET_ROLLOUT_PERCENTAGE wants a number from 0 to 100, got 'half'/);
  });
});

describe('ping without an ack', { skip: SKIP }, () => {
  it('is answered by a pong event; with an ack by the ack only', { timeout: 15000 }, async () => {
    const srv = await hub();
    const r = recorder(`${srv.url}/google_drive`);
    await withTimeout(new Promise((resolve) => r.s.once('connect', resolve)), T, 'connect');
    const before = Date.now();
    r.s.emit('ping', { sent: 42 });
    await waitUntil(() => r.names().includes('pong'), T, 'the pong event');
    const pong = r.got.find((g) => g.name === 'pong').data;
    assert.ok(pong.time >= before - 60000 && pong.time <= Date.now() + 60000, `server time ${pong.time}`);
    assert.deepEqual(pong.echo, { sent: 42 });
    const ack = await r.s.timeout(T).emitWithAck('ping', {});
    assert.equal(typeof ack.time, 'number');
    await r.s.timeout(T).emitWithAck('ping', {}); // barrier
    assert.equal(r.names().filter((n) => n === 'pong').length, 1, 'no pong for a ping with an ack');
  });
});

describe('--legacy-events on the type namespaces', { skip: SKIP }, () => {
  it('a listener on /google_drive gets the legacy names too; a producer\'s legacy names are taken as current ones', { timeout: 20000 }, async () => {
    const srv = await hub(['--legacy-events']);
    const l = recorder(`${srv.url}/google_drive`);
    await waitUntil(() => l.names().includes('snapshot'), T, 'the automatic subscription');
    const p = recorder(`${srv.url}/google_drive`);
    await withTimeout(new Promise((resolve) => p.s.once('connect', resolve)), T, 'producer connect');
    const send = (name, data) => p.s.timeout(T).emitWithAck(name, data);
    const file = { id: 'd1', name: 'Plan.gdoc' };
    const acks = [
      await send('pipeline:status', { pipeline_id: 'gdrive-dev', status: 'online' }),
      await send('pipeline:file_processing_started', { pipeline_id: 'gdrive-dev', file }),
      await send('pipeline:file_completed', { pipeline_id: 'gdrive-dev', file: { ...file, chunks: 3 } }),
      await send('pipeline:status', { pipeline_id: 'gdrive-dev', status: 'running' }),
      await send('pipeline:file_failed', { type: 'pipeline:file_failed', pipeline_id: 'gdrive-dev', file: { id: 'd2', name: 'x', error: 'boom' } }),
    ];
    for (const a of acks) assert.equal(typeof a.id, 'number', JSON.stringify(a));
    const stored = (await getJson(`${srv.url}/api/events?pipeline=gdrive-dev`)).events.map((e) => e.type).reverse();
    assert.deepEqual(stored, ['pipeline:online', 'file:processing', 'file:completed', 'status:update', 'file:failed']);
    await waitUntil(() => l.names().includes('pipeline:file_failed'), T, 'the legacy file_failed');
    const names = l.names().filter((n) => n.startsWith('pipeline:') || n.startsWith('file:') || n === 'status:update');
    assert.deepEqual(names, [
      'pipeline:online', 'pipeline:status', 'file:processing', 'pipeline:file_processing_started',
      'file:completed', 'pipeline:file_completed', 'status:update', 'pipeline:status', 'file:failed', 'pipeline:file_failed',
    ]);
    const legacy = l.got.find((g) => g.name === 'pipeline:file_completed').data;
    assert.equal(legacy.file.chunks, 3);
    assert.equal(legacy.pipeline_type, 'google_drive');
    // The other type's namespace does not carry them.
    const other = recorder(`${srv.url}/local_files`);
    await waitUntil(() => other.names().includes('snapshot'), T, 'local_files subscription');
    await send('pipeline:file_processing_started', { pipeline_id: 'gdrive-dev', file: { id: 'd3', name: 'y' } });
    await waitUntil(() => l.names().filter((n) => n === 'pipeline:file_processing_started').length === 2, T, 'second legacy');
    await other.s.timeout(T).emitWithAck('ping', {}); // barrier
    assert.ok(!other.names().some((n) => n.startsWith('pipeline:file')), `local_files got ${other.names()}`);
  });

  it('without --legacy-events a legacy name is refused with how to take it, and nothing is sent', { timeout: 15000 }, async () => {
    const srv = await hub();
    const l = recorder(`${srv.url}/google_drive`);
    await waitUntil(() => l.names().includes('snapshot'), T, 'the automatic subscription');
    const p = recorder(`${srv.url}/google_drive`);
    await withTimeout(new Promise((resolve) => p.s.once('connect', resolve)), T, 'producer connect');
    const a = await p.s.timeout(T).emitWithAck('pipeline:file_completed', { pipeline_id: 'g', file: { id: 'a', name: 'a' } });
    assert.equal(a.error, 'invalid event');
    assert.match(a.rule, /legacy name: serve --legacy-events/);
    await postEvents(srv.url, ev('file:completed', 'g', 'google_drive', { file: { id: 'a', name: 'a' } }));
    await waitUntil(() => l.names().includes('file:completed'), T, 'the current name');
    await l.s.timeout(T).emitWithAck('ping', {});
    assert.ok(!l.names().includes('pipeline:file_completed'), 'no legacy names without the option');
    assert.equal((await getJson(`${srv.url}/api/events?pipeline=g`)).events.length, 1, 'only the current-name event stored');
  });
});

describe('the hub\'s beat is hub:heartbeat', { skip: SKIP }, () => {
  it('apart from a pipeline\'s heartbeat; under --legacy-events also sent as heartbeat with source hub', { timeout: 20000 }, async () => {
    for (const legacy of [false, true]) {
      const srv = await hub(['--server-heartbeat', '0.2', ...(legacy ? ['--legacy-events'] : [])]);
      const l = recorder(`${srv.url}/local_files`);
      await waitUntil(() => l.names().includes('snapshot'), T, 'subscribed');
      await postEvents(srv.url, ev('heartbeat', 'loc-1', 'local_files'));
      await waitUntil(() => l.names().filter((n) => n === 'hub:heartbeat').length >= 2 &&
        l.got.some((g) => g.name === 'heartbeat' && g.data.pipeline_id === 'loc-1'), T, 'both beats');
      const hubBeat = l.got.find((g) => g.name === 'hub:heartbeat').data;
      assert.equal(hubBeat.source, 'hub');
      assert.equal(typeof hubBeat.version, 'number');
      assert.equal(hubBeat.id, undefined);
      const asHeartbeat = l.got.filter((g) => g.name === 'heartbeat');
      const fromHub = asHeartbeat.filter((g) => g.data.source === 'hub');
      assert.ok(asHeartbeat.some((g) => g.data.pipeline_id === 'loc-1' && typeof g.data.id === 'number'));
      if (legacy) assert.ok(fromHub.length >= 1, 'legacy: the old name too');
      else assert.equal(fromHub.length, 0, 'heartbeat is a pipeline\'s only');
      await srv.stop();
    }
  });
});

// The documents' Next.js page on another port, in Chromium: a node server on 127.0.0.2 stands in
// for :3000. The page asks /api/socket/info first, as 004's "Connection Management" does, then
// connects with io(websocket_url + namespace, {path}) and listens without subscribing.
const require = createRequire(import.meta.url);
const SIO_JS = readFileSync(path.join(path.dirname(require.resolve('socket.io-client/package.json')), 'dist', 'socket.io.min.js'));
const PAGE = `<!doctype html><meta charset="utf-8"><title>next</title><script src="/sio.js"></script><script>
const hub = new URLSearchParams(location.search).get('hub');
const out = (window.__out = { events: [] });
(async () => {
  try {
    out.info = await (await fetch(hub + '/api/socket/info?client_id=page-1')).json();
    out.test = await (await fetch(hub + '/api/socket/test?t=page')).json();
  } catch (e) { out.fetchError = String(e); }
  if (!out.info || !out.info.origin_allowed) { out.done = true; return; }
  const s = io(out.info.websocket_url + '/google_drive', { path: out.info.websocket_path, transports: ['websocket'] });
  s.onAny((name, ev) => { if (name !== 'hub:heartbeat') out.events.push(name + ' ' + (ev && ev.pipeline_id || '')); });
  s.on('connect_error', (e) => { out.connectError = String(e.message); out.done = true; });
  s.on('snapshot', () => { out.done = true; });
})();
</script>`;

async function startPageServer() {
  const server = http.createServer((req, res) => {
    if (req.url === '/sio.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(SIO_JS);
    } else {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.2', resolve));
  return { url: `http://127.0.0.2:${server.address().port}`, close: () => { server.closeAllConnections(); server.close(); } };
}

describe('a dashboard on another port, in Chromium', { skip: SKIP }, () => {
  it('reads why it may not connect; with --cors-origin it connects from socket/info alone', { timeout: 60000 }, async () => {
    const browser = await launch();
    const pages = await startPageServer();
    try {
      const run = async (srv) => {
        const context = await browser.newContext();
        const page = await context.newPage();
        await page.goto(`${pages.url}/?hub=${encodeURIComponent(srv.url)}`);
        await page.waitForFunction(() => window.__out && window.__out.done, null, { timeout: T * 2 });
        const out = await page.evaluate(() => window.__out);
        await context.close();
        return out;
      };
      const refused = await run(await hub());
      assert.equal(refused.fetchError, undefined, 'socket/info and socket/test are readable from another origin');
      assert.equal(refused.info.origin_allowed, false);
      assert.match(refused.info.cors_hint, new RegExp(`--cors-origin ${pages.url}`));
      assert.deepEqual([refused.test.ok, refused.test.use, refused.test.echo], [false, 'none', 'page']);

      const srv = await hub(['--cors-origin', pages.url]);
      await postEvents(srv.url, ev('pipeline:online', 'gdrive-dev', 'google_drive'));
      const allowed = await run(srv);
      assert.equal(allowed.connectError, undefined);
      assert.deepEqual([allowed.info.origin_allowed, allowed.test.ok, allowed.test.use], [true, true, 'websocket']);
      assert.ok(allowed.events.includes('snapshot '), `events: ${allowed.events}`);
    } finally {
      pages.close();
      await browser.close();
    }
  });
});
