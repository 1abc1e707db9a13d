// Completed files in the dashboard, in real Chromium, the proof: a folder of 50 small
// files ingested by `ragpulse serve --watch DIR`. A page open while they arrive lists each as
// it completes; a page opened afterwards lists all 50 too (more than the snapshot's 20 recent:
// the rest come from the file registry, /api/files), in a virtualised table whose oldest row is
// reachable by scrolling; a search finds one file, and its timeline opens with stage times in
// ms (local files take ~100 ms: never "0 s"). And a hub without a file registry (the memory
// store; RP_HUB_STORE=sqlite gives it one): the page reads the older completions from the
// history instead, and never asks a hub that has no registry for it.
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, waitUntil, USE_REF } from './helpers.mjs';
import { T, hub } from './hub-helpers.mjs';
import { axe, launch, openPage, producer, shot, stats } from './dashboard-helpers.mjs';
import { scratch } from './watch-helpers.mjs';

const SKIP = USE_REF && 'the local-files pipeline exists only in ragpulse (RP_TEST_SERVER=ref)';
const PID = 'docs-50';
const N = 50;
const name = (i) => `note-${String(i).padStart(4, '0')}.txt`;

let browser;
before(async () => { if (!SKIP) browser = await launch(); });
after(async () => { await browser?.close(); });

const text = async (page, sel) => (await page.locator(sel).textContent())?.trim();

/** Waits until the page's completed list says `n` (the model, then the rendered count). */
async function completedShown(page, n, ms) {
  await waitUntil(async () => (await stats(page))?.completed === n, ms, async () => `model lists ${n} completed; stats ${JSON.stringify(await stats(page))}`);
  // The page renders at most once per animation frame after the model changes: wait for the text.
  await waitUntil(async () => (await text(page, '[data-testid=completed-count]')) === String(n), T, `rendered count ${n}`);
}

describe('dashboard: completed files of a watched folder', { skip: SKIP }, () => {
  it('lists 50 ingested files as completed, live and after the fact; search finds one; its timeline is in ms', async () => {
    const work = scratch('rp-dash-done-');
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    const srv = await startServer(['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch', inbox,
      '--pipeline', PID, '--settle', '0.2', '--heartbeat', '1'], { product: true });
    const live = await openPage(browser, `${srv.url}/`);
    let later;
    try {
      await live.page.waitForSelector('[data-testid=conn-badge][data-badge=websocket]', { timeout: T * 2 });
      await live.page.locator(`[data-testid=pipeline-card][data-pipeline="${PID}"]`).waitFor({ timeout: T * 2 });

      for (let i = 0; i < N; i++) writeFileSync(path.join(inbox, name(i)), `Note ${i}: the word of this note is lantern${i}.\n`);

      // ---- the page that watched them arrive ----
      await completedShown(live.page, N, 60000);
      assert.equal(await text(live.page, '[data-testid=files-count]'), '0', 'nothing left in flight');

      // ---- a page opened afterwards: the snapshot names 20, the registry the rest ----
      later = await openPage(browser, `${srv.url}/`);
      const page = later.page;
      await completedShown(page, N, T * 2);
      const table = page.locator('[data-testid=completed-table]');
      assert.equal(await table.getAttribute('data-rows'), String(N));
      const inDom = await page.locator('[data-testid=completed-row]').count();
      assert.ok(inDom > 0 && inDom < N, `virtualised: ${inDom} of ${N} rows in the DOM`);
      // Every one is reachable: scroll through, a screenful at a time, collecting the names.
      const seen = new Set();
      const { clientHeight, scrollHeight } = await table.evaluate((el) => ({ clientHeight: el.clientHeight, scrollHeight: el.scrollHeight }));
      for (let top = 0; top < scrollHeight; top += clientHeight) {
        await table.evaluate((el, t) => { el.scrollTop = t; }, top);
        const firstIndex = Math.min(N - 1, Math.floor(Math.min(top, scrollHeight - clientHeight) / 34)) + 2;
        // Rendered once the row at the new top is in the DOM (rows carry aria-rowindex).
        await page.locator(`[data-testid=completed-row][aria-rowindex="${firstIndex}"]`).waitFor({ timeout: T });
        for (const n of await page.locator('[data-testid=completed-row] button.fname').allTextContents()) seen.add(n);
      }
      assert.equal(seen.size, N, `reachable: ${[...seen].sort()}`);
      for (let i = 0; i < N; i++) assert.ok(seen.has(name(i)), `${name(i)} listed`);
      await table.evaluate((el) => { el.scrollTop = 0; });
      await page.mouse.move(0, 0);
      await shot(page, 'dashboard-completed');
      assert.deepEqual(await axe(page), [], 'no accessibility violations with the completed list filled');

      // ---- search finds one ----
      await page.fill('[data-testid=search]', name(42));
      await waitUntil(async () => (await page.locator('[data-testid=completed-row]').count()) === 1, T, 'one row for the search');
      assert.equal(await text(page, '[data-testid=completed-count]'), '1');
      const hit = page.locator('[data-testid=completed-row]');
      assert.match(await hit.textContent(), new RegExp(name(42)));
      assert.match(page.url(), /[?&]q=note-0042\.txt/);

      // ---- its timeline, with stage times in ms ----
      await hit.locator('button.fname').click();
      await page.locator('[data-testid=drilldown]').waitFor({ timeout: T });
      await waitUntil(async () => (await page.locator('[data-testid=timeline] li').count()) >= 5, T, 'the file\'s events');
      const types = await page.locator('[data-testid=timeline] li b').allTextContents();
      assert.equal(types[0], 'file:processing');
      assert.equal(types.at(-1), 'file:completed');
      assert.match(await text(page, '#drill-h'), new RegExp(name(42)));
      assert.match(decodeURIComponent(page.url()), new RegExp(`[?&]file=${PID}/`));
      const spans = await page.locator('[data-testid=stage-spans] li').allTextContents();
      assert.ok(spans.length >= 3, `stage spans: ${spans}`);
      for (const s of spans) assert.match(s.trim(), /^\S+ \d{1,3} ms$/, `a stage under a second in ms: "${s}"`);
      assert.ok(spans.some((s) => /^\s*extract /.test(s)), `an extract stage: ${spans}`);
      await shot(page, 'dashboard-completed-timeline');
      await page.keyboard.press('Escape');
      await page.locator('[data-testid=drilldown]').waitFor({ state: 'detached', timeout: T });

      assert.deepEqual(live.problems, []);
      assert.deepEqual(later.problems, []);
      assert.deepEqual([...live.httpErrors, ...later.httpErrors], [], 'every /api/ read answered');
    } finally {
      await later?.context.close();
      await live.context.close();
      await srv.stop();
    }
  });
});

