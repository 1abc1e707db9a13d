// The watcher never leaves its folder (issue 13, item 6). A symbolic link is never followed,
// on the start-up scan and on the live path alike: a link to /etc, a link to a file outside,
// a link to a file inside (its target is ingested once, under its own name), a link back up
// the tree and a two-link cycle. Each test checks that nothing behind a link is read (no
// event names it, the registry has no row for it, `search` finds none of its words) and that
// every real document still is ingested, once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, waitUntil, USE_REF } from './helpers.mjs';
import { getJson, sqlite3Cli } from './hub-helpers.mjs';
import { scratch, search, assertFound, viewer, idleLine, FILE_TYPES } from './watch-helpers.mjs';

const SKIP = USE_REF && 'the local-files pipeline exists only in ragpulse (RP_TEST_SERVER=ref)';
const PID = 'links-1';

// A word of /etc/passwd that no document of these tests holds ("root" is in every passwd).
const ETC_WORD = 'root';
const SECRET = 'The quokka password is zygomorphic.';

function serveArgs(work) {
  return ['--store', `sqlite:${path.join(work, 'ragpulse.db')}`, '--watch', path.join(work, 'inbox'),
    '--pipeline', PID, '--settle', '0.2', '--heartbeat', '0.5'];
}

/** A folder outside the inbox with a secret document; the inbox's own documents. */
function setup() {
  const work = scratch('rp-links-');
  mkdirSync(path.join(work, 'outside'));
  writeFileSync(path.join(work, 'outside', 'secret.txt'), `${SECRET}\n`);
  mkdirSync(path.join(work, 'inbox', 'sub'), { recursive: true });
  return work;
}

const DOCS = {
  'notes.txt': 'The albatross glides over cold water.',
  'sub/deep.md': 'Deep inside, the axolotl regrows its limbs.',
};

function writeDocs(inbox, docs = DOCS) {
  for (const [name, text] of Object.entries(docs)) writeFileSync(path.join(inbox, name), `${text}\n`);
}

/** Every kind of link, made in inbox (names relative to it). */
function makeLinks(work) {
  const inbox = path.join(work, 'inbox');
  symlinkSync('/etc', path.join(inbox, 'etc-link'));                                  // a folder outside
  symlinkSync(path.join(work, 'outside', 'secret.txt'), path.join(inbox, 'secret.txt')); // a file outside
  symlinkSync('notes.txt', path.join(inbox, 'alias.txt'));                          // a file inside
  symlinkSync('..', path.join(inbox, 'sub', 'up'));                                 // back up: a loop
  symlinkSync(inbox, path.join(inbox, 'self'));                                     // the root itself
  symlinkSync('cycle-b', path.join(inbox, 'cycle-a'));                              // a cycle of two
  symlinkSync('cycle-a', path.join(inbox, 'cycle-b'));
  return ['etc-link', 'secret.txt', 'alias.txt', 'sub/up', 'self', 'cycle-a', 'cycle-b'];
}

/** The newest "idle" line of the watcher's log, once there are at least n of them. */
async function lastIdle(text, n) {
  await idleLine(text, n);
  const lines = text().split('\n').filter((l) => l.includes('"msg":"idle:'));
  return JSON.parse(lines.at(-1)).msg;
}

/** Asserts that the only files the pipeline ever named are `names`, each completed once. */
function assertOnly(v, names) {
  const fileEvents = v.got.filter((g) => FILE_TYPES.includes(g.name));
  const seen = [...new Set(fileEvents.map((g) => g.ev.file.name))].sort();
  assert.deepEqual(seen, [...names].sort(), 'the files the pipeline reported');
  for (const n of names) {
    const done = v.fileEvents(n).filter((g) => g.name === 'file:completed');
    assert.equal(done.length, 1, `${n} completed once: ${JSON.stringify(v.fileEvents(n).map((g) => g.name))}`);
  }
}

