// `ragpulse emit`: a shell script's way to report an event. Runs the real CLI against a real
// hub and checks what the hub stored, what a subscribed viewer received, and the exit codes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { startServer, connect, withTimeout } from './helpers.mjs';

const BUILD_DIR = process.env.RAGPULSE_BUILD_DIR || path.resolve('build');
const EMIT = path.join(BUILD_DIR, 'ragpulse');

function emit(args, env = {}) {
  return new Promise((resolve) => {
    execFile(EMIT, ['emit', ...args], { env: { ...process.env, ...env }, timeout: 10000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

let srv;
after(async () => { await srv?.stop(); });

test('emit reports an event, prints its id, and a subscribed viewer sees it', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  srv = await startServer([], { product: true });
  const viewer = await connect(srv.url + '/pipeline', { transports: ['websocket'] });
  await viewer.timeout(5000).emitWithAck('subscribe', { pipeline_id: 'sh-1' });
  const got = new Promise((resolve) => viewer.once('file:progress', resolve));
  const r = await emit(['file:progress', '--pipeline', 'sh-1', '--type', 'local_files', '--file', 'a b.pdf',
    '--progress', '0.4', '--stage', 'chunk', '--size', '1234', '--hub', srv.url]);
  assert.equal(r.code, 0, r.stderr);
  const id = Number(r.stdout.trim());
  assert.ok(id >= 1);
  const ev = await withTimeout(got, 5000, 'file:progress at the viewer');
  assert.equal(ev.id, id);
  assert.deepEqual(ev.file, { id: 'a b.pdf', name: 'a b.pdf', size: 1234, progress: 0.4, stage: 'chunk' });
  const status = await (await fetch(srv.url + '/api/rag-status')).json();
  assert.equal(status.version, id);
  assert.equal(status.pipelines[0].files[0].progress, 0.4);

  // RAG_PIPELINE_ID and RAGPULSE_HUB stand in for the flags, as existing scripts use them.
  const r2 = await emit(['file:failed', '--type', 'local_files', '--file', 'a b.pdf', '--error', 'corrupt PDF',
    '--error-kind', 'parse'], { RAG_PIPELINE_ID: 'sh-1', RAGPULSE_HUB: srv.url });
  assert.equal(r2.code, 0, r2.stderr);
  const failures = await (await fetch(srv.url + '/api/failures?pipeline=sh-1')).json();
  assert.equal(failures.groups[0].sample, 'corrupt PDF');
  assert.equal(failures.groups[0].kind, 'parse');
  viewer.disconnect();
});

test('emit refuses a bad event with the field and the rule, and nothing reaches the hub', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  srv = await startServer([], { product: true });
  const before = (await (await fetch(srv.url + '/api/rag-status')).json()).version;
  const r = await emit(['file:progress', '--pipeline', 'sh-1', '--file', 'x', '--progress', '1.5', '--hub', srv.url]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /file\.progress/);
  assert.match(r.stderr, /from 0 to 1/);
  const r3 = await emit(['nonsense:type', '--pipeline', 'p', '--hub', srv.url]);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /type/);
  const after = (await (await fetch(srv.url + '/api/rag-status')).json()).version;
  assert.equal(after, before);
});

test('without --pipeline or RAG_PIPELINE_ID the id is TYPE:HOSTNAME, the same on every run', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  srv = await startServer([], { product: true });
  const want = `local_files:${os.hostname()}`.slice(0, 128).replace(/[^A-Za-z0-9._:-]/g, '_');
  for (const type of ['pipeline:online', 'heartbeat']) {
    const r = await emit([type, '--type', 'local_files', '--hub', srv.url], { RAG_PIPELINE_ID: '' });
    assert.equal(r.code, 0, r.stderr);
  }
  const r = await emit(['heartbeat', '--hub', srv.url], { RAG_PIPELINE_ID: '', RAG_PIPELINE_TYPE: '' });
  assert.equal(r.code, 0, r.stderr);
  const status = await (await fetch(srv.url + '/api/rag-status')).json();
  assert.deepEqual(status.pipelines.map((p) => p.id).sort(), [`custom:${os.hostname()}`.slice(0, 128).replace(/[^A-Za-z0-9._:-]/g, '_'), want].sort(),
    'one pipeline per type and host, whatever the number of runs');
  const mine = status.pipelines.find((p) => p.id === want);
  assert.equal(mine.type, 'local_files');
  // RAG_PIPELINE_ID still names it when set.
  const r2 = await emit(['heartbeat', '--type', 'local_files', '--hub', srv.url], { RAG_PIPELINE_ID: 'gdrive-dev' });
  assert.equal(r2.code, 0, r2.stderr);
  const ids = (await (await fetch(srv.url + '/api/rag-status')).json()).pipelines.map((p) => p.id);
  assert.ok(ids.includes('gdrive-dev'));
});

test('emit says clearly when the hub cannot be reached', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  const r = await emit(['heartbeat', '--pipeline', 'p', '--hub', 'http://127.0.0.1:9']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /cannot reach the hub at http:\/\/127\.0\.0\.1:9/);
});
