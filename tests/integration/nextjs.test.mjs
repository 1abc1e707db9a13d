// @ragpulse/client as an app gets it: `npm pack` of web/client, installed from the tarball
// into a scratch copy of examples/nextjs (a Next.js 15 App Router app with no bundler
// configuration). The tarball holds built JS, .d.ts, README and licence only; the example
// type-checks strictly and builds with webpack; `next start` against a real hub shows live
// updates in Chromium, the HTTP fallback while the hub is gone, and websocket again after,
// with every event applied once; `next dev --turbopack` serves the page under React strict
// mode's double mount without a hydration warning. The steps run in order in one scratch app.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startServer, waitUntil } from './helpers.mjs';
import { T } from './hub-helpers.mjs';
import { launch, openPage, producer, shot, startRefusingProxy } from './dashboard-helpers.mjs';
import { appWithClient, packClient, readJson, runBin, scratch, startNext, tarList, tarRead } from './nextjs-helpers.mjs';

const work = scratch();
const app = path.join(work, 'app');
let pack;
let browser;

before(async () => {
  pack = packClient(work);
  appWithClient(app, pack.tgz);
  browser = await launch();
});
after(async () => { await browser?.close(); });

/** What the page shows: badge, the model's counters (data-* of the rendered panel). */
async function shown(page) {
  return page.evaluate(() => {
    const b = document.querySelector('[data-testid=conn-badge]');
    const m = document.querySelector('[data-testid=model]');
    if (!b || !m) return null;
    const n = (k) => Number(m.getAttribute(`data-${k}`));
    return {
      badge: b.getAttribute('data-badge'), label: b.textContent, version: n('version'), applied: n('applied'),
      gaps: n('gaps'), duplicates: n('duplicates'), baselines: n('baselines'), frame: n('frame'),
    };
  });
}

/** Console errors other than the network failures a dropped hub causes on purpose. */
const realProblems = (problems) => problems.filter((p) => !/CORS policy|ERR_|Failed to load resource|net::/.test(p));

