// A file deleted while it is being ingested ends `file:failed` (kind "removed") on the hub,
// never `file:completed` (issue 13, item 9): deleted while its --exec command runs, deleted
// while it waits for a free --jobs slot (its command then never starts), and deleted while
// pdftotext extracts it for the index (a stand-in pdftotext first in PATH waits for a gate).
// The registry keeps no row for it, the index no chunk; the file beside it completes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, waitUntil, USE_REF } from './helpers.mjs';
import { getJson, sqlite3Cli } from './hub-helpers.mjs';
import { scratch, search, assertFound, viewer, gatedExec } from './watch-helpers.mjs';

const SKIP = USE_REF && 'the local-files pipeline exists only in ragpulse (RP_TEST_SERVER=ref)';
const PID = 'removed-1';

describe('a file deleted mid-ingest', { skip: SKIP }, () => {
  it('ends failed "removed" on the hub (while its command runs, or waits for a slot), not completed', async () => {
    const work = scratch('rp-removed-');
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    // Each run notes its start, says it waits, waits for the gate, says its chunks.
    const run = gatedExec(work, { progress: '0.5 wait', chunks: 2 });
    const db = path.join(work, 'ragpulse.db');
    const srv = await startServer(['--store', `sqlite:${db}`, '--watch', inbox, '--pipeline', PID,
      '--settle', '0.2', '--exec', run.exec, '--jobs', '1'], { product: true });
    const v = await viewer(srv.url, { pipeline_id: PID });
    const names = ['a.txt', 'b.txt', 'c.txt'];
    for (const f of names) writeFileSync(path.join(inbox, f), `content of ${f}`);
    // One command runs (--jobs 1); the other two are reported processing and wait for the slot.
    await waitUntil(() => run.started().length === 1 && names.every((f) => v.fileEvents(f).length > 0), 15000,
      () => `one run, three files processing: ${run.lines()} ${JSON.stringify(v.got.map((g) => [g.name, g.ev.file?.name]))}`);
    const running = run.started()[0];
    await waitUntil(() => v.fileEvents(running).some((g) => g.ev.file.stage === 'wait'), 10000, `${running} waits`);
    const [waiting, kept] = names.filter((f) => f !== running);
    // Delete the running one and one waiting one, then let the command finish.
    rmSync(path.join(inbox, running));
    rmSync(path.join(inbox, waiting));
    run.open();
    for (const f of [running, waiting]) {
      const evs = await v.waitFile(f);
      const end = evs.at(-1);
      assert.equal(end.name, 'file:failed', `${f}: ${JSON.stringify(evs.map((g) => g.name))}`);
      assert.deepEqual(end.ev.file.error, {
        message: 'the file was deleted while it was being processed', kind: 'removed', retryable: false,
      });
      assert.ok(!evs.some((g) => g.name === 'file:completed'), `${f} never completed`);
    }
    const done = await v.waitFile(kept, ['file:completed']);
    assert.equal(done.at(-1).ev.file.chunks, 2, 'the file beside them completes as usual');
    // The waiting one's command never started; the kept one's did.
    await waitUntil(() => run.started().length === 2, 10000, () => `two runs: ${run.lines()}`);
    assert.deepEqual(run.started().sort(), [running, kept].sort());
    // The hub's registry says failed for both, completed for the kept one; the watcher's
    // registry has no row for a file that is not there.
    const reg = await getJson(`${srv.url}/api/files?pipeline=${PID}`);
    const status = Object.fromEntries(reg.files.map((f) => [f.name, f.status]));
    assert.deepEqual(status, { [running]: 'failed', [waiting]: 'failed', [kept]: 'completed' });
    await waitUntil(async () => (await sqlite3Cli(db, 'SELECT count(*) FROM watch_documents')) === '1', 10000,
      'one registry row');
    assert.equal(await sqlite3Cli(db, 'SELECT path FROM watch_documents'), path.join(inbox, kept));
    await srv.stop();
  });

  it('deleted while pdftotext extracts it for the index: failed "removed", no chunks', async () => {
    const work = scratch('rp-removed-');
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    const bin = path.join(work, 'bin');
    mkdirSync(bin);
    const gate = path.join(work, 'gate');
    const started = path.join(work, 'started');
    // A stand-in pdftotext: reads the PDF from stdin (as the watcher hands it), says it
    // started, waits for the gate, prints the "extracted" text.
    writeFileSync(path.join(bin, 'pdftotext'), [
      '#!/bin/sh',
      'cat > /dev/null',
      `touch ${started}`,
      `while [ ! -e ${gate} ]; do sleep 0.05; done`,
      'echo "The manatee grazes on sea grass."', '',
    ].join('\n'), { mode: 0o755 });
    const db = path.join(work, 'ragpulse.db');
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`; // the server's environment, taken when it is spawned
    let srv;
    try {
      srv = await startServer(['--store', `sqlite:${db}`, '--watch', inbox, '--pipeline', 'removed-2',
        '--settle', '0.2'], { product: true });
    } finally {
      process.env.PATH = oldPath;
    }
    const v = await viewer(srv.url, { pipeline_id: 'removed-2' });
    writeFileSync(path.join(inbox, 'doomed.pdf'), '%PDF-1.4\nnot really a PDF: the stand-in does not care\n');
    await waitUntil(() => existsSync(started), 15000, 'the stand-in pdftotext started');
    rmSync(path.join(inbox, 'doomed.pdf'));
    writeFileSync(gate, '');
    const evs = await v.waitFile('doomed.pdf');
    assert.equal(evs.at(-1).name, 'file:failed', JSON.stringify(evs.map((g) => [g.name, g.ev.file.stage])));
    assert.equal(evs.at(-1).ev.file.error.kind, 'removed');
    assert.ok(!evs.some((g) => g.name === 'file:completed'));
    assert.equal((await search(work, ['manatee'])).code, 1, 'no chunk of the deleted file');
    // The pipeline goes on: the next document is indexed.
    writeFileSync(path.join(inbox, 'next.txt'), 'The dugong is a cousin.\n');
    await v.waitFile('next.txt', ['file:completed']);
    await assertFound(work, 'The dugong is a cousin.', 'next.txt');
    assert.equal(await sqlite3Cli(db, 'SELECT path FROM watch_documents'), path.join(inbox, 'next.txt'));
    const reg = await getJson(`${srv.url}/api/files?pipeline=removed-2`);
    assert.deepEqual(Object.fromEntries(reg.files.map((f) => [f.name, f.status])),
      { 'doomed.pdf': 'failed', 'next.txt': 'completed' });
    await srv.stop();
  });
});
