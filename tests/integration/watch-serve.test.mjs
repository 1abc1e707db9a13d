// The local-files pipeline in the hub's process (`ragpulse serve --watch DIR`), the issue's
// proof: text, Markdown, HTML, a real PDF (ghostscript), a corrupt PDF and a binary file are
// dropped into the watched folder while a socket.io-client viewer watches; each goes through
// the right events in order (failures with their reasons); `ragpulse search` finds a sentence
// of each good file in the same SQLite file; a restart ingests nothing; a modified file alone
// is ingested again (its old chunks replaced); a deleted file's chunks are gone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync, copyFileSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync,
  writeFileSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { sleep, startServer, waitUntil, USE_REF } from './helpers.mjs';
import { getJson, sqlite3Cli } from './hub-helpers.mjs';
import {
  scratch, writeDocuments, SENTENCES, search, assertFound, viewer, idleLine, GOOD_STEPS, steps, FILE_TYPES, gatedExec,
} from './watch-helpers.mjs';

const SKIP = USE_REF && 'the local-files pipeline exists only in ragpulse (RP_TEST_SERVER=ref)';
const PID = 'docs-local';

function serveArgs(work) {
  return ['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch', path.join(work, 'inbox'),
    '--pipeline', PID, '--settle', '0.3', '--heartbeat', '0.5'];
}