test('the tarball: built JS and .d.ts, README and LICENSE, no .ts source, no tests; every exports target exists', () => {
  const entries = tarList(pack.tgz);
  assert.ok(entries.every((e) => e.startsWith('package/')), 'one package/ directory');
  const files = entries.map((e) => e.slice('package/'.length));
  assert.deepEqual(files.filter((f) => /\.(ts|tsx|mts|cts)$/.test(f) && !/\.d\.ts$/.test(f)), [], 'no TypeScript source');
  assert.deepEqual(files.filter((f) => /(^|\/)(test|tests|__tests__)\/|\.test\.|\.spec\./.test(f)), [], 'no tests');
  assert.deepEqual(files.filter((f) => f.startsWith('src/') || f.startsWith('scripts/') || f.includes('tsconfig')), [], 'no sources or build files');
  for (const f of ['README.md', 'LICENSE', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/react.js', 'dist/react.d.ts', 'dist/index.js.map'])
    assert.ok(files.includes(f), `${f} is in the package`);
  const pkg = JSON.parse(tarRead(pack.tgz, 'package/package.json'));
  assert.equal(pkg.sideEffects, false);
  assert.equal(pkg.type, 'module');
  const targets = [];
  const walk = (v) => (typeof v === 'string' ? targets.push(v) : Object.values(v).forEach(walk));
  walk(pkg.exports);
  for (const k of ['.', './react']) assert.ok(pkg.exports[k], `exports["${k}"]`);
  assert.ok(targets.length >= 4);
  for (const t of [...targets, pkg.main, pkg.types]) assert.ok(files.includes(path.posix.normalize(t)), `exports target ${t} is in the tarball`);
  assert.match(tarRead(pack.tgz, 'package/dist/react.js'), /^'use client';/, "the React entry starts with 'use client'");
  assert.doesNotMatch(tarRead(pack.tgz, 'package/dist/index.js'), /from '\.\/[a-z]+'/, 'relative imports name .js files');
  assert.ok(existsSync(path.join(app, 'node_modules/@ragpulse/client/dist/react.js')), 'the example got the package from the tarball');
});

test('the example type-checks in strict mode (tsc --noEmit)', async () => {
  assert.equal(readJson(path.join(app, 'tsconfig.json')).compilerOptions.strict, true);
  const r = await runBin(app, 'tsc', ['--noEmit', '-p', app]);
  assert.equal(r.code, 0, r.out);
});

test('next build (webpack) builds the example with no bundler configuration', async () => {
  const r = await runBin(app, 'next', ['build']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Compiled successfully/);
  assert.ok(existsSync(path.join(app, '.next/BUILD_ID')));
});

test('next start + a real hub in Chromium: live, HTTP fallback while the hub is gone, websocket again; no event twice or missed', async () => {
  assert.ok(existsSync(path.join(app, '.next/BUILD_ID')), 'the webpack build ran');
  const nextPort = await freePort();
  const origin = `http://127.0.0.1:${nextPort}`;
  const db = `sqlite:${path.join(mkdtempSync(path.join(work, 'hub-')), 'hub.db')}`;
  const hubArgs = (port) => ['--listen', `127.0.0.1:${port}`, '--store', db, '--cors-origin', origin];
  let srv = await startServer(hubArgs(0), { product: true });
  const hubPort = srv.port;
  // The page reaches the hub through a proxy of the test's: it stays up while the hub is
  // killed, and refuses the Socket.IO path while the hub comes back (so HTTP carries the data
  // until the test lets the socket through).
  const proxy = await startRefusingProxy(hubPort);
  const next = await startNext(app, ['start'], nextPort, { RAGPULSE_URL: proxy.url, RAGPULSE_PIPELINE: 'next-1' });
  const p = producer(srv.url, 'next-1');
  let lastId = (await p.post(p.ev('pipeline:online', { heartbeat_interval: 60 }))).id;
  const { page, context, problems } = await openPage(browser, `${origin}/`);
  const post = async (events) => {
    const r = await producer(srv.url, 'next-1').post(events);
    lastId = Math.max(lastId, r.ids ? r.ids.at(-1) : r.id);
  };
  try {
    assert.equal(next.status, 200);
    await waitUntil(async () => (await shown(page))?.badge === 'websocket', T * 3, 'websocket badge rendered');
    await waitUntil(async () => (await shown(page)).version === lastId, T, 'the snapshot rendered');
    const base = (await shown(page)).version;
    await post([p.ev('file:processing', { file: { id: 'a', name: 'a.pdf', stage: 'parse' } }), p.ev('file:progress', { file: { id: 'a', name: 'a.pdf', progress: 0.25 } })]);
    await waitUntil(async () => (await page.getAttribute('[data-testid=file-row][data-file=a]', 'data-progress').catch(() => null)) === '0.25', T, 'live progress row');
    await post([p.ev('file:failed', { file: { id: 'a', name: 'a.pdf', error: 'ocr crashed' } })]);
    await waitUntil(async () => (await page.locator('[data-testid=failure][data-file=a]').count()) === 1, T, 'the failure listed');
    assert.match(await page.locator('[data-testid=failure][data-file=a]').textContent(), /ocr crashed/);

    // The hub dies: the page leaves websocket and says it is offline.
    proxy.refuse(true);
    await srv.stop('SIGKILL');
    await waitUntil(async () => (await shown(page)).badge !== 'websocket', 20000, 'the page notices the hub is gone');
    // The hub comes back on the same port and store; the Socket.IO path is still refused: the
    // HTTP fallback carries the events, and the badge says so.
    srv = await startServer(hubArgs(hubPort), { product: true });
    for (let i = 0; i < 5; i++) await post([p.ev('file:progress', { file: { id: `b${i}`, name: `b${i}.pdf`, progress: 0.5 } })]);
    await waitUntil(async () => (await shown(page)).badge === 'http', 30000, 'HTTP fallback badge');
    assert.match((await shown(page)).label, /HTTP fallback/);
    await waitUntil(async () => (await shown(page)).version === lastId, T * 3, 'events arrive over HTTP');
    await shot(page, 'nextjs-http-fallback');
    await post([p.ev('file:progress', { file: { id: 'b0', name: 'b0.pdf', progress: 0.75 } })]);
    await waitUntil(async () => (await shown(page)).version === lastId, T * 3, 'a later event over HTTP');

    // The socket is allowed again: back to websocket by itself, then more events.
    proxy.refuse(false);
    await waitUntil(async () => (await shown(page)).badge === 'websocket', 60000, 'back to websocket');
    for (let i = 0; i < 5; i++) await post([p.ev('file:progress', { file: { id: `b${i}`, name: `b${i}.pdf`, progress: 1 } })]);
    await waitUntil(async () => (await shown(page)).version === lastId, T, 'caught up over websocket');
    const s = await shown(page);
    assert.equal(s.gaps, 0, 'no event missed');
    assert.equal(s.duplicates, 0, 'no event applied twice');
    assert.equal(s.applied, lastId - base, 'every event after the snapshot applied once');
    assert.equal(s.baselines, 1, 'one snapshot: the switches were filled from ?since=');
    await waitUntil(async () => (await page.getAttribute('[data-testid=file-row][data-file=b4]', 'data-progress').catch(() => null)) === '1', T, 'the last row rendered');
    assert.deepEqual(realProblems(problems), []);
  } finally {
    await context.close();
    await next.stop();
    proxy.close();
    await srv.stop();
  }
});

test('next dev --turbopack serves the page; strict mode mounts the provider twice and it connects once, no hydration warning', async () => {
  const nextPort = await freePort();
  const origin = `http://127.0.0.1:${nextPort}`;
  const srv = await startServer(['--store', 'memory', '--cors-origin', origin], { product: true });
  const p = producer(srv.url, 'dev-1');
  let lastId = (await p.post(p.ev('pipeline:online', { heartbeat_interval: 60 }))).id;
  const dev = await startNext(app, ['dev', '--turbopack'], nextPort, { RAGPULSE_URL: srv.url, RAGPULSE_PIPELINE: 'dev-1' }, 180000);
  const { page, context, problems } = await openPage(browser, `${origin}/`);
  try {
    assert.equal(dev.status, 200, dev.out());
    assert.match(dev.out(), /Turbopack/);
    await waitUntil(async () => (await shown(page))?.badge === 'websocket', T * 6, 'websocket badge rendered (dev)');
    await waitUntil(async () => (await shown(page)).version === lastId, T, 'the snapshot rendered (dev)');
    const base = (await shown(page)).version;
    for (let i = 0; i < 3; i++) lastId = (await p.post(p.ev('file:progress', { file: { id: 'd', name: 'd.pdf', progress: (i + 1) / 4 } }))).id;
    await waitUntil(async () => (await shown(page)).version === lastId, T, 'live over websocket (dev)');
    const s = await shown(page);
    assert.equal(s.baselines, 1, 'strict mode double mount: one snapshot');
    assert.equal(s.duplicates, 0);
    assert.equal(s.gaps, 0);
    assert.equal(s.applied, lastId - base);
    // The first mount's client was stopped before it opened a socket (or closed it): one is left.
    let sockets = null;
    await waitUntil(async () => {
      const m = await (await fetch(`${srv.url}/metrics`)).text();
      sockets = /^ragpulse_sockets\{namespace="\/pipeline"\} (\d+)$/m.exec(m)?.[1] ?? null;
      return sockets === '1';
    }, T, () => `one /pipeline socket for the page (metrics say ${sockets})`);
    assert.deepEqual(problems.filter((x) => /hydrat/i.test(x)), [], 'no hydration warning');
    assert.deepEqual(realProblems(problems), []);
  } finally {
    await context.close();
    await dev.stop();
    await srv.stop();
  }
});
