// `ragpulse emit` through what sits between a script and a hub in practice: a reverse proxy
// that serves the hub under a path prefix and answers chunked, reached by a name, by IPv4 or
// by an IPv6 literal; and a peer that answers garbage. The proxy is node:http on loopback in
// front of the real hub; what the hub stored is read back from the hub itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startServer } from './helpers.mjs';

const BUILD_DIR = process.env.RAGPULSE_BUILD_DIR || path.resolve('build');
const EMIT = path.join(BUILD_DIR, 'ragpulse');

function emit(args, env = {}) {
  return new Promise((resolve) => {
    execFile(EMIT, ['emit', ...args], { env: { ...process.env, ...env }, timeout: 15000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

// A proxy on host:0 that forwards PREFIX/... to the hub at target (stripping PREFIX) and
// sends the hub's answer back chunked (no Content-Length). Requests outside PREFIX get 404.
function startProxy(host, prefix, target) {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, host: req.headers.host });
    if (!req.url.startsWith(prefix + '/')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not under the prefix"}');
      return;
    }
    const up = http.request(new URL(req.url.slice(prefix.length), target),
      { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (ur) => {
        const headers = { ...ur.headers };
        delete headers['content-length'];
        res.writeHead(ur.statusCode, { ...headers, 'transfer-encoding': 'chunked' });
        ur.on('data', (d) => res.write(d));
        ur.on('end', () => res.end());
      });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve({ server, seen, port: server.address().port }));
  });
}

const closers = [];
after(async () => { for (const c of closers.reverse()) await c(); });

async function hubAndProxy(host, prefix) {
  const srv = await startServer([], { product: true });
  closers.push(() => srv.stop());
  const proxy = await startProxy(host, prefix, srv.url);
  closers.push(() => new Promise((r) => proxy.server.close(r)));
  return { srv, proxy };
}

test('emit reaches a hub behind a path prefix (chunked answer) and prints the stored id', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  const { srv, proxy } = await hubAndProxy('127.0.0.1', '/behind/ragpulse');
  const r = await emit(['heartbeat', '--pipeline', 'px-1', '--hub', `http://127.0.0.1:${proxy.port}/behind/ragpulse/`]);
  assert.equal(r.code, 0, r.stderr);
  const id = Number(r.stdout.trim());
  assert.ok(id >= 1, r.stdout);
  assert.deepEqual(proxy.seen.map((s) => `${s.method} ${s.url}`), ['POST /behind/ragpulse/api/events']);
  assert.equal(proxy.seen[0].host, `127.0.0.1:${proxy.port}`);
  const status = await (await fetch(srv.url + '/api/rag-status')).json();
  assert.equal(status.version, id);
  assert.deepEqual(status.pipelines.map((p) => p.id), ['px-1']);

  // Without the prefix the proxy answers 404 (chunked): emit says the hub refused it.
  const r2 = await emit(['heartbeat', '--pipeline', 'px-1', '--hub', `http://127.0.0.1:${proxy.port}`]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /HTTP 404/);
  assert.match(r2.stderr, /not under the prefix/);
});

test('emit reaches a hub through an IPv6 literal [::1]:PORT', { skip: process.env.RP_TEST_SERVER === 'ref' }, async (t) => {
  const probe = net.createServer();
  const v6 = await new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
  if (!v6) {
    t.skip('no ::1 on this machine');
    return;
  }
  const { srv, proxy } = await hubAndProxy('::1', '/rp');
  const r = await emit(['file:completed', '--pipeline', 'px-6', '--file', 'a.txt', '--chunks', '3',
    '--hub', `http://[::1]:${proxy.port}/rp`]);
  assert.equal(r.code, 0, r.stderr);
  const id = Number(r.stdout.trim());
  assert.ok(id >= 1, r.stdout);
  assert.equal(proxy.seen[0].host, `[::1]:${proxy.port}`);
  assert.equal(proxy.seen[0].url, '/rp/api/events');
  const status = await (await fetch(srv.url + '/api/rag-status')).json();
  assert.equal(status.version, id);
  assert.equal(status.pipelines[0].id, 'px-6');
});

test('emit exits 3 when the peer answers garbage instead of HTTP', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  const garbage = net.createServer((s) => { s.once('data', () => s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n')); });
  await new Promise((r) => garbage.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => garbage.close(r)));
  const r = await emit(['heartbeat', '--pipeline', 'p', '--hub', `http://127.0.0.1:${garbage.address().port}`]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /cannot reach the hub at http:\/\/127\.0\.0\.1:\d+: bad response/);
});

test('emit refuses a URL it cannot use with the reason, exit 3 as for an unreachable hub', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  for (const [url, why] of [['https://hub', /only http:\/\//], ['http://[::1', /closing '\]'/], ['http://h:99999', /port/]]) {
    const r = await emit(['heartbeat', '--pipeline', 'p', '--hub', url]);
    assert.equal(r.code, 3, url);
    assert.match(r.stderr, why, url);
  }
});