describe('dashboard: completed files from the history', () => {
  it('lists more than the snapshot\'s 20 recent completions without a registry; a later run takes a file out', async () => {
    const srv = await hub();
    const p = producer(srv.url, 'hist-1');
    const M = 30;
    const evs = [p.ev('pipeline:online', { heartbeat_interval: 60 })];
    for (let i = 0; i < M; i++) {
      const file = { id: `h${i}`, name: `hist-${i}.md` };
      evs.push(p.ev('file:processing', { file }), p.ev('file:progress', { file: { ...file, stage: 'parse', progress: 0.5 } }),
        p.ev('file:completed', { file: { ...file, chunks: 2 } }));
    }
    await p.post(evs);
    const opened = await openPage(browser, `${srv.url}/`);
    const { page } = opened;
    try {
      await completedShown(page, M, T * 2);
      // One of them is processed again: it leaves the completed list for the files in flight.
      await p.post(p.ev('file:processing', { file: { id: 'h3', name: 'hist-3.md', stage: 'parse' } }));
      await completedShown(page, M - 1, T);
      await page.locator('[data-testid=file-row][data-file="h3"]').waitFor({ timeout: T });
      await page.fill('[data-testid=search]', 'hist-17.md');
      await waitUntil(async () => (await page.locator('[data-testid=completed-row]').count()) === 1, T, 'one row for the search');
      await page.locator('[data-testid=completed-row] button.fname').click();
      await waitUntil(async () => (await page.locator('[data-testid=timeline] li').count()) === 3, T, 'the file\'s three events');
      const spans = await page.locator('[data-testid=stage-spans] li').allTextContents();
      for (const s of spans) assert.match(s.trim(), /^\S+ \d{1,3} ms$/, `in ms: "${s}"`);
      assert.deepEqual(opened.problems, []);
      assert.deepEqual(opened.httpErrors, [], 'no registry asked of a hub without one');
    } finally {
      await opened.context.close();
      await srv.stop();
    }
  });
});
