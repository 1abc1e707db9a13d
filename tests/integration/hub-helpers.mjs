// Helpers shared by the hub's integration tests (hub-*.test.mjs): a `ragpulse serve` with a
// store of its own, and small HTTP helpers with a bound on every request.
import assert from 'node:assert/strict';
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