describe('serve --watch: the local-files pipeline in-process', { skip: SKIP }, () => {
  it('ingests each kind, fails the bad ones with reasons, search finds them, restart/modify/delete', async () => {
    const work = scratch();
    const src = path.join(work, 'src');
    mkdirSync(src);
    mkdirSync(path.join(work, 'inbox'));
    writeDocuments(src);

    // ---- first run: an empty inbox, a viewer, then the documents arrive ----
    let srv = await startServer(serveArgs(work), { product: true });
    const v = await viewer(srv.url, { pipeline_id: PID });
    await waitUntil(() => v.got.some((g) => g.name === 'heartbeat' && g.ev.pipeline_id === PID), 5000,
      'a heartbeat from the watcher');
    const hb = v.got.find((g) => g.name === 'heartbeat');
    assert.equal(hb.ev.pipeline_type, 'local_files');
    assert.equal(hb.ev.heartbeat_interval, 0.5);
    mkdirSync(path.join(work, 'inbox', 'sub'));
    for (const f of readdirSync(src)) {
      const dest = f === 'page.html' ? path.join(work, 'inbox', 'sub', f) : path.join(work, 'inbox', f);
      copyFileSync(path.join(src, f), dest);
    }
    for (const name of ['notes.txt', 'guide.md', 'sub/page.html', 'report.pdf']) {
      const evs = await v.waitFile(name);
      assert.deepEqual(steps(evs), GOOD_STEPS, `${name}: ${JSON.stringify(evs)}`);
      const done = evs.at(-1).ev;
      assert.ok(done.file.chunks >= 1, `${name} chunks`);
      assert.match(done.file.hash, /^sha256:[0-9a-f]{64}$/);
      assert.equal(done.pipeline_id, PID);
      assert.ok(Number.isInteger(done.file.size) && done.file.size > 0);
      // Events carry the hub's ids, increasing within the file.
      const ids = evs.map((g) => g.ev.id);
      assert.deepEqual([...ids].sort((a, b) => a - b), ids);
    }
    assert.equal((await v.waitFile('report.pdf')).at(0).ev.file.mime_type, 'application/pdf');
    assert.equal((await v.waitFile('sub/page.html')).at(0).ev.file.mime_type, 'text/html');

    const broken = await v.waitFile('broken.pdf');
    assert.deepEqual(steps(broken), [['file:processing', undefined], ['file:progress', 'extract'], ['file:failed', undefined]]);
    assert.equal(broken.at(-1).ev.file.error.kind, 'corrupt');
    assert.match(broken.at(-1).ev.file.error.message, /^pdftotext \(exit status 1\): .*(xref|trailer|PDF|Syntax)/i);

    const blob = await v.waitFile('blob.bin');
    assert.deepEqual(steps(blob), [['file:processing', undefined], ['file:progress', 'extract'], ['file:failed', undefined]]);
    assert.equal(blob.at(-1).ev.file.error.kind, 'unsupported');
    assert.match(blob.at(-1).ev.file.error.message, /^binary content \(a NUL byte at offset \d+\)$/);

    // The hub's state agrees: 4 completed, 2 failed (/api/rag-status, the same events).
    const snap = await getJson(`${srv.url}/api/rag-status`);
    const p = JSON.stringify(snap);
    assert.ok(p.includes(PID), 'the pipeline is in the snapshot');

    // ---- search: the same SQLite file, read by `ragpulse search` from the working directory ----
    for (const [name, sentence] of Object.entries(SENTENCES)) {
      await assertFound(work, sentence, name === 'page.html' ? 'sub/page.html' : name);
    }
    // Scripts, styles and comments are not text; entities are decoded.
    assert.equal((await search(work, ['zanzibarscript'])).code, 1);
    assert.equal((await search(work, ['okapi'])).code, 1);
    const cafe = await search(work, ['café', '--json']);
    assert.equal(cafe.code, 0);
    assert.match(cafe.hits[0].snippet, /\[café\] serving crème brûlée/);
    // With --fts, a query with FTS5 syntax errors: a clear message and exit status 2, never a
    // crash (watch-search.test.mjs has the rest: plain words are the default).
    const bad = await search(work, ['"unterminated', '--fts']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /FTS5 syntax, and this one is not valid/);
    const bad2 = await search(work, ['AND OR (', '--fts']);
    assert.equal(bad2.code, 2);
    // Plain words are searched as typed.
    assert.equal((await search(work, ['penguins huddle?'])).code, 0);

    // ---- restart without changes: nothing is ingested ----
    const firstIdle = srv.stderr().split('\n').filter((l) => l.includes('"msg":"idle:')).length;
    assert.ok(firstIdle >= 1);
    await srv.stop();
    srv = await startServer(serveArgs(work), { product: true });
    const idle = await idleLine(srv.stderr, 1);
    assert.match(idle, /^idle: 0 ingested, 0 failed, 6 unchanged, 0 removed/);
    const log = await getJson(`${srv.url}/api/events?pipeline=${PID}&limit=1000`);
    const online = log.events.findIndex((e) => e.type === 'pipeline:online'); // newest first
    assert.ok(online >= 0);
    assert.deepEqual(log.events.slice(0, online).filter((e) => FILE_TYPES.includes(e.type)), [],
      'no file event after the restart');
    // The clean exit of the first run said pipeline:offline (stored: the viewers were closing).
    const offline = log.events.slice(online + 1).find((e) => e.type === 'pipeline:offline' && e.message);
    assert.match(offline?.message ?? '', /^stopped watching \//);

    // ---- modify one file: only it is ingested again, its old text is gone ----
    const v2 = await viewer(srv.url, { pipeline_id: PID });
    writeFileSync(path.join(work, 'inbox', 'guide.md'), '# Guide v2\n\nThe axolotl regrows its limbs.\n');
    const evs = await v2.waitFile('guide.md');
    assert.deepEqual(steps(evs), GOOD_STEPS);
    await idleLine(srv.stderr, 2);
    const fileEvents = v2.got.filter((g) => FILE_TYPES.includes(g.name));
    assert.deepEqual([...new Set(fileEvents.map((g) => g.ev.file.name))], ['guide.md'], 'only the modified file');
    await assertFound(work, 'The axolotl regrows its limbs.', 'guide.md');
    assert.equal((await search(work, ['bioluminescent'])).code, 1, 'the old chunks were replaced');

    // ---- delete one file: its chunks are gone ----
    rmSync(path.join(work, 'inbox', 'notes.txt'));
    await waitUntil(() => srv.stderr().includes('notes.txt is gone'), 10000, 'the deletion');
    assert.equal((await search(work, ['albatross'])).code, 1);
    const db = path.join(work, 'ragpulse.db');
    assert.equal(await sqlite3Cli(db, "SELECT count(*) FROM watch_chunks WHERE path LIKE '%/notes.txt'"), '0');
    assert.equal(await sqlite3Cli(db, "SELECT count(*) FROM watch_documents WHERE path LIKE '%/notes.txt'"), '0');
    // ... and a whole directory too.
    rmSync(path.join(work, 'inbox', 'sub'), { recursive: true });
    await waitUntil(async () => (await search(work, ['capybara'])).code === 1, 10000, 'sub/ removed from the index');
    // The registry still knows the failures (so an unchanged bad file is not retried).
    assert.match(await sqlite3Cli(db, "SELECT error FROM watch_documents WHERE path LIKE '%/broken.pdf'"), /pdftotext/);
    await srv.stop();
  });

  it('takes a file still being written once, whole; forgets files deleted while stopped', async () => {
    const work = scratch();
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    const args = ['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch', inbox, '--pipeline', 'slow-1',
      '--settle', '0.6'];
    let srv = await startServer(args, { product: true });
    const v = await viewer(srv.url, { pipeline_id: 'slow-1' });
    // A writer that appends a paragraph every 150 ms for 1.5 s: never quiet for 0.6 s.
    const fd = openSync(path.join(inbox, 'growing.txt'), 'w');
    for (let i = 0; i < 10; i++) {
      writeSync(fd, `Paragraph ${i} of the growing file.\n\n`);
      await sleep(150); // time is the test: never quiet for the 0.6 s settle time
    }
    writeSync(fd, 'The last words: quokka finale.\n');
    closeSync(fd);
    writeFileSync(path.join(inbox, 'keep.txt'), 'Kept document about the kakapo.');
    const evs = await v.waitFile('growing.txt');
    await v.waitFile('keep.txt');
    assert.deepEqual(steps(evs), GOOD_STEPS, 'one ingestion, not one per write');
    assert.equal(evs[0].ev.file.size, statSync(path.join(inbox, 'growing.txt')).size, 'the whole file');
    await assertFound(work, 'quokka finale', 'growing.txt');
    await assertFound(work, 'Paragraph 0 of the growing file', 'growing.txt');
    await srv.stop();
    // Deleted while nobody watched: the next start removes its chunks.
    rmSync(path.join(inbox, 'growing.txt'));
    srv = await startServer(args, { product: true });
    await waitUntil(() => srv.stderr().includes('1 document(s) removed: their files vanished while not watched'),
      10000, 'the removal at start');
    assert.equal((await search(work, ['quokka'])).code, 1);
    await assertFound(work, 'about the kakapo', 'keep.txt');
    // A move inside the tree: the old path's chunks go, the new path's come.
    const v2 = await viewer(srv.url, { pipeline_id: 'slow-1' });
    mkdirSync(path.join(inbox, 'archive'));
    renameSync(path.join(inbox, 'keep.txt'), path.join(inbox, 'archive', 'kept.txt'));
    assert.deepEqual(steps(await v2.waitFile('archive/kept.txt')), GOOD_STEPS);
    await waitUntil(async () => {
      const r = await search(work, ['kakapo', '--json']);
      return r.hits.length === 1 && r.hits[0].path.endsWith('/archive/kept.txt');
    }, 10000, 'kakapo found at the new path only');
    await srv.stop();
  });

  it('fails a file over --max-file-size and a ZIP with clear reasons, and carries on', async () => {
    const work = scratch();
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    const srv = await startServer(['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch', inbox,
      '--pipeline', 'limits-1', '--settle', '0.2', '--max-file-size', '1000', '--chunk-size', '64',
      '--chunk-overlap', '16'], { product: true });
    const v = await viewer(srv.url, { pipeline_id: 'limits-1' });
    writeFileSync(path.join(inbox, 'big.txt'), 'x'.repeat(1001));
    const long = Array.from({ length: 12 }, (_, i) => `Sentence ${i} mentions the numbat.`).join(' ');
    writeFileSync(path.join(inbox, 'long.txt'), long);
    writeFileSync(path.join(inbox, 'report.docx'), Buffer.from('PK\x03\x04\x14\x00\x06\x00', 'latin1'));
    writeFileSync(path.join(inbox, 'small.txt'), 'Small enough about the wombat.');
    const big = await v.waitFile('big.txt');
    assert.deepEqual(steps(big), [['file:processing', undefined], ['file:failed', undefined]]);
    assert.deepEqual(big.at(-1).ev.file.error,
      { message: 'the file is larger than the limit of 1000 bytes (--max-file-size)', kind: 'too_large', retryable: false });
    // --chunk-size 64 --chunk-overlap 16: sentence-sized chunks that overlap, positions in bytes.
    const chunks = (await v.waitFile('long.txt')).at(-1).ev.file.chunks;
    assert.ok(chunks >= long.length / 64, `${chunks} chunks`);
    const r = await search(work, ['numbat', '--json', '--limit', '100']);
    assert.equal(r.hits.length, chunks);
    const byChunk = r.hits.sort((a, b) => a.chunk - b.chunk);
    for (const [i, h] of byChunk.entries()) {
      assert.equal(h.chunk, i);
      assert.ok(h.end - h.start <= 64 && h.end <= long.length, JSON.stringify(h));
      assert.match(long.slice(h.start, h.end), /numbat\.$/, 'cut at a sentence end');
      assert.ok(h.start === 0 || long[h.start - 1] === ' ', 'starts at a word');
      if (i > 0) assert.ok(h.start < byChunk[i - 1].end, 'neighbours overlap');
    }
    const zip = await v.waitFile('report.docx');
    assert.equal(zip.at(-1).ev.file.error.message,
      'unsupported file type: a ZIP archive (.docx, .xlsx, .pptx, .odt, .epub, .zip)');
    assert.deepEqual(steps(await v.waitFile('small.txt')), GOOD_STEPS);
    await srv.stop();
  });

  it('never reports a SQLite database: a store inside the watched folder feeds no loop', async () => {
    const work = scratch();
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    // The hub's store lives in the folder it watches; the index elsewhere.
    const srv = await startServer(['--store', `sqlite:${path.join(inbox, 'hub.db')}`, '--index',
      path.join(work, 'index.db'), '--watch', inbox, '--pipeline', 'loop-1', '--settle', '0.2'], { product: true });
    const v = await viewer(srv.url, { pipeline_id: 'loop-1' });
    await sqlite3Cli(path.join(inbox, 'other.sqlite'), 'CREATE TABLE t (x); INSERT INTO t VALUES (1);');
    writeFileSync(path.join(inbox, 'note.txt'), 'A note about the pangolin.');
    await v.waitFile('note.txt');
    await sleep(1500); // absence window: the store changed with every event, a loop would show by now
    const names = new Set(v.got.filter((g) => FILE_TYPES.includes(g.name)).map((g) => g.ev.file.name));
    assert.deepEqual([...names], ['note.txt']);
    assert.equal(v.got.filter((g) => FILE_TYPES.includes(g.name)).length, 5);
    await srv.stop();
  });

  it('--jobs N runs N commands at once; a file changed while its command runs goes again after', async () => {
    const work = scratch();
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    // Each run notes its start, waits for the gate (the test opens it once three runs are in),
    // notes its end.
    const run = gatedExec(work);
    const srv = await startServer(['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch', inbox,
      '--pipeline', 'jobs-1', '--settle', '0.2', '--exec', run.exec, '--jobs', '3'], { product: true });
    const v = await viewer(srv.url, { pipeline_id: 'jobs-1' });
    for (const f of ['a.txt', 'b.txt', 'c.txt', 'd.txt']) writeFileSync(path.join(inbox, f), f);
    await waitUntil(() => run.started().length === 3, 15000, () => `three runs at once: ${run.lines()}`);
    // a.txt changes while its command runs: it is taken again only after that run ends.
    const running = run.started();
    writeFileSync(path.join(inbox, running[0]), 'changed');
    await sleep(600); // absence window: a fourth run, were it started, would have logged by now
    assert.equal(run.lines().length, 3, 'the fourth waits for a free slot');
    run.open();
    for (const f of ['a.txt', 'b.txt', 'c.txt', 'd.txt']) await v.waitFile(f, ['file:completed']);
    await waitUntil(() => v.fileEvents(running[0]).filter((g) => g.name === 'file:completed').length === 2, 15000,
      () => `${running[0]} again: ${JSON.stringify(v.fileEvents(running[0]).map((g) => g.name))}`);
    // Each file's events in order, never interleaved with a second run of itself.
    for (const f of ['a.txt', 'b.txt', 'c.txt', 'd.txt']) {
      const names = v.fileEvents(f).map((g) => g.name);
      const runs = f === running[0] ? 2 : 1;
      assert.deepEqual(names, Array(runs).fill(['file:processing', 'file:progress', 'file:completed']).flat(), f);
    }
    assert.deepEqual(run.lines().slice(0, 3).map((l) => l.split(' ')[0]), ['start', 'start', 'start']);
    await srv.stop();
  });

  it('hands each file to --exec CMD: progress lines, exit status, stderr tail', async () => {
    const work = scratch();
    mkdirSync(path.join(work, 'inbox'));
    const script = path.join(work, 'ingest.sh');
    writeFileSync(script, [
      '#!/bin/sh',
      'echo "progress 0.25 parse"',
      'echo "some other output"',
      'echo "progress 0.75 embed"',
      'echo "chunks 7"',
      'case "$1" in *bad*) echo "line one" >&2; echo "embedding service refused $(basename "$1")" >&2; exit 3;;',
      // control characters events refuse (BEL, DEL, U+0085): replaced, so the failure is still reported
      "  *ctl*) printf 'bell\\007 del\\177 nel\\302\\205 end\\n' >&2; exit 4;; esac",
      'exit 0', '',
    ].join('\n'));
    const srv = await startServer(['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch',
      path.join(work, 'inbox'), '--pipeline', 'exec-1', '--settle', '0.2', '--exec', `sh ${script}`], { product: true });
    const v = await viewer(srv.url, { pipeline_id: 'exec-1' });
    writeFileSync(path.join(work, 'inbox', 'good doc.txt'), 'anything');
    writeFileSync(path.join(work, 'inbox', 'bad.txt'), 'anything else');
    const good = await v.waitFile('good doc.txt');
    assert.deepEqual(good.map((g) => [g.name, g.ev.file.stage, g.ev.file.progress]), [
      ['file:processing', undefined, undefined], ['file:progress', 'exec', 0], ['file:progress', 'parse', 0.25],
      ['file:progress', 'embed', 0.75], ['file:completed', undefined, 1],
    ]);
    assert.equal(good.at(-1).ev.file.chunks, 7);
    const bad = await v.waitFile('bad.txt');
    assert.equal(bad.at(-1).name, 'file:failed');
    assert.equal(bad.at(-1).ev.file.error.kind, 'exec');
    assert.equal(bad.at(-1).ev.file.error.message, 'exit status 3: line one | embedding service refused bad.txt');
    writeFileSync(path.join(work, 'inbox', 'ctl.txt'), 'x');
    const ctl = await v.waitFile('ctl.txt');
    assert.equal(ctl.at(-1).name, 'file:failed');
    assert.equal(ctl.at(-1).ev.file.error.message, 'exit status 4: bell  del  nel  end');
    // Stopped while a command runs: the file is reported interrupted (retryable), the command's
    // whole process group is killed, and the hub hears pipeline:offline.
    writeFileSync(script, '#!/bin/sh\necho "progress 0.1 wait"\nsleep 30\n');
    writeFileSync(path.join(work, 'inbox', 'slow.txt'), 'x');
    await waitUntil(() => v.fileEvents('slow.txt').some((g) => g.ev.file.stage === 'wait'), 10000, 'slow.txt running');
    await srv.stop();
    const out = await sqlite3Cli(path.join(work, 'ragpulse.db'),
      "SELECT type || ' ' || coalesce(json_extract(payload, '$.file.error.kind'), '') FROM events ORDER BY id DESC LIMIT 2");
    assert.deepEqual(out.split('\n'), ['pipeline:offline ', 'file:failed interrupted']);
  });
});
