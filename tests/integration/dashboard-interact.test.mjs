// The dashboard's controls in real Chromium: pause buffers events and resume applies them all;
// new files wait behind the "N new" pill while a row is selected; the stall warning (with the
// `?stall=` threshold in seconds, default 60) appears and clears with progress; the keyboard
// shortcuts; and the screen-reader summary, one announcement per 5 s at most, not one per event.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitUntil } from './helpers.mjs';
import { hub, T } from './hub-helpers.mjs';
import { launch, openPage, producer, stats } from './dashboard-helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const progressOf = (page, fid) => page.getAttribute(`[data-testid=file-row][data-file="${fid}"]`, 'data-progress');
const file = (i, extra = {}) => ({ file: { id: `f${i}`, name: `doc-${i}.pdf`, ...extra } });

/** A server, a pipeline `pid` online, and the page open and live on it. */
async function livePage(pid, query = '') {
  const srv = await hub();
  const p = producer(srv.url, pid);
  await p.post(p.ev('pipeline:online', { heartbeat_interval: 60 }));
  const opened = await openPage(browser, `${srv.url}/${query}`);
  await opened.page.waitForSelector('[data-testid=conn-badge][data-badge=websocket]', { timeout: T * 2 });
  await opened.page.locator(`[data-testid=pipeline-card][data-pipeline="${pid}"]`).waitFor({ timeout: T });
  return { srv, p, ...opened };
}

