// The durable event log of `ragpulse serve --store sqlite:PATH`:
// - crash safety: producers over HTTP (single events and batches) and over Socket.IO
//   (emitWithAck, several in flight) send at once, the server is killed with SIGKILL mid-stream;
//   after a restart every acked event is in the log (HTTP paging and the sqlite3 CLI agree), ids
//   are unique and increasing, the file is intact (PRAGMA integrity_check), the state, version
//   and file registry match the log, and new ids continue after the old ones;
// - replay: state (/api/rag-status), version/ETag, deltas, failures and history survive a kill;
// - retention: --retain-events N keeps the last N events in the store; the live state stays right;
// - the file registry: GET /api/files?pipeline=ID lists every file with its last status.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, track, waitUntil, withTimeout, sleep } from './helpers.mjs';
import { requestJson as request, getJson, postEvents as post, sqlite3Cli as sqlite } from './hub-helpers.mjs';

const T = 5000;
const tmpDirs = [];
function tmpDbPath() {
  const d = mkdtempSync(path.join(os.tmpdir(), 'rp-store-dur-'));
  tmpDirs.push(d);
  return path.join(d, 'x.db');
}
after(() => { for (const d of tmpDirs) rmSync(d, { recursive: true, force: true }); });

function scripted(pid, i, type = 'local_files') {
  if (i === 0) return { type: 'pipeline:online', pipeline_id: pid, pipeline_type: type, heartbeat_interval: 60 };
  const n = Math.floor((i - 1) / 3);
  const file = { id: `f${n}`, name: `doc-${n}.pdf` };
  switch ((i - 1) % 3) {
    case 0: return { type: 'file:processing', pipeline_id: pid, pipeline_type: type, file: { ...file, hash: `sha256:${pid}:${n}` } };
    case 1: return { type: 'file:progress', pipeline_id: pid, pipeline_type: type, file: { ...file, progress: 0.5, stage: 'embed' } };
    default: return { type: 'file:completed', pipeline_id: pid, pipeline_type: type, file: { ...file, chunks: 3 } };
  }
}

/** Every event of one pipeline from GET /api/events, paging with `before` (newest first). */
async function readLog(base, pipeline, pageSize = 100) {
  const ids = [];
  const events = [];
  let before = null;
  for (let pages = 0; pages < 1000; pages++) {
    const q = `pipeline=${encodeURIComponent(pipeline)}&limit=${pageSize}${before === null ? '' : `&before=${before}`}`;
    const page = await getJson(`${base}/api/events?${q}`);
    for (const e of page.events) {
      if (ids.length) assert.ok(e.id < ids[ids.length - 1], `history newest first: ${e.id} after ${ids[ids.length - 1]}`);
      ids.push(e.id);
      events.push(e);
    }
    if (page.events.length < pageSize) {
      assert.equal(page.next_before, undefined, 'no next_before on the last page');
      break;
    }
    assert.equal(page.next_before, page.events[page.events.length - 1].id, 'next_before is the oldest id of the page');
    before = page.next_before;
  }
  return events.reverse();
}

/** What the state of a pipeline must be after applying `events` (oldest first). */
function expectedFromLog(events) {
  const files = new Map();
  let processed = 0;
  for (const e of events) {
    if (e.type === 'file:completed') { processed++; files.delete(e.file.id); } else if (e.file) files.set(e.file.id, e);
  }
  return { processed, in_flight: files.size, last_event_id: events.length ? events[events.length - 1].id : 0 };
}

function registryFromLog(events) {
  const reg = new Map();
  for (const e of events) {
    if (!e.file) continue;
    const prev = reg.get(e.file.id);
    reg.set(e.file.id, {
      file_id: e.file.id,
      name: e.file.name,
      hash: e.file.hash ?? prev?.hash ?? null,
      status: { 'file:completed': 'completed', 'file:failed': 'failed' }[e.type] ?? 'processing',
      event_id: e.id,
      updated: Date.parse(e.ts),
    });
  }
  return [...reg.values()].sort((a, b) => (a.file_id < b.file_id ? -1 : 1));
}

function stripVolatile(snap) {
  const s = structuredClone(snap);
  delete s.server_time;
  for (const p of s.pipelines ?? []) {
    delete p.heartbeat_age_ms;
    delete p.late;
    if (p.activity) {
      const sum = (a) => a.reduce((x, y) => x + y, 0);
      p.activity = { completed: sum(p.activity.completed), failed: sum(p.activity.failed), chunks: sum(p.activity.chunks) };
    }
  }
  return s;
}

