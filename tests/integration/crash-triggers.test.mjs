// Issue 13 item 1: ordinary clients made the hub abort (`uv__check_before_write: Assertion
// 'nbufs > 0'`) whenever one try-write took every byte the flush had gathered (up to its
// 512 KiB cap) while more output stayed queued. Each test below is one of the reported
// triggers, with real peers: a stock socket.io-client viewer and a producer's POST, a stock
// client whose subscribe ack is over 512 KiB, and the built-in dashboard in Chromium. Each
// asserts what the client must see and that the hub is still up afterwards.
//
// The limits that would otherwise get in the way are set explicitly: the per-producer event
// rate is off (a test producer sends thousands of events at once), and a connection may have
// more than the default 1 MiB queued, so a large snapshot is never refused for its size.
// A batch holds at most 1,000 events (the hub's fixed limit), which is what trigger (a) sends.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, waitUntil, withTimeout } from './helpers.mjs';
import { hub, postEvents, request, T } from './hub-helpers.mjs';
import { launch, openPage } from './dashboard-helpers.mjs';

const LIMITS = ['--event-rate', '0', '--max-payload', '4000000', '--max-queued', String(64 << 20)];
const HALF_MIB = 512 * 1024;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** The hub answers /health 200 (it did not abort). */
async function assertAlive(srv) {
  let h;
  try {
    h = await request(`${srv.url}/health`);
  } catch (e) {
    h = { status: `no answer (${e.cause?.code ?? e.message})`, text: '' };
  }
  assert.equal(h.status, 200, `/health: ${h.status} ${h.text}\nhub stderr: ${srv.stderr().slice(-1500)}`);
}

// Six pipelines of 500 files: well under any page of a pipeline's files, so the snapshot
// stays over 512 KiB however snapshots are paged per pipeline. Each file carries a long name,
// a MIME type and a hash, so 3,000 of them are well over 1 MiB of JSON.
const PIPES = Array.from({ length: 6 }, (_, i) => `bulk-${i + 1}`);
const PER_PIPE = 500;
const fileId = (p, k) => `${p}/doc-${String(k).padStart(4, '0')}`;
const fileOf = (p, k) => ({
  id: fileId(p, k),
  name: `${'archive/quarterly-reports/'.repeat(8)}${p}-document-${String(k).padStart(4, '0')}.pdf`,
  stage: 'parse',
  size: 1048576 + k,
  mime_type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  hash: `sha256:${String(k).padStart(64, '0')}`,
});

/** Puts PER_PIPE files of every pipeline in flight (file:processing, POSTed in batches);
 * resolves with the last id. */
async function filesInFlight(base) {
  let last = 0;
  for (const p of PIPES) {
    const ev = (type, extra) => ({ type, pipeline_id: p, pipeline_type: 'local_files', ...extra });
    await postEvents(base, ev('pipeline:online', { heartbeat_interval: 60 }));
    for (let k = 0; k < PER_PIPE; k += 250) {
      const batch = [];
      for (let j = k; j < Math.min(PER_PIPE, k + 250); j++) batch.push(ev('file:processing', { file: fileOf(p, j) }));
      const r = await postEvents(base, batch);
      assert.equal(r.ids.length, batch.length);
      last = r.ids.at(-1);
    }
  }
  return last;
}

test('(a) one viewer on everything, one POST of 1,000 file:failed with 450-character errors: answered, all delivered, hub up', { timeout: 60000 }, async () => {
  const srv = await hub(LIMITS);
  const viewer = await connect(`${srv.url}/pipeline`, { transports: ['websocket'] });
  const got = new Set();
  viewer.on('file:failed', (e) => got.add(e.id));
  await viewer.timeout(T).emitWithAck('subscribe', {});

  const message = 'pdfminer: unexpected end of stream in object 12 0 R at offset 48213; '.repeat(8).slice(0, 450);
  assert.equal(message.length, 450);
  const batch = Array.from({ length: 1000 }, (_, i) => ({
    type: 'file:failed', pipeline_id: 'fail-1', pipeline_type: 'local_files',
    file: { id: `f${i}`, name: `f${i}.pdf`, error: { message, kind: 'parse' } },
  }));
  const r = await postEvents(srv.url, batch);
  assert.equal(r.ids.length, 1000, 'the POST is answered with every id');
  assert.equal(new Set(r.ids).size, 1000);

  await waitUntil(() => got.size === 1000, 30000, () => `viewer has ${got.size} of 1000 file:failed`);
  assert.deepEqual([...got].sort((x, y) => x - y), [...r.ids].sort((x, y) => x - y), 'the viewer got exactly the acked events');
  await assertAlive(srv);
});

