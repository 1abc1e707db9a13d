// `ragpulse serve --store postgres://...` against a real PostgreSQL (pg.mjs: initdb in a temp dir,
// a free loopback port, one database per test):
// - the schema is created on first start; an unreachable database at start is a clear error;
// - connection-state recovery with a stock socket.io-client: a dropped websocket, and kill -9 of
//   ragpulse with a restart on the same port and database (sessions live in PostgreSQL);
// - crash safety: concurrent producers, kill -9, every acked event in the log (psql), ids unique
//   and increasing, the state and file registry match the log;
// - the database going away mid-run (pg_ctl stop -m fast): producers get "store unavailable",
//   /health says degraded, viewers keep their sockets and the hub heartbeat; when it is back the
//   next writes work without restarting ragpulse;
// - the file registry and --retain-events on PostgreSQL.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer, track, waitUntil, withTimeout } from './helpers.mjs';
import { requestJson as request, getJson, postEvents as post, assertRegistryPages } from './hub-helpers.mjs';
import { startPostgres, pgUnavailable, freePort } from './pg.mjs';

const T = 5000;
const skip = pgUnavailable();

function scripted(pid, i, type = 'local_files') {
  const meta = { seq: i };
  if (i === 0) return { type: 'pipeline:online', pipeline_id: pid, pipeline_type: type, meta };
  const n = Math.floor((i - 1) / 3);
  const file = { id: `f${n}`, name: `doc-${n}.pdf` };
  switch ((i - 1) % 3) {
    case 0: return { type: 'file:processing', pipeline_id: pid, pipeline_type: type, file: { ...file, hash: `h${n}` }, meta };
    case 1: return { type: 'file:progress', pipeline_id: pid, pipeline_type: type, file: { ...file, progress: 0.5 }, meta };
    default: return { type: 'file:completed', pipeline_id: pid, pipeline_type: type, file: { ...file, chunks: 2 }, meta };
  }
}

function viewer(url, opts = {}) {
  const s = track(io(url, {
    forceNew: true, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200,
    randomizationFactor: 0, timeout: 3000, transports: ['websocket'], ...opts,
  }));
  const log = { events: [], beats: [], connects: 0, disconnects: [] };
  s.onAny((name, ...args) => {
    if ((name === 'heartbeat' || name === 'hub:heartbeat') && args[0]?.source === 'hub') { log.beats.push(Date.now()); return; }
    // viaRecovery: between a disconnect and the next `connect`, which only the events a
    // recovery writes before its CONNECT reply can be (the client emits them just before `connect`).
    const viaRecovery = log.connects > 0 && log.disconnects.length >= log.connects;
    log.events.push({ name, ev: args[0], args, phase: log.connects, viaRecovery });
  });
  s.on('connect', () => { log.connects++; });
  s.on('disconnect', (reason) => log.disconnects.push(reason));
  return { s, log, pipelineEvents: () => log.events.filter((e) => e.name !== 'sync' && e.name !== 'snapshot') };
}

async function subscribe(v, filter) {
  await waitUntil(() => v.s.connected, T, 'viewer to connect');
  const ack = await v.s.timeout(T).emitWithAck('subscribe', filter);
  assert.equal(ack.ok, true, JSON.stringify(ack));
  await waitUntil(() => v.log.events.some((e) => e.name === 'sync'), T, 'sync');
  return ack;
}

function assertExactlyOnce(v, expected, label) {
  const got = v.pipelineEvents();
  assert.deepEqual(got.map((e) => e.ev.id), expected, `${label}: every event once, in order`);
  for (const e of got) assert.equal(e.args[1], String(e.ev.id), `${label}: offset of ${e.ev.id}`);
}

async function producerSocket(base) {
  const s = track(io(`${base}/pipeline`, { forceNew: true, reconnection: false, transports: ['websocket'] }));
  await withTimeout(new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); }), T, 'producer connect');
  return s;
}

