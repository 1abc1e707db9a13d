// ragpulse behind TLS (issue 7): deploy/nginx-tls.conf run by Debian's nginx with a
// certificate made here by openssl, in front of `ragpulse serve` with auth on. A producer
// POSTs over https with its token; a websocket viewer (wss://) and a polling viewer (https)
// with viewer tokens receive the event; plain HTTP to the TLS port is refused by nginx; and
// ragpulse sees no token, no entry.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { BUILD_DIR, connect, startServer, waitUntil } from './helpers.mjs';
import { T } from './hub-helpers.mjs';
import { startNginx } from './nginx.mjs';

const SECRET = 'tls-test-secret-0123456789';
const token = (role, pipelines) => execFileSync(path.join(BUILD_DIR, 'ragpulse'), ['token', '--role', role, '--pipelines', pipelines],
  { env: { ...process.env, RAGPULSE_JWT_SECRET: SECRET } }).toString().trim();

/** https request trusting only our certificate. */
function req(url, { method = 'GET', headers = {}, body, ca }) {
  return new Promise((resolve, reject) => {
    const r = https.request(url, { method, headers, ca, timeout: T }, (res) => {
      let text = '';
      const tls = res.socket.getProtocol();
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text, tls }));
    });
    r.on('error', reject);
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.end(body);
  });
}

// nginx is started inside the test: startNginx's cleanup belongs to the test that started it.
async function setup() {
  let ca;
  const srv = await startServer(['--store', 'memory', '--jwt-secret', SECRET, '--max-connections-per-ip', '0'], { product: true });
  const lb = await startNginx('nginx-tls.conf', (conf, { dir, port }) => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    ca = readFileSync(`${dir}/cert.pem`);
    return conf.replace(/server 127\.0\.0\.1:\d+;.*$/m, `server 127.0.0.1:${srv.port};`)
      .replace(/listen 443 ssl;.*$/m, `listen 127.0.0.1:${port} ssl;`)
      .replace(/ssl_certificate .*$/m, `ssl_certificate ${dir}/cert.pem;`)
      .replace(/ssl_certificate_key .*$/m, `ssl_certificate_key ${dir}/key.pem;`);
  }, { scheme: 'https', probe: async (url) => (await req(`${url}/health`, { ca })).status === 200 });
  return { srv, lb, ca };
}

test('wss:// and https:// through nginx: tokens work, events arrive, TLS is the only way in', async () => {
  const { lb, ca } = await setup();
  const viewerToken = token('viewer', 'tls-p');
  const ws = await connect(`${lb.url}/pipeline`, { transports: ['websocket'], ca, auth: { token: viewerToken } });
  const poll = await connect(`${lb.url}/pipeline`, { transports: ['polling'], ca, auth: { token: viewerToken } });
  const got = { ws: [], poll: [] };
  ws.on('file:completed', (e) => got.ws.push(e.file.id));
  poll.on('file:completed', (e) => got.poll.push(e.file.id));
  for (const s of [ws, poll]) assert.equal((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'tls-p' })).ok, true);
  assert.equal(ws.io.engine.transport.name, 'websocket');

  const ev = { type: 'file:completed', pipeline_id: 'tls-p', pipeline_type: 'local_files', file: { id: 'doc.pdf', name: 'doc.pdf', chunks: 3 } };
  const anon = await req(`${lb.url}/api/events`, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify(ev) });
  assert.equal(anon.status, 401, 'no token, no entry, through the proxy too');
  const posted = await req(`${lb.url}/api/events`, {
    method: 'POST', ca, body: JSON.stringify(ev),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token('producer', 'tls-p')}` },
  });
  assert.equal(posted.status, 200, posted.text);
  assert.match(posted.tls, /^TLSv1\.[23]$/);
  await waitUntil(() => got.ws.length === 1 && got.poll.length === 1, T, 'the event over wss and https');
  assert.deepEqual(got, { ws: ['doc.pdf'], poll: ['doc.pdf'] });

  // Plain HTTP to the TLS port: nginx answers 400 ("plain HTTP request was sent to HTTPS port").
  const plain = await fetch(`http://127.0.0.1:${lb.port}/health`).then((r) => r.status).catch(() => 0);
  assert.equal(plain, 400);
});
