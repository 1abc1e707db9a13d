// The dashboard's paths in real Chromium: polling when the server has no websocket, and the
// HTTP fallback when the Socket.IO path is refused (by a proxy of the test's own between the
// browser and ragpulse), then back to websocket when it is allowed again, with every event
// applied exactly once and in order across both switches.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitUntil } from './helpers.mjs';
import { hub, T } from './hub-helpers.mjs';
import { badge, health, launch, openPage, producer, shot, startRefusingProxy, stats } from './dashboard-helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Posts one progress event for file `i` and resolves with its id. */
async function step(p, i, progress) {
  const r = await p.post(p.ev('file:progress', { file: { id: `f${i}`, name: `file-${i}.pdf`, progress } }));
  return r.id;
}

const progressOf = (page, i) => page.getAttribute(`[data-testid=file-row][data-file="f${i}"]`, 'data-progress');

test('websocket disabled on the server: the page updates over polling', async () => {
  const srv = await hub(['--transports', 'polling']);
  const p = producer(srv.url, 'poll-1');
  await p.post(p.ev('pipeline:online'));
  const { page, context, problems } = await openPage(browser, `${srv.url}/`);
  try {
    await waitUntil(async () => (await badge(page)) === 'polling', T * 2, 'polling badge');
    await step(p, 1, 0.25);
    await waitUntil(async () => (await progressOf(page, 1)) === '0.25', T, 'progress over polling');
    await step(p, 1, 0.75);
    await waitUntil(async () => (await progressOf(page, 1)) === '0.75', T, 'second update over polling');
    assert.equal(await badge(page), 'polling', 'stays on polling (no upgrade offered)');
    const s = await stats(page);
    assert.equal(s.gaps, 0);
    assert.equal(s.duplicates, 0);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('Socket.IO path refused: HTTP fallback says so, then back to websocket; no event twice or missed', async () => {
  const srv = await hub();
  const proxy = await startRefusingProxy(srv.port);
  const p = producer(srv.url, 'fb-1');
  let lastId = (await p.post(p.ev('pipeline:online'))).id;
  const { page, context, problems } = await openPage(browser, `${proxy.url}/`);
  try {
    // The badge turns websocket at the engine's upgrade, possibly before the subscribe ack's
    // snapshot: the baseline is the version once the client says it is synced.
    await waitUntil(async () => (await health(page)).synced && (await badge(page)) === 'websocket', T * 2, 'websocket badge, synced');
    const base = (await stats(page)).version;
    let n = 0;
    // bump() runs concurrently from an interval below: POSTs resolve in any order, keep the newest id.
    const bump = async () => { n++; const id = await step(p, n % 5, Math.round((n / 1000) * 1000) / 1000); lastId = Math.max(lastId, id); };
    for (let i = 0; i < 10; i++) await bump();
    await waitUntil(async () => (await stats(page)).version === lastId, T, 'events over websocket');

    // Refuse the Socket.IO path; keep producing while the page finds its way to HTTP.
    proxy.refuse(true);
    const inFlight = new Set();
    const producing = setInterval(() => {
      const b = bump();
      inFlight.add(b);
      b.finally(() => inFlight.delete(b)).catch(() => {});
    }, 50);
    await waitUntil(async () => (await badge(page)) === 'http', 20000, 'HTTP fallback badge');
    assert.match(await page.locator('[data-testid=conn-badge]').textContent(), /HTTP fallback/);
    await shot(page, 'dashboard-http-fallback');
    const onHttp = lastId;
    await waitUntil(async () => (await stats(page)).version >= onHttp, T * 2, 'events arrive over HTTP');

    // Let it back: the page returns to websocket by itself.
    proxy.refuse(false);
    await waitUntil(async () => (await badge(page)) === 'websocket', 40000, 'back to websocket');
    clearInterval(producing);
    await Promise.all(inFlight); // every id the hub gave is in lastId before the last count
    for (let i = 0; i < 10; i++) await bump();
    await waitUntil(async () => (await stats(page)).version === lastId, T, 'caught up after the switch back');

    const s = await stats(page);
    assert.equal(s.gaps, 0, 'no event missed: ids applied one after another');
    assert.equal(s.duplicates, 0, 'no event applied twice');
    assert.equal(s.applied, lastId - base, 'every event after the first snapshot applied once');
    assert.equal(s.baselines, 1, 'no snapshot had to paper over a gap');
    const h = await health(page);
    assert.ok(h.fallbacks >= 1);
    // What the page shows matches the hub's state for every file; the page renders at most once
    // per animation frame after the model has it, so wait for the rows themselves.
    const snap = await (await fetch(`${srv.url}/api/rag-status`)).json();
    assert.equal(snap.version, lastId, 'the hub has nothing newer than what the page applied');
    let shown = [];
    await waitUntil(async () => {
      shown = await Promise.all(snap.pipelines[0].files.map(async (f) => [f.id, Number(await progressOf(page, f.id.slice(1))), f.progress]));
      return shown.every(([, got, want]) => got === want);
    }, T, () => `rows match the hub: ${JSON.stringify(shown)}`);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    proxy.close();
  }
});
