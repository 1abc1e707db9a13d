// `ragpulse emit`: a shell script's way to report an event. Runs the real CLI against a real
// hub and checks what the hub stored, what a subscribed viewer received, and the exit codes.
// `emit --channel` (publishing a channel message) runs against a small Node HTTP server that
// records each request and answers what the test tells it, so the request the CLI makes and
// its handling of every kind of answer are checked on their own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
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

// ---- emit --channel ----

/** emit with stdin given (input, then EOF) or left open (null: the CLI must not read it). */
function emitIn(args, env = {}, input = null) {
  return new Promise((resolve) => {
    const child = execFile(EMIT, ['emit', ...args], { env: { ...process.env, ...env }, timeout: 10000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code ?? err.signal : 0, stdout, stderr }));
    if (input !== null) child.stdin.end(input);
  });
}

/** A hub stand-in on 127.0.0.1: records each request; answers with `answer(req, body)` →
 *  [status, json]. */
async function recorder(answer) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const [status, json] = answer(req, body);
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { requests, url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

const ok = (offsets) => [200, { ok: true, channel: 'x', offsets, offset: offsets.at(-1) }];

test('emit --channel posts one message to /api/channels/NAME and prints the answer', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  let n = 0;
  const hub = await recorder((req) => { n += 1; return [200, { ok: true, channel: req.url.split('/').pop(), offsets: [100 + n], offset: 100 + n }]; });
  try {
    // A stream message: the value alone, the token as a bearer credential.
    const r = await emitIn(['--channel', 'chat:s1', '--hub', hub.url, '{"text":"hi \u00e9","n":[1,2.5]}'],
      { RAGPULSE_TOKEN: 'tok-123' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ok: true, channel: 'chat:s1', offsets: [101], offset: 101 });
    const q = hub.requests[0];
    assert.equal(q.method, 'POST');
    assert.equal(q.url, '/api/channels/chat:s1');
    assert.match(q.headers['content-type'], /^application\/json/);
    assert.equal(q.headers.authorization, 'Bearer tok-123');
    assert.deepEqual(JSON.parse(q.body), { value: { text: 'hi é', n: [1, 2.5] } });

    // A state change with every option, the value from stdin.
    const r2 = await emitIn(['--channel', 'crawl:demo-crawl', '--op', 'patch', '--key', 'progress', '--ttl-ms', '5000',
      '--hub', hub.url], {}, '{"status":"crawling","percent":40}\n');
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(JSON.parse(r2.stdout).offset, 102);
    assert.equal(hub.requests[1].url, '/api/channels/crawl:demo-crawl');
    assert.equal(hub.requests[1].headers.authorization, undefined, 'no token, no header');
    assert.deepEqual(JSON.parse(hub.requests[1].body),
      { op: 'patch', key: 'progress', value: { status: 'crawling', percent: 40 }, ttl_ms: 5000 });

    // A delete needs no value and does not wait for stdin (left open here); a scalar value is JSON too.
    const r3 = await emitIn(['--channel', 'tasks:proj-7', '--op', 'delete', '--key', 't1'], { RAGPULSE_HUB: hub.url });
    assert.equal(r3.code, 0, r3.stderr);
    assert.deepEqual(JSON.parse(hub.requests[2].body), { op: 'delete', key: 't1' });
    const r4 = await emitIn(['--channel', 'logs:mcp-1', '--op', 'append', '--hub', hub.url, '"a line"']);
    assert.equal(r4.code, 0, r4.stderr);
    assert.deepEqual(JSON.parse(hub.requests[3].body), { op: 'append', value: 'a line' });
    assert.equal(hub.requests.length, 4);
  } finally {
    await hub.close();
  }
});

test('emit --channel exits 1 with the hub\'s error when it refuses, 2 for a bad argument (nothing sent), 3 unreachable', { skip: process.env.RP_TEST_SERVER === 'ref' }, async () => {
  const answers = {
    '/api/channels/nope:1': [404, { error: 'unknown channel', channel: 'nope:1' }],
    '/api/channels/chat:s1': [400, { error: 'invalid message', field: 'messages[0].key', rule: 'absent on a stream' }],
    '/api/channels/chat:big': [413, { error: 'message too large', limit: 65536 }],
  };
  const hub = await recorder((req) => answers[req.url] || ok([1]));
  try {
    const r = await emitIn(['--channel', 'nope:1', '--hub', hub.url, '{}']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /HTTP 404/);
    assert.match(r.stderr, /unknown channel/);
    const r2 = await emitIn(['--channel', 'chat:s1', '--key', 'k', '--hub', hub.url, '1']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /HTTP 400.*messages\[0\]\.key/);
    const r3 = await emitIn(['--channel', 'chat:big', '--hub', hub.url, '1']);
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /HTTP 413.*message too large/);
    assert.equal(hub.requests.length, 3);

    for (const [args, why, input] of [
      [['--channel', 'chat s1', '1'], /invalid channel name/],
      [['--channel', 'chat/../x', '1'], /invalid channel name/],
      [['--channel', 'x'.repeat(129), '1'], /invalid channel name/],
      [['--channel', 'chat:s1', '--op', 'upsert', '1'], /--op must be set, patch, delete or append/],
      [['--channel', 'chat:s1', '{"text":'], /the value is not JSON/],
      [['--channel', 'chat:s1'], /the value is not JSON/, 'not json'],
      [['--channel', 'chat:s1', '--ttl-ms', '-5', '1'], /--ttl-ms wants/],
      [['--channel', 'chat:s1', '1', '2'], /one argument only/],
      [['--key', 'k', 'heartbeat', '--pipeline', 'p'], /go with --channel/],
    ]) {
      const b = await emitIn([...args, '--hub', hub.url], {}, input ?? null);
      assert.equal(b.code, 2, `${args.join(' ')}: ${b.stderr}`);
      assert.match(b.stderr, why);
    }
    assert.equal(hub.requests.length, 3, 'a bad argument sends nothing');
  } finally {
    await hub.close();
  }
  const r = await emitIn(['--channel', 'chat:s1', '--hub', 'http://127.0.0.1:9', '1']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /cannot reach the hub at http:\/\/127\.0\.0\.1:9/);
});