test('(b) 3,000 files in flight, then a stock client subscribe {}: ack over 512 KiB, then sync; hub up', { timeout: 90000 }, async (t) => {
  const srv = await hub(LIMITS);
  const last = await filesInFlight(srv.url);

  const viewer = await connect(`${srv.url}/pipeline`, { transports: ['websocket'] });
  const synced = new Promise((resolve) => viewer.once('sync', (...args) => resolve(args)));
  const ack = await viewer.timeout(30000).emitWithAck('subscribe', {});
  const size = Buffer.byteLength(JSON.stringify(ack));
  assert.ok(size > HALF_MIB, `the ack is over 512 KiB (${size} bytes)`);
  t.diagnostic(`subscribe ack: ${size} bytes`);

  // Every pipeline is there; the files it lists are its own, once each, and agree with its
  // in-flight count (all of them, or fewer with a marker saying more exist).
  const pipes = new Map(ack.pipelines.map((p) => [p.id, p]));
  assert.deepEqual([...pipes.keys()].sort(), [...PIPES].sort());
  for (const id of PIPES) {
    const p = pipes.get(id);
    assert.equal(p.counters.in_flight, PER_PIPE, `${id}: in flight`);
    const ids = p.files.map((f) => f.id);
    assert.equal(new Set(ids).size, ids.length, `${id}: no file listed twice`);
    const mine = new Set(Array.from({ length: PER_PIPE }, (_, k) => fileId(id, k)));
    assert.ok(ids.every((f) => mine.has(f)), `${id}: only its own files are listed`);
    if (p.files_more === undefined || p.files_more === false || p.files_more === 0) {
      assert.equal(ids.length, PER_PIPE, `${id}: every file listed when no more are reported`);
    } else {
      assert.ok(ids.length < PER_PIPE, `${id}: ${ids.length} listed with files_more ${JSON.stringify(p.files_more)}`);
      if (typeof p.files_more === 'number') assert.equal(ids.length + p.files_more, PER_PIPE, `${id}: listed + more = in flight`);
    }
    const f0 = p.files.find((f) => f.id === fileId(id, 0));
    if (f0) assert.equal(f0.name, fileOf(id, 0).name, `${id}: a listed file keeps its name`);
  }

  const [sync] = await withTimeout(synced, T, 'sync after the ack');
  assert.ok(sync.version >= last, `sync gives the snapshot's version (${JSON.stringify(sync)}, last id ${last})`);
  await assertAlive(srv);
});

test('(c) the dashboard in Chromium with 3,000 files in flight renders every pipeline; hub up', { timeout: 120000 }, async (t) => {
  const srv = await hub(LIMITS);
  await filesInFlight(srv.url);

  // The biggest Socket.IO payload the page received, over either transport: the snapshot.
  let largest = 0;
  const { page, context, problems } = await openPage(browser, 'about:blank');
  page.on('websocket', (ws) => ws.on('framereceived', (f) => { largest = Math.max(largest, f.payload.length); }));
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/socket.io/')) r.body().then((b) => { largest = Math.max(largest, b.length); }, () => {});
  });
  try {
    await page.goto(`${srv.url}/`);
    for (const id of PIPES) {
      const count = page.locator(`[data-testid=pipeline-card][data-pipeline="${id}"] [data-testid=card-inflight]`);
      await waitUntil(async () => (await count.count()) === 1 && (await count.textContent()) === '500', 60000,
        async () => `card of ${id} showing 500 in flight (has ${await count.count() ? await count.textContent() : 'no card'})`);
    }
    await waitUntil(() => largest > HALF_MIB, T, () => `a payload over 512 KiB reached the page (largest ${largest})`);
    t.diagnostic(`largest Socket.IO payload the page got: ${largest} bytes`);
    assert.deepEqual(problems, []);
    await assertAlive(srv);
  } finally {
    await context.close();
  }
});
