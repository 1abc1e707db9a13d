// The dashboard in real Chromium against `ragpulse serve`: the embedded assets and their
// headers, a scripted pipeline run seen live (online, progress, completion, failure with its
// reason, late, offline), the drill-down, URL state, hostile payloads shown as text, and an
// axe accessibility check in both themes. Screenshots of the key states go to SHOT_DIR.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { io } from 'socket.io-client';
import { waitUntil } from './helpers.mjs';
import { hub, request, T } from './hub-helpers.mjs';
import { axe, launch, openPage, producer, shot, stats } from './dashboard-helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const text = (page, sel) => page.locator(sel).first().textContent();

test('serves the embedded dashboard: index, hashed assets, ETag/304, gzip, CSP, 405', async () => {
  const srv = await hub();
  const index = await request(`${srv.url}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
  const csp = index.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(index.text, /<script>|<script [^>]*>[^<]/, 'no inline script in index.html');
  const etag = index.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  assert.equal((await request(`${srv.url}/`, { headers: { 'if-none-match': etag } })).status, 304);
  assert.equal((await request(`${srv.url}/`, { headers: { 'if-none-match': '"other", ' + etag } })).status, 304);
  assert.equal((await request(`${srv.url}/`, { headers: { 'if-none-match': '"other"' } })).status, 200);

  const js = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(index.text)?.[1];
  const css = /href="(\/assets\/style-[A-Z0-9]+\.css)"/.exec(index.text)?.[1];
  assert.ok(js && css, 'index names its hashed assets');
  const a = await request(`${srv.url}${js}`);
  assert.equal(a.status, 200);
  assert.match(a.headers.get('content-type'), /^text\/javascript/);
  assert.match(a.headers.get('cache-control'), /immutable/);
  // gzip when asked (fetch decodes it; the raw length tells).
  const raw = await new Promise((resolve, reject) => {
    import('node:http').then(({ get }) => get(`${srv.url}${js}`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; });
      res.on('end', () => resolve({ enc: res.headers['content-encoding'], n }));
    }).on('error', reject));
  });
  assert.equal(raw.enc, 'gzip');
  assert.ok(raw.n < a.text.length / 2, `gzip variant is smaller (${raw.n} vs ${a.text.length})`);
  assert.equal((await request(`${srv.url}${css}`)).status, 200);
  assert.equal((await request(`${srv.url}/assets/app-NOPE.js`)).status, 404);
  const head = await request(`${srv.url}/`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.text, '');
  const post = await request(`${srv.url}/`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  // The API is untouched by the asset routes.
  assert.equal((await request(`${srv.url}/api/rag-status`)).status, 200);
});

test('a scripted pipeline run appears live: online, progress, completion, failure, late, offline', async () => {
  const srv = await hub(['--heartbeat-timeout', '3']);
  const { page, context, problems } = await openPage(browser, `${srv.url}/`);
  try {
    await page.waitForSelector('[data-testid=conn-badge][data-badge=websocket]', { timeout: T * 2 });
    // The producer is a stock socket.io-client on /pipeline, as a pipeline would be.
    const prod = io(`${srv.url}/pipeline`, { transports: ['websocket'] });
    const emit = (type, extra) => prod.timeout(T).emitWithAck(type, { type, pipeline_id: 'docs-1', pipeline_type: 'local_files', ...extra });
    await emit('pipeline:online', { heartbeat_interval: 1 });
    const card = page.locator('[data-testid=pipeline-card][data-pipeline="docs-1"]');
    await card.waitFor({ timeout: T });
    assert.equal(await card.getAttribute('data-status'), 'online');
    assert.match(await card.locator('.pill').textContent(), /Online/, 'status is a word, not only a colour');

    const beat = setInterval(() => emit('heartbeat', {}).catch(() => {}), 400);
    await emit('file:processing', { file: { id: 'f1', name: 'handbook.pdf', stage: 'parse' } });
    await emit('file:progress', { file: { id: 'f1', name: 'handbook.pdf', progress: 0.3, stage: 'parse' } });
    const row = page.locator('[data-testid=file-row][data-file="f1"]');
    await waitUntil(async () => (await row.getAttribute('data-progress')) === '0.3', T, 'progress 0.3 shown');
    assert.equal(await row.locator('.pct').textContent(), '30%');
    await emit('file:progress', { file: { id: 'f1', name: 'handbook.pdf', progress: 0.8, stage: 'embed' } });
    await waitUntil(async () => (await row.getAttribute('data-progress')) === '0.8', T, 'progress 0.8 shown');
    assert.equal((await row.locator('.stage-chip').textContent()).trim(), 'embed');
    assert.equal(await card.getAttribute('data-status'), 'running');
    await emit('file:processing', { file: { id: 'f2', name: 'scan-0042.tiff', stage: 'ocr' } });
    await emit('file:progress', { file: { id: 'f2', name: 'scan-0042.tiff', progress: 0.1, stage: 'ocr' } });
    await page.waitForSelector('[data-testid=file-row][data-file="f2"]', { timeout: T });
    await shot(page, 'dashboard-live');

    await emit('file:completed', { file: { id: 'f1', name: 'handbook.pdf', chunks: 42 } });
    await waitUntil(async () => (await row.count()) === 0, T, 'completed file leaves the table');
    await waitUntil(async () => (await text(page, '[data-testid=sum-completed] .sum-n')) === '1', T, 'completed count');
    await emit('file:failed', { file: { id: 'f2', name: 'scan-0042.tiff', error: { message: 'OCR failed: tesseract exited with code 137 (out of memory)', kind: 'ocr' } } });
    const group = page.locator('[data-testid=failure-group]');
    await group.first().waitFor({ timeout: T });
    assert.match(await group.first().locator('[data-testid=failure-cause]').textContent(), /tesseract exited with code 137/);
    await group.first().locator('button.group-h').click();
    assert.match(await page.locator('[data-testid=failure-full]').textContent(), /out of memory/);
    assert.equal(await text(page, '[data-testid=sum-failed] .sum-n'), '1');
    await shot(page, 'dashboard-failure');

    // Drill-down on the failed file: its timeline with time per stage, from /api/events.
    await page.locator('.affected button', { hasText: 'scan-0042.tiff' }).click();
    await page.waitForSelector('[data-testid=timeline] li >> nth=2', { timeout: T });
    assert.match(page.url(), /[?&]file=docs-1%2Ff2/);
    const spans = await page.locator('[data-testid=stage-spans] li').allTextContents();
    assert.ok(spans.some((s) => /^\s*ocr/.test(s)), `stage spans: ${spans}`);
    assert.match(await page.locator('[data-testid=drill-error]').textContent(), /tesseract/);
    await shot(page, 'dashboard-drilldown');
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid=drilldown]', { state: 'detached', timeout: T });

    // Heartbeats stop: late (1.5 x 1 s) before the hub says offline (3 x 1 s).
    clearInterval(beat);
    await waitUntil(async () => (await card.getAttribute('data-status')) === 'late', T, 'late');
    assert.match(await card.locator('.pill').textContent(), /Late/);
    await waitUntil(async () => (await card.getAttribute('data-status')) === 'offline', T * 2, 'offline');
    assert.equal(await text(page, '[data-testid=sum-offline] .sum-n'), '1');
    prod.close();
    const s = await stats(page);
    assert.equal(s.gaps, 0, 'every event in order');
    assert.equal(s.duplicates, 0);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('URL state: filters and search survive a reload; deep link to a pipeline', async () => {
  const srv = await hub();
  const p = producer(srv.url, 'drive-7', 'google_drive');
  const q = producer(srv.url, 'docs-1', 'local_files');
  await p.post([p.ev('pipeline:online'), p.ev('file:processing', { file: { id: 'x', name: 'quarterly-report.docx' } })]);
  await q.post([q.ev('pipeline:online'), q.ev('file:processing', { file: { id: 'y', name: 'notes.md' } })]);
  const { page, context, problems } = await openPage(browser, `${srv.url}/`);
  try {
    await page.waitForSelector('[data-testid=file-row] >> nth=1', { timeout: T });
    await page.selectOption('[data-testid=filter-type]', 'google_drive');
    await waitUntil(async () => (await page.locator('[data-testid=pipeline-card]').count()) === 1, T, 'one card');
    assert.match(page.url(), /[?&]type=google_drive/);
    await page.keyboard.press('/');
    await page.keyboard.type('quarterly');
    await waitUntil(() => /[?&]q=quarterly/.test(page.url()), T, 'q in URL');
    await page.reload();
    await page.waitForSelector('[data-testid=file-row]', { timeout: T });
    assert.equal(await page.inputValue('[data-testid=filter-type]'), 'google_drive');
    assert.equal(await page.inputValue('[data-testid=search]'), 'quarterly');
    assert.deepEqual(await page.locator('[data-testid=file-row]').evaluateAll((rs) => rs.map((r) => r.dataset.file)), ['x']);
    await page.goto(`${srv.url}/?pipeline=docs-1`);
    await page.waitForSelector('[data-testid=pipeline-chip]', { timeout: T });
    await waitUntil(async () => (await page.locator('[data-testid=pipeline-card]').count()) === 1, T, 'deep link shows one pipeline');
    assert.equal(await page.getAttribute('[data-testid=pipeline-card]', 'data-pipeline'), 'docs-1');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('hostile payloads in names, errors and messages render as text, never run', async () => {
  const srv = await hub();
  const x = '<img src=x onerror="window.__xss=1;alert(1)">';
  const s = '<script>window.__xss=2;alert(2)</script>';
  const p = producer(srv.url, 'evil-1');
  await p.post([
    p.ev('pipeline:online', { message: `${s}` }),
    p.ev('file:processing', { file: { id: 'e1', name: `${x}.pdf`, stage: `${'<b>'}parse` } }),
    p.ev('file:processing', { file: { id: 'e2', name: `${s}.pdf` } }),
    p.ev('file:failed', { file: { id: 'e2', name: `${s}.pdf`, error: `${x} ${s} javascript:alert(3)` } }),
    p.ev('pipeline:offline', { message: `${x}` }),
  ]);
  const { page, context, problems } = await openPage(browser, `${srv.url}/`);
  try {
    await page.waitForSelector('[data-testid=failure-group]', { timeout: T });
    await page.locator('[data-testid=failure-group] button.group-h').click();
    await page.locator('[data-testid=file-row][data-file="e1"] .fname').click();
    await page.waitForSelector('[data-testid=timeline] li', { timeout: T });
    await page.waitForTimeout(300); // absence window: injected code, had any been made, would have run
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected code ran');
    assert.equal(await page.locator('#root img, #root script').count(), 0, 'no element was made from a payload');
    assert.ok((await page.locator('[data-testid=file-row][data-file="e1"] .fname').textContent()).includes('<img src=x onerror='));
    assert.ok((await page.locator('[data-testid=failure-full]').textContent()).includes('<script>window.__xss=2'));
    assert.ok((await page.locator('.card-msg').textContent()).includes('<img src=x'));
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('accessibility: axe finds no violations, light and dark, with data and a dialog open', async () => {
  const srv = await hub();
  const p = producer(srv.url, 'a11y-1');
  await p.post([
    p.ev('pipeline:online', { heartbeat_interval: 30 }),
    p.ev('file:processing', { file: { id: 'a', name: 'a.pdf', stage: 'chunk' } }),
    p.ev('file:progress', { file: { id: 'a', name: 'a.pdf', progress: 0.5, stage: 'chunk' } }),
    p.ev('file:failed', { file: { id: 'b', name: 'b.pdf', error: 'HTTP 429 from embeddings API' } }),
  ]);
  for (const scheme of ['light', 'dark']) {
    // axe is injected by the test, so this context lets the test's own script in; the page
    // itself still runs only what it shipped.
    const { page, context } = await openPage(browser, `${srv.url}/`, { bypassCSP: true, colorScheme: scheme });
    try {
      await page.waitForSelector('[data-testid=failure-group]', { timeout: T });
      await page.locator('[data-testid=failure-group] button.group-h').click();
      const v = await axe(page);
      assert.deepEqual(v, [], `${scheme}: ${JSON.stringify(v, null, 1)}`);
      await page.locator('[data-testid=file-row][data-file="a"] .fname').click();
      await page.waitForSelector('[data-testid=timeline] li', { timeout: T });
      const v2 = await axe(page);
      assert.deepEqual(v2, [], `${scheme} with the drill-down: ${JSON.stringify(v2, null, 1)}`);
      if (scheme === 'dark') {
        await page.keyboard.press('Escape');
        await shot(page, 'dashboard-dark');
      }
    } finally {
      await context.close();
    }
  }
});
