// Helpers shared by the hub's integration tests (hub-*.test.mjs): a `ragpulse serve` with a
// store of its own, and small HTTP helpers with a bound on every request.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, startSuiteServer } from './helpers.mjs';

/** Bound for any one request or wait, in ms. */
export const T = 5000;
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// Each server gets a store of its own (`ragpulse serve` keeps a durable log, by default in
// ./ragpulse.db): memory, or a fresh SQLite file per server with RP_HUB_STORE=sqlite.
export function storeArgs() {
  if (process.env.RP_HUB_STORE !== 'sqlite') return ['--store', 'memory'];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-hub-test-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return ['--store', `sqlite:${path.join(dir, 'hub.db')}`];
}
export const hub = (args = []) => startServer([...args, ...storeArgs()], { product: true });
export const suiteHub = (args = []) => startSuiteServer([...args, ...storeArgs()], { product: true });

/** fetch with a timeout; returns {status, headers, text, json (null if not JSON)}. */
export async function request(url, { method = 'GET', headers = {}, body, ms = T } = {}) {
  const res = await fetch(url, {
    method, headers, body: body === undefined ? undefined : Buffer.from(body), signal: AbortSignal.timeout(ms),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

/** GET that must answer 200 with JSON. */
export async function getJson(url) {
  const r = await request(url);
  assert.equal(r.status, 200, `GET ${url}: ${r.status} ${r.text}`);
  return r.json;
}

/** request() with a JSON body (and its content type) when `body` is given. */
export function requestJson(url, { method = 'GET', body, ms = T } = {}) {
  return request(url, {
    method, ms,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** POST /api/events (an event or a batch) that must answer 200; returns its JSON. */
export async function postEvents(base, body) {
  const r = await requestJson(`${base}/api/events`, { method: 'POST', body });
  assert.equal(r.status, 200, `POST /api/events: ${r.status} ${r.text}`);
  return r.json;
}

/** Runs one statement with the sqlite3 CLI on a database file; resolves with its output. */
export function sqlite3Cli(db, sql) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', ['-batch', '-noheader', db, sql], { timeout: 10000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => (err ? reject(new Error(`sqlite3 ${sql}: ${err.message} ${stderr}`)) : resolve(stdout.trim())));
  });
}
