// `ragpulse watch --hub URL --token T` against a hub with authentication on (issues 7 and 8):
// with a producer token for its pipeline the watcher's events are accepted and a viewer with a
// viewer token sees the file go through; with a viewer's token the hub refuses every POST (403),
// the watcher says why, keeps its events queued on disk and stores nothing in the hub.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BUILD_DIR, connect, startServer, waitUntil } from './helpers.mjs';
import { T, request } from './hub-helpers.mjs';
import { GOOD_STEPS, scratch, startWatch, steps } from './watch-helpers.mjs';

const SECRET = 'watch-auth-secret-0123456789';
const token = (role, pipelines) => execFileSync(path.join(BUILD_DIR, 'ragpulse'), ['token', '--role', role, '--pipelines', pipelines],
  { env: { ...process.env, RAGPULSE_JWT_SECRET: SECRET } }).toString().trim();

test('watch --hub with a producer token reports; with a viewer token it is refused and keeps its queue', async () => {
  const work = scratch();
  const inbox = path.join(work, 'inbox');
  mkdirSync(inbox);
  const hub = await startServer(['--store', 'memory', '--jwt-secret', SECRET], { product: true });
  const v = await connect(`${hub.url}/pipeline`, { transports: ['websocket'], auth: { token: token('viewer', 'files-auth') } });
  const got = [];
  v.onAny((name, ev) => { if (ev?.file?.name === 'a.txt') got.push({ name, ev }); });
  assert.equal((await v.timeout(T).emitWithAck('subscribe', { pipeline_id: 'files-auth' })).ok, true);

  const w = await startWatch(work, [inbox, '--hub', hub.url, '--pipeline', 'files-auth', '--settle', '0.2',
    '--heartbeat', '60', '--index', path.join(work, 'index.db')], { RAGPULSE_TOKEN: token('producer', 'files-auth') });
  writeFileSync(path.join(inbox, 'a.txt'), 'A document about the anteater.');
  await waitUntil(() => got.some((g) => g.name === 'file:completed'), 20000, () => `a.txt completed: ${w.stderr().slice(-2000)}`);
  assert.deepEqual(steps(got), GOOD_STEPS);
  assert.equal(await w.stop(), 0);

  // The same watcher with a viewer's token: 403 on every POST, nothing stored, the queue kept.
  const admin = { authorization: `Bearer ${token('admin', '')}` };
  const before = (await request(`${hub.url}/api/rag-status`, { headers: admin })).json.version;
  const work2 = scratch();
  const inbox2 = path.join(work2, 'inbox');
  mkdirSync(inbox2);
  const w2 = await startWatch(work2, [inbox2, '--hub', hub.url, '--pipeline', 'files-auth', '--settle', '0.2',
    '--heartbeat', '60', '--index', path.join(work2, 'index.db')], { RAGPULSE_TOKEN: token('viewer', 'files-auth') });
  writeFileSync(path.join(inbox2, 'b.txt'), 'B document about the badger.');
  await waitUntil(() => /403|forbidden/.test(w2.stderr()), 20000, () => `a refusal in the log: ${w2.stderr().slice(-2000)}`);
  assert.match(w2.stderr(), /viewers cannot send events/);
  const queue = path.join(work2, 'ragpulse-watch.queue');
  await waitUntil(() => existsSync(queue) && readFileSync(queue, 'utf8').includes('"b.txt"'), 20000,
    () => `b.txt's events kept in the queue: ${w2.stderr().slice(-1500)}`);
  await w2.stop();
  assert.equal((await request(`${hub.url}/api/rag-status`, { headers: admin })).json.version, before, 'nothing stored');
  await hub.stop();
});
