// Files in flight are bounded and snapshots are paged (issue 13 item 4). An event that would
// add a file past --max-files-in-flight (one pipeline) or --max-files-total (all) is refused
// with a clear answer, counted, and leaves nothing behind; events for files in flight always
// pass. A snapshot lists a bounded page of each pipeline's files with the total and a cursor;
// GET /api/pipelines/ID/files and the socket's `files` give the rest, each file once. And the
// proof: with 1,000,000 files in flight, /health answers while snapshots are being served.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { connect, REPO_DIR, USE_REF, waitUntil } from './helpers.mjs';
import { T, hub, request, getJson, postEvents, requestJson } from './hub-helpers.mjs';

const SKIP = USE_REF && 'the pipeline hub exists only in ragpulse serve (RP_TEST_SERVER=ref)';
const P = (id) => ({ pipeline_id: id, pipeline_type: 'local_files' });
const processing = (pid, id) => ({ type: 'file:processing', ...P(pid), file: { id, name: `${id}.pdf` } });
const fileEv = (type, pid, id, extra = {}) => ({ type, ...P(pid), file: { id, name: `${id}.pdf`, ...extra } });

async function metric(base, name) {
  const r = await request(`${base}/metrics`);
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(r.text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

/** The ack of `event`, with the client's own deadline (socket.io-client's timeout()). */
function emit(sock, event, arg) {
  return sock.timeout(T).emitWithAck(event, arg);
}

describe('bounds on files in flight', { skip: SKIP }, () => {
  it('a new file past --max-files-in-flight is refused with the bound named, counted, nothing stored', { timeout: 20000 }, async () => {
    const srv = await hub(['--max-files-in-flight', '3', '--max-files-total', '5']);
    await postEvents(srv.url, ['a', 'b', 'c'].map((f) => processing('docs-1', f)));
    const before = await getJson(`${srv.url}/api/rag-status`);
    // A batch that would pass the bound is refused whole: its first event is for a tracked file.
    const r = await requestJson(`${srv.url}/api/events`, {
      method: 'POST', body: [fileEv('file:progress', 'docs-1', 'a', { progress: 0.5 }), processing('docs-1', 'd')],
    });
    assert.equal(r.status, 429, r.text);
    assert.deepEqual(r.json, {
      error: 'too many files in flight', field: 'file.id', limit: 'files_in_flight', index: 1,
      rule: 'pipeline docs-1 has 3 files in flight (at most 3: --max-files-in-flight)',
    });
    const after = await getJson(`${srv.url}/api/rag-status`);
    assert.equal(after.version, before.version, 'nothing stored');
    assert.deepEqual(after.pipelines, before.pipelines.map((p) => ({ ...p, heartbeat_age_ms: after.pipelines[0].heartbeat_age_ms })));
    assert.equal(await metric(srv.url, 'ragpulse_limit_hits_total{limit="files_in_flight"}'), 1);
    assert.equal(await metric(srv.url, 'ragpulse_files_in_flight'), 3);
    // Events for files in flight still pass; a finished file makes room for a new one.
    await postEvents(srv.url, [fileEv('file:progress', 'docs-1', 'a', { progress: 0.5 }),
      fileEv('file:processing', 'docs-1', 'b'), fileEv('file:completed', 'docs-1', 'c', { chunks: 1 }),
      fileEv('file:failed', 'docs-1', 'b', { error: 'bad page' })]);
    await postEvents(srv.url, [processing('docs-1', 'd'), processing('docs-1', 'e')]);
    const s = await getJson(`${srv.url}/api/rag-status`);
    assert.equal(s.pipelines[0].counters.in_flight, 3);
    assert.deepEqual(s.pipelines[0].files.map((f) => f.id), ['a', 'd', 'e']);
  });

  it('a new file past --max-files-total is refused over HTTP and to a socket producer, in the same shape', { timeout: 20000 }, async () => {
    const srv = await hub(['--max-files-in-flight', '10', '--max-files-total', '4']);
    await postEvents(srv.url, [processing('p1', 'a'), processing('p1', 'b'), processing('p2', 'a'), processing('p2', 'b')]);
    const r = await requestJson(`${srv.url}/api/events`, { method: 'POST', body: processing('p3', 'a') });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.limit, 'files_total');
    assert.equal(r.json.rule, '4 files are in flight in all pipelines (at most 4: --max-files-total)');
    assert.equal(r.json.index, undefined, 'one event, no index');
    const prod = await connect(`${srv.url}/pipeline`);
    const ack = await emit(prod, 'file:processing', processing('p1', 'c'));
    assert.deepEqual(ack, {
      error: 'too many files in flight', field: 'file.id', limit: 'files_total',
      rule: '4 files are in flight in all pipelines (at most 4: --max-files-total)',
    });
    const ok = await emit(prod, 'file:progress', fileEv('file:progress', 'p1', 'a', { progress: 0.2 }));
    assert.equal(typeof ok.id, 'number', JSON.stringify(ok));
    assert.equal(await metric(srv.url, 'ragpulse_limit_hits_total{limit="files_total"}'), 2);
    const s = await getJson(`${srv.url}/api/rag-status`);
    assert.deepEqual(s.pipelines.map((p) => p.id), ['p1', 'p2'], 'the refused pipeline p3 was never created');
    assert.equal(s.pipelines[0].files.find((f) => f.id === 'a').progress, 0.2);
    prod.close();
  });

  it('replaying the store at start never refuses: a lowered bound only affects new events', { timeout: 30000 }, async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-fif-'));
    try {
      const store = ['--store', `sqlite:${path.join(dir, 'hub.db')}`];
      const { startServer } = await import('./helpers.mjs');
      let srv = await startServer([...store], { product: true });
      await postEvents(srv.url, ['a', 'b', 'c', 'd'].map((f) => processing('docs-1', f)));
      await srv.stop();
      srv = await startServer([...store, '--max-files-in-flight', '2'], { product: true });
      const s = await getJson(`${srv.url}/api/rag-status`);
      assert.equal(s.pipelines[0].counters.in_flight, 4);
      const r = await requestJson(`${srv.url}/api/events`, { method: 'POST', body: processing('docs-1', 'e') });
      assert.equal(r.status, 429, r.text);
      await postEvents(srv.url, fileEv('file:completed', 'docs-1', 'a'));
      await srv.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('paged snapshots', { skip: SKIP }, () => {
  // --max-queued 65536: a snapshot may carry 16 KiB of file JSON, far fewer than 3,000 files.
  const N = 3000;
  async function loaded() {
    const srv = await hub(['--max-queued', '65536']);
    for (let i = 0; i < N; i += 1000) {
      await postEvents(srv.url, Array.from({ length: 1000 }, (_, k) => processing('big', `f${String(i + k).padStart(5, '0')}`)));
    }
    await postEvents(srv.url, [processing('small', 'x'), processing('small', 'y')]);
    return srv;
  }

  it('a snapshot lists a bounded page per pipeline, oldest first, with the total and a cursor', { timeout: 30000 }, async () => {
    const srv = await loaded();
    const r = await request(`${srv.url}/api/rag-status`);
    assert.ok(r.text.length < 65536 / 2, `snapshot of ${r.text.length} bytes`);
    const [big, small] = r.json.pipelines;
    assert.equal(big.counters.in_flight, N);
    assert.ok(big.files.length >= 10 && big.files.length < N, `${big.files.length} files listed`);
    assert.equal(big.files[0].id, 'f00000');
    assert.equal(big.files_more, true);
    assert.equal(big.files_next, big.files.at(-1).id);
    assert.deepEqual(small.files.map((f) => f.id), ['x', 'y'], 'a small pipeline is listed whole');
    assert.equal(small.files_more, false);
    assert.equal(small.files_next, undefined);
    assert.deepEqual(big.stages, { queued: N });
  });

  it('GET /api/pipelines/ID/files and the socket `files` give every file exactly once across pages', { timeout: 30000 }, async () => {
    const srv = await loaded();
    const seen = new Map();
    let after = null;
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 100, 'paging ends');
      const q = after ? `?after=${encodeURIComponent(after)}&limit=700` : '?limit=700';
      const page = await getJson(`${srv.url}/api/pipelines/big/files${q}`);
      assert.equal(page.in_flight, N);
      for (const f of page.files) seen.set(f.id, (seen.get(f.id) ?? 0) + 1);
      if (page.next === null) break;
      after = page.next;
    }
    assert.equal(seen.size, N);
    assert.ok([...seen.values()].every((n) => n === 1), 'each file once');

    const sock = await connect(`${srv.url}/`);
    const sub = await emit(sock, 'subscribe', {});
    assert.equal(sub.ok, true);
    const big = sub.pipelines.find((p) => p.id === 'big');
    const ids = big.files.map((f) => f.id);
    for (let next = big.files_next; next;) {
      const page = await emit(sock, 'files', { pipeline_id: 'big', after: next, limit: 1000 });
      assert.equal(page.pipeline_id, 'big');
      assert.ok(page.version >= sub.version);
      ids.push(...page.files.map((f) => f.id));
      next = page.next;
    }
    assert.equal(ids.length, N);
    assert.equal(new Set(ids).size, N);
    sock.close();
  });

  it('bad paging requests get a clear answer', { timeout: 30000 }, async () => {
    const srv = await hub();
    await postEvents(srv.url, [processing('p', 'a'), processing('p', 'b')]);
    for (const [q, status, error] of [
      ['/api/pipelines/p/files?limit=0', 400, 'limit must be 1 to 1000'],
      ['/api/pipelines/p/files?limit=1001', 400, 'limit must be 1 to 1000'],
      ['/api/pipelines/p/files?limit=x', 400, 'limit must be 1 to 1000'],
      ['/api/pipelines/nope/files', 404, 'no pipeline nope'],
      ['/api/pipelines/p/files?after=zz', 410, 'file zz is not in flight any more: page again from the start (no after)'],
    ]) {
      const r = await request(`${srv.url}${q}`);
      assert.equal(r.status, status, `${q}: ${r.text}`);
      assert.deepEqual(r.json, { error }, q);
    }
    const page = await getJson(`${srv.url}/api/pipelines/p/files?limit=1`);
    assert.deepEqual([page.files.map((f) => f.id), page.next], [['a'], 'a']);
    const sock = await connect(`${srv.url}/local_files`);
    assert.deepEqual(await emit(sock, 'files', { pipeline_id: 'p', limit: 0 }), { error: 'limit must be 1 to 1000' });
    assert.deepEqual(await emit(sock, 'files', 'p'), { error: 'files takes {pipeline_id, after?: file id, limit?: 1 to 1000}' });
    const all = await emit(sock, 'files', { pipeline_id: 'p' });
    assert.deepEqual([all.files.map((f) => f.id), all.next], [['a', 'b'], null]);
    sock.close();
  });
});

// The scale proof runs on the release build: a million events under ASan would take minutes.
// RAGPULSE_RELEASE_DIR, else ./build of the repository; skipped when neither has the binary.
const RELEASE = path.join(process.env.RAGPULSE_RELEASE_DIR || path.join(REPO_DIR, 'build'), 'ragpulse');

describe('1,000,000 files in flight', { skip: SKIP || (!existsSync(RELEASE) && `no release build at ${RELEASE}`) }, () => {
  it('/health answers while snapshots are served over HTTP and to socket subscribers', { timeout: 120000 }, async () => {
    const { startServer } = await import('./helpers.mjs');
    const srv = await startServer(['--store', 'memory', '--max-files-in-flight', '1000000', '--max-files-total', '1000000',
      '--event-rate', '0', '--rate-limit', '0'], { product: true, bin: RELEASE });
    const TOTAL = 1_000_000;
    const BATCH = 1000;
    let next = 0;
    async function feeder() {
      while (next < TOTAL) {
        const start = next;
        next += BATCH;
        const body = JSON.stringify(Array.from({ length: BATCH }, (_, k) => processing('scale', `file-${start + k}`)));
        const r = await request(`${srv.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, ms: 30000 });
        assert.equal(r.status, 200, r.text.slice(0, 300));
      }
    }
    await Promise.all(Array.from({ length: 4 }, feeder));
    assert.equal(await metric(srv.url, 'ragpulse_files_in_flight'), TOTAL);

    // Snapshots in a loop, over HTTP and as subscribe acks, while /health is asked.
    let stop = false;
    let served = 0;
    async function snapshots() {
      while (!stop) {
        const r = await request(`${srv.url}/api/rag-status`, { ms: 30000 });
        assert.equal(r.status, 200);
        assert.equal(r.json.pipelines[0].counters.in_flight, TOTAL);
        served++;
      }
    }
    async function subscribes() {
      const sock = await connect(`${srv.url}/`);
      while (!stop) {
        const ack = await emit(sock, 'subscribe', {});
        assert.equal(ack.ok, true);
        assert.equal(ack.pipelines[0].files_more, true);
        served++;
      }
      sock.close();
    }
    const load = [snapshots(), snapshots(), subscribes(), subscribes()];
    try {
      await waitUntil(() => served >= 4, 30000, 'snapshots being served');
      for (let i = 0; i < 20; i++) {
        // That it answered, not how fast: request() gives up after T (5 s) and fails the test.
        const h = await request(`${srv.url}/health`);
        assert.equal(h.status, 200, h.text);
        assert.equal(h.json.status, 'ok');
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }
    const rss = /VmRSS:\s+(\d+) kB/.exec((await import('node:fs')).readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8'));
    console.log(`# 1,000,000 files in flight: server RSS ${rss ? Math.round(rss[1] / 1024) : '?'} MiB, ${served} snapshots served`);
    await srv.stop();
  });
});