test('pause buffers events while you read; resume applies every one of them, in order', async () => {
  const { p, page, context, problems } = await livePage('pause-1');
  try {
    await p.post(p.ev('file:progress', file(1, { progress: 0.1 })));
    await waitUntil(async () => (await progressOf(page, 'f1')) === '0.1', T, 'f1 at 0.1');
    await page.click('[data-testid=pause]');
    await page.locator('[data-testid=paused-banner]').waitFor({ timeout: T });
    assert.equal(await page.getAttribute('[data-testid=pause]', 'aria-pressed'), 'true');
    let last;
    for (const pr of [0.2, 0.3, 0.4]) last = (await p.post(p.ev('file:progress', file(1, { progress: pr })))).id;
    await waitUntil(async () => (await stats(page)).buffered === 3, T, 'three events held');
    // The page renders at most once per animation frame after the model changes: wait for the text.
    await waitUntil(async () => /3 events are waiting/.test(await page.locator('[data-testid=paused-banner]').textContent()), T, 'banner says 3 waiting');
    await waitUntil(async () => /Resume \(3 waiting\)/.test(await page.locator('[data-testid=pause]').textContent()), T, 'button says 3 waiting');
    assert.equal(await progressOf(page, 'f1'), '0.1', 'nothing applied while paused');
    await page.keyboard.press('p'); // the shortcut resumes
    await waitUntil(async () => (await progressOf(page, 'f1')) === '0.4', T, 'all applied on resume');
    const s = await stats(page);
    assert.equal(s.buffered, 0);
    assert.equal(s.version, last);
    assert.equal(s.gaps, 0);
    assert.equal(s.duplicates, 0);
    await page.locator('[data-testid=paused-banner]').waitFor({ state: 'detached', timeout: T });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a selected row holds the list: new files wait behind the "N new" pill, which merges them', async () => {
  const { p, page, context, problems } = await livePage('pill-1');
  try {
    await p.post([1, 2, 3].map((i) => p.ev('file:processing', file(i, { stage: 'parse' }))));
    await waitUntil(async () => (await page.locator('[data-testid=file-row]').count()) === 3, T, 'three rows');
    await page.mouse.move(0, 0); // the pointer away from the table: only the selection holds
    await page.keyboard.press('j'); // select the first (newest) row
    await page.locator('[data-testid=file-row].sel').waitFor({ timeout: T });
    const order = () => page.locator('[data-testid=file-row]').evaluateAll((rows) => rows.map((r) => r.dataset.file));
    const before = await order();
    await p.post([4, 5].map((i) => p.ev('file:processing', file(i, { stage: 'parse' }))));
    await page.locator('[data-testid=new-pill]', { hasText: '2 new' }).waitFor({ timeout: T });
    await waitUntil(async () => (await page.locator('[data-testid=files-count]').textContent()) === '5', T, 'the count is live');
    assert.deepEqual(await order(), before, 'rows did not move under the selection');
    await page.click('[data-testid=new-pill]');
    await waitUntil(async () => (await order()).length === 5, T, 'merged');
    assert.deepEqual((await order()).slice(0, 2).sort(), ['f4', 'f5'], 'the new files on top');
    await page.locator('[data-testid=new-pill]').waitFor({ state: 'detached', timeout: T });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('stall warning after ?stall= seconds without progress, gone with the next progress', async () => {
  const { p, page, context, problems } = await livePage('stall-1', '?stall=2');
  try {
    await p.post(p.ev('file:progress', file(1, { progress: 0.2, stage: 'embed' })));
    await p.post(p.ev('file:progress', file(2, { progress: 0.2, stage: 'embed' })));
    const warn = (fid) => page.locator(`[data-testid=file-row][data-file="${fid}"] [data-testid=stall-warning]`);
    await warn('f1').waitFor({ timeout: T * 2 });
    await warn('f2').waitFor({ timeout: T * 2 }); // f2 may cross the threshold one check later
    assert.match(await warn('f1').textContent(), /no progress/);
    await p.post(p.ev('file:progress', file(1, { progress: 0.3 })));
    await warn('f1').waitFor({ state: 'detached', timeout: T });
    assert.equal(await warn('f2').count(), 1, 'the other file is still flagged');
    assert.match(page.url(), /[?&]stall=2\b/, 'the threshold stays in the URL');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
  // Without ?stall= the default is a minute: a fresh file is not flagged.
  const again = await livePage('stall-2');
  try {
    await again.p.post(again.p.ev('file:progress', file(1, { progress: 0.2 })));
    await waitUntil(async () => (await progressOf(again.page, 'f1')) === '0.2', T, 'row');
    await new Promise((r) => setTimeout(r, 2500)); // time itself is tested: 2.5 s is past ?stall=2 but under the default
    assert.equal(await again.page.locator('[data-testid=stall-warning]').count(), 0);
  } finally {
    await again.context.close();
  }
});

test('keyboard shortcuts: ? help, Esc, / search, j/k and Enter to a timeline, e errors only, t theme', async () => {
  const { p, page, context, problems } = await livePage('keys-1');
  try {
    await p.post([1, 2].map((i) => p.ev('file:processing', file(i, { stage: 'parse' }))));
    await waitUntil(async () => (await page.locator('[data-testid=file-row]').count()) === 2, T, 'rows');
    await page.mouse.move(0, 0);
    await page.keyboard.press('?');
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor({ timeout: T });
    await page.keyboard.press('Escape');
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor({ state: 'detached', timeout: T });

    const selected = () => page.locator('[data-testid=file-row].sel').getAttribute('data-file', { timeout: T });
    await page.keyboard.press('j');
    await waitUntil(async () => (await selected()) === 'f2', T, 'j selects the first row');
    await page.keyboard.press('j');
    await waitUntil(async () => (await selected()) === 'f1', T, 'j moves down');
    await page.keyboard.press('k');
    await waitUntil(async () => (await selected()) === 'f2', T, 'k moves up');
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=drilldown]').waitFor({ timeout: T });
    assert.match(page.url(), /[?&]file=keys-1%2Ff2\b/);
    await page.keyboard.press('Escape');
    await page.locator('[data-testid=drilldown]').waitFor({ state: 'detached', timeout: T });

    await page.keyboard.press('e');
    await waitUntil(() => /[?&]errors=1\b/.test(page.url()), T, 'errors only in the URL');
    assert.equal(await page.isChecked('[data-testid=errors-only]'), true);
    await page.keyboard.press('e');
    await waitUntil(() => !/errors=1/.test(page.url()), T, 'errors only off');

    const theme = () => page.evaluate(() => document.documentElement.getAttribute('data-theme'));
    assert.equal(await theme(), null, 'system theme');
    await page.keyboard.press('t');
    await waitUntil(async () => (await theme()) === 'light', T, 'light theme');
    await page.keyboard.press('t');
    await waitUntil(async () => (await theme()) === 'dark', T, 'dark theme');

    await page.keyboard.press('/');
    await waitUntil(async () => (await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))) === 'search', T, 'search focused');
    await page.keyboard.type('doc-1');
    await waitUntil(async () => (await page.locator('[data-testid=file-row]').count()) === 1, T, 'search filters');
    await page.keyboard.press('j'); // typing, not a shortcut
    await waitUntil(async () => (await page.inputValue('[data-testid=search]')) === 'doc-1j', T, 'j typed into the search');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('screen-reader summary: one polite announcement per 5 s at most, counting what changed', async () => {
  const { p, page, context, problems } = await livePage('sr-1');
  try {
    // Count every change of the live region from the page's side.
    await page.evaluate(() => {
      const el = document.querySelector('[data-testid=sr-summary]');
      window.__srTexts = [];
      new MutationObserver(() => window.__srTexts.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
    });
    assert.equal(await page.getAttribute('[data-testid=sr-summary]', 'aria-live'), 'polite');
    // About 7 s of steady events: 60 files finished, 10 failed.
    const t0 = Date.now();
    for (let i = 0; i < 70; i++) {
      await p.post(p.ev('file:processing', file(i)));
      await p.post(p.ev(i < 60 ? 'file:completed' : 'file:failed', file(i, i < 60 ? {} : { error: { message: 'bad scan' } })));
      await new Promise((r) => setTimeout(r, 100)); // time itself is tested: a steady 7 s stream
    }
    await waitUntil(async () => (await page.evaluate(() => window.__srTexts.join(' '))).includes('failed'), 12000, 'failures announced');
    const seconds = (Date.now() - t0) / 1000;
    const texts = await page.evaluate(() => window.__srTexts);
    assert.ok(texts.length >= 1, 'announced');
    assert.ok(texts.length <= Math.ceil(seconds / 5) + 1, `${texts.length} announcements in ${seconds.toFixed(1)} s for 140 events`);
    for (const t of texts) assert.match(t, /^In the last 5 seconds: (\d+ completed, )?(\d+ failed, )?\d+ in flight\.$/);
    const sum = (re) => texts.reduce((n, t) => n + Number(re.exec(t)?.[1] ?? 0), 0);
    assert.ok(sum(/(\d+) completed/) <= 60 && sum(/(\d+) failed/) <= 10, 'counts are of real changes');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
