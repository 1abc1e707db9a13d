// `ragpulse search` reads plain words by default, FTS5 syntax with --fts (issue 14, item 7):
// `ragpulse search "obsidian-lantern"` used to exit 2 with "no such column: lantern". Now the
// words are searched as typed (operators, quotes and parentheses are text, never an error),
// and --fts keeps the FTS5 query syntax, where a query FTS5 cannot read is exit status 2 with
// a message that says why. A refused query changes nothing in the index.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, USE_REF } from './helpers.mjs';
import { sqlite3Cli } from './hub-helpers.mjs';
import { scratch, search, viewer } from './watch-helpers.mjs';

const SKIP = USE_REF && 'the local-files pipeline exists only in ragpulse (RP_TEST_SERVER=ref)';
const PID = 'search-1';

const DOCS = {
  'lamp.txt': 'The obsidian-lantern glows in the cave at night.',
  'apart.txt': 'Obsidian is a black glass; a lantern is a light.',
  'ops.txt': 'AND OR NOT are plain words in this (parenthesised) note, "quoted" too.',
};

const paths = (r) => r.hits.map((h) => path.basename(h.path)).sort();

describe('ragpulse search: plain words, FTS5 syntax as an option', { skip: SKIP }, () => {
  it('finds obsidian-lantern as words; --fts reads FTS5 and says why a query is not valid', async () => {
    const work = scratch('rp-search-');
    const inbox = path.join(work, 'inbox');
    mkdirSync(inbox);
    const db = path.join(work, 'ragpulse.db');
    const srv = await startServer(['--store', `sqlite:${db}`, '--watch', inbox, '--pipeline', PID, '--settle', '0.2'],
      { product: true });
    const v = await viewer(srv.url, { pipeline_id: PID });
    for (const [name, text] of Object.entries(DOCS)) writeFileSync(path.join(inbox, name), `${text}\n`);
    for (const name of Object.keys(DOCS)) await v.waitFile(name, ['file:completed']);
    const count = () => sqlite3Cli(db, 'SELECT (SELECT count(*) FROM watch_documents) || \'/\' || (SELECT count(*) FROM watch_chunks)');
    const before = await count();
    assert.equal(before, '3/3');

    // ---- plain words (the default) ----
    const lamp = await search(work, ['obsidian-lantern', '--json']);
    assert.equal(lamp.code, 0, lamp.stderr);
    assert.deepEqual(paths(lamp), ['lamp.txt'], 'a hyphenated word is that phrase');
    assert.match(lamp.hits[0].snippet, /\[obsidian-lantern\] glows/);
    const both = await search(work, ['Lantern OBSIDIAN', '--json']);
    assert.equal(both.code, 0, both.stderr);
    assert.deepEqual(paths(both), ['apart.txt', 'lamp.txt'], 'every word, anywhere in the chunk, any case');
    // Operators, parentheses and quotes are words like any other: never a syntax error.
    const ops = await search(work, ['AND OR NOT (parenthesised) "quoted', '--json']);
    assert.equal(ops.code, 0, ops.stderr);
    assert.deepEqual(paths(ops), ['ops.txt']);
    for (const q of ['"unterminated', 'zebra OR (', 'nosuchcolumn: x', 'NEAR(a b, x)', '*']) {
      const r = await search(work, [q]);
      assert.equal(r.code, 1, `${q}: nothing matches, no error: ${r.stderr}`);
      assert.match(r.stderr, /^ragpulse search: nothing matches\n$/);
    }
    // --literal, the old name of the default, is still accepted.
    assert.deepEqual(paths(await search(work, ['obsidian-lantern', '--literal', '--json'])), ['lamp.txt']);

    // ---- --fts: FTS5 query syntax ----
    const prefix = await search(work, ['lant*', '--fts', '--json']);
    assert.equal(prefix.code, 0, prefix.stderr);
    assert.deepEqual(paths(prefix), ['apart.txt', 'lamp.txt']);
    const not = await search(work, ['obsidian NOT glows', '--fts', '--json']);
    assert.deepEqual(paths(not), ['apart.txt']);
    assert.deepEqual(paths(await search(work, ['"obsidian-lantern"', '--fts', '--json'])), ['lamp.txt']);
    // The query in FTS5 syntax: exit status 2 and the reason in words.
    const col = await search(work, ['obsidian-lantern', '--fts']);
    assert.equal(col.code, 2);
    assert.equal(col.stdout, '');
    assert.match(col.stderr, /with --fts, the query is FTS5 syntax, and this one is not valid: no such column: lantern/);
    assert.match(col.stderr, /put words with - or : in double quotes/);
    assert.match(col.stderr, /without --fts the words are\s+searched as typed/);
    const unterminated = await search(work, ['"unterminated', '--fts']);
    assert.equal(unterminated.code, 2);
    assert.match(unterminated.stderr, /not valid: unterminated string/);
    assert.equal((await search(work, ['AND OR (', '--fts'])).code, 2);

    // Nothing stored was lost to the refused queries: the index is whole and still answers.
    assert.equal(await count(), before);
    assert.deepEqual(paths(await search(work, ['glass light', '--json'])), ['apart.txt']);
    await srv.stop();
  });
});
