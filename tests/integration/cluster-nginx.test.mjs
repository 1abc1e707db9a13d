// deploy/nginx.conf, run by Debian's nginx (started here: daemon off, master_process off, paths
// in a temp dir, a free port) in front of two ragpulse nodes on one real redis-server. A
// polling-only client and a websocket client go through nginx and get every event produced on
// either node; then the node nginx sent them to is killed with -9, and they come back through
// nginx (which now sends them to the other node) and recover everything (`recovered: true`).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from './helpers.mjs';
import { startNginx } from './nginx.mjs';
import {
  T, clusterOk, node, produce, scripted, sessionStored, startRedis, subscribe, viewer,
} from './cluster-helpers.mjs';

/** deploy/nginx.conf with our port and nodes. */
function startClusterNginx(nodes) {
  return startNginx('nginx.conf', (conf, { port }) => {
    const servers = nodes.map((n) => `        server 127.0.0.1:${n.port} max_fails=1 fail_timeout=5s;`).join('\n');
    return conf.replace(/^( *server 127\.0\.0\.1:\d+ .*\n)+/m, `${servers}\n`)
      .replace(/listen 8080;.*$/m, `listen 127.0.0.1:${port};`);
  }, { probe: (url) => fetch(`${url}/health`).then((r) => r.status === 200) });
}

async function sessionsOn(n) {
  const h = await fetch(`${n.url}/health`).then((r) => r.json()).catch(() => null);
  return h ? h.sessions.websocket + h.sessions.polling : -1;
}

function assertAll(v, expected, label) {
  const ids = v.ids();
  assert.deepEqual(ids, expected, `${label}: every event once, in order`);
  for (const e of v.log.events) assert.equal(e.args.at(-1), String(e.ev.id), `${label}: offset is the id`);
}

describe('cluster: deploy/nginx.conf in front of two nodes', () => {
  it('polling-only and websocket clients through nginx: events from both nodes, then failover with recovery', async () => {
    const redis = await startRedis();
    const a = await node(redis);
    const b = await node(redis);
    await clusterOk([a, b]);
    const lb = await startClusterNginx([a, b]);
    const polling = viewer(lb.url, { transports: ['polling'] });
    const ws = viewer(lb.url, { transports: ['websocket'] });
    await subscribe(polling, { pipeline_id: 'pn' });
    await subscribe(ws, { pipeline_id: 'pn' });
    assert.equal(polling.s.io.engine.transport.name, 'polling', 'the polling client stays on polling');
    // Producers on both nodes directly.
    const ids = [
      ...await produce(a.url, Array.from({ length: 6 }, (_, i) => scripted('pn', i))),
      ...await produce(b.url, Array.from({ length: 6 }, (_, i) => scripted('pn', 6 + i))),
    ];
    await waitUntil(() => polling.log.events.length >= 12 && ws.log.events.length >= 12, T, 'both clients got 12');
    assertAll(polling, ids, 'polling through nginx');
    assertAll(ws, ids, 'websocket through nginx');

    // Which node holds them (the hash is on the client address: both land on one node)?
    const [onA, onB] = [await sessionsOn(a), await sessionsOn(b)];
    assert.ok((onA >= 2 && onB === 0) || (onB >= 2 && onA === 0), `sticky: both clients on one node (${onA}/${onB})`);
    const [dead, alive] = onA >= 2 ? [a, b] : [b, a];
    for (const v of [polling, ws]) await sessionStored(redis, v, 'pipeline:pn'); // resumable elsewhere
    dead.proc.kill('SIGKILL');
    await dead.exited;
    const missed = await produce(alive.url, Array.from({ length: 6 }, (_, i) => scripted('pn', 12 + i)));
    await waitUntil(() => polling.log.connects >= 2 && ws.log.connects >= 2, 15000, 'both reconnected through nginx');
    await waitUntil(() => polling.log.events.length >= 18 && ws.log.events.length >= 18, T, 'missed events');
    assert.equal(polling.log.recoveredAt.at(-1), true, 'polling client recovered on the other node');
    assert.equal(ws.log.recoveredAt.at(-1), true, 'websocket client recovered on the other node');
    assertAll(polling, [...ids, ...missed], 'polling after failover');
    assertAll(ws, [...ids, ...missed], 'websocket after failover');
  });
});
