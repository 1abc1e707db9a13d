// Shared helpers for ragpulse's integration tests (Node test runner).
//
// Environment:
//   RAGPULSE_BUILD_DIR  directory holding rp-testserver and ragpulse (default: <repo>/build)
//   RP_TEST_SERVER=ref  run the Node reference server (ref-testserver.mjs) instead of the C one
//   RP_REF_SERVER       path of the reference server script (default: ./ref-testserver.mjs)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'node:test';
import { io } from 'socket.io-client';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = path.resolve(here, '..', '..');
export const BUILD_DIR = process.env.RAGPULSE_BUILD_DIR || path.join(REPO_DIR, 'build');
export const USE_REF = process.env.RP_TEST_SERVER === 'ref';
export const REF_SERVER = process.env.RP_REF_SERVER || path.join(here, 'ref-testserver.mjs');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port on 127.0.0.1 that was free a moment ago (for peers that cannot take port 0). */
export async function freePort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}
/** Like sleep() but does not keep the process alive. */
const sleepUnref = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** Rejects with a labelled error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, label = 'operation') {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** Resolves with the args array of the next `event` on `emitter` (socket.io-client or EventEmitter). */
export function once(emitter, event, ms = 5000) {
  return withTimeout(new Promise((resolve) => {
    const fn = (...args) => resolve(args);
    if (typeof emitter.once === 'function') emitter.once(event, fn);
    else emitter.on(event, fn);
  }), ms, `event "${event}"`);
}

/** Polls `cond()` until it is truthy; `label` may be a function, evaluated on timeout. */
export async function waitUntil(cond, ms = 5000, label = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) {
      throw new Error(`timeout after ${ms} ms waiting for ${typeof label === 'function' ? label() : label}`);
    }
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------------------
// Server processes

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

let currentServers = [];

/**
 * Starts the server under test.
 * @param {string[]} args  extra command-line arguments (a `--listen` is added unless given)
 * @param {{product?: boolean, bin?: string, timeoutMs?: number, uid?: number, gid?: number}} opt
 *        product: run `ragpulse serve` instead; bin: run that program of the build directory
 *        (e.g. 'rp-bench-relay') instead; uid/gid (a test running as root): run it as that
 *        user, so file permissions apply to it
 * @returns {Promise<{port:number,url:string,proc:import('node:child_process').ChildProcess,
 *           stderr:()=>string, stop:(signal?:string)=>Promise<void>}>}
 */
export async function startServer(args = [], { product = false, bin = null, timeoutMs = 10000, uid, gid } = {}) {
  const fullArgs = [...args];
  if (!fullArgs.includes('--listen')) fullArgs.unshift('--listen', '127.0.0.1:0');
  let cmd, argv;
  if (USE_REF) {
    cmd = process.execPath;
    argv = [REF_SERVER, ...(product ? ['--product'] : []), ...fullArgs];
  } else {
    cmd = path.resolve(BUILD_DIR, bin ?? (product ? 'ragpulse' : 'rp-testserver')); // bin may be absolute
    if (!existsSync(cmd)) {
      throw new Error(`server binary ${cmd} does not exist (build it, set RAGPULSE_BUILD_DIR, ` +
        'or set RP_TEST_SERVER=ref to run against the Node reference server)');
    }
    argv = product ? ['serve', ...fullArgs] : fullArgs;
  }
  // `ragpulse serve` keeps its events in ./ragpulse.db unless told otherwise: tests get a
  // memory store (no file, no state shared between tests) unless they pass --store.
  const env = { ...process.env, RAGPULSE_STORE: process.env.RAGPULSE_STORE ?? 'memory' };
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env, ...(uid === undefined ? {} : { uid, gid }) });
  live.add(proc);
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 2_000_000) stderr = stderr.slice(-1_000_000);
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, sig) => {
    live.delete(proc);
    resolve({ code, sig });
  }));
  const ready = new Promise((resolve, reject) => {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = /listening on http:\/\/([^\s:]+):(\d+)\r?\n/.exec(stdout);
      if (m) resolve({ host: m[1], port: Number(m[2]) });
    });
    proc.once('error', reject);
    exited.then(({ code, sig }) => reject(new Error(
      `server exited (code ${code}, signal ${sig}) before printing "listening on"; ` +
      `stdout: ${JSON.stringify(stdout)}\nstderr:\n${stderr.slice(-4000)}`)));
  });
  let info;
  try {
    info = await withTimeout(ready, timeoutMs, `"listening on" line from ${cmd} ${argv.join(' ')}`);
  } catch (e) {
    try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
    throw e;
  }
  const srv = {
    port: info.port,
    url: `http://${info.host}:${info.port}`,
    proc,
    args: argv,
    stderr: () => stderr,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      try { process.kill(proc.pid, signal); } catch { return; }
      const r = await Promise.race([exited, sleepUnref(3000).then(() => null)]);
      if (r === null) {
        try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
        await Promise.race([exited, sleepUnref(3000)]);
      }
    },
  };
  currentServers.push(srv);
  return srv;
}

