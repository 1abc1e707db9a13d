// Every limit on outside input (issue 7), crossed: connections in all, per source address and
// half-open; slow headers and bodies; idle keep-alive; header and body sizes; attachments,
// rooms and subscriptions; the per-connection packet rate and the per-producer event rate.
// Each test checks the clear refusal, that the server is still healthy, and the counter.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connect, once, sleep, startServer, waitUntil, withTimeout } from './helpers.mjs';
import { T, request, requestJson } from './hub-helpers.mjs';

const serve = (args) => startServer(['--store', 'memory', ...args], { product: true });

/** A raw TCP connection that records what it reads and when it closes. */
function raw(port, { localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.data = '';
    s.gone = new Promise((r) => s.once('close', r));
    s.setEncoding('utf8');
    s.on('data', (d) => { s.data += d; });
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}
/** Resolves true if s is closed by the server within ms (an absence window when it stays open). */
async function closedWithin(s, ms) {
  return Promise.race([s.gone.then(() => true), sleep(ms).then(() => false)]);
}
async function limitHits(srv) {
  const m = await request(`${srv.url}/metrics`);
  const out = {};
  for (const [, k, v] of m.text.matchAll(/ragpulse_limit_hits_total\{limit="([a-z_]+)"\} (\d+)/g)) out[k] = Number(v);
  return out;
}
const health = async (srv) => (await request(`${srv.url}/health`)).status;

test('connections past --max-connections and --max-connections-per-ip are closed at once', async () => {
  const srv = await serve(['--max-connections', '6', '--max-connections-per-ip', '3', '--max-pending', '0']);
  const mine = [];
  for (let i = 0; i < 3; i++) mine.push(await raw(srv.port));
  const fourth = await raw(srv.port);
  assert.equal(await closedWithin(fourth, 2000), true, 'the 4th from 127.0.0.1 is closed');
  assert.equal(fourth.data, '');
  // Another source address has its own count, up to the total.
  const other = [];
  for (let i = 0; i < 3; i++) other.push(await raw(srv.port, { localAddress: '127.0.0.2' }));
  for (const s of [...mine, ...other]) assert.equal(await closedWithin(s, 50), false);
  const seventh = await raw(srv.port, { localAddress: '127.0.0.3' });
  assert.equal(await closedWithin(seventh, 2000), true, 'the 7th in all is closed');
  mine[0].destroy();
  await waitUntil(async () => {
    const s = await raw(srv.port, { localAddress: '127.0.0.3' });
    const ok = !(await closedWithin(s, 200));
    s.destroy();
    return ok;
  }, T, 'a slot frees up when a connection closes');
  for (const s of [...mine, ...other]) s.destroy();
  let hits;
  await waitUntil(async () => {
    hits = await limitHits(srv);
    return hits.max_connections >= 1 && hits.max_connections_per_ip >= 1;
  }, T, () => `both limits counted: ${JSON.stringify(hits)}`);
});

test('past --max-pending the oldest half-open connection makes room for a new one', async () => {
  const srv = await serve(['--max-pending', '3', '--request-timeout', '60000']);
  const idle = [];
  for (let i = 0; i < 3; i++) idle.push(await raw(srv.port));
  // Within its first second a half-open connection is not evicted (a burst must not evict
  // itself): the newcomer is refused.
  const early = await raw(srv.port);
  assert.equal(await closedWithin(early, 2000), true, 'refused while the others are fresh');
  for (const s of idle) assert.equal(await closedWithin(s, 10), false);
  await sleep(1100); // time is the test: past the first second, the oldest may be evicted
  const fresh = await raw(srv.port);
  assert.equal(await closedWithin(idle[0], 2000), true, 'the oldest was closed');
  for (const s of [idle[1], idle[2], fresh]) assert.equal(await closedWithin(s, 100), false);
  fresh.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitUntil(() => fresh.data.includes('200 OK'), T, 'the newcomer is served');
  for (const s of [...idle, fresh]) s.destroy();
  await Promise.all([...idle, fresh].map((s) => s.gone));
  assert.ok((await limitHits(srv)).max_pending >= 1);
});

test('without a request timeout, half-open connections past --max-pending are refused', async () => {
  const srv = await serve(['--max-pending', '3', '--request-timeout', '0']);
  const idle = [];
  for (let i = 0; i < 3; i++) idle.push(await raw(srv.port));
  const extra = await raw(srv.port);
  assert.equal(await closedWithin(extra, 2000), true);
  idle[0].write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitUntil(() => idle[0].data.includes('200 OK'), T, 'the request is answered');
  const now = await raw(srv.port);
  assert.equal(await closedWithin(now, 300), false, 'one slot is free again');
  for (const s of [...idle, now]) s.destroy();
  await Promise.all([...idle, now].map((s) => s.gone));
  await waitUntil(async () => (await limitHits(srv)).max_pending >= 1, T, 'max_pending counted');
});

test('slow headers and slow bodies get 408 after --request-timeout; an idle keep-alive is closed', async () => {
  const srv = await serve(['--request-timeout', '400', '--idle-timeout', '600']);
  const nothing = await raw(srv.port);
  const headers = await raw(srv.port);
  headers.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  const body = await raw(srv.port);
  body.write('POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ty');
  for (const s of [nothing, headers, body]) assert.equal(await closedWithin(s, 5000), true);
  assert.equal(nothing.data, '', 'a connection that never sent a byte is just closed');
  assert.match(headers.data, /^HTTP\/1\.1 408 /);
  assert.match(body.data, /^HTTP\/1\.1 408 /);
  const ka = await raw(srv.port);
  ka.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitUntil(() => ka.data.includes('200 OK'), T, 'answered');
  assert.equal(await closedWithin(ka, 5000), true, 'idle keep-alive closed');
  // A long-poll is the handler's business: it is not cut by the request timeout.
  const t0 = Date.now();
  const lp = await request(`${srv.url}/api/rag-status?since=0&wait=1`);
  assert.equal(lp.status, 200);
  assert.ok(Date.now() - t0 >= 900, 'the long-poll was held its full second');
  const hits = await limitHits(srv);
  assert.ok(hits.request_timeout >= 3 && hits.idle_timeout >= 1, JSON.stringify(hits));
  assert.equal(await health(srv), 200);
});

test('oversized headers get 431, oversized bodies 413, and nothing is stored', async () => {
  const srv = await serve(['--max-header-bytes', '1024', '--max-payload', '2000']);
  const big = await request(`${srv.url}/health`, { headers: { 'x-big': 'a'.repeat(3000) } });
  assert.equal(big.status, 431);
  const ev = { type: 'heartbeat', pipeline_id: 'p', pipeline_type: 't', message: 'm'.repeat(4000) };
  const r = await requestJson(`${srv.url}/api/events`, { method: 'POST', body: ev });
  assert.equal(r.status, 413);
  assert.equal((await requestJson(`${srv.url}/api/rag-status`)).json.version, 0);
  // A Socket.IO message over maxPayload closes that client only.
  const s = await connect(`${srv.url}/pipeline`, { transports: ['websocket'] });
  const gone = once(s, 'disconnect');
  s.emit('heartbeat', ev);
  const [reason] = await gone;
  assert.equal(reason, 'transport close');
  assert.equal((await limitHits(srv)).ws_too_big, 1);
  assert.equal(await health(srv), 200);
});

test('--max-attachments, --max-rooms and --max-subscriptions are enforced per packet and socket', async () => {
  const srv = await serve(['--max-attachments', '2', '--max-rooms', '3', '--max-subscriptions', '2']);
  const s = await connect(`${srv.url}/pipeline`);
  assert.equal((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' })).ok, true);
  assert.equal((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'b' })).ok, true);
  assert.match((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'c' })).error, /too many subscriptions \(at most 2/);
  assert.equal((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' })).ok, true, 'again: no new room');
  const srv2 = await serve(['--max-rooms', '2', '--max-subscriptions', '10']);
  const s2 = await connect(`${srv2.url}/pipeline`);
  for (const p of ['a', 'b']) assert.equal((await s2.timeout(T).emitWithAck('subscribe', { pipeline_id: p })).ok, true);
  assert.match((await s2.timeout(T).emitWithAck('subscribe', { pipeline_id: 'c' })).error, /too many rooms/);
  assert.equal((await limitHits(srv)).max_subscriptions, 1);
  assert.equal((await limitHits(srv2)).max_subscriptions, 1);
  // Three binary attachments in one packet: that client is closed, the server carries on.
  const gone = once(s, 'disconnect');
  s.emit('heartbeat', Buffer.from('a'), Buffer.from('b'), Buffer.from('c'));
  await gone;
  assert.ok((await limitHits(srv)).protocol >= 1);
  assert.equal(await health(srv), 200);
});

test('the per-connection packet rate: over it acks say "rate limited"; going on disconnects', async () => {
  const srv = await serve(['--rate-limit', '20', '--rate-burst', '10']);
  const s = await connect(`${srv.url}/pipeline`);
  const acks = await Promise.all(Array.from({ length: 15 }, () => s.timeout(T).emitWithAck('ping', {})));
  const limited = acks.filter((a) => a.error === 'rate limited');
  assert.ok(limited.length >= 3 && limited.length <= 6, `${limited.length} of 15 limited`);
  assert.ok(limited.every((a) => a.retry_after_ms > 0));
  assert.ok(acks.filter((a) => typeof a.time === 'number').length >= 9);
  assert.equal(s.connected, true, 'the connection survives a burst');
  await sleep(600); // time is the test: the bucket refills
  assert.equal(typeof (await s.timeout(T).emitWithAck('ping', {})).time, 'number', 'tokens come back');
  const gone = once(s, 'disconnect', T);
  for (let i = 0; i < 200; i++) s.emit('ping', {});
  await gone;
  const hits = await limitHits(srv);
  assert.ok(hits.rate_packets >= 10 && hits.rate_disconnect >= 1, JSON.stringify(hits));
  assert.equal(await health(srv), 200);
});

test('the per-producer event rate: HTTP gets 429 with Retry-After and nothing is stored', async () => {
  const srv = await serve(['--event-rate', '2', '--event-burst', '5']);
  const batch = (n, p = 'p') => Array.from({ length: n }, () => ({ type: 'heartbeat', pipeline_id: p, pipeline_type: 't' }));
  assert.equal((await requestJson(`${srv.url}/api/events`, { method: 'POST', body: batch(5) })).status, 200);
  const over = await requestJson(`${srv.url}/api/events`, { method: 'POST', body: batch(3) });
  assert.equal(over.status, 429);
  assert.ok(Number(over.headers.get('retry-after')) >= 1);
  assert.equal(over.json.error, 'rate limited');
  assert.equal((await requestJson(`${srv.url}/api/rag-status`)).json.version, 5, 'the refused batch left no trace');
  await sleep(1100); // time is the test: the next one-second window
  assert.equal((await requestJson(`${srv.url}/api/events`, { method: 'POST', body: batch(2) })).status, 200);
  assert.ok((await limitHits(srv)).rate_events >= 3);
  await withTimeout(Promise.resolve(), 10);
});

test('an Engine.IO session that never sends a Socket.IO CONNECT is closed after --connect-timeout', async () => {
  const srv = await serve(['--connect-timeout', '300']);
  const open = await request(`${srv.url}/socket.io/?EIO=4&transport=polling`);
  const sid = JSON.parse(open.text.slice(1)).sid;
  await waitUntil(async () => {
    const r = await request(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    return r.status === 400 || r.text === '1';
  }, T, 'the session to be closed');
  assert.ok((await limitHits(srv)).protocol >= 1);
});

test('--max-queued bounds what piles up, not an answer the client asked for (a big snapshot)', async () => {
  const srv = await serve(['--max-queued', '20000', '--event-rate', '0']);
  // Files in a snapshot are paged under a share of --max-queued, but each pipeline's own part
  // (counters, activity buckets, recent files) is not: 40 pipelines make a snapshot over 20,000.
  const files = Array.from({ length: 200 }, (_, i) => ({
    type: 'file:processing', pipeline_id: `big-${i % 40}`, pipeline_type: 't', file: { id: `file-${i}`, name: `document-number-${i}.pdf` },
  }));
  assert.equal((await requestJson(`${srv.url}/api/events`, { method: 'POST', body: files })).status, 200);
  for (const transports of [['websocket'], ['polling']]) {
    const s = await connect(`${srv.url}/pipeline`, { transports });
    const snap = await s.timeout(T).emitWithAck('subscribe', {});
    assert.ok(JSON.stringify(snap).length > 20000, 'the snapshot is over the bound');
    assert.equal(snap.pipelines.length, 40, transports[0]);
    for (const p of snap.pipelines) assert.equal(p.counters.in_flight, 5, `${transports[0]} ${p.id}`);
    assert.equal(s.connected, true);
    assert.equal(typeof (await s.timeout(T).emitWithAck('ping', {})).time, 'number', 'still served');
  }
  assert.equal((await limitHits(srv)).max_queued, 0);
});

test('a WebSocket probe that does not finish the upgrade in --upgrade-timeout is closed; polling goes on', async () => {
  const srv = await serve(['--upgrade-timeout', '300']);
  const open = await request(`${srv.url}/socket.io/?EIO=4&transport=polling`);
  const sid = JSON.parse(open.text.slice(1)).sid;
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  // No "2probe": the server gives up on the probe, with a policy close.
  assert.equal(await closed, 1008);
  // The session still works over polling: connect the Socket.IO namespace and get the answer.
  const post = await request(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
    method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '40/pipeline,',
  });
  assert.equal(post.status, 200);
  const get = await request(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  assert.match(get.text, /^40\/pipeline,\{"sid"/);
  assert.equal((await limitHits(srv)).upgrade_timeout, 1);
});
