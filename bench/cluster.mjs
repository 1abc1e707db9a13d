// SPDX-License-Identifier: MIT
// bench/cluster: for ragpulse (`serve --cluster`) and Node socket.io 4.8.1 with
// @socket.io/redis-streams-adapter, with 1, 2 and 3 nodes on one redis-server started here:
// V socket.io-client viewers per node subscribed to everything, one producer on node 1
// emitting `file:progress` with acks, at most WINDOW unacked. Reports produced events/s and
// delivered events/s (sum over every viewer), and for ragpulse one node without Redis too, so
// the per-event cost Redis adds is 1/rate(cluster) - 1/rate(alone). Same client library on both
// sides; on this 2-core machine the clients share the CPU with the servers (noted in the
// results). Prints one JSON object per run and a summary table.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const req = createRequire(path.join(root, 'tests', 'package.json'));
const { io } = req('socket.io-client');

const SECONDS = Number(process.argv[2] || 5);
const VIEWERS = Number(process.argv[3] || 20);
const WINDOW = 64;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const procs = new Set();
process.on('exit', () => { for (const p of procs) try { p.kill('SIGKILL'); } catch { /* gone */ } });

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

function run(cmd, args, env = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...env } });
  procs.add(p);
  let out = '';
  p.stdout.setEncoding('utf8');
  const ready = new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => { out += d; if (/listening on|Ready to accept/.test(out)) resolve(); });
    p.once('exit', () => reject(new Error(`${cmd} exited: ${out}`)));
  });
  return { p, ready, stop: () => { procs.delete(p); p.kill('SIGKILL'); } };
}

async function startRedis(dir) {
  const port = await freePort();
  const r = run('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  await r.ready;
  return { ...r, url: `redis://127.0.0.1:${port}` };
}

async function startNode(kind, redisUrl) {
  const port = await freePort();
  const n = kind === 'ragpulse'
    ? run(path.join(root, 'build', 'ragpulse'), ['serve', '--listen', `127.0.0.1:${port}`, ...(redisUrl ? ['--cluster', redisUrl] : [])],
      { RAGPULSE_STORE: 'memory', RAGPULSE_LOG_LEVEL: 'warn' })
    : run(process.execPath, [path.join(root, 'bench', 'cluster-node-server.mjs'), String(port), redisUrl]);
  await n.ready;
  return { ...n, url: `http://127.0.0.1:${port}` };
}

async function measure(kind, nnodes, withRedis) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-bench-cluster-'));
  const redis = withRedis ? await startRedis(dir) : null;
  const nodes = [];
  for (let i = 0; i < nnodes; i++) nodes.push(await startNode(kind, redis?.url));
  await sleep(kind === 'ragpulse' ? 1500 : 500); // joined, caught up
  let delivered = 0;
  const viewers = [];
  for (const n of nodes) {
    for (let i = 0; i < VIEWERS; i++) {
      const s = io(`${n.url}/pipeline`, { forceNew: true, transports: ['websocket'], reconnection: false });
      s.on('file:progress', () => { delivered++; });
      viewers.push(s);
    }
  }
  await Promise.all(viewers.map((s) => new Promise((r) => s.once('connect', r))));
  await Promise.all(viewers.map((s) => s.timeout(5000).emitWithAck('subscribe', {})));
  const prod = io(`${nodes[0].url}/pipeline`, { forceNew: true, transports: ['websocket'], reconnection: false });
  await new Promise((r) => prod.once('connect', r));
  let acked = 0, sent = 0, inflight = 0, stop = false;
  const ev = (i) => ({ type: 'file:progress', pipeline_id: 'bench', pipeline_type: 'local_files', file: { id: `f${i % 100}`, name: 'x.pdf', progress: 0.5 } });
  await new Promise((resolve) => {
    const pump = () => {
      while (!stop && inflight < WINDOW) {
        inflight++;
        prod.emit('file:progress', ev(sent++), () => { inflight--; acked++; if (stop && inflight === 0) resolve(); else pump(); });
      }
    };
    // Warm-up: 1 s, then count.
    pump();
    setTimeout(() => { acked = 0; delivered = 0; }, 1000);
    setTimeout(() => { stop = true; if (inflight === 0) resolve(); }, 1000 + SECONDS * 1000);
  });
  const secs = SECONDS;
  const result = { kind, nodes: nnodes, redis: !!redis, viewers: VIEWERS * nnodes, produced_per_s: Math.round(acked / secs),
    delivered_per_s: Math.round(delivered / secs) };
  prod.close();
  for (const s of viewers) s.close();
  for (const n of nodes) n.stop();
  redis?.stop();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(result));
  return result;
}

const rows = [];
rows.push(await measure('ragpulse', 1, false));
for (const n of [1, 2, 3]) rows.push(await measure('ragpulse', n, true));
for (const n of [1, 2, 3]) rows.push(await measure('node', n, true));
const get = (k, n, r = true) => rows.find((x) => x.kind === k && x.nodes === n && x.redis === r);
console.log(`\n${SECONDS} s per run, ${VIEWERS} viewers per node, window ${WINDOW}, machine ${os.cpus().length} cores`);
console.log('nodes | ragpulse produced/s | ragpulse delivered/s | node produced/s | node delivered/s | delivered ratio');
for (const n of [1, 2, 3]) {
  const a = get('ragpulse', n), b = get('node', n);
  console.log(`${n} | ${a.produced_per_s} | ${a.delivered_per_s} | ${b.produced_per_s} | ${b.delivered_per_s} | ${(a.delivered_per_s / b.delivered_per_s).toFixed(2)}x`);
}
const alone = get('ragpulse', 1, false), one = get('ragpulse', 1);
console.log(`ragpulse 1 node without Redis: ${alone.produced_per_s} produced/s, ${alone.delivered_per_s} delivered/s`);
console.log(`cost Redis adds per event (ragpulse, producer side): ${((1e6 / one.produced_per_s) - (1e6 / alone.produced_per_s)).toFixed(1)} us`);
process.exit(0);
