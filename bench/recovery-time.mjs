// Recovery after a server restart, measured: N stock socket.io-client viewers subscribe to a
// pipeline on `ragpulse serve` (durable store), the server is killed with SIGKILL while
// events keep coming over HTTP, restarted on the same port and store, and we time how long
// it takes until every viewer has reconnected with `recovered === true` and holds every
// event exactly once, in order. Loopback only; bounded; stops only what it started.
//
//   node bench/recovery-time.mjs [--clients 1000] [--events 200] [--store sqlite:/tmp/x.db]
// Prints one JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'tests', 'package.json'));
const { io } = require('socket.io-client');

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const clients = Number(arg('--clients', 1000));
const events = Number(arg('--events', 200));
const dir = mkdtempSync(join(tmpdir(), 'rp-recovery-'));
const store = arg('--store', `sqlite:${join(dir, 'bench.db')}`);
const bin = join(process.env.RAGPULSE_BUILD_DIR || join(root, 'build'), 'ragpulse');

function start(port) {
  const p = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--store', store, '--log-level', 'warn',
    '--max-connections-per-ip', '0', '--rate-limit', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('server did not start')), 15000);
    p.stdout.on('data', (d) => {
      const m = String(d).match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(t); resolve({ p, port: Number(m[1]) }); }
    });
  });
}

const post = (url, i) => fetch(url + '/api/events', {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'file:progress', pipeline_id: 'bench', pipeline_type: 'local_files',
    file: { id: 'f', name: 'f', progress: (i % 100) / 100 } }),
}).then((r) => r.json()).catch(() => null);

let srv = await start(0);
const url = `http://127.0.0.1:${srv.port}`;
const views = [];
for (let i = 0; i < clients; i++) {
  const s = io(url + '/pipeline', { transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 500,
    randomizationFactor: 0.5 });
  const v = { s, ids: [], recoveredAt: 0 };
  s.on('file:progress', (ev) => v.ids.push(ev.id));
  views.push(v);
}
await Promise.all(views.map((v) => new Promise((r) => v.s.once('connect', r))));
await Promise.all(views.map((v) => v.s.timeout(10000).emitWithAck('subscribe', { pipeline_id: 'bench' })));
const before = Math.floor(events / 2);
const acked = [];
for (let i = 0; i < before; i++) { const r = await post(url, i); if (r?.id) acked.push(r.id); }
await new Promise((r) => setTimeout(r, 300));

srv.p.kill('SIGKILL');
const tKill = performance.now();
for (const v of views) v.s.once('connect', () => { v.recoveredAt = performance.now(); });
srv = await start(srv.port);
const tUp = performance.now();
for (let i = before; i < events; i++) { const r = await post(url, i); if (r?.id) acked.push(r.id); }
const deadline = performance.now() + 60000;
const done = () => views.every((v) => v.recoveredAt && v.ids.length >= acked.length);
while (!done() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const tAll = Math.max(...views.map((v) => v.recoveredAt || Infinity));
const recovered = views.filter((v) => v.s.recovered).length;
const exact = views.filter((v) => v.ids.length === acked.length && v.ids.every((id, k) => id === acked[k])).length;
console.log(JSON.stringify({
  clients, events: acked.length, store: store.split(':')[0], recovered, exact_in_order: exact,
  restart_ms: Math.round(tUp - tKill), all_recovered_after_restart_ms: Math.round(tAll - tUp),
  all_recovered_after_kill_ms: Math.round(tAll - tKill),
}));
for (const v of views) v.s.disconnect();
srv.p.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
process.exit(recovered === clients && exact === clients ? 0 : 1);
