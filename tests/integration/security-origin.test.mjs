// The Origin policy (issue 13, item 5): one rule for every transport. A page in real Chromium,
// served by a small node server on 127.0.0.2 (another origin, still loopback), tries what a
// hostile page would against a hub with its defaults: Socket.IO over websocket and over polling,
// reading the state, POSTing a forged event (text/plain, preflighted JSON, a form). Every try is
// refused with 403, counted in /metrics, and nothing reaches the durable log. With
// --cors-origin naming that page, the same page works. Raw clients (ws, fetch) show the rule
// itself: a foreign Origin gets 403 with the reason, the hub's own Origin or none gets in.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { BUILD_DIR, startServer, waitUntil, withTimeout } from './helpers.mjs';
import { T, getJson, request } from './hub-helpers.mjs';
import { launch } from './dashboard-helpers.mjs';
import { startNginx } from './nginx.mjs';

const require = createRequire(import.meta.url);
const SIO_JS = readFileSync(path.join(path.dirname(require.resolve('socket.io-client/package.json')), 'dist', 'socket.io.min.js'));
const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-origin-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let nstores = 0;

/** `ragpulse serve` with a SQLite store of its own (the durable log a forged event would reach). */
function hubWith(args = []) {
  return startServer([...args, '--store', `sqlite:${path.join(dir, `hub-${++nstores}.db`)}`], { product: true });
}

// The page another origin serves: it tries everything and leaves what happened in
// window.__results (done: true at the end). ?hub=URL&tag=T; forged pipelines are T-<how>.
const PAGE = `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<script src="/sio.js"></script>
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink"><input id="fi"></form>
<script>
const q = new URLSearchParams(location.search);
const hub = q.get('hub');
const tag = q.get('tag');
const ev = (id) => ({ type: 'pipeline:online', pipeline_id: id, pipeline_type: 'local_files' });
const results = (window.__results = {});
function sock(transport) {
  return new Promise((resolve) => {
    const s = io(hub + '/pipeline', { transports: [transport], reconnection: false, forceNew: true, timeout: 4000 });
    s.on('connect_error', (e) => { s.close(); resolve({ connected: false, error: String(e && e.message) }); });
    s.on('connect', async () => {
      try {
        const snap = await s.timeout(4000).emitWithAck('subscribe', {});
        const ack = await s.timeout(4000).emitWithAck('pipeline:online', ev(tag + '-' + transport));
        resolve({ connected: true, snapshot: Boolean(snap && snap.ok), id: ack && ack.id });
      } catch (e) {
        resolve({ connected: true, error: String(e) });
      }
      s.close();
    });
  });
}
async function attempt(name, fn) {
  try { results[name] = await fn(); } catch (e) { results[name] = { error: String(e) }; }
}
(async () => {
  await attempt('websocket', () => sock('websocket'));
  await attempt('polling', () => sock('polling'));
  await attempt('get', async () => {
    const r = await fetch(hub + '/api/rag-status');
    return { status: r.status, json: await r.json() };
  });
  await attempt('postText', async () => {
    const r = await fetch(hub + '/api/events', { method: 'POST', mode: 'no-cors',
      headers: { 'content-type': 'text/plain' }, body: JSON.stringify(ev(tag + '-text')) });
    return { type: r.type, status: r.status };
  });
  await attempt('postJson', async () => {
    const r = await fetch(hub + '/api/events', { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify(ev(tag + '-json')) });
    return { status: r.status, json: await r.json() };
  });
  await attempt('form', () => new Promise((resolve) => {
    // text/plain form encoding sends name=value: the '=' lands inside the message string.
    const body = JSON.stringify({ ...ev(tag + '-form'), message: '' });
    const input = document.getElementById('fi');
    input.name = body.slice(0, -2);
    input.value = '"}';
    const f = document.getElementById('f');
    f.action = hub + '/api/events';
    document.querySelector('iframe').addEventListener('load', () => resolve({ loaded: true }), { once: true });
    f.submit();
  }));
  results.done = true;
})();
</script>`;