// ---------------------------------------------------------------------------------------------
// Clients

let currentClients = [];

/** Creates a socket.io-client socket (forceNew, no reconnection unless asked) tracked for cleanup. */
export function client(url, opts = {}) {
  const s = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  currentClients.push(s);
  return s;
}

/** Like client() but resolves once connected; rejects on connect_error or timeout. */
export async function connect(url, opts = {}, ms = 5000) {
  const s = client(url, opts);
  await withTimeout(new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', (err) => reject(new Error(`connect_error for ${url}: ${err.message}`)));
  }), ms, `connect to ${url}`);
  return s;
}

/** Registers a tracked object (anything with close() or terminate()) for cleanup after the test. */
export function track(obj) {
  currentClients.push(obj);
  return obj;
}

function closeAllClients() {
  for (const c of currentClients) {
    try {
      if (typeof c.disconnect === 'function' && c.io) { c.io.opts.reconnection = false; c.disconnect(); }
      else if (typeof c.terminate === 'function') c.terminate();
      else if (typeof c.close === 'function') c.close();
    } catch { /* ignore */ }
  }
  currentClients = [];
}

/** Servers started by a test are stopped in its afterEach unless they were started in before(). */
export function keepServer(srv) {
  currentServers = currentServers.filter((s) => s !== srv);
  return srv;
}

afterEach(async (t) => {
  closeAllClients();
  if (!t.passed) {
    for (const srv of [...currentServers, ...suiteServers]) {
      const tail = srv.stderr().split('\n').slice(-60).join('\n');
      console.log(`--- server stderr (${srv.args.join(' ')}), last lines ---\n${tail}`);
    }
  }
  const toStop = currentServers;
  currentServers = [];
  await Promise.all(toStop.map((s) => s.stop()));
});

const suiteServers = [];
/** Starts a server meant to live for a whole file (call in before(), stop in after()). */
export async function startSuiteServer(args = [], opt = {}) {
  const srv = keepServer(await startServer(args, opt));
  suiteServers.push(srv);
  return srv;
}

// ---------------------------------------------------------------------------------------------
// Raw Engine.IO helpers

/** Parses an Engine.IO v4 polling payload into packets [{type, data, binary}]. */
export function parsePollingPayload(text) {
  return text.split('\x1e').filter((p) => p.length > 0).map((p) => {
    if (p[0] === 'b') return { type: '4', data: Buffer.from(p.slice(1), 'base64'), binary: true };
    return { type: p[0], data: p.slice(1), binary: false };
  });
}

/** Opens a polling Engine.IO session at `base` + path; returns {sid, open}. */
export async function pollingHandshake(base, pathName = '/engine.io/', headers = {}) {
  const res = await fetch(`${base}${pathName}?EIO=4&transport=polling`, { headers });
  const text = await res.text();
  if (res.status !== 200 || text[0] !== '0') {
    throw new Error(`polling handshake failed: ${res.status} ${text}`);
  }
  const open = JSON.parse(text.slice(1));
  return { sid: open.sid, open, res };
}

// ---------------------------------------------------------------------------------------------
// Loopback TCP proxy that holds back WebSocket handshakes

/**
 * A loopback TCP proxy to targetPort (a load balancer or a network path, for the tests that
 * need to break one): `switchTo(port)` sends new connections elsewhere and cuts the current
 * ones (a node died); `cut(ms)` cuts every connection and refuses new ones for ms (a network
 * drop, as a polling client sees it). Tracked for cleanup.
 */
