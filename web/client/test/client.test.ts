// The connection manager and the live model over a stubbed fetch (the hub's HTTP path, which
// /api/socket/info can choose): the badge says "connecting" and `synced` stays false until the
// first snapshot is applied; a limited token's answers (the hub leaves other pipelines' ids
// out) move the model's version on without counting gaps, also while paused; the migration
// guide's switches (websocketEnabled, enablePolling/fallbackEnabled, pollingInterval,
// maxFailures and the NEXT_PUBLIC_* variables) are taken under the guide's names.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { RagEvent, Snapshot } from '../src/events.js';
import { DEFAULT_FALLBACK } from '../src/fallback.js';
import { RagPulseClient, fallbackConfigOf, optionsFromEnv } from '../src/client.js';
import { LiveStatus } from '../src/live.js';

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

const ts = new Date().toISOString();
const snap = (version: number): Snapshot => ({ version, server_time: ts, pipelines: [] });
const ev = (id: number): RagEvent => ({ id, ts, type: 'heartbeat', pipeline_id: 'a', pipeline_type: 'local_files' });

/**
 * A hub that answers /api/socket/info with `mode` ("http" unless told) and every
 * /api/rag-status request from a queue the test fills (each request waits for its answer, as
 * a long-poll does).
 */
function stubHub(mode: 'http' | 'websocket' = 'http') {
  const asked: string[] = [];
  const answers: unknown[] = [];
  const waiting: ((v: unknown) => void)[] = [];
  globalThis.fetch = (async (input: string | URL, init?: RequestInit) => {
    const u = new URL(String(input));
    const json = (v: unknown) => new Response(JSON.stringify(v), { status: 200, headers: { 'content-type': 'application/json' } });
    if (u.pathname === '/api/socket/info') return json({ mode, transports: ['polling', 'websocket'], path: '/socket.io/' });
    if (u.pathname === '/health') return json({ status: 'ok' });
    asked.push(u.pathname + u.search);
    const body = answers.length ? answers.shift() : await new Promise((resolve, reject) => {
      waiting.push(resolve);
      init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
    return json(body);
  }) as typeof fetch;
  return {
    asked,
    answer(v: unknown) {
      const w = waiting.shift();
      if (w) w(v);
      else answers.push(v);
    },
  };
}

async function until(cond: () => boolean, label: string, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('not synced (badge connecting) until the first snapshot, then synced on the live path', async () => {
  const hub = stubHub();
  const live = new LiveStatus({ url: 'http://127.0.0.1:1', pingIntervalMs: 60000 });
  live.start();
  try {
    await until(() => hub.asked.length === 1, 'the snapshot request');
    assert.equal(live.client.getHealth().mode, 'http', 'the HTTP path is up');
    assert.equal(live.client.getHealth().synced, false);
    assert.equal(live.client.getHealth().badge, 'connecting', 'no live badge before the snapshot');
    hub.answer(snap(5));
    await until(() => live.client.getHealth().synced, 'synced');
    assert.equal(live.model.version, 5);
    assert.equal(live.client.getHealth().badge, 'http');
    assert.equal(live.client.getHealth().version, 5);
    // A new token starts from a new baseline: not synced until its own snapshot.
    live.client.setToken(null);
    assert.equal(live.client.getHealth().synced, false);
    assert.equal(live.client.getHealth().badge, 'connecting');
  } finally {
    live.stop();
  }
});

test('a limited token over HTTP: skipped ids and empty answers move the version, no false gap', async () => {
  const hub = stubHub();
  const live = new LiveStatus({ url: 'http://127.0.0.1:1', pingIntervalMs: 60000 });
  live.start();
  try {
    hub.answer(snap(5));
    // Pipeline a's events 7 and 9; 6, 8 and 10 belong to b, which this token may not see.
    hub.answer({ version: 10, since: 5, events: [ev(7), ev(9)] });
    await until(() => hub.asked.includes('/api/rag-status?since=10&wait=25'), 'the next long-poll from 10');
    assert.equal(live.model.version, 10);
    hub.answer({ version: 12, since: 10, events: [] }); // only b moved
    await until(() => hub.asked.includes('/api/rag-status?since=12&wait=25'), 'the long-poll from 12');
    assert.equal(live.model.version, 12, 'the model follows the client, not only its events');
    live.setPaused(true);
    hub.answer({ version: 15, since: 12, events: [ev(13)] });
    await until(() => hub.asked.includes('/api/rag-status?since=15&wait=25'), 'the long-poll from 15');
    hub.answer({ version: 16, since: 15, events: [ev(16)] });
    await until(() => live.buffered.length === 2, 'two events held while paused');
    assert.equal(live.model.version, 12, 'paused: nothing applied');
    live.setPaused(false);
    assert.equal(live.model.version, 16);
    assert.deepEqual({ ...live.model.stats }, { applied: 4, gaps: 0, duplicates: 0, baselines: 1 });
  } finally {
    live.stop();
  }
});

test("the guide's names: aliases and NEXT_PUBLIC_* variables set the fallback rules; explicit options win", () => {
  assert.deepEqual(fallbackConfigOf({}, {}), DEFAULT_FALLBACK);
  const cfg = fallbackConfigOf({ websocketEnabled: false, enablePolling: false, maxFailures: 5 }, {});
  assert.equal(cfg.socketEnabled, false);
  assert.equal(cfg.fallbackEnabled, false);
  assert.equal(cfg.maxSocketFailures, 5);
  // The guide's environment, as its flags are written ("true" / "false").
  const env = optionsFromEnv({ NEXT_PUBLIC_WEBSOCKET_ENABLED: 'false', NEXT_PUBLIC_FALLBACK_ENABLED: 'true' });
  assert.deepEqual(env, { socketEnabled: false, fallbackEnabled: true });
  assert.equal(fallbackConfigOf({}, env).socketEnabled, false);
  assert.equal(fallbackConfigOf({ websocketEnabled: true }, env).socketEnabled, true, 'an option wins over the variable');
  assert.deepEqual(optionsFromEnv({ NEXT_PUBLIC_WEBSOCKET_ENABLED: 'maybe' }), {}, 'an unknown value leaves the default');
  assert.deepEqual(optionsFromEnv({ NEXT_PUBLIC_FALLBACK_ENABLED: '0' }), { fallbackEnabled: false });
  assert.deepEqual(optionsFromEnv(), {}, 'no variables here: nothing set');
  assert.equal(fallbackConfigOf({ maxFailures: 0 }, {}).maxSocketFailures, 1, 'at least one attempt');
});

test('websocketEnabled: false never opens the socket, even when the hub offers websocket', async () => {
  const hub = stubHub('websocket');
  const live = new LiveStatus({ url: 'http://127.0.0.1:1', pingIntervalMs: 60000, websocketEnabled: false });
  live.start();
  try {
    await until(() => hub.asked.length === 1, 'the snapshot request');
    hub.answer(snap(3));
    await until(() => live.client.getHealth().badge === 'http', 'the HTTP path');
    assert.equal(live.client.getHealth().mode, 'http');
    assert.equal(live.client.getHealth().fallbacks, 0, 'not a fallback: the only path');
    assert.equal(live.client.fallbackConfig.socketEnabled, false);
  } finally {
    live.stop();
  }
});

test('pollingInterval: the HTTP path polls (wait=0) every interval instead of holding a long-poll', async () => {
  const hub = stubHub();
  const live = new LiveStatus({ url: 'http://127.0.0.1:1', pingIntervalMs: 60000, pollingInterval: 20 });
  live.start();
  try {
    hub.answer(snap(5));
    hub.answer({ version: 6, since: 5, events: [ev(6)] });
    hub.answer({ version: 6, since: 6, events: [] });
    await until(() => hub.asked.includes('/api/rag-status?since=6&wait=0'), 'a poll from 6');
    await until(() => hub.asked.filter((a) => a === '/api/rag-status?since=6&wait=0').length === 2, 'the next poll, an interval later');
    assert.ok(hub.asked.every((a) => !/wait=25/.test(a)), `no long-poll: ${hub.asked}`);
    assert.equal(live.model.version, 6);
  } finally {
    live.stop();
  }
});

test('the first /api/rag-status after a switch to HTTP says why (X-RagPulse-Fallback), the next ones do not', async () => {
  const headers: (string | null)[] = [];
  const hub = stubHub('websocket');
  const stubbed = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL, init?: RequestInit) => {
    if (new URL(String(input)).pathname === '/api/rag-status')
      headers.push(new Headers(init?.headers).get('x-ragpulse-fallback'));
    return stubbed(input, init);
  }) as typeof fetch;
  // Port 1 refuses: the socket fails at once, and one failure is the limit.
  const live = new LiveStatus({ url: 'http://127.0.0.1:1', pingIntervalMs: 60000, maxSocketFailures: 1, retrySocketMinMs: 60000 });
  live.start();
  try {
    await until(() => hub.asked.length === 1, 'the snapshot request on the HTTP path');
    assert.equal(live.client.getHealth().mode, 'http');
    assert.equal(live.client.getHealth().fallbacks, 1);
    hub.answer(snap(5));
    await until(() => hub.asked.length === 2, 'the first long-poll');
    assert.deepEqual(headers, ['socket_errors', null], 'reported once, on the request after the switch');
  } finally {
    live.stop();
  }
});

test('start, stop, start before /api/socket/info answers (React strict mode) starts the client once', async () => {
  // The first start() is still waiting for /api/socket/info when stop() and the second start()
  // come: when the answers arrive, only the second may start the machine and its ping timer.
  const infos: ((r: Response) => void)[] = [];
  let answered = 0;
  globalThis.fetch = (async (input: string | URL) => {
    const u = new URL(String(input));
    if (u.pathname === '/api/socket/info') return new Promise<Response>((resolve) => infos.push(resolve));
    return new Promise<Response>(() => {}); // the HTTP path stays pending: only the start matters here
  }) as typeof fetch;
  // An answer whose body the test sees being read: after that and one macrotask, the start()
  // that asked has run to its end (only microtasks are left between the read and the check).
  const info = () =>
    ({
      ok: true,
      status: 200,
      json: async () => {
        answered++;
        return { mode: 'http', transports: ['polling'], path: '/socket.io/' };
      },
    }) as unknown as Response;
  const realSetInterval = globalThis.setInterval;
  const made: ReturnType<typeof setInterval>[] = [];
  let intervals = 0;
  globalThis.setInterval = ((...a: Parameters<typeof setInterval>) => {
    intervals++;
    const h = realSetInterval(...a);
    made.push(h);
    return h;
  }) as typeof setInterval;
  const c = new RagPulseClient({ url: 'http://hub.test', websocketEnabled: false });
  const seen: string[] = [];
  c.on('health', (h) => seen.push(h.mode));
  try {
    void c.start();
    c.stop();
    void c.start();
    await until(() => infos.length === 2, 'both starts asked /api/socket/info');
    infos[1]!(info()); // the live start() first
    await until(() => seen.length > 0 && intervals === 1, 'the machine started');
    infos[0]!(info()); // then the stale one's answer
    await until(() => answered === 2, 'the stale start() read its answer');
    await new Promise((r) => setTimeout(r, 0)); // one macrotask: its remaining microtasks ran
    assert.equal(intervals, 1, 'one ping timer: the stale start() did not start the machine again');
  } finally {
    c.stop();
    for (const h of made) clearInterval(h); // a second timer (the bug this guards against) would keep the process alive
    globalThis.setInterval = realSetInterval;
  }
});