describe('PostgreSQL store', { skip: skip ? `PostgreSQL not available: ${skip}` : false }, () => {
  let pg;
  let dbn = 0;
  const newDb = async () => {
    if (!pg.running()) await pg.start(); // a failed test may have left it stopped
    return pg.createDatabase(`rp_t${++dbn}`);
  };
  before(async () => { pg = await startPostgres(); });
  after(async () => { if (pg) await pg.destroy(); });

  it('creates its schema on first start; /health names the store', { timeout: 10000 }, async () => {
    const url = await newDb();
    const srv = await startServer(['--store', url], { product: true });
    const tables = (await pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", url.split('/').pop()))
      .trim().split('\n');
    for (const name of ['events', 'files', 'sessions']) assert.ok(tables.includes(name), `table ${name} in ${tables}`);
    const h = await getJson(`${srv.url}/health`);
    assert.equal(h.status, 'ok');
    assert.deepEqual(h.store, { kind: 'postgres', ok: true });
    // A second start on the same database: the schema is already there.
    await srv.stop();
    const srv2 = await startServer(['--store', url], { product: true });
    assert.equal((await post(srv2.url, scripted('schema', 0))).id, 1);
  });

  it('GET /api/files is read a page at a time', { timeout: 30000 }, async () => {
    const srv = await startServer(['--store', await newDb()], { product: true });
    await assertRegistryPages(srv.url, assert);
  });

  it('an unreachable database at start is a clear error, not a silent memory store', { timeout: 10000 }, async () => {
    const port = await freePort();
    await assert.rejects(
      startServer(['--store', `postgres://postgres@127.0.0.1:${port}/nothing?connect_timeout=2`], { product: true, timeoutMs: 8000 }),
      /exited \(code [1-9]\d*.*cannot open the store/s);
  });

  it('websocket destroyed mid-stream: recovered, every event once and in order', { timeout: 15000 }, async () => {
    const srv = await startServer(['--store', await newDb()], { product: true });
    const v = viewer(`${srv.url}/pipeline`);
    await subscribe(v, { pipeline_id: 'pg-ws' });
    const sid0 = v.s.id;
    const p = await producerSocket(srv.url);
    const acked = [];
    for (let i = 0; i < 40; i++) {
      if (i === 12) {
        await waitUntil(() => v.pipelineEvents().length === 12, T, '12 events');
        v.s.io.engine.transport.ws._socket.destroy();
      }
      const ev = scripted('pg-ws', i);
      const ack = await p.timeout(T).emitWithAck(ev.type, ev);
      assert.equal(typeof ack.id, 'number', JSON.stringify(ack));
      acked.push(ack.id);
    }
    await waitUntil(() => v.pipelineEvents().length >= 40 && v.s.connected, T,
      () => `40 events, have ${v.pipelineEvents().length}`);
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assertExactlyOnce(v, acked, 'postgres, websocket drop');
    assert.equal(v.s.recovered, true);
    assert.equal(v.s.id, sid0);
    assert.ok(v.pipelineEvents().some((e) => e.viaRecovery), 'some events came through the recovery, before `connect`');
  });

  it('kill -9 and a restart on the same port and database: recovered, nothing lost or doubled', { timeout: 20000 }, async () => {
    const url = await newDb();
    const srv1 = await startServer(['--store', url], { product: true });
    const v = viewer(`${srv1.url}/pipeline`);
    await subscribe(v, { pipeline_id: 'pg-kill' });
    const sid0 = v.s.id;
    const pid0 = v.s._pid;
    const acked = [];
    for (let i = 0; i < 8; i++) acked.push((await post(srv1.url, scripted('pg-kill', i))).id);
    await waitUntil(() => v.pipelineEvents().length === 8, T, '8 events');
    // The viewer comes back only after events 8-12 exist, so they must come through the
    // recovery (on a loaded machine its own reconnect timer could otherwise win the race).
    v.s.io.reconnection(false);
    await srv1.stop('SIGKILL');
    const sessions = await pg.psql(`SELECT pid || ' ' || nsp || ' ' || sid || ' ' || rooms FROM sessions`, url.split('/').pop());
    assert.match(sessions, new RegExp(`^${pid0} /pipeline ${sid0} \\["pipeline:pg-kill"\\]$`, 'm'), 'the session is in PostgreSQL');
    const srv2 = await startServer(['--listen', `127.0.0.1:${srv1.port}`, '--store', url], { product: true });
    acked.push(...(await post(srv2.url, [8, 9, 10, 11, 12].map((i) => scripted('pg-kill', i)))).ids);
    v.s.io.reconnection(true);
    v.s.connect();
    await waitUntil(() => v.s.connected, 8000, 'the viewer to reconnect');
    for (let i = 13; i < 18; i++) acked.push((await post(srv2.url, scripted('pg-kill', i))).id);
    await waitUntil(() => v.pipelineEvents().length >= 18, T, () => `18 events, have ${v.pipelineEvents().length}`);
    await v.s.timeout(T).emitWithAck('ping', {}); // barrier: its answer follows everything sent before (late duplicates too)
    assertExactlyOnce(v, acked, 'postgres, kill -9');
    assert.equal(v.s.recovered, true);
    assert.equal(v.s.id, sid0);
    assert.equal(v.s._pid, pid0);
    assert.ok(v.pipelineEvents().some((e) => e.viaRecovery && e.ev.id >= acked[8]), 'events made while away came through the recovery');
  });

  it('crash safety: concurrent producers, kill -9, every acked event in the log', { timeout: 30000 }, async (t) => {
    const url = await newDb();
    const db = url.split('/').pop();
    const srv1 = await startServer(['--store', url], { product: true });
    const producers = [];
    for (const pid of ['pc-h0', 'pc-h1']) {
      const st = { pid, acked: [], i: 0, stop: false };
      st.done = (async () => {
        for (let n = 0; !st.stop; n++) {
          const evs = Array.from({ length: n % 2 ? 3 : 1 }, () => scripted(pid, st.i++));
          try {
            const r = await request(`${srv1.url}/api/events`, { method: 'POST', body: n % 2 ? evs : evs[0], ms: 3000 });
            if (r.status !== 200) break;
            st.acked.push(...(n % 2 ? r.json.ids : [r.json.id]));
          } catch { break; }
        }
      })();
      producers.push(st);
    }
    for (const pid of ['pc-s0', 'pc-s1']) {
      const s = await producerSocket(srv1.url);
      const st = { pid, acked: [], i: 0, stop: false };
      const first = scripted(pid, st.i++);
      st.acked.push((await s.timeout(T).emitWithAck(first.type, first)).id);
      const lane = async () => {
        while (!st.stop && s.connected) {
          const ev = scripted(pid, st.i++);
          try {
            const ack = await s.timeout(3000).emitWithAck(ev.type, ev);
            if (typeof ack?.id !== 'number') return;
            st.acked.push(ack.id);
          } catch { return; }
        }
      };
      st.done = Promise.all([lane(), lane(), lane(), lane()]);
      producers.push(st);
    }
    await waitUntil(() => producers.every((p) => p.acked.length >= 15), 10000,
      () => `15 acks each (${producers.map((p) => p.acked.length)})`);
    await srv1.stop('SIGKILL');
    for (const p of producers) p.stop = true;
    await withTimeout(Promise.all(producers.map((p) => p.done)), 8000, 'producers to stop');

    const rows = (await pg.psql("SELECT id || ' ' || pipeline_id || ' ' || (payload::json->>'id') || ' ' || (payload::json->'meta'->>'seq') FROM events ORDER BY id", db))
      .trim().split('\n').map((l) => l.split(' '));
    const ids = rows.map((r) => Number(r[0]));
    assert.equal(new Set(ids).size, ids.length, 'ids unique');
    for (const r of rows) assert.equal(r[2], r[0], 'payload id = row id');
    const acked = producers.flatMap((p) => p.acked);
    const stored = new Set(ids);
    assert.deepEqual(acked.filter((id) => !stored.has(id)), [], 'every acked event is in PostgreSQL');
    t.diagnostic(`${acked.length} acked before the kill, ${ids.length} in the log`);
    for (const p of producers) {
      for (let k = 1; k < p.acked.length; k++) assert.ok(p.acked[k] > p.acked[k - 1], `${p.pid}: acked ids increase`);
      const seqs = rows.filter((r) => r[1] === p.pid).map((r) => Number(r[3]));
      assert.deepEqual(seqs, seqs.map((_, j) => j), `${p.pid}: the log holds a prefix of what was sent`);
    }

    const srv2 = await startServer(['--store', url], { product: true });
    const snap = await getJson(`${srv2.url}/api/rag-status`);
    assert.equal(snap.version, Math.max(...ids));
    for (const p of producers) {
      const hist = await getJson(`${srv2.url}/api/events?pipeline=${p.pid}&limit=1000`);
      const evs = hist.events.reverse();
      assert.deepEqual(evs.map((e) => e.id), rows.filter((r) => r[1] === p.pid).map((r) => Number(r[0])));
      const completed = evs.filter((e) => e.type === 'file:completed').length;
      const pipe = snap.pipelines.find((x) => x.id === p.pid);
      assert.equal(pipe.counters.processed, completed, `${p.pid}: processed matches the log`);
      assert.equal(pipe.last_event_id, evs[evs.length - 1].id);
      const reg = await getJson(`${srv2.url}/api/files?pipeline=${p.pid}`);
      const last = new Map();
      for (const e of evs) if (e.file) last.set(e.file.id, e);
      assert.deepEqual(reg.files.map((f) => [f.file_id, f.event_id]),
        [...last.values()].map((e) => [e.file.id, e.id]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
        `${p.pid}: the registry matches the log`);
    }
    assert.equal((await post(srv2.url, scripted('pc-h0', 999))).id, Math.max(...ids) + 1, 'ids continue');
  });

  it('the database goes away and comes back: clear errors, degraded health, viewers stay, writes resume', { timeout: 25000 }, async (t) => {
    const url = await newDb();
    const srv = await startServer(['--store', url, '--server-heartbeat', '0.2'], { product: true });
    const v = viewer(`${srv.url}/pipeline`);
    await subscribe(v, { pipeline_id: 'pg-down' });
    const sid0 = v.s.id;
    const p = await producerSocket(srv.url);
    const acked = [];
    acked.push((await post(srv.url, scripted('pg-down', 0))).id);
    acked.push((await p.timeout(T).emitWithAck('file:processing', scripted('pg-down', 1))).id);
    await waitUntil(() => v.pipelineEvents().length === 2, T, 'the first events');
    const version = (await getJson(`${srv.url}/health`)).version;

    await pg.stop('fast');
    const downAt = Date.now();
    t.after(async () => { if (!pg.running()) await pg.start(); });
    // HTTP producers: 503, ids null for what was not stored, Retry-After.
    const r1 = await request(`${srv.url}/api/events`, { method: 'POST', body: scripted('pg-down', 2) });
    assert.equal(r1.status, 503, r1.text);
    assert.equal(r1.json.error, 'store unavailable');
    assert.deepEqual(r1.json.ids, [null]);
    assert.ok(r1.headers.get('retry-after'), 'Retry-After on 503');
    const r2 = await request(`${srv.url}/api/events`, { method: 'POST', body: [scripted('pg-down', 2), scripted('pg-down', 3)] });
    assert.equal(r2.status, 503, r2.text);
    assert.equal(r2.json.error, 'store unavailable');
    assert.deepEqual(r2.json.ids, [null, null]);
    // Socket.IO producers: the ack carries the error.
    const a1 = await p.timeout(T).emitWithAck('file:progress', scripted('pg-down', 2));
    assert.equal(a1.error, 'store unavailable', JSON.stringify(a1));
    assert.equal(a1.id, undefined);
    // Health: degraded, the store named and not ok.
    const h = await request(`${srv.url}/health`);
    assert.equal(h.status, 503, h.text);
    assert.equal(h.json.status, 'degraded');
    assert.deepEqual(h.json.store, { kind: 'postgres', ok: false });
    // Reads that need the database say so; the live state is still served.
    const hist = await request(`${srv.url}/api/events?pipeline=pg-down`);
    assert.equal(hist.status, 503, hist.text);
    assert.equal(hist.json.error, 'store unavailable');
    const files = await request(`${srv.url}/api/files?pipeline=pg-down`);
    assert.equal(files.status, 503, files.text);
    const snap = await getJson(`${srv.url}/api/rag-status`);
    assert.equal(snap.version, version, 'nothing unstored was applied');
    // Viewers keep their sockets and the hub heartbeat.
    const beatsBefore = v.log.beats.filter((at) => at >= downAt).length;
    await waitUntil(() => v.log.beats.filter((at) => at >= downAt).length >= beatsBefore + 2, T,
      () => `hub heartbeats keep coming while the database is down (${beatsBefore} -> ${v.log.beats.filter((at) => at >= downAt).length})`);
    assert.equal(v.s.connected, true);
    assert.equal(v.s.id, sid0);
    assert.deepEqual(v.log.disconnects, []);
    assert.equal(v.pipelineEvents().length, 2, 'viewers got nothing that was not stored');

    await pg.start();
    // The next writes work, without restarting ragpulse.
    const r3 = await request(`${srv.url}/api/events`, { method: 'POST', body: scripted('pg-down', 2) });
    assert.equal(r3.status, 200, `first write after the database is back: ${r3.status} ${r3.text}`);
    acked.push(r3.json.id);
    const a2 = await p.timeout(T).emitWithAck('file:completed', scripted('pg-down', 3));
    assert.equal(typeof a2.id, 'number', JSON.stringify(a2));
    acked.push(a2.id);
    const h2 = await request(`${srv.url}/health`);
    assert.equal(h2.status, 200, h2.text);
    assert.deepEqual(h2.json.store, { kind: 'postgres', ok: true });
    await waitUntil(() => v.pipelineEvents().length === 4, T, 'the viewer to get the new events');
    assertExactlyOnce(v, acked, 'across the outage');
    const log = await getJson(`${srv.url}/api/events?pipeline=pg-down&limit=100`);
    assert.deepEqual(log.events.map((e) => e.id).reverse(), acked, 'the log holds exactly the acked events');
    for (let k = 1; k < acked.length; k++) assert.ok(acked[k] > acked[k - 1], 'ids increase across the outage');
    assert.equal(srv.proc.exitCode, null, 'ragpulse kept running');
  });

  it('/health notices a database that goes away, and comes back, while nothing is written', { timeout: 20000 }, async () => {
    const url = await newDb();
    const srv = await startServer(['--store', url], { product: true });
    await post(srv.url, scripted('pg-idle', 0));
    await pg.stop('fast');
    try {
      await waitUntil(async () => (await request(`${srv.url}/health`)).status === 503, 6000, '/health to say degraded');
      const r = await request(`${srv.url}/health`);
      assert.equal(r.status, 503);
      assert.equal(r.json.status, 'degraded');
      assert.deepEqual(r.json.store, { kind: 'postgres', ok: false });
    } finally {
      await pg.start();
    }
    await waitUntil(async () => (await request(`${srv.url}/health`)).status === 200, 6000, '/health to say ok again');
    assert.equal((await post(srv.url, scripted('pg-idle', 1))).id, 2, 'writes work; ids continue');
  });

  it('file registry and --retain-events on PostgreSQL', { timeout: 15000 }, async () => {
    const url = await newDb();
    const srv = await startServer(['--store', url, '--retain-events', '4'], { product: true });
    const base = { pipeline_id: 'pg-reg', pipeline_type: 'google_drive' };
    const sent = [
      { type: 'pipeline:online', ...base },
      { type: 'file:processing', ...base, file: { id: 'x', name: 'x.pdf', hash: 'hx' } },
      { type: 'file:completed', ...base, file: { id: 'x', name: 'x.pdf' } },
      { type: 'file:processing', ...base, file: { id: 'y', name: 'y.pdf', hash: 'hy' } },
      { type: 'file:failed', ...base, file: { id: 'y', name: 'y.pdf', error: { message: 'bad', retryable: false } } },
      { type: 'file:processing', ...base, file: { id: 'z', name: 'z.pdf' } },
      { type: 'heartbeat', ...base },
    ];
    const ids = [];
    for (const ev of sent) ids.push((await post(srv.url, ev)).id); // one commit each
    const reg = await getJson(`${srv.url}/api/files?pipeline=pg-reg`);
    assert.deepEqual(reg.files.map(({ updated, ...f }) => { assert.equal(typeof updated, 'number'); return f; }), [
      { file_id: 'x', name: 'x.pdf', hash: 'hx', status: 'completed', event_id: ids[2] },
      { file_id: 'y', name: 'y.pdf', hash: 'hy', status: 'failed', event_id: ids[4] },
      { file_id: 'z', name: 'z.pdf', hash: null, status: 'processing', event_id: ids[5] },
    ]);
    await waitUntil(async () => (await getJson(`${srv.url}/api/events?pipeline=pg-reg&limit=100`)).events.length === 4, 4000,
      'the prune to leave 4 events');
    const hist = await getJson(`${srv.url}/api/events?pipeline=pg-reg&limit=100`);
    assert.deepEqual(hist.events.map((e) => e.id), ids.slice(-4).reverse());
    assert.equal((await pg.psql('SELECT count(*) FROM events', url.split('/').pop())).trim(), '4');
    const pipe = (await getJson(`${srv.url}/api/rag-status`)).pipelines.find((x) => x.id === 'pg-reg');
    assert.deepEqual([pipe.counters.processed, pipe.counters.failed, pipe.counters.in_flight], [1, 1, 1], 'live state unchanged');
    // After a restart the state is whole although the first 3 events are gone from the log.
    await srv.stop('SIGKILL');
    const srv2 = await startServer(['--store', url, '--retain-events', '4'], { product: true });
    const snap2 = await getJson(`${srv2.url}/api/rag-status`);
    assert.equal(snap2.version, ids[ids.length - 1]);
    const pipe2 = snap2.pipelines.find((x) => x.id === 'pg-reg');
    assert.deepEqual([pipe2.status, pipe2.counters, pipe2.files.map((f) => f.id)],
      [pipe.status, pipe.counters, pipe.files.map((f) => f.id)], 'the state after a restart');
    assert.equal((await post(srv2.url, scripted('pg-reg', 99))).id, ids[ids.length - 1] + 1, 'ids continue');
  });

  it('file registry keeps a hash reported earlier in the same group commit', { timeout: 10000 }, async () => {
    const srv = await startServer(['--store', await newDb()], { product: true });
    const base = { pipeline_id: 'pg-reg2', pipeline_type: 'google_drive' };
    const { ids } = await post(srv.url, [
      { type: 'file:processing', ...base, file: { id: 'x', name: 'x.pdf', hash: 'hx' } },
      { type: 'file:progress', ...base, file: { id: 'x', name: 'x.pdf', progress: 0.3 } },
    ]);
    const reg = await getJson(`${srv.url}/api/files?pipeline=pg-reg2`);
    assert.deepEqual(reg.files.map(({ updated, ...f }) => f),
      [{ file_id: 'x', name: 'x.pdf', hash: 'hx', status: 'processing', event_id: ids[1] }]);
  });
});
