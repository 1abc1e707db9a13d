// The dashboard at volume in real Chromium: 10,000 files in flight and 1,000 events/s. The
// table stays virtual (fewer than 300 rows in the DOM), and every event is reflected: the
// page's model reaches the hub's newest id with no gap or duplicate, the counters match, and
// sampled files show the last progress sent. (Timings are measured by bench/dashboard.mjs,
// not asserted here.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitUntil } from './helpers.mjs';
import { hub, T } from './hub-helpers.mjs';
import { driveLoad, launch, loadName, openPage, shot, stats } from './dashboard-helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('10,000 files in flight at 1,000 events/s: fewer than 300 rows, every event reflected', { timeout: 180000 }, async () => {
  // A capacity run: one producer at 1,000 events/s over 10,000 files is past the default
  // per-producer rate, which protects a hub from a runaway producer.
  const srv = await hub(['--event-rate', '0']);
  const { page, context, problems } = await openPage(browser, `${srv.url}/`);
  try {
    await page.waitForSelector('[data-testid=conn-badge][data-badge=websocket]', { timeout: T * 2 });
    let maxRows = 0;
    const sample = async () => {
      const n = await page.locator('[data-testid=file-row]').count();
      maxRows = Math.max(maxRows, n);
    };
    let sampling = Promise.resolve();
    const load = await driveLoad(srv.url, {
      files: 10000, rate: 1000, seconds: 5,
      onTick: (t) => { if (t % 5 === 0) sampling = sampling.then(sample); },
    });
    await sampling;
    await waitUntil(async () => (await stats(page)).version === load.lastId, 60000, async () => `page at ${JSON.stringify(await stats(page))}, hub at ${load.lastId}`);
    await sample();
    const s = await stats(page);
    assert.equal(s.gaps, 0, 'no event missed');
    assert.equal(s.duplicates, 0, 'no event applied twice');
    assert.equal(s.inFlight, 10000);
    assert.ok(maxRows > 10 && maxRows < 300, `rows in the DOM stayed between 10 and 300 (max ${maxRows})`);
    await waitUntil(async () => (await page.locator('[data-testid=sum-inflight] .sum-n').textContent()) === '10,000', T, 'in-flight counter');
    assert.equal(await page.locator('[data-testid=card-inflight]').textContent(), '10,000');
    await shot(page, 'dashboard-10k');

    // Sampled files show exactly the last progress sent for them (found through the search).
    for (const i of [0, 1, 4999, 7777, 9999]) {
      await page.fill('[data-testid=search]', loadName(i));
      const row = page.locator(`[data-testid=file-row][data-file="f${i}"]`);
      await waitUntil(async () => (await page.locator('[data-testid=file-row]').count()) === 1 && (await row.count()) === 1, T, `row of ${loadName(i)}`);
      assert.equal(Number(await row.getAttribute('data-progress')), load.progress.get(i) ?? 0, `progress of ${loadName(i)}`);
    }
    // And the page agrees with the hub's own snapshot on every file.
    const snap = await (await fetch(`${srv.url}/api/rag-status`)).json();
    const mismatches = await page.evaluate((files) => {
      const bad = [];
      const m = window.__ragpulse;
      for (const f of files) {
        const p = m.file?.('load-1', f.id);
        if (!p || p.progress !== f.progress || p.stage !== (f.stage ?? '')) bad.push(f.id);
      }
      return bad;
    }, snap.pipelines.find((p) => p.id === 'load-1').files.map((f) => ({ id: f.id, progress: f.progress, stage: f.stage })));
    assert.deepEqual(mismatches, []);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
