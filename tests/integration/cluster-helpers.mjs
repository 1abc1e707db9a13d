// Helpers for the cluster suites: a real redis-server started on a free loopback port in a temp
// dir (no persistence), stopped by its PID; ragpulse nodes on it; a switchable TCP proxy (the
// "load balancer" a client keeps one URL through); a recording viewer.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { createClient } from 'redis';
import { io } from 'socket.io-client';
import { freePort, startServer, track, waitUntil, withTimeout } from './helpers.mjs';

export const T = 5000;
const tmpDirs = [];
const redises = new Set();
after(async () => {
  for (const r of redises) await r.stop();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

export function tmpDir(prefix = 'rp-cluster-') {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

export { freePort };

/** Starts redis-server on 127.0.0.1 (port picked free unless given); resolves once it answers. */
export async function startRedis(port) {
  port ??= await freePort();
  const dir = tmpDir('rp-redis-');
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  await withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on('data', () => { if (/Ready to accept connections/.test(out)) resolve(); });
    exited.then(() => reject(new Error(`redis-server exited: ${out}`)));
  }), 10000, 'redis-server to start');
  const r = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc,
    async stop() {
      redises.delete(r);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
  redises.add(r);
  return r;
}

/** A ragpulse node on redis (memory store unless args say otherwise). */
export function node(redis, args = []) {
  return startServer(['--cluster', redis.url, ...args], { product: true });
}

/** Waits until every node's /health says the cluster is ok. */
export async function clusterOk(nodes, ms = 10000) {
  await waitUntil(async () => {
    for (const n of nodes) {
      const h = await fetch(`${n.url}/health`).then((r) => r.json()).catch(() => null);
      if (!h || h.cluster?.ok !== true) return false;
    }
    return true;
  }, ms, 'every node joined the cluster');
}

/** A stock socket.io-client viewer that records every event (hub heartbeats aside). */
export function viewer(url, opts = {}) {
  const s = track(io(url, {
    forceNew: true, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300,
    randomizationFactor: 0, timeout: 3000, transports: ['websocket'], ...opts,
  }));
  const log = { events: [], connects: 0, recoveredAt: [] };
  s.onAny((name, ...args) => {
    if (name === 'heartbeat' || name === 'sync') return;
    log.events.push({ name, ev: args[0], args });
  });
  s.on('connect', () => { log.connects++; log.recoveredAt.push(s.recovered); });
  return { s, log, ids: () => log.events.map((e) => e.ev.id) };
}

/**
 * Waits until Redis holds viewer v's recovery session (the key the nodes write, by its pid)
 * and it names `room`: then another node can resume it.
 */
export async function sessionStored(redis, v, room, ms = T) {
  const rc = createClient({ url: redis.url });
  rc.on('error', () => {});
  await rc.connect();
  let seen = null;
  try {
    // The value is base64 of msgpack (the Node adapter's format): the room names are in it as text.
    const names = (text) => Buffer.from(text, 'base64').toString('latin1');
    await waitUntil(async () => names(seen = (await rc.get(`sio:session:${v.s._pid}`)) ?? '').includes(room), ms,
      () => `the session of ${v.s._pid} naming ${room} in Redis (has ${JSON.stringify(seen)})`);
  } finally {
    await rc.quit().catch(() => {});
  }
}

export async function subscribe(v, filter = {}) {
  await waitUntil(() => v.s.connected, T, 'viewer to connect');
  const ack = await v.s.timeout(T).emitWithAck('subscribe', filter);
  if (ack.ok !== true) throw new Error(`subscribe: ${JSON.stringify(ack)}`);
  return ack;
}

/**
 * Produces one pipeline:online of `pid` on `url` (viewer() leaves heartbeats out), waits until every viewer has it, then takes it out
 * of their logs: a connection delivers in order, so whatever was sent to a viewer before (a
 * late duplicate included) has arrived by then. Stands in for "nothing more arrives". Resolves
 * with the marker's id.
 */
export async function drain(url, pid, viewers, type = 'local_files', ms = T) {
  const [id] = await produce(url, [{ type: 'pipeline:online', pipeline_id: pid, pipeline_type: type }]);
  await waitUntil(() => viewers.every((v) => v.log.events.some((e) => e.ev?.id === id)), ms, `marker ${id} at every viewer`);
  for (const v of viewers) v.log.events = v.log.events.filter((e) => e.ev?.id !== id);
  return id;
}

/** A producer socket on /pipeline emitting acked events; resolves the ack ids in order. */
export async function produce(url, events) {
  const p = track(io(`${url}/pipeline`, { forceNew: true, reconnection: false, transports: ['websocket'] }));
  await waitUntil(() => p.connected, T, 'producer to connect');
  const ids = [];
  for (const ev of events) {
    const ack = await p.timeout(T).emitWithAck(ev.type, ev);
    if (typeof ack.id !== 'number') throw new Error(`producer ack: ${JSON.stringify(ack)}`);
    ids.push(ack.id);
  }
  p.close();
  return ids;
}

/** The i-th event of a scripted pipeline: online, then per file processing/progress/completed. */
export function scripted(pid, i, type = 'local_files') {
  if (i === 0) return { type: 'pipeline:online', pipeline_id: pid, pipeline_type: type };
  const n = Math.floor((i - 1) / 3);
  const file = { id: `f${n}`, name: `doc-${n}.pdf` };
  switch ((i - 1) % 3) {
    case 0: return { type: 'file:processing', pipeline_id: pid, pipeline_type: type, file };
    case 1: return { type: 'file:progress', pipeline_id: pid, pipeline_type: type, file: { ...file, progress: 0.5 } };
    default: return { type: 'file:completed', pipeline_id: pid, pipeline_type: type, file: { ...file, chunks: 3 } };
  }
}

export async function status(url) {
  const r = await fetch(`${url}/api/rag-status`);
  return r.json();
}
