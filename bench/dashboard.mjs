#!/usr/bin/env node
// Dashboard under volume, in real Chromium: 10,000 files in flight and 1,000 events/s posted
// to `ragpulse serve` (memory store) while the page renders. Records the page's frame times
// (requestAnimationFrame deltas: p50/p95/p99/max, frames over 50 ms, long tasks), how far
// behind the hub the page's model is at the end, and the time to apply a filter (typing a file
// name into the search until the table shows only that row, and choosing a status filter),
// each repeated. Prints one JSON object. Loopback only; stops by itself.
//
//   node bench/dashboard.mjs [--files 10000] [--rate 1000] [--seconds 10] [--build build]
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.env.RAGPULSE_BUILD_DIR ??= path.resolve(repo, args.build ?? 'build');
const { startServer, waitUntil } = await import('../tests/integration/helpers.mjs');
const { driveLoad, launch, loadName, openPage, stats } = await import('../tests/integration/dashboard-helpers.mjs');

const files = Number(args.files ?? 10000);
const rate = Number(args.rate ?? 1000);
const seconds = Number(args.seconds ?? 10);
const q = (a, p) => a[Math.min(a.length - 1, Math.floor(p * a.length))];

const srv = await startServer(['--store', 'memory', '--event-rate', '0'], { product: true });
const browser = await launch();
try {
  const { page } = await openPage(browser, `${srv.url}/`);
  await page.waitForSelector('[data-testid=conn-badge][data-badge=websocket]');
  await page.evaluate(() => {
    const w = window;
    w.__frames = [];
    w.__long = [];
    let last = performance.now();
    const tick = (t) => { w.__frames.push(t - last); last = t; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    new PerformanceObserver((l) => { for (const e of l.getEntries()) w.__long.push(e.duration); }).observe({ type: 'longtask', buffered: false });
  });
  // Filter timings while the load runs: search for one file, then clear.
  const filterTimes = [];
  const statusTimes = [];
  const measureFilter = async (i) => {
    const t = await page.evaluate(async (name) => {
      const input = document.querySelector('[data-testid=search]');
      const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
      const t0 = performance.now();
      setter.call(input, name);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      for (;;) {
        await new Promise((r) => requestAnimationFrame(r));
        const rows = document.querySelectorAll('[data-testid=file-row]');
        if (rows.length === 1) return performance.now() - t0;
      }
    }, loadName(i));
    filterTimes.push(t);
    await page.fill('[data-testid=search]', '');
  };
  const measureStatus = async () => {
    const t = await page.evaluate(async () => {
      const sel = document.querySelector('[data-testid=filter-status]');
      const setter = Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set;
      const t0 = performance.now();
      setter.call(sel, 'offline');
      sel.dispatchEvent(new Event('change', { bubbles: true }));
      for (;;) {
        await new Promise((r) => requestAnimationFrame(r));
        if (document.querySelectorAll('[data-testid=pipeline-card]').length === 0) return performance.now() - t0;
      }
    });
    statusTimes.push(t);
    await page.selectOption('[data-testid=filter-status]', '');
  };
  let pending = Promise.resolve();
  const t0 = Date.now();
  const load = await driveLoad(srv.url, {
    files, rate, seconds,
    onTick: (tick) => {
      if (tick >= 10 && tick % 10 === 5) pending = pending.then(() => measureFilter(Math.floor(Math.random() * files))).then(() => measureStatus());
    },
  });
  await pending;
  const sent = Date.now();
  await waitUntil(async () => (await stats(page)).version === load.lastId, 120000, 'page caught up');
  const catchUpMs = Date.now() - sent;
  const r = await page.evaluate(() => ({ frames: window.__frames.slice(), long: window.__long.slice() }));
  const fr = r.frames.slice(5).sort((a, b) => a - b);
  const s = await stats(page);
  const round = (x) => Math.round(x * 10) / 10;
  console.log(JSON.stringify({
    files, rate_target: rate, events: load.events, seconds: round(load.seconds), achieved_rate: Math.round(load.events / load.seconds),
    frames: { n: fr.length, fps: round(fr.length / ((Date.now() - t0) / 1000)), p50_ms: round(q(fr, 0.5)), p95_ms: round(q(fr, 0.95)), p99_ms: round(q(fr, 0.99)), max_ms: round(fr.at(-1)), over_50ms: fr.filter((x) => x > 50).length },
    long_tasks: { n: r.long.length, total_ms: Math.round(r.long.reduce((a, b) => a + b, 0)), max_ms: Math.round(Math.max(0, ...r.long)) },
    search_filter_ms: { n: filterTimes.length, p50: round(q([...filterTimes].sort((a, b) => a - b), 0.5)), max: round(Math.max(...filterTimes)) },
    status_filter_ms: { n: statusTimes.length, p50: round(q([...statusTimes].sort((a, b) => a - b), 0.5)), max: round(Math.max(...statusTimes)) },
    catch_up_after_last_post_ms: catchUpMs,
    model: s,
    dom_rows: await page.locator('[data-testid=file-row]').count(),
  }, null, 1));
} finally {
  await browser.close();
  await srv.stop();
}
