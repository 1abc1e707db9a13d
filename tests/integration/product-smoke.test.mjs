// Smoke test of the product binary: `ragpulse serve --listen 127.0.0.1:0`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, withTimeout } from './helpers.mjs';

test('ragpulse serve: /health and `ping` ack on every namespace', { timeout: 15000 }, async () => {
  const srv = await startServer([], { product: true });
  const res = await fetch(`${srv.url}/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = await res.json();
  assert.equal(typeof body, 'object');
  assert.equal(body.status, 'ok');

  for (const nsp of ['/pipeline', '/', '/google_drive', '/local_files']) {
    for (const transports of [['websocket'], ['polling']]) {
      const s = await connect(srv.url + (nsp === '/' ? '' : nsp), { transports });
      const before = Date.now();
      const r = await withTimeout(s.timeout(3000).emitWithAck('ping'), 4000, `ping ack on ${nsp}`);
      const after = Date.now();
      assert.equal(typeof r, 'object', `${nsp}: ack is an object`);
      assert.equal(typeof r.time, 'number', `${nsp}: ack.time is a number`);
      // server clock = this machine's clock
      assert.ok(r.time >= before - 2000 && r.time <= after + 2000,
        `${nsp}: ack.time ${r.time} not within [${before}, ${after}] ± 2 s`);
      s.disconnect();
    }
  }
});
