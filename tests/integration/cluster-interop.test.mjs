// One cluster shared with Node: a stock socket.io 4.8.1 server with
// @socket.io/redis-streams-adapter 0.3 and a ragpulse node on the same real redis-server. A
// client of each server receives what the other server's producer emitted: ragpulse's hub
// events reach the Node server's clients (with the stream id as their offset, as the Node
// adapter does), and a Node broadcast to a room reaches ragpulse's sockets in that room.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { createClient } from 'redis';
import { io } from 'socket.io-client';
import { track, waitUntil } from './helpers.mjs';
import { T, clusterOk, node, produce, scripted, startRedis, subscribe, viewer } from './cluster-helpers.mjs';

async function nodeServer(redisUrl) {
  const rc = createClient({ url: redisUrl });
  rc.on('error', () => {});
  await rc.connect();
  // Clients whose last command was XREAD: the adapter's stream reader, once it is reading.
  const readers = async () => ((await rc.sendCommand(['CLIENT', 'LIST'])).match(/ cmd=xread\b/g) ?? []).length;
  const readersBefore = await readers();
  const http = createServer();
  const srv = new Server(http, { adapter: createAdapter(rc), connectionStateRecovery: {} });
  const pipeline = srv.of('/pipeline');
  pipeline.on('connection', (s) => {
    s.on('subscribe', (_f, ack) => { s.join('all'); ack({ ok: true }); });
    // A Node-side producer: the server broadcasts what it is given to the room every viewer is in.
    s.on('relay', (ev, ack) => { pipeline.to('all').emit(ev.type, ev); ack({ ok: true }); });
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${http.address().port}`;
  const close = async () => {
    srv.close();
    await rc.quit().catch(() => {});
  };
  after(close);
  // The adapter reads the stream from "$" once its reader is connected: wait for it.
  await waitUntil(async () => (await readers()) > readersBefore, T, "the Node adapter's stream reader");
  return { url, srv, close };
}

describe('cluster: interop with a Node socket.io server on the same Redis', () => {
  it('each side receives what the other side produced', async () => {
    const redis = await startRedis();
    const rp = await node(redis);
    await clusterOk([rp]);
    const ns = await nodeServer(redis.url);

    // A client of the Node server, in room "all" on /pipeline.
    const nc = track(io(`${ns.url}/pipeline`, { forceNew: true, transports: ['websocket'] }));
    const nodeGot = [];
    nc.onAny((name, ...args) => nodeGot.push({ name, args }));
    await waitUntil(() => nc.connected, T, 'node client to connect');
    assert.deepEqual(await nc.timeout(T).emitWithAck('subscribe', {}), { ok: true });

    // A client of ragpulse, subscribed to everything (room "all" on /pipeline too).
    const rv = viewer(`${rp.url}/pipeline`);
    await subscribe(rv, {});

    // ragpulse producer -> Node server's client.
    const ids = await produce(rp.url, Array.from({ length: 4 }, (_, i) => scripted('px', i)));
    await waitUntil(() => nodeGot.length >= 4, T, 'the Node client to get ragpulse events');
    assert.deepEqual(nodeGot.map((e) => e.name), ['pipeline:online', 'file:processing', 'file:progress', 'file:completed']);
    assert.deepEqual(nodeGot.map((e) => e.args[0].id), ids, 'the events, with their cluster-wide ids');
    assert.equal(nodeGot[0].args[0].pipeline_id, 'px');
    for (const e of nodeGot) {
      assert.equal(e.args.length, 2, 'event + offset (the Node server has recovery on)');
      assert.match(e.args[1], /^\d+-\d+$/, 'on the Node side the offset is the stream id');
    }

    // Node producer (a client asking the Node server to broadcast) -> ragpulse's client.
    const before = rv.log.events.length;
    const np = track(io(`${ns.url}/pipeline`, { forceNew: true, transports: ['websocket'] }));
    await waitUntil(() => np.connected, T, 'node producer to connect');
    const fromNode = { type: 'status:update', pipeline_id: 'node-side', message: 'emitted on Node', n: 0.1 };
    assert.deepEqual(await np.timeout(T).emitWithAck('relay', fromNode), { ok: true });
    await waitUntil(() => rv.log.events.length > before, T, 'the ragpulse client to get the Node broadcast');
    const got = rv.log.events.at(-1);
    assert.equal(got.name, 'status:update');
    assert.deepEqual(got.ev, fromNode, 'the arguments as the Node server sent them (0.1 stays 0.1)');
    // ragpulse's own viewers saw ragpulse's events once each, Node's broadcast once.
    assert.deepEqual(rv.log.events.filter((e) => e.ev.pipeline_id === 'px').map((e) => e.ev.id), ids);
    assert.equal(rv.log.events.filter((e) => e.ev.pipeline_id === 'node-side').length, 1);
  });
});
