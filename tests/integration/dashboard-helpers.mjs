// Helpers for the dashboard's browser tests (dashboard-*.test.mjs): real Chromium through
// playwright-core, a screenshot directory, and an HTTP/WebSocket proxy that can refuse the
// Socket.IO path while passing everything else (to prove the HTTP fallback and the way back).
import http from 'node:http';
import net from 'node:net';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BUILD_DIR, REPO_DIR } from './helpers.mjs';
import { postEvents } from './hub-helpers.mjs';

export const CHROMIUM = process.env.RP_CHROMIUM || '/usr/bin/chromium';
/** Where screenshots go: RP_SCREENSHOT_DIR, else <build>/screenshots. */
export const SHOT_DIR = process.env.RP_SCREENSHOT_DIR || path.join(BUILD_DIR, 'screenshots');

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/**
 * A page that records page errors and console errors (a CSP violation is a console error),
 * and any dialog (alert() from injected script) — the tests assert all three stay empty.
 * `httpErrors` collects the page's /api/ requests answered 400 or more ("403 /api/failures").
 */
export async function openPage(browser, url, { viewport = { width: 1440, height: 900 }, bypassCSP = false, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, bypassCSP, colorScheme, reducedMotion: 'reduce' });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection to .* failed|net::ERR_/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  const httpErrors = [];
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/') && r.status() >= 400) httpErrors.push(`${r.status()} ${u.pathname}${u.search}`);
  });
  await page.goto(url);
  return { page, context, problems, httpErrors };
}

export async function shot(page, name) {
  mkdirSync(SHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SHOT_DIR, `${name}.png`) });
}

export const stats = (page) => page.evaluate(() => window.__ragpulse?.stats());
/** The client's health (web/client Health): badge, synced, version, fallbacks, ... */
export const health = (page) => page.evaluate(() => window.__ragpulse?.health());
export const badge = (page) => page.getAttribute('[data-testid=conn-badge]', 'data-badge');

/** Runs axe-core (from tests/node_modules) on the page; resolves with its violations. */
export async function axe(page) {
  const src = readFileSync(path.join(REPO_DIR, 'tests/node_modules/axe-core/axe.min.js'), 'utf8');
  await page.evaluate(src);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
}

/** Event factory for one pipeline. */
export function producer(base, pipeline_id, pipeline_type = 'local_files') {
  const ev = (type, extra = {}) => ({ type, pipeline_id, pipeline_type, ...extra });
  return {
    ev,
    post: (events) => postEvents(base, events),
  };
}

/**
 * An HTTP proxy in front of ragpulse. `refuse(true)` answers /socket.io/ with 503, cuts
 * WebSocket upgrades and every open Socket.IO connection (polling requests and websockets);
 * /api/ and the assets keep passing. `refuse(false)` lets everything through again. `seen`
 * lists every request it passed on, as {url, authorization, status} once answered.
 */
export async function startRefusingProxy(targetPort) {
  let refusing = false;
  const sio = new Set(); // sockets carrying /socket.io/ traffic
  const agent = new http.Agent({ keepAlive: false });
  const seen = [];
  const server = http.createServer((req, res) => {
    const isSio = req.url.startsWith('/socket.io/');
    if (isSio && refusing) {
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
      res.end('{"error":"socket.io path refused by the test proxy"}');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      seen.push({ url: req.url, authorization: req.headers.authorization ?? null, status: ur.statusCode });
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    if (isSio) {
      sio.add(req.socket);
      req.socket.once('close', () => sio.delete(req.socket));
    }
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  server.on('upgrade', (req, socket, head) => {
    if (refusing) {
      socket.destroy();
      return;
    }
    const up = net.connect(targetPort, '127.0.0.1', () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${raw}\r\n`);
      if (head.length) up.write(head);
      socket.pipe(up);
      up.pipe(socket);
    });
    sio.add(socket);
    const done = () => {
      sio.delete(socket);
      socket.destroy();
      up.destroy();
    };
    socket.on('close', done);
    socket.on('error', done);
    up.on('close', done);
    up.on('error', done);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    refuse(on) {
      refusing = on;
      if (on) for (const s of sio) s.destroy();
    },
    close() {
      for (const s of sio) s.destroy();
      server.closeAllConnections?.();
      server.close();
    },
  };
}

/** Zero-padded file index, so names sort and search uniquely ("file-00042.pdf"). */
export const loadName = (i) => `file-${String(i).padStart(5, '0')}.pdf`;

/**
 * The volume scenario: `files` files start (posted in batches), then `rate` progress events a
 * second for `seconds`, spread over the files round-robin, in POST batches every 100 ms.
 * Resolves with {lastId, progress: Map(file index -> last progress sent), events}.
 */
export async function driveLoad(base, { pipeline = 'load-1', files = 10000, rate = 1000, seconds = 5, onTick } = {}) {
  const p = producer(base, pipeline);
  let lastId = (await p.post(p.ev('pipeline:online', { heartbeat_interval: 60 }))).id;
  const stages = ['parse', 'chunk', 'embed', 'index'];
  for (let i = 0; i < files; i += 250) {
    const batch = [];
    for (let k = i; k < Math.min(files, i + 250); k++) batch.push(p.ev('file:processing', { file: { id: `f${k}`, name: loadName(k), stage: 'parse' } }));
    const r = await p.post(batch);
    lastId = r.ids.at(-1);
  }
  const progress = new Map();
  const perTick = Math.round(rate / 10);
  let cursor = 0;
  let events = 0;
  const t0 = Date.now();
  for (let tick = 0; tick < seconds * 10; tick++) {
    const batch = [];
    for (let k = 0; k < perTick; k++) {
      const i = cursor++ % files;
      const pr = Math.min(1, Math.round(((progress.get(i) ?? 0) + 0.05) * 1000) / 1000);
      progress.set(i, pr);
      batch.push(p.ev('file:progress', { file: { id: `f${i}`, name: loadName(i), progress: pr, stage: stages[Math.min(3, Math.floor(pr * 4))] } }));
    }
    const r = await p.post(batch);
    lastId = r.ids.at(-1);
    events += batch.length;
    onTick?.(tick);
    const wait = t0 + (tick + 1) * 100 - Date.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait)); // time is the test: a steady rate
  }
  return { lastId, progress, events, seconds: (Date.now() - t0) / 1000 };
}