export async function tcpProxy(targetPort) {
  const conns = new Set();
  let target = targetPort;
  let refuseUntil = 0;
  const cutAll = () => { for (const c of conns) c.destroy(); conns.clear(); };
  // Server-to-client bytes allowed (over all connections) before the proxy stalls the
  // connection whose bytes cross the budget (stallAfter()): from the byte past it, what the
  // server sends on that connection waits in `held`, and so does its close (a polling server
  // closes after each response), until unstall() delivers both in order. The response cannot
  // complete, so the stall holds; other connections flow. `stalled` stays set until unstall().
  let budget = Infinity;
  let stalled = false;
  let held = []; // [client socket, chunk | null for the server's close]
  const paused = new Set();
  const server = net.createServer((c) => {
    if (Date.now() < refuseUntil) { c.destroy(); return; }
    const up = net.connect(target, '127.0.0.1');
    conns.add(c); conns.add(up);
    const gone = () => { c.destroy(); up.destroy(); conns.delete(c); conns.delete(up); paused.delete(up); };
    c.on('error', gone); c.on('close', gone);
    up.on('error', gone);
    up.on('close', () => { if (paused.has(up)) held.push([c, null]); else gone(); });
    c.pipe(up);
    up.on('data', (chunk) => {
      if (paused.has(up)) { held.push([c, chunk]); return; }
      if (stalled || chunk.length < budget) {
        c.write(chunk);
        if (!stalled) budget -= chunk.length;
        return;
      }
      c.write(chunk.subarray(0, budget - 1)); // at least its last byte waits
      held.push([c, chunk.subarray(budget - 1)]);
      stalled = true;
      paused.add(up);
      up.pause();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return track({
    url: `http://127.0.0.1:${server.address().port}`,
    switchTo(port) { target = port; cutAll(); },
    cut(ms = 0) { refuseUntil = Date.now() + ms; cutAll(); },
    /** Cuts every connection and refuses new ones until release(). */
    hold() { refuseUntil = Infinity; cutAll(); },
    release() { refuseUntil = 0; },
    /** After `bytes` more from the server, the connection that crosses them stalls until unstall(). */
    stallAfter(bytes) { budget = bytes; },
    /** True once a connection stalled, until unstall(). */
    stalled() { return stalled; },
    unstall() {
      budget = Infinity;
      stalled = false;
      const pending = held;
      held = [];
      for (const [c, chunk] of pending) {
        if (c.destroyed) continue;
        if (chunk === null) c.end(); else c.write(chunk);
      }
      const ups = [...paused];
      paused.clear();
      for (const up of ups) { if (up.destroyed) conns.delete(up); else up.resume(); }
    },
    close() { cutAll(); server.close(); },
  });
}

/**
 * Starts a TCP proxy on 127.0.0.1 in front of `targetPort`. Connections whose first bytes are an
 * HTTP request with `Upgrade: websocket` are forwarded only after `wsDelayMs`; everything else at
 * once. Used to keep a client on polling for a while before its upgrade completes.
 */
export async function startDelayProxy(targetPort, { wsDelayMs = 150 } = {}) {
  const conns = new Set();
  const server = net.createServer((client) => {
    conns.add(client);
    client.on('error', () => client.destroy());
    client.on('close', () => conns.delete(client));
    client.once('data', (first) => {
      client.pause();
      const isWs = /\r\nupgrade:[ \t]*websocket/i.test(first.toString('latin1'));
      const go = () => {
        if (client.destroyed) return;
        const up = net.connect(targetPort, '127.0.0.1');
        conns.add(up);
        up.on('close', () => { conns.delete(up); client.destroy(); });
        up.on('error', () => up.destroy());
        client.on('close', () => up.destroy());
        up.once('connect', () => {
          up.write(first);
          client.pipe(up);
          up.pipe(client);
        });
      };
      if (isWs) setTimeout(go, wsDelayMs); else go();
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  const proxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    close() {
      for (const c of conns) c.destroy();
      server.close();
    },
  };
  currentClients.push(proxy);
  return proxy;
}
