// Several ragpulse nodes on one real redis-server (started here on a free loopback port):
// producers on one node, viewers on the others, every event exactly once and in order per
// pipeline, the same ids (offsets) and the same /api/rag-status on every node; kill -9 of a
// node whose viewer then reconnects (through a switchable TCP proxy standing in for the load
// balancer) to another node and recovers everything with `recovered: true`; Redis stopped
// mid-stream and started again: local delivery never stops, /health says "degraded", and the
// cluster heals without a restart.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tcpProxy, waitUntil } from './helpers.mjs';
import {
  T, clusterOk, drain, node, produce, scripted, sessionStored, startRedis, status, subscribe, viewer,
} from './cluster-helpers.mjs';

function assertInOrderOnce(v, expected, label) {
  const ids = v.ids();
  assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], `${label}: no duplicates`);
  assert.deepEqual(ids, expected, `${label}: every event, in order`);
  for (const e of v.log.events) {
    assert.equal(e.name, e.ev.type, `${label}: event name is the type`);
    assert.equal(e.args.at(-1), String(e.ev.id), `${label}: the offset is the cluster-wide id`);
  }
}

describe('cluster: nodes on one Redis', () => {
  it('two nodes: events produced on one reach viewers on both, once, in order; state agrees', async () => {
    const redis = await startRedis();
    const a = await node(redis);
    const b = await node(redis);
    await clusterOk([a, b]);
    const va = viewer(a.url);
    const vb = viewer(b.url);
    await subscribe(va, { pipeline_id: 'p1' });
    await subscribe(vb, {});
    const ids = await produce(a.url, Array.from({ length: 30 }, (_, i) => scripted('p1', i)));
    assert.deepEqual(ids, Array.from({ length: 30 }, (_, i) => i + 1), 'cluster-wide ids are 1..30');
    await waitUntil(() => va.log.events.length >= 30 && vb.log.events.length >= 30, T, 'both viewers got 30');
    const marker = await drain(a.url, 'p1', [va, vb]);
    assertInOrderOnce(va, ids, 'viewer on the producer node');
    assertInOrderOnce(vb, ids, 'viewer on the other node');
    assert.equal(marker, 31);
    await waitUntil(async () => (await status(b.url)).version === marker, T, 'the other node applied the marker');
    const [sa, sb] = [await status(a.url), await status(b.url)];
    assert.equal(sa.version, 31);
    assert.equal(sb.version, 31);
    assert.deepEqual(sb.pipelines.map((p) => [p.id, p.counters.processed]),
      sa.pipelines.map((p) => [p.id, p.counters.processed]), 'the same state on both nodes');
    assert.equal(sb.pipelines[0].counters.processed, 9, '9 files completed in 30 events');
    // The cluster-wide view: both nodes and their sockets, from either node.
    await waitUntil(async () => {
      const h = await fetch(`${b.url}/api/health`).then((r) => r.json());
      return h.cluster.nodes_count === 2 && h.cluster.sockets >= 2;
    }, 8000, '/api/health to list both nodes and the viewers');
    const metrics = await fetch(`${a.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /ragpulse_cluster_up 1/);
    assert.match(metrics, /ragpulse_cluster_nodes 2/);
    // And for admins over Socket.IO (auth is off here, so anyone is one): admin:monitoring.
    const admin = viewer(`${a.url}/pipeline`);
    await waitUntil(() => admin.s.connected, T, 'admin connected');
    const mon = await admin.s.timeout(T).emitWithAck('subscribe', { room: 'admin:monitoring' });
    assert.equal(mon.ok, true);
    assert.equal(mon.cluster.nodes_count, 2, JSON.stringify(mon.cluster));
    // Each node publishes its figures every 2 s: the admin:stats that follow catch up.
    await waitUntil(() => admin.log.events.some((e) => e.name === 'admin:stats' && e.ev.cluster?.sockets >= 3),
      8000, 'admin:stats counting the sockets of both nodes');
  });

  it('three nodes: producers on two nodes, viewers on all three, per-pipeline order', async () => {
    const redis = await startRedis();
    const nodes = [await node(redis), await node(redis), await node(redis)];
    await clusterOk(nodes);
    const vs = nodes.map((n) => viewer(n.url));
    for (const v of vs) await subscribe(v, {});
    const [idsA, idsB] = await Promise.all([
      produce(nodes[0].url, Array.from({ length: 25 }, (_, i) => scripted('pa', i))),
      produce(nodes[1].url, Array.from({ length: 25 }, (_, i) => scripted('pb', i, 'google_drive'))),
    ]);
    const all = [...idsA, ...idsB];
    assert.equal(new Set(all).size, 50, 'no id given twice across nodes');
    await waitUntil(() => vs.every((v) => v.log.events.length >= 50), T, 'every viewer got 50');
    const marker = await drain(nodes[0].url, 'pa', vs);
    const order = vs[0].ids();
    for (const [i, v] of vs.entries()) {
      const got = v.ids();
      assert.equal(got.length, 50, `viewer ${i}: exactly 50`);
      assert.deepEqual(got, order, `viewer ${i}: the same order as every other node (the log's)`);
      assert.deepEqual(got, [...got].sort((x, y) => x - y), `viewer ${i}: ids ascending`);
      const pa = v.log.events.filter((e) => e.ev.pipeline_id === 'pa').map((e) => e.ev.id);
      assert.deepEqual(pa, idsA, `viewer ${i}: pipeline pa in its producer's order`);
    }
    const versions = await Promise.all(nodes.map(async (n) => (await status(n.url)).version));
    assert.deepEqual(versions, [marker, marker, marker], '50 events and the marker on every node');
    assert.equal(marker, 51);
  });

  it('kill -9 of a node: its viewer reconnects to another node and recovers every missed event', async () => {
    const redis = await startRedis();
    const a = await node(redis);
    const b = await node(redis);
    await clusterOk([a, b]);
    const lb = await tcpProxy(b.port);
    const v = viewer(lb.url);
    await subscribe(v, { pipeline_id: 'pk' });
    const first = await produce(a.url, Array.from({ length: 10 }, (_, i) => scripted('pk', i)));
    await waitUntil(() => v.log.events.length >= 10, T, 'first 10 events');
    await sessionStored(redis, v, 'pipeline:pk'); // the session refresh is immediate on subscribe
    b.proc.kill('SIGKILL');
    await b.exited;
    // Events while the viewer has no node at all.
    const missed = await produce(a.url, Array.from({ length: 10 }, (_, i) => scripted('pk', 10 + i)));
    lb.switchTo(a.port); // the balancer now sends it to the surviving node
    await waitUntil(() => v.log.connects >= 2, 10000, 'viewer reconnected through the balancer');
    await waitUntil(() => v.log.events.length >= 20, T, 'missed events');
    assert.equal(v.log.recoveredAt.at(-1), true, 'socket.recovered on the other node');
    const after = await produce(a.url, [scripted('pk', 20)]);
    await waitUntil(() => v.log.events.length >= 21, T, 'a live event after recovery');
    await drain(a.url, 'pk', [v]);
    assertInOrderOnce(v, [...first, ...missed, ...after], 'recovered viewer');
  });

  it('Redis stopped mid-stream and started again: local delivery goes on, /health degraded, then healed', async () => {
    const redis = await startRedis();
    const a = await node(redis);
    const b = await node(redis);
    await clusterOk([a, b]);
    const va = viewer(a.url);
    const vb = viewer(b.url);
    await subscribe(va, { pipeline_id: 'pr' });
    await subscribe(vb, { pipeline_id: 'pr' });
    const before = await produce(a.url, Array.from({ length: 5 }, (_, i) => scripted('pr', i)));
    await waitUntil(() => vb.log.events.length >= 5, T, 'b got the first 5');
    await redis.stop();
    await waitUntil(async () => (await fetch(`${a.url}/health`).then((r) => r.json())).status === 'degraded',
      T, '/health degraded');
    const alone = await produce(a.url, Array.from({ length: 5 }, (_, i) => scripted('pr', 5 + i)));
    await waitUntil(() => va.log.events.length >= 10, T, 'local delivery during the outage');
    assertInOrderOnce(va, [...before, ...alone], 'viewer on the producer node during the outage');
    assert.equal(vb.log.events.length, 5, 'the other node did not get the events of the gap (documented)');
    const h = await fetch(`${a.url}/health`).then((r) => r.json());
    assert.equal(h.cluster.ok, false);
    assert.equal(h.cluster.local_events, 5);
    // Same port, empty Redis (no persistence): the nodes rejoin by themselves.
    const again = await startRedis(redis.port);
    assert.equal(again.port, redis.port);
    await clusterOk([a, b], 15000);
    const healed = await produce(a.url, Array.from({ length: 5 }, (_, i) => scripted('pr', 10 + i)));
    assert.ok(healed[0] > alone.at(-1), 'ids after the heal are above every id used alone');
    await waitUntil(() => va.log.events.length >= 15 && vb.log.events.length >= 10, T, 'both after the heal');
    await drain(a.url, 'pr', [va, vb]);
    assertInOrderOnce(va, [...before, ...alone, ...healed], 'producer-node viewer');
    assertInOrderOnce(vb, [...before, ...healed], 'other-node viewer after the heal');
    assert.equal(va.log.connects, 1, 'the viewer never lost its connection');
  });
});