// ---- crash safety ---------------------------------------------------------------------------

/** The i-th scripted event, numbered in meta.seq so it can be found in the log without its id. */
const seqd = (pid, i) => ({ ...scripted(pid, i), meta: { seq: i } });

/** POSTs events of `pid` in a loop (singles and batches of 4) until stopped or refused. */
function httpProducer(base, pid) {
  const st = { acked: [], errors: 0, stop: false, i: 0 };
  st.done = (async () => {
    for (let n = 0; !st.stop; n++) {
      const batch = n % 2 === 1;
      const evs = Array.from({ length: batch ? 4 : 1 }, () => seqd(pid, st.i++));
      try {
        const r = await request(`${base}/api/events`, { method: 'POST', body: batch ? evs : evs[0], ms: 3000 });
        if (r.status !== 200) { st.errors++; break; }
        const ids = batch ? r.json.ids : [r.json.id];
        assert.equal(ids.length, evs.length);
        st.acked.push(...ids);
      } catch { st.errors++; break; } // the server died under us
    }
  })();
  return st;
}

/** Emits events of `pid` on /pipeline with up to `window` acks outstanding until stopped. */
async function socketProducer(base, pid, window = 8) {
  const s = track(io(`${base}/pipeline`, { forceNew: true, reconnection: false, transports: ['websocket'] }));
  await withTimeout(new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); }), T, 'producer connect');
  const st = { acked: [], errors: 0, stop: false, i: 0 };
  const lane = async () => {
    while (!st.stop && s.connected) {
      const ev = seqd(pid, st.i++);
      try {
        const ack = await s.timeout(3000).emitWithAck(ev.type, ev);
        if (typeof ack?.id !== 'number') { st.errors++; return; }
        st.acked.push(ack.id);
      } catch { st.errors++; return; }
    }
  };
  // One lane first so pipeline:online is the pipeline's first event; then the window.
  const first = seqd(pid, st.i++);
  st.acked.push((await s.timeout(T).emitWithAck(first.type, first)).id);
  st.done = Promise.all(Array.from({ length: window }, lane));
  return st;
}

