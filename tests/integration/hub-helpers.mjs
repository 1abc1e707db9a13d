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

/**
 * The file registry is read a page at a time (GET /api/files?pipeline=&after=&limit=): 2,500
 * files come back as pages of 1,000, 1,000 and 500, each file once, in file_id order, each page
 * but the last with next_after; a bad limit is refused with the rule, and nothing is stored.
 * Shared by the SQLite and PostgreSQL suites (the query is each backend's).
 */
export async function assertRegistryPages(url, assert) {
  const pid = 'reg-pages';
  const ids = Array.from({ length: 2500 }, (_, i) => `f${String(i).padStart(5, '0')}`);
  for (let i = 0; i < ids.length; i += 1000) {
    await postEvents(url, ids.slice(i, i + 1000).map((id) => ({
      type: 'file:completed', pipeline_id: pid, pipeline_type: 'local_files', file: { id, name: `${id}.txt` },
    })));
  }
  const seen = [];
  const sizes = [];
  let after = null;
  for (;;) {
    const page = await getJson(`${url}/api/files?pipeline=${pid}${after ? `&after=${after}` : ''}`);
    sizes.push(page.files.length);
    seen.push(...page.files.map((f) => f.file_id));
    if (!page.next_after) break;
    assert.equal(page.next_after, page.files.at(-1).file_id, 'next_after is the last file of the page');
    after = page.next_after;
  }
  assert.deepEqual(sizes, [1000, 1000, 500]);
  assert.deepEqual(seen, ids, 'every file once, in file_id order');
  const small = await getJson(`${url}/api/files?pipeline=${pid}&after=f00010&limit=3`);
  assert.deepEqual(small.files.map((f) => f.file_id), ['f00011', 'f00012', 'f00013']);
  assert.equal(small.next_after, 'f00013');
  const version = (await getJson(`${url}/api/rag-status`)).version;
  for (const q of ['limit=0', 'limit=1001', 'limit=x']) {
    const bad = await request(`${url}/api/files?pipeline=${pid}&${q}`);
    assert.equal(bad.status, 400, q);
    assert.match(JSON.parse(bad.text).error, /limit must be an integer from 1 to 1000/, q);
  }
  assert.equal((await getJson(`${url}/api/rag-status`)).version, version, 'a refused read changes nothing');
}
