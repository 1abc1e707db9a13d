// The network sink of `ragpulse watch --hub` against answers today's hub cannot give on cue: a
// stand-in hub (node:http on loopback, answering chunked as a proxy might) refuses the token
// (401) before accepting, and refuses one event as invalid (400 with its index, as the hub's
// POST /api/events does). Checked: every
// request carries `Authorization: Bearer <token>` and a JSON batch; a 401 keeps the events
// queued and retried (the log says why), then they arrive in order; a refused event is dropped
// alone, logged, and the ones around it still arrive once, in order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitUntil, USE_REF } from './helpers.mjs';
import { scratch, startWatch } from './watch-helpers.mjs';

const SKIP = USE_REF && 'ragpulse only (RP_TEST_SERVER=ref)';

async function standInHub(decide) {
  const accepted = [];
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const r = { method: req.method, url: req.url, headers: req.headers, body };
      requests.push(r);
      const batch = req.method === 'POST' ? JSON.parse(body) : null;
      const [status, answer] = decide(r, batch, requests.length);
      if (status === 200 && batch) accepted.push(...batch);
      const out = JSON.stringify(answer ?? (batch ? { ids: batch.map((_, i) => accepted.length - batch.length + i + 1) } : { events: [] }));
      // Chunked, as a proxy in front of the hub may answer (no content-length).
      res.writeHead(status, { 'content-type': 'application/json' });
      res.write(out.slice(0, 5));
      res.end(out.slice(5));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, accepted, requests, close: () => server.close() };
}

describe('ragpulse watch --hub: token, refusals', { skip: SKIP }, () => {
  it('sends the bearer token, keeps events through a 401, drops only an event refused as invalid', async () => {
    const work = scratch();
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    let refuseToken = 2;
    let refusedInvalid = 0;
    const hub = await standInHub((r, batch) => {
      if (r.method !== 'POST') return [200, { events: [] }];
      if (refuseToken > 0) {
        refuseToken--;
        return [401, { error: 'unauthorized: token expired' }];
      }
      const bad = batch.findIndex((e) => e.type === 'file:completed' && e.file.name === 'b.txt');
      // Refused every time it comes (the batch is all or nothing, as the hub's).
      if (bad >= 0) {
        refusedInvalid++;
        return [400, { error: 'invalid event', field: 'file.chunks', rule: 'must be an integer >= 0', index: bad }];
      }
      return [200, null];
    });
    try {
      const w = await startWatch(work, [inbox, '--hub', hub.url, '--pipeline', 'tok-1', '--settle', '0.2',
        '--heartbeat', '60', '--index', path.join(work, 'index.db')], { RAGPULSE_TOKEN: 'tok.en.value' });
      writeFileSync(path.join(inbox, 'a.txt'), 'Alpha.');
      await waitUntil(() => hub.accepted.some((e) => e.type === 'file:completed' && e.file.name === 'a.txt'),
        15000, () => `a.txt delivered; requests: ${hub.requests.length}; log: ${w.stderr()}`);
      assert.match(w.stderr(), /refused the producer token \(HTTP 401: unauthorized: token expired\)/);
      writeFileSync(path.join(inbox, 'b.txt'), 'Bravo.');
      writeFileSync(path.join(inbox, 'c.txt'), 'Charlie.');
      await waitUntil(() => hub.accepted.some((e) => e.type === 'file:completed' && e.file.name === 'c.txt'),
        15000, () => `c.txt delivered; log: ${w.stderr()}`);
      assert.equal(await w.stop(), 0);
      await waitUntil(() => hub.accepted.at(-1)?.type === 'pipeline:offline', 5000,
        () => `pipeline:offline; got ${JSON.stringify(hub.accepted.map((e) => e.type))}; log: ${w.stderr()}`);

      for (const r of hub.requests) {
        assert.equal(r.headers.authorization, 'Bearer tok.en.value', `${r.method} ${r.url}`);
        if (r.method === 'POST') {
          assert.equal(r.url, '/api/events');
          assert.equal(r.headers['content-type'], 'application/json');
        }
      }
      // Once each, in order; the one refused event is the only gap.
      const seqs = hub.accepted.map((e) => e.meta.seq);
      const dropped = [];
      for (let i = 1; i < seqs.length; i++) {
        assert.ok(seqs[i] > seqs[i - 1], `in order: ${seqs}`);
        for (let s = seqs[i - 1] + 1; s < seqs[i]; s++) dropped.push(s);
      }
      assert.equal(seqs[0], 0);
      assert.equal(dropped.length, 1, `one event dropped: ${seqs}`);
      assert.ok(!hub.accepted.some((e) => e.type === 'file:completed' && e.file.name === 'b.txt'));
      assert.ok(hub.accepted.some((e) => e.type === 'file:progress' && e.file.name === 'b.txt'));
      assert.match(w.stderr(), /the hub refused an event \(dropped\): invalid event file\.chunks must be an integer >= 0/);
      // Refused at most twice: once inside a batch (the events before it go first), once alone.
      assert.ok(refusedInvalid >= 1 && refusedInvalid <= 2, `refused ${refusedInvalid} times`);
    } finally {
      hub.close();
    }
  });
});
