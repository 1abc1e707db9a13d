// `ragpulse watch DIR --hub URL`: the local-files pipeline as a separate producer over HTTP.
// The hub goes down mid-run and comes back: processing never stops, the events wait in the
// on-disk queue, and every event arrives once, in order (checked by the producer's meta.seq in
// the hub's log and by a socket.io-client viewer). A hub whose answer is lost (a proxy drops
// the response after the hub stored the batch) gets no duplicate: the watcher reads the log
// back first. A clean exit sends pipeline:offline.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startServer, waitUntil, USE_REF } from './helpers.mjs';
import { getJson } from './hub-helpers.mjs';
import { scratch, startWatch, viewer, idleLine, GOOD_STEPS, steps, assertFound } from './watch-helpers.mjs';

const SKIP = USE_REF && 'the local-files pipeline exists only in ragpulse (RP_TEST_SERVER=ref)';

/** A scratch directory with an empty inbox, and store arguments for a hub of its own. */
function setup() {
  const work = scratch();
  const inbox = path.join(work, 'inbox');
  mkdirSync(inbox);
  return { work, inbox, store: ['--store', `sqlite:${path.join(work, 'hub.db')}`] };
}

/** The producer's events in the hub's log, oldest first. */
async function producerLog(base, pid) {
  const log = await getJson(`${base}/api/events?pipeline=${pid}&limit=1000`);
  return log.events.reverse().filter((e) => e.meta?.producer);
}

function assertOnceInOrder(events) {
  const seqs = events.map((e) => e.meta.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => seqs[0] + i), `seqs once, in order: ${seqs}`);
  assert.equal(new Set(events.map((e) => e.meta.producer)).size, 1);
}

/** A TCP proxy to port; while `drop` is set, a response to a POST is swallowed and the
 * client's connection cut (the hub stored the batch, the producer never hears so). */