describe('crash safety (SQLite)', () => {
  it('kill -9 mid-stream: every acked event is in the log, ids unique and increasing, file intact', { timeout: 30000 }, async (t) => {
    const db = tmpDbPath();
    const srv1 = await startServer(['--store', `sqlite:${db}`], { product: true });
    const http = ['cs-h0', 'cs-h1', 'cs-h2'].map((p) => httpProducer(srv1.url, p));
    const sock = await Promise.all(['cs-s0', 'cs-s1'].map((p) => socketProducer(srv1.url, p)));
    const all = [...http, ...sock];
    await waitUntil(() => all.every((p) => p.acked.length >= 20), 10000,
      () => `every producer to get 20 acks (${all.map((p) => p.acked.length)})`);
    await srv1.stop('SIGKILL'); // while requests and emits are in flight
    for (const p of all) p.stop = true;
    await withTimeout(Promise.all(all.map((p) => p.done)), 8000, 'producers to notice the kill');
    const pipelines = ['cs-h0', 'cs-h1', 'cs-h2', 'cs-s0', 'cs-s1'];
    const acked = all.flatMap((p) => p.acked);
    for (const p of all) {
      // Acks come back in commit order: each producer sees its ids increase (also with 8 in flight).
      for (let k = 1; k < p.acked.length; k++) {
        assert.ok(p.acked[k] > p.acked[k - 1], `a producer's acked ids increase: ${p.acked[k - 1]} then ${p.acked[k]}`);
      }
    }
    assert.equal(new Set(acked).size, acked.length, 'no id acked twice');

    // The file as the crash left it, read by the sqlite3 CLI.
    assert.equal(await sqlite(db, 'PRAGMA integrity_check'), 'ok');
    const rows = (await sqlite(db, "SELECT id || ' ' || ts || ' ' || json_extract(payload, '$.id') FROM events ORDER BY id"))
      .split('\n').filter(Boolean).map((l) => l.split(' ').map(Number));
    const rowIds = rows.map((r) => r[0]);
    for (let k = 0; k < rows.length; k++) {
      assert.equal(rows[k][2], rows[k][0], `payload id = row id (${rows[k][0]})`);
      if (k) assert.ok(rows[k][1] >= rows[k - 1][1], `ts does not go back with increasing ids (${rows[k][0]})`);
    }
    const stored = new Set(rowIds);
    const lost = acked.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `acked events missing from the log after kill -9 (${acked.length} acked, ${rowIds.length} stored)`);
    t.diagnostic(`${acked.length} events acked before the kill, ${rowIds.length} in the log`);

    // Restart on the same file: the log through the API, the state, the registry, new ids.
    const srv2 = await startServer(['--store', `sqlite:${db}`], { product: true });
    const health = await getJson(`${srv2.url}/health`);
    assert.equal(health.status, 'ok');
    assert.deepEqual(health.store, { kind: 'sqlite', ok: true });
    const maxId = Math.max(...rowIds);
    assert.equal(health.version, maxId, 'the version continues from the log');
    const snap = await getJson(`${srv2.url}/api/rag-status`);
    assert.equal(snap.version, maxId);
    const apiIds = [];
    for (const [k, pid] of pipelines.entries()) {
      const events = await readLog(srv2.url, pid, 97);
      apiIds.push(...events.map((e) => e.id));
      // A producer's events reach the log in the order sent, with no hole: a prefix of what it
      // sent (all it got acks for, perhaps some it did not). (A batch may end up partly stored:
      // the API reports that with null ids, so it is not checked as all-or-nothing here.)
      const seqs = events.map((e) => e.meta.seq);
      assert.deepEqual(seqs, seqs.map((_, j) => j), `${pid}: the log holds a prefix of what was sent`);
      assert.ok(seqs.length >= all[k].acked.length, `${pid}: at least the acked events`);
      const p = snap.pipelines.find((x) => x.id === pid);
      assert.ok(p, `pipeline ${pid} in the state`);
      const exp = expectedFromLog(events);
      assert.equal(p.counters.processed, exp.processed, `${pid}: processed matches the log`);
      assert.equal(p.counters.in_flight, exp.in_flight, `${pid}: in_flight matches the log`);
      assert.equal(p.last_event_id, exp.last_event_id, `${pid}: last_event_id matches the log`);
      const reg = await getJson(`${srv2.url}/api/files?pipeline=${pid}`);
      assert.deepEqual(reg.files, registryFromLog(events), `${pid}: the file registry matches the log`);
    }
    assert.deepEqual(apiIds.sort((a, b) => a - b), rowIds, '/api/events and the file hold the same events');
    const next = await post(srv2.url, scripted('cs-h0', 1000));
    assert.equal(next.id, maxId + 1, 'new ids continue after the last stored one');
    await srv2.stop();
    assert.equal(await sqlite(db, 'PRAGMA integrity_check'), 'ok');
  });
});

// ---- replay ---------------------------------------------------------------------------------

describe('replay at start (SQLite)', () => {
  it('state, version, ETag, deltas, failures and history continue where they were after kill -9', { timeout: 15000 }, async () => {
    const db = tmpDbPath();
    const srv1 = await startServer(['--store', `sqlite:${db}`], { product: true });
    const evs = [];
    for (let i = 0; i < 10; i++) evs.push(scripted('rp-a', i));
    for (let i = 0; i < 5; i++) evs.push(scripted('rp-b', i, 'google_drive'));
    evs.push({ type: 'file:failed', pipeline_id: 'rp-b', pipeline_type: 'google_drive',
      file: { id: 'f1', name: 'doc-1.pdf', error: { message: 'quota exceeded', kind: 'quota', code: 429, retryable: true } } });
    evs.push({ type: 'status:update', pipeline_id: 'rp-a', pipeline_type: 'local_files', status: 'idle',
      message: 'waiting', files_total: 10, files_pending: 7 });
    evs.push({ type: 'file:processing', pipeline_id: 'rp-a', pipeline_type: 'local_files', file: { id: 'big', name: 'big.bin', size: 12345, mime_type: 'application/octet-stream', hash: 'hbig' } });
    const ids = [];
    for (const e of evs) ids.push((await post(srv1.url, e)).id);
    const snap1 = await getJson(`${srv1.url}/api/rag-status`);
    const res1 = await request(`${srv1.url}/api/rag-status`);
    const etag1 = res1.headers.get('etag');
    const deltas1 = await getJson(`${srv1.url}/api/rag-status?since=${ids[ids.length - 4]}`);
    const failures1 = await getJson(`${srv1.url}/api/failures`);
    const histA1 = await getJson(`${srv1.url}/api/events?pipeline=rp-a&limit=1000`);
    await srv1.stop('SIGKILL');

    const srv2 = await startServer(['--store', `sqlite:${db}`], { product: true });
    const snap2 = await getJson(`${srv2.url}/api/rag-status`);
    assert.equal(snap2.version, ids[ids.length - 1]);
    assert.deepEqual(stripVolatile(snap2), stripVolatile(snap1), 'the state is rebuilt from the log');
    const res2 = await request(`${srv2.url}/api/rag-status`);
    assert.equal(res2.headers.get('etag'), etag1, 'the same ETag');
    const notModified = await fetch(`${srv2.url}/api/rag-status`, { headers: { 'if-none-match': etag1 } });
    assert.equal(notModified.status, 304, 'a client\'s ETag from before the restart is still current');
    assert.deepEqual(await getJson(`${srv2.url}/api/rag-status?since=${ids[ids.length - 4]}`), deltas1, 'deltas');
    assert.deepEqual(await getJson(`${srv2.url}/api/failures`), failures1, 'failure groups');
    assert.deepEqual(await getJson(`${srv2.url}/api/events?pipeline=rp-a&limit=1000`), histA1, 'history');
    const next = await post(srv2.url, scripted('rp-a', 10));
    assert.equal(next.id, ids[ids.length - 1] + 1, 'ids continue');
  });
});

