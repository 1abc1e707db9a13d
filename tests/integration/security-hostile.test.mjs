// Hostile clients (issue 7): rp-hostile opens thousands of half-open and slow connections,
// sends garbage, oversized and fragmented frames, invalid UTF-8, floods events and abandons
// polling sessions, on loopback for a bounded time, against `ragpulse serve` with its default
// limits. Meanwhile a normal viewer must receive every event a normal producer sends, in
// order, and a new client must still get in. The report (written next to the build) is what
// docs/security.md quotes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BUILD_DIR, client, connect, sleep, startServer, waitUntil } from './helpers.mjs';
import { T, request, requestJson } from './hub-helpers.mjs';

const SECONDS = 8;

function hostile(port, pid) {
  return new Promise((resolve, reject) => {
    execFile(path.join(BUILD_DIR, 'rp-hostile'), ['--port', String(port), '--server-pid', String(pid),
      '--seconds', String(SECONDS)], { timeout: (SECONDS + 30) * 1000, maxBuffer: 1 << 20 },
    (err, stdout, stderr) => (err ? reject(new Error(`rp-hostile: ${err.message} ${stderr}`)) : resolve(JSON.parse(stdout))));
  });
}

test('a viewer receives every event while hostile clients attack; the server holds its limits', { timeout: 120000 }, async () => {
  const srv = await startServer(['--store', 'memory'], { product: true });
  const viewer = await connect(`${srv.url}/pipeline`, { transports: ['websocket'] });
  // The polling viewer makes a new HTTP request every round: during the connection burst it
  // can be refused like anyone new, so it runs as the stock client does, reconnecting and
  // recovering what it missed (Socket.IO connection-state recovery).
  const poller = await connect(`${srv.url}/pipeline`, { transports: ['polling'], reconnection: true, reconnectionDelay: 200 });
  const seen = { ws: [], polling: [] };
  viewer.on('file:progress', (e) => seen.ws.push(e.id));
  poller.on('file:progress', (e) => seen.polling.push(e.id));
  for (const s of [viewer, poller]) assert.equal((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'steady' })).ok, true);

  const attack = hostile(srv.port, srv.proc.pid);
  let attackOver = false;
  attack.then(() => { attackOver = true; }, () => {});
  const sent = [];
  let lateJoiner = null;
  const t0 = Date.now();
  for (let i = 0; Date.now() - t0 < (SECONDS - 1) * 1000; i++) {
    const r = await requestJson(`${srv.url}/api/events`, {
      method: 'POST',
      ms: 15000,
      body: { type: 'file:progress', pipeline_id: 'steady', pipeline_type: 'local_files', file: { id: 'f', name: 'f', progress: (i % 100) / 100 } },
    });
    assert.equal(r.status, 200, r.text);
    sent.push(r.json.id);
    if (i === 40) {
      // Mid-attack, a new client still gets in. Its first polling request can be cut like
      // any half-open connection when a burst passes --max-pending (the oldest make room), so
      // it reconnects as the stock client does; it must be in before the attack is over.
      lateJoiner = client(`${srv.url}/pipeline`, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
      lateJoiner.once('connect', () => { lateJoiner.inDuringAttack = !attackOver; });
    }
    await sleep(25); // time is the test: a steady producer during the attack
  }
  const report = await attack;
  writeFileSync(path.join(BUILD_DIR, 'hostile-report.json'), `${JSON.stringify(report, null, 1)}\n`);
  await waitUntil(() => seen.ws.length >= sent.length && seen.polling.length >= sent.length, 15000,
    () => `every event delivered (sent ${sent.length}, websocket ${seen.ws.length}, polling ${seen.polling.length}, polling connected ${poller.connected})`);
  assert.deepEqual(seen.ws, sent, 'websocket viewer: every event, once, in order');
  assert.deepEqual(seen.polling, sent, 'polling viewer: every event, once, in order');
  assert.ok(sent.length >= 50, `${sent.length} events sent`);
  await waitUntil(() => lateJoiner?.connected, T, 'the late joiner to be connected');
  assert.equal(lateJoiner.inDuringAttack, true, 'a new client got in during the attack');

  // Each attack got its refusal, or (past the half-open limit, when the burst came faster
  // than anything could be read) was closed before a word; never anything else.
  const k = report.kinds;
  const answered = (kind, seen) => {
    assert.equal(seen + k[kind].closed_without_answer, k[kind].attempted, `${kind}: ${JSON.stringify(k[kind])}`);
    assert.ok(seen >= 1, `${kind}: at least one reached the server`);
  };
  answered('big_header', k.big_header.http['431']);
  answered('ws_huge_frame', k.ws_huge_frame.ws_close['1009']);
  answered('ws_invalid_utf8', k.ws_invalid_utf8.ws_close['1007']);
  answered('ws_unmasked', k.ws_unmasked.ws_close['1002']);
  answered('ws_long_control', k.ws_long_control.ws_close['1002']);
  answered('ws_endless_fragments', k.ws_endless_fragments.ws_close['1009']);
  answered('garbage', k.garbage.http['400']);
  assert.equal(k.event_flood.closed_by_server, k.event_flood.attempted, 'every flooder was disconnected');
  assert.equal(k.garbage.still_open + k.big_header.still_open + k.ws_unmasked.still_open, 0);
  assert.ok(report.peak_open <= 1024 + 200, `peak ${report.peak_open}: the half-open limit held`);
  const m = await request(`${srv.url}/metrics`);
  assert.match(m.text, /ragpulse_limit_hits_total\{limit="rate_disconnect"\} [1-9]/);
  assert.equal((await request(`${srv.url}/health`)).status, 200);
  assert.equal(viewer.connected, true, 'the websocket viewer was never dropped');
  await waitUntil(() => poller.connected, T, 'the polling viewer is connected at the end');
});