/** The other origin: a node server on 127.0.0.2 serving PAGE and the stock client bundle. */
async function startElsewhere() {
  const server = http.createServer((req, res) => {
    if (req.url === '/sio.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(SIO_JS);
    } else if (req.url.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.2', resolve));
  const url = `http://127.0.0.2:${server.address().port}`;
  return { url, close: () => { server.closeAllConnections(); server.close(); } };
}

/** ragpulse_origin_refused_total by kind, and the events the hub accepted in all. */
async function counters(srv) {
  const text = (await request(`${srv.url}/metrics`)).text;
  const num = (re) => {
    let n = 0;
    for (const m of text.matchAll(re)) n += Number(m[1]);
    return n;
  };
  return {
    http: num(/^ragpulse_origin_refused_total\{kind="http"\} (\d+)$/gm),
    websocket: num(/^ragpulse_origin_refused_total\{kind="websocket"\} (\d+)$/gm),
    eventsIn: num(/^ragpulse_events_in_total\{[^}]*\} (\d+)$/gm),
  };
}

/** Loads PAGE from `elsewhere` against `hub` and returns its results once it is done. */
async function runPage(browser, elsewhere, srv, tag) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${elsewhere.url}/?hub=${encodeURIComponent(srv.url)}&tag=${tag}`);
    await page.waitForFunction(() => window.__results && window.__results.done, null, { timeout: 30000 });
    return await page.evaluate(() => window.__results);
  } finally {
    await context.close();
  }
}

/** A WebSocket upgrade with these headers: {ws} once open, or {status, body} when refused. */
function tryWs(url, headers = {}) {
  return withTimeout(new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => { req.destroy(); resolve({ status: res.statusCode, body }); });
    });
    ws.once('error', (e) => resolve({ error: e.message }));
  }), T, `websocket ${url}`);
}

const FORGED = ['websocket', 'polling', 'text', 'json', 'form'];
const REASON = /cross-origin request refused: Origin http:\/\/127\.0\.0\.2:\d+ is not this server's own \(Host 127\.0\.0\.1:\d+\)/;

describe('a page from another origin in Chromium', () => {
  let browser;
  let elsewhere;
  before(async () => {
    browser = await launch();
    elsewhere = await startElsewhere();
  });
  after(async () => {
    await browser?.close();
    elsewhere?.close();
  });

  it('default hub: every transport refused with 403, counted, and nothing stored', { timeout: 60000 }, async () => {
    const srv = await hubWith();
    const r = await runPage(browser, elsewhere, srv, 'forged');
    assert.equal(r.websocket.connected, false, `websocket: ${JSON.stringify(r.websocket)}`);
    assert.equal(r.polling.connected, false, `polling: ${JSON.stringify(r.polling)}`);
    assert.ok(r.get.error, `GET /api/rag-status must not be readable: ${JSON.stringify(r.get)}`);
    assert.equal(r.postText.type, 'opaque', JSON.stringify(r.postText));
    assert.ok(r.postJson.error, `preflighted POST must fail: ${JSON.stringify(r.postJson)}`);
    assert.equal(r.form.loaded, true);
    // The hub refused each one itself (403 before any handler), not only the browser.
    const c = await counters(srv);
    assert.ok(c.websocket >= 1, `websocket upgrades refused: ${JSON.stringify(c)}`);
    // polling handshake, GET, text/plain POST, the JSON POST's preflight, the form POST
    assert.ok(c.http >= 5, `HTTP requests refused: ${JSON.stringify(c)}`);
    assert.equal(c.eventsIn, 0, 'no event accepted');
    for (const how of FORGED) {
      const h = await getJson(`${srv.url}/api/events?pipeline=forged-${how}`);
      assert.deepEqual(h.events, [], `nothing stored for forged-${how}`);
    }
    assert.deepEqual((await getJson(`${srv.url}/api/rag-status`)).pipelines, []);
    const health = await getJson(`${srv.url}/health`);
    assert.equal(health.status, 'ok');
    await srv.stop();
  });

  it('hub with --cors-origin naming the page: the same page connects, reads and writes', { timeout: 60000 }, async () => {
    const srv = await hubWith(['--cors-origin', elsewhere.url]);
    const r = await runPage(browser, elsewhere, srv, 'allowed');
    for (const t of ['websocket', 'polling']) {
      assert.equal(r[t].connected, true, `${t}: ${JSON.stringify(r[t])}`);
      assert.equal(r[t].snapshot, true, `${t}: subscribe answered`);
      assert.equal(typeof r[t].id, 'number', `${t}: event acked: ${JSON.stringify(r[t])}`);
    }
    assert.equal(r.get.status, 200);
    assert.ok(Array.isArray(r.get.json.pipelines), 'the state is readable');
    assert.equal(r.postJson.status, 200, JSON.stringify(r.postJson));
    assert.equal(typeof r.postJson.json.id, 'number');
    assert.equal(r.form.loaded, true);
    const c = await counters(srv);
    assert.deepEqual([c.http, c.websocket], [0, 0], 'nothing refused for its Origin');
    for (const how of ['websocket', 'polling', 'json']) {
      const h = await getJson(`${srv.url}/api/events?pipeline=allowed-${how}`);
      assert.equal(h.events.length, 1, `allowed-${how} stored`);
    }
    // A text/plain body is still not an event (the API wants application/json): 415, not stored.
    for (const how of ['text', 'form']) {
      const h = await getJson(`${srv.url}/api/events?pipeline=allowed-${how}`);
      assert.deepEqual(h.events, [], `allowed-${how}: text/plain is not JSON`);
    }
    await srv.stop();
  });
});

describe('raw clients: the rule itself', () => {
  const foreign = 'http://127.0.0.2:9998';
  const requests = [
    ['GET', '/api/rag-status'],
    ['GET', '/health'],
    ['GET', '/metrics'],
    ['GET', '/'],
    ['GET', '/socket.io/?EIO=4&transport=polling'],
    ['OPTIONS', '/api/events'],
    ['POST', '/api/events', JSON.stringify({ type: 'pipeline:online', pipeline_id: 'raw', pipeline_type: 'local_files' })],
  ];
  // node:http rather than fetch: a test may set Host too.
  const send = (srv, [method, p, body], headers) => withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, agent: false,
      headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  }), T, `${method} ${p}`);

  it('a foreign Origin gets 403 with the reason on HTTP, polling and the websocket upgrade; nothing stored', { timeout: 30000 }, async () => {
    const srv = await hubWith();
    for (const origin of [foreign, 'null', `${srv.url}.evil`, `http://127.0.0.2:${srv.port}`, `http://127.0.0.1:${srv.port + 1}`]) {
      for (const rq of requests) {
        const r = await send(srv, rq, { Origin: origin });
        assert.equal(r.status, 403, `${rq[0]} ${rq[1]} from ${origin}: ${r.status} ${r.text}`);
        assert.equal(r.headers.get('access-control-allow-origin'), null);
        assert.match(r.json.error, /cross-origin request refused: Origin .* is not this server's own/);
      }
      const ws = await tryWs(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`, { Origin: origin });
      assert.equal(ws.status, 403, `websocket from ${origin}: ${JSON.stringify(ws)}`);
      assert.match(JSON.parse(ws.body).error, /cross-origin request refused/);
    }
    const r = await send(srv, requests[0], { Origin: foreign });
    assert.match(r.json.error, new RegExp(`Origin ${foreign} is not this server's own \\(Host 127\\.0\\.0\\.1:${srv.port}\\)`));
    const c = await counters(srv);
    assert.equal(c.websocket, 5);
    assert.equal(c.http, 5 * requests.length + 1);
    assert.equal(c.eventsIn, 0);
    assert.deepEqual((await getJson(`${srv.url}/api/events?pipeline=raw`)).events, []);
    await srv.stop();
  });

  it("the hub's own Origin (as its dashboard sends) and no Origin (non-browser clients) get in", { timeout: 30000 }, async () => {
    const srv = await hubWith();
    const local = `http://localhost:${srv.port}`;
    for (const headers of [{}, { Origin: srv.url }, { Origin: local, Host: `localhost:${srv.port}` }]) {
      for (const rq of requests) {
        const r = await send(srv, rq, headers);
        assert.ok(r.status === 200 || r.status === 204, `${rq[0]} ${rq[1]} with ${JSON.stringify(headers)}: ${r.status} ${r.text}`);
      }
    }
    for (const headers of [{}, { Origin: srv.url }]) {
      const ws = await tryWs(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`, headers);
      assert.ok(ws.ws, `websocket with ${JSON.stringify(headers)}: ${JSON.stringify(ws)}`);
      ws.ws.terminate();
    }
    const ws = await tryWs(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`, { Origin: local, Host: `localhost:${srv.port}` });
    assert.ok(ws.ws, `websocket to localhost with its own Origin: ${JSON.stringify(ws)}`);
    ws.ws.terminate();
    const c = await counters(srv);
    assert.deepEqual([c.http, c.websocket], [0, 0]);
    assert.equal((await getJson(`${srv.url}/api/events?pipeline=raw`)).events.length, 3);
    await srv.stop();
  });

  it('--cors-origin adds origins (comma list, repeatable) and keeps our own; * allows any with a warning', { timeout: 30000 }, async () => {
    const srv = await hubWith(['--cors-origin', 'http://a.example, http://b.example', '--cors-origin', 'http://localhost:3000']);
    const wsUrl = `ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`;
    for (const origin of ['http://a.example', 'http://b.example', 'http://localhost:3000', srv.url]) {
      const ws = await tryWs(wsUrl, { Origin: origin });
      assert.ok(ws.ws, `websocket from ${origin}: ${JSON.stringify(ws)}`);
      ws.ws.terminate();
      const r = await send(srv, requests[0], { Origin: origin });
      assert.equal(r.status, 200, `GET from ${origin}`);
      // Listed origins get CORS headers; our own needs none.
      assert.equal(r.headers.get('access-control-allow-origin'), origin === srv.url ? null : origin);
    }
    for (const origin of ['http://c.example', 'http://localhost:3001', foreign]) {
      const ws = await tryWs(wsUrl, { Origin: origin });
      assert.equal(ws.status, 403, `websocket from ${origin}: ${JSON.stringify(ws)}`);
      assert.equal((await send(srv, requests[0], { Origin: origin })).status, 403);
    }
    await srv.stop();

    const any = await hubWith(['--cors-origin', '*']);
    for (const origin of [foreign, 'null']) {
      const ws = await tryWs(`ws://127.0.0.1:${any.port}/socket.io/?EIO=4&transport=websocket`, { Origin: origin });
      assert.ok(ws.ws, `* lets ${origin} in: ${JSON.stringify(ws)}`);
      ws.ws.terminate();
    }
    await waitUntil(() => /--cors-origin \*: any web page can read and write this server/.test(any.stderr()), T, 'the * warning');
    await any.stop();
  });

  it('a --cors-origin entry that is not an origin stops the hub with a clear error', { timeout: 30000 }, async () => {
    for (const bad of ['http://localhost:3000/', 'localhost:3000', 'http://a.example,https://b.example/app']) {
      const r = await new Promise((resolve) => {
        execFile(path.join(BUILD_DIR, 'ragpulse'), ['serve', '--listen', '127.0.0.1:0', '--store', 'memory', '--cors-origin', bad],
          { timeout: 10000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr }));
      });
      assert.notEqual(r.code, 0, `--cors-origin ${bad} must be refused`);
      assert.match(r.stderr, /--cors-origin wants origins as a browser sends them, scheme:\/\/host\[:port\] with no path/);
    }
  });

  it("behind deploy/nginx.conf: the proxy's own origin gets in, a foreign one does not", { timeout: 30000 }, async () => {
    const srv = await hubWith();
    const lb = await startNginx('nginx.conf', (conf, { port }) => conf
      .replace(/^( *server 127\.0\.0\.1:\d+ .*\n)+/m, `        server 127.0.0.1:${srv.port};\n`)
      .replace(/listen 8080;.*$/m, `listen 127.0.0.1:${port};`),
    { probe: (url) => fetch(`${url}/health`).then((r) => r.status === 200) });
    const wsUrl = `ws://127.0.0.1:${lb.port}/socket.io/?EIO=4&transport=websocket`;
    const ok = await tryWs(wsUrl, { Origin: lb.url });
    assert.ok(ok.ws, `websocket through nginx with its origin: ${JSON.stringify(ok)}`);
    ok.ws.terminate();
    const get = await request(`${lb.url}/api/rag-status`, { headers: { Origin: lb.url } });
    assert.equal(get.status, 200, get.text);
    const bad = await tryWs(wsUrl, { Origin: foreign });
    assert.equal(bad.status, 403);
    await srv.stop();
  });
});
