// The HTTP fallback's `?since=` reads the same durable log as everything else: deltas that
// reach back beyond the in-memory history (--history) come from the store, in order, and
// paged with `more`; without a store the client gets the whole state with `reset: true`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, USE_REF } from './helpers.mjs';

const SKIP = USE_REF && 'ragpulse only';
const ev = { type: 'heartbeat', pipeline_id: 'since-1', pipeline_type: 'local_files' };
const post = (url) => fetch(url + '/api/events', {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ev),
  signal: AbortSignal.timeout(5000),
}).then((r) => r.json());
const get = (url) => fetch(url, { signal: AbortSignal.timeout(5000) }).then((r) => r.json());

test('since older than the in-memory history is served from the store', { skip: SKIP }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-since-'));
  try {
    const srv = await startServer(['--store', `sqlite:${path.join(dir, 'x.db')}`, '--history', '3'], { product: true });
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push((await post(srv.url)).id);
    const old = await get(`${srv.url}/api/rag-status?since=${ids[1]}`);
    assert.deepEqual(old.events.map((e) => e.id), ids.slice(2));
    assert.equal(old.version, ids[9]);
    assert.equal(old.more, false);
    assert.equal(old.reset, undefined);
    const recent = await get(`${srv.url}/api/rag-status?since=${ids[7]}`);
    assert.deepEqual(recent.events.map((e) => e.id), ids.slice(8));
    await srv.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without a store, since older than the history answers with the whole state and reset', { skip: SKIP }, async () => {
  const srv = await startServer(['--store', 'memory', '--history', '3'], { product: true });
  const ids = [];
  for (let i = 0; i < 10; i++) ids.push((await post(srv.url)).id);
  const r = await get(`${srv.url}/api/rag-status?since=${ids[1]}`);
  assert.equal(r.reset, true);
  assert.equal(r.version, ids[9]);
  assert.equal(r.pipelines[0].id, 'since-1');
  await srv.stop();
});