/** Asserts that the index holds exactly `names` (relative to inbox) and nothing behind a link. */
async function assertIndexed(work, names) {
  const db = path.join(work, 'ragpulse.db');
  const rows = await sqlite3Cli(db, 'SELECT path FROM watch_documents ORDER BY path');
  const inbox = path.join(work, 'inbox');
  assert.deepEqual(rows.split('\n').filter(Boolean), names.map((n) => path.join(inbox, n)).sort(),
    'the registry holds the real documents only');
  assert.equal(await sqlite3Cli(db, "SELECT count(*) FROM watch_chunks WHERE path NOT IN (SELECT path FROM watch_documents)"), '0');
  // Nothing of /etc, nothing of the file outside.
  assert.ok(readFileSync('/etc/passwd', 'utf8').includes(ETC_WORD));
  assert.equal((await search(work, [ETC_WORD])).code, 1, '/etc/passwd is not searchable');
  assert.equal((await search(work, ['quokka zygomorphic'])).code, 1, 'the file outside is not searchable');
  for (const [name, text] of Object.entries(DOCS)) await assertFound(work, text, name);
}

/** Asserts that no event stored by the hub names a path behind a link. */
async function assertNoLinkEvents(base, links) {
  const log = await getJson(`${base}/api/events?pipeline=${PID}&limit=1000`);
  const named = log.events.filter((e) => e.file && links.some((l) => e.file.name === l || e.file.name.startsWith(`${l}/`)));
  assert.deepEqual(named, [], 'no event names a link or a path behind it');
  const files = await getJson(`${base}/api/files?pipeline=${PID}`);
  assert.deepEqual(files.files.map((f) => f.name).sort(), Object.keys(DOCS).sort());
}

