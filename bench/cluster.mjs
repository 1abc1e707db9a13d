// SPDX-License-Identifier: MIT
// bench/cluster: delivered events/s with 1, 2 and 3 nodes on one redis-server started here, for
// ragpulse (`serve --cluster`) and Node socket.io 4.8.1 with @socket.io/redis-streams-adapter,
// side by side, and each alone (no Redis) for the per-event cost Redis adds. The load is
// rp-loadgen, the same C client for both: its producer emits `file:progress` with acks on
// node 1 (at most WINDOW unacked, as fast as the slowest subscriber keeps up), its
// subscribers are spread round-robin over every node (`--sub-ports`) and check loss,
// duplicates and order. CPU is sampled from /proc for every server process and redis-server,
// so "CPU per event" is the whole cluster's cost of one produced event. Loopback only,
// bounded, stops by itself. Prints one JSON line per run and a summary table.
//   bench/cluster [SECONDS] [SUBSCRIBERS]      (needs make build and scripts/bootstrap)
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.argv[2] || 5);
const SUBS = Number(process.argv[3] || 300);
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
  // Capacity runs: ragpulse's protective per-connection and per-producer limits off.
  const n = kind === 'ragpulse'
    ? run(path.join(root, 'build', 'ragpulse'), ['serve', '--listen', `127.0.0.1:${port}`, '--rate-limit', '0',
      '--event-rate', '0', '--max-connections-per-ip', '0', ...(redisUrl ? ['--cluster', redisUrl] : [])],
    { RAGPULSE_STORE: 'memory', RAGPULSE_LOG_LEVEL: 'warn' })
    : run(process.execPath, [path.join(root, 'bench', 'cluster-node-server.mjs'), String(port), ...(redisUrl ? [redisUrl] : [])]);
  await n.ready;
  return { ...n, port };
}

function loadgen(args) {
  return new Promise((resolve, reject) => {
    execFile(path.join(root, 'build', 'rp-loadgen'), args, { timeout: (SECONDS + 60) * 1000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`rp-loadgen: ${err.message} ${stderr}`)) : resolve(JSON.parse(stdout))));
  });
}

async function measure(kind, nnodes, withRedis) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-bench-cluster-'));
  const redis = withRedis ? await startRedis(dir) : null;
  const nodes = [];
  for (let i = 0; i < nnodes; i++) nodes.push(await startNode(kind, redis?.url));
  await sleep(1500); // every node has joined the stream
  const pids = [...nodes.map((n) => n.p.pid), ...(redis ? [redis.p.pid] : [])];
  const r = await loadgen(['--hub', '--port', String(nodes[0].port), '--sub-ports', nodes.map((n) => n.port).join(','),
    '--subscribers', String(SUBS), '--rate', '0', '--window', String(WINDOW), '--duration', String(SECONDS),
    '--server-pids', pids.join(',')]);
  for (const n of nodes) n.stop();
  redis?.stop();
  rmSync(dir, { recursive: true, force: true });
  const produced = r.sent / r.duration_s;
  const result = {
    kind, nodes: nnodes, redis: !!redis, subscribers: r.ready, produced_per_s: Math.round(produced),
    delivered_per_s: r.delivered_per_s, lost: r.lost, dups: r.dups, reorders: r.reorders,
    p50_ms: r.lat_p50_ms, p99_ms: r.lat_p99_ms, cluster_cpu_pct: r.server_cpu_pct, loadgen_cpu_pct: r.loadgen_cpu_pct,
    cpu_us_per_event: Math.round((r.server_cpu_pct / 100) * r.duration_s / r.sent * 1e6),
  };
  console.log(JSON.stringify(result));
  return result;
}

const rows = [];
for (const kind of ['ragpulse', 'node']) {
  rows.push(await measure(kind, 1, false));
  for (const n of [1, 2, 3]) rows.push(await measure(kind, n, true));
}
const get = (k, n, r = true) => rows.find((x) => x.kind === k && x.nodes === n && x.redis === r);
console.log(`\n${SECONDS} s per run, ${SUBS} subscribers spread over the nodes, producer on node 1, window ${WINDOW}, ` +
  `${os.cpus().length} cores shared by servers, Redis and rp-loadgen`);
console.log('| nodes | ragpulse delivered/s | loss | CPU µs/event | Node delivered/s | loss | CPU µs/event | ratio |');
console.log('|---|---|---|---|---|---|---|---|');
const line = (label, a, b) => console.log(`| ${label} | ${a.delivered_per_s} | ${a.lost} | ${a.cpu_us_per_event} | ${b.delivered_per_s} | ` +
  `${b.lost} | ${b.cpu_us_per_event} | ${(a.delivered_per_s / b.delivered_per_s).toFixed(1)}× |`);
line('1, no Redis', get('ragpulse', 1, false), get('node', 1, false));
for (const n of [1, 2, 3]) line(String(n), get('ragpulse', n), get('node', n));
for (const k of ['ragpulse', 'node']) {
  const alone = get(k, 1, false), one = get(k, 1);
  console.log(`${k}: Redis adds ${one.cpu_us_per_event - alone.cpu_us_per_event} µs of CPU per event at 1 node ` +
    `(${alone.cpu_us_per_event} alone, ${one.cpu_us_per_event} with Redis, all processes counted)`);
}
process.exit(0);