// ---- retention ------------------------------------------------------------------------------

describe('retention (SQLite)', () => {
  it('--retain-events 5: the store keeps the last 5 events; the live state is unchanged', { timeout: 15000 }, async () => {
    const db = tmpDbPath();
    const srv = await startServer(['--store', `sqlite:${db}`, '--retain-events', '5'], { product: true });
    // One batch right after start: the first prune runs 1 s after start.
    const evs = Array.from({ length: 12 }, (_, i) => scripted('ret', i)); // online, 3 files done, the 4th in flight
    const { ids } = await post(srv.url, evs);
    const snapBefore = await getJson(`${srv.url}/api/rag-status`);
    await waitUntil(async () => (await getJson(`${srv.url}/api/events?pipeline=ret&limit=100`)).events.length === 5, 4000,
      'the prune to leave 5 events');
    const hist = await getJson(`${srv.url}/api/events?pipeline=ret&limit=100`);
    assert.deepEqual(hist.events.map((e) => e.id), ids.slice(-5).reverse(), 'the last 5, newest first');
    assert.equal(await sqlite(db, 'SELECT count(*) FROM events'), '5');
    const snap = await getJson(`${srv.url}/api/rag-status`);
    assert.deepEqual(stripVolatile(snap), stripVolatile(snapBefore), 'pruning the store does not change the live state');
    const p = snap.pipelines.find((x) => x.id === 'ret');
    assert.equal(p.counters.processed, 4 - 1);
    assert.equal(p.counters.in_flight, 1);
    assert.equal(p.last_event_id, ids[ids.length - 1]);
    assert.equal(snap.version, ids[ids.length - 1]);
    const next = await post(srv.url, scripted('ret', 12));
    assert.equal(next.id, ids[ids.length - 1] + 1, 'ids continue after a prune');
    // The registry is not part of the pruned log: all 4 files are still known.
    const reg = await getJson(`${srv.url}/api/files?pipeline=ret`);
    assert.deepEqual(reg.files.map((f) => f.file_id), ['f0', 'f1', 'f2', 'f3']);
  });

  // Pruned events are no longer in the log to replay: the state before the restart must still
  // come back whole (counters and recent lists built from pruned events included).
  it('--retain-events 5 then a restart: the state is what it was before the restart', { timeout: 15000 }, async () => {
    const db = tmpDbPath();
    const args = ['--store', `sqlite:${db}`, '--retain-events', '5'];
    const srv1 = await startServer(args, { product: true });
    await post(srv1.url, Array.from({ length: 12 }, (_, i) => scripted('ret2', i)));
    const snap1 = await getJson(`${srv1.url}/api/rag-status`);
    await waitUntil(async () => (await getJson(`${srv1.url}/api/events?pipeline=ret2&limit=100`)).events.length === 5, 4000,
      'the prune to leave 5 events');
    await srv1.stop('SIGKILL');
    const srv2 = await startServer(args, { product: true });
    const snap2 = await getJson(`${srv2.url}/api/rag-status`);
    assert.equal(snap2.version, snap1.version, 'the version survives');
    const p = snap2.pipelines.find((x) => x.id === 'ret2');
    assert.equal(p.counters.processed, 3, 'processed counter after the restart');
    assert.deepEqual(stripVolatile(snap2), stripVolatile(snap1));
  });
});