async function lossyProxy(port) {
  const state = { drop: false, dropped: 0 };
  const server = net.createServer((client) => {
    const up = net.connect(port, '127.0.0.1');
    let isPost = false;
    client.on('data', (d) => { if (d.toString('latin1').startsWith('POST ')) isPost = true; up.write(d); });
    up.on('data', (d) => {
      if (state.drop && isPost) {
        state.dropped++;
        state.drop = false;
        client.destroy();
        up.destroy();
        return;
      }
      client.write(d);
    });
    up.on('end', () => client.end());
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { state, port: server.address().port, close: () => server.close() };
}

describe('ragpulse watch --hub URL', { skip: SKIP }, () => {
  it('keeps processing while the hub is down; every event arrives once, in order, when it is back', async () => {
    const { work, inbox, store } = setup();
    let hub = await startServer(store, { product: true });
    const port = hub.port;
    const pid = 'files-net';
    const v1 = await viewer(hub.url, { pipeline_id: pid });
    const w = await startWatch(work, [inbox, '--hub', hub.url, '--pipeline', pid, '--settle', '0.2',
      '--heartbeat', '60', '--index', path.join(work, 'index.db')]);
    writeFileSync(path.join(inbox, 'a.txt'), 'Alpha document about the aardvark.');
    assert.deepEqual(steps(await v1.waitFile('a.txt')), GOOD_STEPS);
    assert.equal(v1.got[0].name, 'pipeline:online');

    // The hub goes away; the watcher keeps ingesting (the index fills), events queue on disk.
    await hub.stop();
    writeFileSync(path.join(inbox, 'b.txt'), 'Bravo document about the bison.');
    writeFileSync(path.join(inbox, 'c.md'), '# Charlie\n\nCharlie document about the chameleon.');
    await waitUntil(() => /idle: 3 ingested/.test(w.stderr()), 15000, () => `3 ingested while down: ${w.stderr()}`);
    await assertFound(work, 'the chameleon', 'c.md', ['--index', path.join(work, 'index.db')]);
    const queue = path.join(work, 'ragpulse-watch.queue');
    assert.ok(existsSync(queue) && statSync(queue).size > 0, 'events wait in the queue file');
    const queued = readFileSync(queue, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(queued.some((e) => e.type === 'file:completed' && e.file.name === 'c.md'));

    // Back on the same port with the same log: the queue drains, in order, once.
    hub = await startServer(['--listen', `127.0.0.1:${port}`, ...store], { product: true });
    const v2 = await viewer(hub.url, { pipeline_id: pid });
    assert.deepEqual(steps(await v2.waitFile('b.txt')), GOOD_STEPS);
    assert.deepEqual(steps(await v2.waitFile('c.md')), GOOD_STEPS);
    await waitUntil(() => statSync(queue).size === 0, 10000, 'the queue to drain');
    const events = await producerLog(hub.url, pid);
    assertOnceInOrder(events);
    for (const name of ['a.txt', 'b.txt', 'c.md']) {
      assert.deepEqual(steps(events.filter((e) => e.file?.name === name).map((e) => ({ name: e.type, ev: e }))),
        GOOD_STEPS, name);
    }
    // Clean exit: pipeline:offline, then nothing is left behind.
    assert.equal(await w.stop(), 0);
    await waitUntil(() => v2.got.some((g) => g.name === 'pipeline:offline'), 5000, 'pipeline:offline');
    const after = await producerLog(hub.url, pid);
    assertOnceInOrder(after);
    assert.equal(after.at(-1).type, 'pipeline:offline');
    await hub.stop();
  });

  it('events queued when the watcher stops during an outage are delivered by its next run, once', async () => {
    const { work, inbox, store } = setup();
    let hub = await startServer(store, { product: true });
    const port = hub.port;
    const pid = 'files-restart';
    const args = [inbox, '--hub', hub.url, '--pipeline', pid, '--settle', '0.2', '--heartbeat', '60',
      '--index', path.join(work, 'index.db')];
    let w = await startWatch(work, args);
    writeFileSync(path.join(inbox, 'a.txt'), 'Alpha about the axolotl.');
    await waitUntil(async () => (await producerLog(hub.url, pid)).some((e) => e.type === 'file:completed'), 10000, 'a.txt');
    await hub.stop();
    writeFileSync(path.join(inbox, 'b.txt'), 'Bravo about the beluga.');
    await waitUntil(() => /idle: 2 ingested/.test(w.stderr()), 10000, 'b.txt ingested while the hub is down');
    assert.equal(await w.stop(), 0); // its pipeline:offline waits in the queue too
    assert.match(w.stderr(), /bytes of events stay in ragpulse-watch\.queue for the next run/);
    // As if the watcher had died in the middle of an append: a torn last line.
    appendFileSync(path.join(work, 'ragpulse-watch.queue'), '{"type":"file:progress","pipel');
    hub = await startServer(['--listen', `127.0.0.1:${port}`, ...store], { product: true });
    w = await startWatch(work, args);
    assert.match(w.stderr(), /dropping a torn last record \(30 bytes\)/);
    await waitUntil(async () => (await producerLog(hub.url, pid)).filter((e) => e.type === 'pipeline:online').length === 2,
      10000, 'the second run online');
    const events = await producerLog(hub.url, pid);
    assertOnceInOrder(events);
    const types = events.map((e) => `${e.type}${e.file ? ` ${e.file.name}` : ''}`);
    const b = types.indexOf('file:completed b.txt');
    assert.ok(b > 0, types.join(', '));
    assert.deepEqual(types.slice(b + 1, b + 3), ['pipeline:offline', 'pipeline:online'], types.join(', '));
    assert.ok(!types.slice(b + 1).some((t) => t.startsWith('file:')), 'nothing ingested again');
    assert.equal(await w.stop(), 0);
    await hub.stop();
  });

  it('a batch whose answer was lost is not sent twice', async () => {
    const { work, inbox, store } = setup();
    const hub = await startServer(store, { product: true });
    const proxy = await lossyProxy(hub.port);
    try {
      const pid = 'files-lossy';
      const w = await startWatch(work, [inbox, '--hub', `http://127.0.0.1:${proxy.port}`, '--pipeline', pid,
        '--settle', '0.2', '--heartbeat', '60', '--index', path.join(work, 'index.db')]);
      await waitUntil(async () => (await producerLog(hub.url, pid)).length === 1, 5000, 'pipeline:online');
      proxy.state.drop = true;
      writeFileSync(path.join(inbox, 'd.txt'), 'Delta document about the dugong.');
      await waitUntil(() => proxy.state.dropped === 1, 10000, 'a dropped answer');
      await waitUntil(async () => (await producerLog(hub.url, pid)).some((e) => e.type === 'file:completed'),
        15000, 'd.txt completed');
      writeFileSync(path.join(inbox, 'e.txt'), 'Echo document about the emu.');
      await waitUntil(async () => (await producerLog(hub.url, pid)).filter((e) => e.type === 'file:completed').length === 2,
        15000, 'e.txt completed');
      assert.match(w.stderr(), /already has \d+ queued event/);
      assert.equal(await w.stop(), 0);
      const events = await producerLog(hub.url, pid);
      assertOnceInOrder(events);
      assert.deepEqual(events.map((e) => e.type).filter((t) => t === 'file:completed').length, 2);
    } finally {
      proxy.close();
      await hub.stop();
    }
  });
});
