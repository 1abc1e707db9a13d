// SPDX-License-Identifier: MIT
// The Node peer for bench/cluster: socket.io 4.8.1 with @socket.io/redis-streams-adapter on one
// Redis (or alone, without a URL). On "/pipeline": `subscribe` joins room "all"; `file:progress` {..} broadcasts it to
// "all" across the cluster and acks {id}. Usage: node bench/cluster-node-server.mjs PORT [REDIS_URL]
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The peers live in tests/node_modules (scripts/bootstrap installs them).
const req = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'package.json'));
const { Server } = req('socket.io');
const { createAdapter } = req('@socket.io/redis-streams-adapter');
const { createClient } = req('redis');

const [port, url] = [Number(process.argv[2]), process.argv[3]];
let adapter;
if (url) { // without a Redis URL: one plain socket.io server (the baseline)
  const rc = createClient({ url });
  rc.on('error', () => {});
  await rc.connect();
  adapter = createAdapter(rc);
}
const server = http.createServer();
const io = new Server(server, adapter ? { adapter } : {});
const nsp = io.of('/pipeline');
let n = 0;
nsp.on('connection', (s) => {
  s.on('subscribe', (_f, ack) => { s.join('all'); if (typeof ack === 'function') ack({ ok: true }); });
  s.on('file:progress', (ev, ack) => { nsp.to('all').emit('file:progress', ev); if (typeof ack === 'function') ack({ id: ++n }); });
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
server.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
