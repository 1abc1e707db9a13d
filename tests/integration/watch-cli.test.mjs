// `ragpulse watch` and `ragpulse search` on the command line: usage errors exit 2 with a
// message that says what is wrong, a missing folder or index is a clear error, and --help
// documents the options. No server needed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { USE_REF } from './helpers.mjs';
import { RAGPULSE, scratch, search, startWatch } from './watch-helpers.mjs';

const SKIP = USE_REF && 'ragpulse only (RP_TEST_SERVER=ref)';

function run(args, cwd) {
  return new Promise((resolve) => {
    execFile(RAGPULSE, args, { cwd, timeout: 10000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

describe('ragpulse watch / search: command line', { skip: SKIP }, () => {
  it('refuses bad usage with exit status 2 and a reason', async () => {
    const work = scratch();
    mkdirSync(path.join(work, 'docs'));
    const cases = [
      [['watch'], /which directory\?/],
      [['watch', 'docs', 'other'], /one directory only/],
      [['watch', 'docs', '--chunk-size', '1000', '--chunk-overlap', '600'], /less than half of --chunk-size/],
      [['watch', 'docs', '--settle', 'soon'], /--settle wants a number/],
      [['watch', 'docs', '--pipeline', 'bad id!'], /--pipeline wants 1 to 128 characters/],
      [['watch', 'docs', '--bogus', 'x'], /unknown option '--bogus'/],
      [['watch', 'docs', '--hub', 'https://hub.example'], null],
      [['serve', '--settle', '2'], /--settle is an option of --watch DIR/],
      [['search'], /what to search for\?/],
      [['search', 'a', 'b'], /one query only/],
      [['search', 'a', '--limit', '0'], /--limit wants a number from 1 to 1000/],
    ];
    for (const [args, re] of cases) {
      const r = await run(args, work);
      if (re === null) {
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /only http:\/\/ URLs are supported/);
        continue;
      }
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.code} ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
  });

  it('a missing folder or index is a clear error; --help lists the options', async () => {
    const work = scratch();
    const r = await run(['watch', 'nowhere'], work);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot watch nowhere: No such file or directory/);
    const s = await search(work, ['anything']);
    assert.equal(s.code, 3);
    assert.match(s.stderr, /no index at ragpulse\.db/);
    const h = await run(['watch', '--help'], work);
    assert.equal(h.code, 0);
    for (const opt of ['--hub', '--token', '--queue', '--exec', '--chunk-size', '--chunk-overlap', '--settle', '--index']) {
      assert.ok(h.stdout.includes(opt), opt);
    }
    // One watcher per queue file; RAG_PIPELINE_ID names the pipeline.
    mkdirSync(path.join(work, 'docs'));
    const first = await startWatch(work, ['docs', '--hub', 'http://127.0.0.1:1', '--index', 'one.db'],
      { RAG_PIPELINE_ID: 'from-env.1' });
    assert.match(first.stdout(), /^watching \/.*\/docs \(pipeline from-env\.1\) -> http:\/\/127\.0\.0\.1:1$/m);
    const second = await run(['watch', 'docs', '--hub', 'http://127.0.0.1:1', '--index', 'two.db'], work);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /the queue ragpulse-watch\.queue is in use by another `ragpulse watch`/);
    assert.equal(await first.stop(), 0);
    const sh = await run(['search', '--help'], work);
    assert.equal(sh.code, 0);
    assert.match(sh.stdout, /FTS5 syntax/);
    const serve = await run(['serve', '--help'], work);
    assert.match(serve.stdout, /--watch DIR/);
  });
});
