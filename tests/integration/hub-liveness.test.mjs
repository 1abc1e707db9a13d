// A pipeline that falls silent stays offline until it speaks (issue 14, item 5). The hub says
// pipeline:offline after 3 heartbeat intervals, then reports the file that was in flight as
// stalled (file:failed, kind "stalled"); that report must not put the pipeline back to "idle,
// late" (the old hub did, until a second pipeline:offline a few seconds later). Its own next
// event brings it back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { startServer, track, waitUntil } from './helpers.mjs';
import { T, postEvents } from './hub-helpers.mjs';

const P = { pipeline_id: 'quiet-1', pipeline_type: 'local_files' };

describe('liveness', () => {
  it('offline on silence, still offline after the stalled file, back when it speaks', { timeout: 20000 }, async () => {
    const srv = await startServer(['--store', 'memory', '--stall-timeout', '1.5'], { product: true });
    const v = track(io(`${srv.url}/pipeline`, { forceNew: true, transports: ['websocket'] }));
    const got = [];
    v.onAny((name, ev) => { if (ev?.pipeline_id === P.pipeline_id) got.push({ name, ev }); });
    await waitUntil(() => v.connected, T, 'viewer connect');
    assert.equal((await v.timeout(T).emitWithAck('subscribe', { pipeline_id: P.pipeline_id })).ok, true);
    await postEvents(srv.url, [
      { type: 'pipeline:online', ...P, heartbeat_interval: 0.2 },
      { type: 'file:processing', ...P, file: { id: 'a', name: 'a.pdf' } },
    ]);
    // The pipeline says nothing more: offline (0.6 s), then the stall (1.5 s without progress).
    await waitUntil(() => got.some((g) => g.name === 'file:failed'), 10000, 'the stalled file');
    const names = got.map((g) => g.name);
    assert.deepEqual(names, ['pipeline:online', 'file:processing', 'pipeline:offline', 'file:failed'], names.join());
    const stall = got.at(-1).ev;
    assert.equal(stall.file.error.kind, 'stalled');
    const status = await (await fetch(`${srv.url}/api/rag-status`)).json();
    assert.equal(status.version, stall.id, 'the state as of the stall report');
    const [p] = status.pipelines;
    assert.equal(p.status, 'offline', 'a stall report is not a sign of life');
    assert.equal(p.counters.failed, 1);
    assert.equal(p.counters.in_flight, 0);

    await postEvents(srv.url, { type: 'heartbeat', ...P });
    const back = (await (await fetch(`${srv.url}/api/rag-status`)).json()).pipelines[0];
    assert.equal(back.status, 'online', 'its own heartbeat brings it back');
  });
});
