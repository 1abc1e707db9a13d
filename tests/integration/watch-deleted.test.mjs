// A file deleted after it completed is no longer listed as completed (issue 14, item 8): the
// watcher says `file:deleted` for each document it held (a file, a whole directory, a file
// deleted while the watcher was stopped), the hub's registry (/api/files) says `deleted`, the
// state (/api/rag-status recent_completed) drops it, and so does the dashboard in Chromium.
// Before, /api/files kept "completed" and the lists kept the file after its chunks were gone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, waitUntil, USE_REF } from './helpers.mjs';
import { getJson } from './hub-helpers.mjs';
import { launch, openPage } from './dashboard-helpers.mjs';
import { scratch, search, viewer, idleLine } from './watch-helpers.mjs';

const SKIP = USE_REF && 'the local-files pipeline exists only in ragpulse (RP_TEST_SERVER=ref)';
const PID = 'deleted-1';

let browser;
before(async () => { if (!SKIP) browser = await launch(); });
after(async () => { await browser?.close(); });

const registry = async (url) =>
  Object.fromEntries((await getJson(`${url}/api/files?pipeline=${PID}`)).files.map((f) => [f.name, f.status]));
const recent = async (url) =>
  (await getJson(`${url}/api/rag-status`)).pipelines.find((p) => p.id === PID)?.recent_completed.map((r) => r.name).sort();

describe('a deleted file is no longer listed as completed', { skip: SKIP }, () => {
  it('file:deleted; /api/files says deleted; rag-status and the dashboard drop it; also while stopped', async () => {
    const work = scratch('rp-deleted-');
    const inbox = path.join(work, 'inbox');
    mkdirSync(path.join(inbox, 'sub'), { recursive: true });
    const args = ['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch', inbox, '--pipeline', PID,
      '--settle', '0.2'];
    let srv = await startServer(args, { product: true });
    const v = await viewer(srv.url, { pipeline_id: PID });
    const names = ['a.txt', 'b.txt', 'keep.txt', 'sub/c.txt', 'sub/d.txt'];
    for (const n of names) writeFileSync(path.join(inbox, n), `The quokka file ${n.replace(/\W/g, ' ')} here.\n`);
    for (const n of names) await v.waitFile(n, ['file:completed']);
    assert.deepEqual(await registry(srv.url), Object.fromEntries(names.map((n) => [n, 'completed'])));
    assert.deepEqual(await recent(srv.url), [...names].sort());

    // The dashboard, open before the deletions: it lists them as completed, then agrees.
    const { page, problems } = await openPage(browser, `${srv.url}/`);
    const dash = () => page.evaluate((pid) => window.__ragpulse?.recentCompleted(pid)?.slice().sort() ?? null, PID);
    await waitUntil(async () => (await dash())?.length === names.length, 10000, async () => `dashboard lists: ${await dash()}`);

    // ---- one file ----
    rmSync(path.join(inbox, 'a.txt'));
    const deleted = await v.waitFile('a.txt', ['file:deleted']);
    const ev = deleted.at(-1).ev;
    assert.deepEqual(ev.file, { id: 'a.txt', name: 'a.txt' });
    assert.equal(ev.pipeline_id, PID);
    await waitUntil(async () => (await registry(srv.url))['a.txt'] === 'deleted', 10000, 'a.txt deleted in /api/files');
    assert.deepEqual(await recent(srv.url), ['b.txt', 'keep.txt', 'sub/c.txt', 'sub/d.txt']);
    await waitUntil(async () => !(await dash()).includes('a.txt'), 10000, async () => `dashboard drops a.txt: ${await dash()}`);
    assert.equal((await search(work, ['file a txt'])).code, 1, 'its chunks are gone');

    // ---- a whole directory: each document it held ----
    rmSync(path.join(inbox, 'sub'), { recursive: true });
    for (const n of ['sub/c.txt', 'sub/d.txt']) await v.waitFile(n, ['file:deleted']);
    await waitUntil(async () => {
      const r = await registry(srv.url);
      return r['sub/c.txt'] === 'deleted' && r['sub/d.txt'] === 'deleted';
    }, 10000, 'sub/ deleted in /api/files');
    assert.deepEqual(await recent(srv.url), ['b.txt', 'keep.txt']);
    await waitUntil(async () => (await dash()).join() === 'b.txt,keep.txt', 10000, async () => `dashboard: ${await dash()}`);
    assert.deepEqual(problems, []);
    await page.context().close();

    // ---- deleted while the watcher was stopped: the start-up scan says so ----
    await srv.stop();
    rmSync(path.join(inbox, 'b.txt'));
    srv = await startServer(args, { product: true });
    await idleLine(srv.stderr, 1);
    await waitUntil(async () => (await registry(srv.url))['b.txt'] === 'deleted', 10000,
      async () => `b.txt deleted in /api/files: ${JSON.stringify(await registry(srv.url))}`);
    assert.deepEqual(await registry(srv.url), {
      'a.txt': 'deleted', 'b.txt': 'deleted', 'keep.txt': 'completed', 'sub/c.txt': 'deleted', 'sub/d.txt': 'deleted',
    });
    // The state rebuilt from the log agrees, and the file beside them was not touched.
    assert.deepEqual(await recent(srv.url), ['keep.txt']);
    const log = await getJson(`${srv.url}/api/events?pipeline=${PID}&limit=1000`);
    assert.equal(log.events.filter((e) => e.type === 'file:deleted').length, 4, 'one file:deleted per document');
    assert.equal((await search(work, ['quokka', '--json'])).hits.length, 1);
    await srv.stop();
  });
});