describe('the watcher never leaves its folder: symbolic links are not followed', { skip: SKIP }, () => {
  it('links created while it runs (to /etc, to a file outside, loops) are not followed', async () => {
    const work = setup();
    const inbox = path.join(work, 'inbox');
    const srv = await startServer(serveArgs(work), { product: true });
    const v = await viewer(srv.url, { pipeline_id: PID });
    await idleLine(srv.stderr, 1); // the (empty) start-up scan is done: what follows is live
    writeDocs(inbox);
    const links = makeLinks(work);
    // Each link is seen and refused on the live path (the log says so), then the watcher is
    // idle with the two real documents ingested and nothing else.
    for (const l of links) {
      await waitUntil(() => srv.stderr().includes(`"${path.join(inbox, l)} is a symbolic link: not followed"`), 10000,
        () => `${l} refused; log:\n${srv.stderr().slice(-3000)}`);
    }
    for (const n of Object.keys(DOCS)) await v.waitFile(n, ['file:completed']);
    // Idle again after the links (the newest idle line counts everything since the start).
    assert.match(await lastIdle(srv.stderr, 2), /^idle: 2 ingested, 0 failed/);
    assertOnly(v, Object.keys(DOCS));
    await assertIndexed(work, Object.keys(DOCS));
    await assertNoLinkEvents(srv.url, links);
    // A document written after the links still goes through (the watcher is not stuck).
    writeFileSync(path.join(inbox, 'sub', 'later.txt'), 'The okapi arrives later.\n');
    await v.waitFile('sub/later.txt', ['file:completed']);
    await assertFound(work, 'The okapi arrives later.', 'sub/later.txt');
    await srv.stop();
  });

  it('a file replaced by a link while it runs: its old chunks go, the target is not read', async () => {
    const work = setup();
    const inbox = path.join(work, 'inbox');
    writeDocs(inbox);
    writeFileSync(path.join(inbox, 'swap.txt'), 'The narwhal tusk spirals.\n');
    const srv = await startServer(serveArgs(work), { product: true });
    const v = await viewer(srv.url, { pipeline_id: PID });
    await idleLine(srv.stderr, 1);
    await assertFound(work, 'The narwhal tusk spirals.', 'swap.txt');
    const before = v.got.length;
    // Replaced atomically (a rename over it), as an attacker with write access would.
    symlinkSync(path.join(work, 'outside', 'secret.txt'), path.join(inbox, 'swap.tmp'));
    renameSync(path.join(inbox, 'swap.tmp'), path.join(inbox, 'swap.txt'));
    await waitUntil(() => srv.stderr().includes(`"${path.join(inbox, 'swap.txt')} is a symbolic link: not followed"`),
      10000, () => `swap.txt refused; log:\n${srv.stderr().slice(-3000)}`);
    await waitUntil(async () => (await search(work, ['narwhal'])).code === 1, 10000, 'the old chunks of swap.txt removed');
    assert.equal((await search(work, ['quokka zygomorphic'])).code, 1, 'the link target is not read');
    assert.match(await lastIdle(srv.stderr, 2), /^idle: 3 ingested, 0 failed, 0 unchanged, 1 removed/);
    // The old document is forgotten like a deleted one (file:deleted); the link itself gets no event.
    assert.deepEqual(v.got.slice(before).filter((g) => FILE_TYPES.includes(g.name)).map((g) => [g.name, g.ev.file.name]),
      [['file:deleted', 'swap.txt']], 'no file event for the link');
    assert.equal(await sqlite3Cli(path.join(work, 'ragpulse.db'),
      `SELECT count(*) FROM watch_documents WHERE path = '${path.join(inbox, 'swap.txt')}'`), '0');
    await srv.stop();
  });

  it('a watched folder moved out and replaced by a link to it: nothing written there is read', async () => {
    const work = setup();
    const inbox = path.join(work, 'inbox');
    writeDocs(inbox);
    const srv = await startServer(serveArgs(work), { product: true });
    const v = await viewer(srv.url, { pipeline_id: PID });
    await idleLine(srv.stderr, 1);
    await assertFound(work, DOCS['sub/deep.md'], 'sub/deep.md');
    const before = v.got.length;
    // sub/ leaves the tree (its inotify watch goes with it) and a link to it takes its place;
    // then a document is written in it, reachable as inbox/sub/new.txt through the link.
    const moved = path.join(work, 'moved');
    renameSync(path.join(inbox, 'sub'), moved);
    symlinkSync(moved, path.join(inbox, 'sub'));
    writeFileSync(path.join(moved, 'new.txt'), 'The wombat leaves cubes.\n');
    await waitUntil(() => srv.stderr().includes(`"${path.join(inbox, 'sub')} is a symbolic link: not followed"`),
      10000, () => `sub refused; log:\n${srv.stderr().slice(-3000)}`);
    writeFileSync(path.join(moved, 'later.txt'), 'The wombat sleeps by day.\n');
    writeFileSync(path.join(inbox, 'after.txt'), 'The pangolin rolls up.\n');
    await v.waitFile('after.txt', ['file:completed']);
    assert.match(await lastIdle(srv.stderr, 2), /^idle: 3 ingested, 0 failed/);
    const later = v.got.slice(before).filter((g) => FILE_TYPES.includes(g.name));
    assert.deepEqual([...new Set(later.filter((g) => g.name !== 'file:deleted').map((g) => g.ev.file.name))],
      ['after.txt'], 'no event for a file behind the link');
    assert.deepEqual(later.filter((g) => g.name === 'file:deleted').map((g) => g.ev.file.name), ['sub/deep.md'],
      'what sub/ held is forgotten like a deleted file');
    assert.equal((await search(work, ['wombat'])).code, 1, 'nothing behind the link is indexed');
    assert.equal((await search(work, ['axolotl'])).code, 1, 'what sub/ held is forgotten');
    const rows = await sqlite3Cli(path.join(work, 'ragpulse.db'), 'SELECT path FROM watch_documents ORDER BY path');
    assert.deepEqual(rows.split('\n'), ['after.txt', 'notes.txt'].map((n) => path.join(inbox, n)));
    await srv.stop();
  });

  it('the start-up scan follows no link either, and a restart ingests nothing new', async () => {
    const work = setup();
    const inbox = path.join(work, 'inbox');
    writeDocs(inbox);
    const links = makeLinks(work);
    let srv = await startServer(serveArgs(work), { product: true });
    const idle = await idleLine(srv.stderr, 1);
    assert.match(idle, /^idle: 2 ingested, 0 failed, 0 unchanged, 0 removed/);
    await assertIndexed(work, Object.keys(DOCS));
    await assertNoLinkEvents(srv.url, links);
    await srv.stop();
    srv = await startServer(serveArgs(work), { product: true });
    assert.match(await idleLine(srv.stderr, 1), /^idle: 0 ingested, 0 failed, 2 unchanged, 0 removed/);
    await assertIndexed(work, Object.keys(DOCS));
    await srv.stop();
  });
});