// ---- file registry --------------------------------------------------------------------------

describe('file registry (SQLite)', () => {
  it('GET /api/files lists each file with its last status, hash and event; survives a restart', { timeout: 15000 }, async () => {
    const db = tmpDbPath();
    const srv1 = await startServer(['--store', `sqlite:${db}`], { product: true });
    const base = { pipeline_id: 'reg', pipeline_type: 'local_files' };
    const ev = (type, file, extra = {}) => ({ type, ...base, file, ...extra });
    const sent = [
      { type: 'pipeline:online', ...base },
      ev('file:processing', { id: 'a', name: 'a.pdf', hash: 'sha256:aaa' }),
      ev('file:progress', { id: 'a', name: 'a.pdf', progress: 0.4 }),
      ev('file:completed', { id: 'a', name: 'a.pdf', chunks: 4 }),
      ev('file:processing', { id: 'b', name: 'b.docx', hash: 'sha256:bbb' }),
      ev('file:failed', { id: 'b', name: 'b.docx', error: 'parser crashed' }),
      ev('file:processing', { id: 'c', name: 'c.txt' }),
      ev('file:processing', { id: 'd', name: 'd.md', hash: 'sha256:d1' }),
      ev('file:completed', { id: 'd', name: 'd.md', hash: 'sha256:d2' }),
      { type: 'file:processing', pipeline_id: 'reg2', pipeline_type: 'google_drive', file: { id: 'a', name: 'other.pdf', hash: 'x' } },
    ];
    const { ids } = await post(srv1.url, sent);
    const reg = await getJson(`${srv1.url}/api/files?pipeline=reg`);
    const byId = Object.fromEntries(reg.files.map((f) => [f.file_id, f]));
    assert.deepEqual(reg.files.map((f) => f.file_id), ['a', 'b', 'c', 'd']);
    assert.deepEqual({ ...byId.a, updated: 0 }, { file_id: 'a', name: 'a.pdf', hash: 'sha256:aaa', status: 'completed', event_id: ids[3], updated: 0 });
    assert.deepEqual({ ...byId.b, updated: 0 }, { file_id: 'b', name: 'b.docx', hash: 'sha256:bbb', status: 'failed', event_id: ids[5], updated: 0 });
    assert.deepEqual({ ...byId.c, updated: 0 }, { file_id: 'c', name: 'c.txt', hash: null, status: 'processing', event_id: ids[6], updated: 0 });
    assert.deepEqual({ ...byId.d, updated: 0 }, { file_id: 'd', name: 'd.md', hash: 'sha256:d2', status: 'completed', event_id: ids[8], updated: 0 });
    const hist = await getJson(`${srv1.url}/api/events?pipeline=reg&limit=100`);
    for (const f of reg.files) {
      const e = hist.events.find((x) => x.id === f.event_id);
      assert.equal(f.updated, Date.parse(e.ts), `updated of ${f.file_id} is its last event's time (ms)`);
    }
    assert.deepEqual(reg.files, registryFromLog(await readLog(srv1.url, 'reg')));
    const reg2 = await getJson(`${srv1.url}/api/files?pipeline=reg2`);
    assert.deepEqual(reg2.files.map((f) => [f.file_id, f.name, f.hash, f.status]), [['a', 'other.pdf', 'x', 'processing']]);
    assert.deepEqual((await getJson(`${srv1.url}/api/files?pipeline=nobody`)).files, []);
    const bad = await request(`${srv1.url}/api/files`);
    assert.equal(bad.status, 400, `no ?pipeline: ${bad.status} ${bad.text}`);
    await srv1.stop('SIGKILL');
    const srv2 = await startServer(['--store', `sqlite:${db}`], { product: true });
    assert.deepEqual(await getJson(`${srv2.url}/api/files?pipeline=reg`), reg, 'the registry after a restart');
  });

  it('memory store: /api/files says it needs a store', { timeout: 10000 }, async () => {
    const srv = await startServer(['--store', 'memory'], { product: true });
    const r = await request(`${srv.url}/api/files?pipeline=x`);
    assert.equal(r.status, 404, r.text);
    assert.match(r.json.error, /store/);
    const h = await getJson(`${srv.url}/health`);
    assert.deepEqual(h.store, { kind: 'memory', ok: true });
  });
});
