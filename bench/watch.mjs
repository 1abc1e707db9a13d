// The local-files pipeline, measured: files/s and MB/s ingested (extract, chunk, SQLite FTS5
// index, every event through the hub) for 1,000 small Markdown files and for 50 MB of text
// (50 files of 1 MB), each with and without a dashboard watching (a stock socket.io-client
// viewer subscribed to everything, counting what it is sent), in-process (`serve --watch`)
// and over HTTP (`watch --hub`, through its on-disk queue).
//
// Each run: the hub starts with --watch on an empty folder (or `watch --hub` starts next to
// it), the viewer (if any) subscribes, then the whole corpus is moved into the folder with one
// rename; the clock runs from that rename to the moment every file's file:completed is in the
// hub (its state counts them; read over HTTP every 20 ms, off the measured process). Loopback
// only, bounded, stops what it started. Prints one JSON line per run.
//
// Each configuration runs --repeat times (default 3); the line gives the median run and the
// range of files/s over the repeats (the machine is shared: single runs vary a lot).
//
//   node bench/watch.mjs [--quick] [--repeat N] [--tree N]
//   (--quick: 200 files, 10 MB, a tree of 2,000, 1 repeat; --tree: files in the large tree, 20,000)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'tests', 'package.json'));
const { io } = require('socket.io-client');
const bin = join(process.env.RAGPULSE_BUILD_DIR || join(root, 'build'), 'ragpulse');
const quick = process.argv.includes('--quick');
const SMALL = quick ? 200 : 1000;
const BIG_MB = quick ? 10 : 50;
const ri = process.argv.indexOf('--repeat');
const REPEAT = ri > 0 ? Number(process.argv[ri + 1]) : quick ? 1 : 3;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'rp-bench-watch-'));
const procs = new Set();
process.on('exit', () => {
  for (const p of procs) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
});

// ---- corpora: deterministic pseudo-text with words, sentences and paragraphs ----
const WORDS = ('pipeline document ingest chunk index search vector embed status hub socket event progress ' +
  'file folder watch extract markdown paragraph sentence token query result score latency throughput ' +
  'storage commit journal replica cluster node viewer dashboard heartbeat offline online queue retry').split(' ');
let seed = 42;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
function sentence() {
  const n = 6 + rnd(12);
  const w = Array.from({ length: n }, () => WORDS[rnd(WORDS.length)]);
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  return `${w.join(' ')}.`;
}
function paragraph() { return Array.from({ length: 3 + rnd(5) }, sentence).join(' '); }
function text(bytes, markdown) {
  const parts = [];
  let len = 0;
  let i = 0;
  while (len < bytes) {
    const p = markdown && i % 4 === 0 ? `## Section ${i}\n\n${paragraph()}` : paragraph();
    parts.push(p);
    len += p.length + 2;
    i++;
  }
  return parts.join('\n\n').slice(0, bytes);
}

function makeCorpus(name, files, bytes, ext, markdown) {
  const dir = join(work, 'corpus', name);
  mkdirSync(dir, { recursive: true });
  let total = 0;
  for (let i = 0; i < files; i++) {
    const body = markdown ? `# Note ${i}\n\n${text(bytes, true)}\n` : text(bytes, false);
    writeFileSync(join(dir, `${name}-${String(i).padStart(4, '0')}.${ext}`), body);
    total += Buffer.byteLength(body);
  }
  return { dir, files, bytes: total };
}

// ---- processes ----
function start(args, { cwd = work, match = /listening on http:\/\/[^:]+:(\d+)/ } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(p);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = match.exec(out);
      if (m) resolve({ p, port: Number(m[1]), stderr: () => err });
    });
    p.stderr.on('data', (d) => { err += d; if (err.length > 1e6) err = err.slice(-5e5); });
    p.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}: ${err.slice(-2000)}`)));
  });
}
async function stop(h) {
  if (!h) return;
  const exited = new Promise((r) => h.p.once('exit', r));
  h.p.kill('SIGTERM');
  await Promise.race([exited, sleep(5000).then(() => h.p.kill('SIGKILL'))]);
  procs.delete(h.p);
}

async function completed(port, pid) {
  const r = await fetch(`http://127.0.0.1:${port}/api/rag-status`, { signal: AbortSignal.timeout(5000) });
  const s = await r.json();
  const p = (s.pipelines || []).find((x) => x.id === pid);
  return p ? p.counters.processed : 0;
}

async function run(corpusName, corpus, mode, dashboard, rep) {
  const tag = `${corpusName}-${mode}-${dashboard ? 'viewer' : 'none'}-${rep}`.replace(/[^A-Za-z0-9.-]/g, '_');
  const inbox = join(work, `inbox-${tag}`);
  mkdirSync(inbox);
  const store = join(work, `${tag}.db`);
  const pid = `bench-${tag}`;
  const common = ['--pipeline', pid, '--settle', '0.05', '--heartbeat', '30', '--log-level', 'warn'];
  let hub;
  let watcher;
  if (mode === 'in-process') {
    hub = await start(['serve', '--listen', '127.0.0.1:0', '--store', `sqlite:${store}`, '--watch', inbox, ...common]);
  } else {
    hub = await start(['serve', '--listen', '127.0.0.1:0', '--store', `sqlite:${store}`, '--log-level', 'warn']);
    watcher = await start(['watch', inbox, '--hub', `http://127.0.0.1:${hub.port}`, '--index', join(work, `${tag}-index.db`),
      '--queue', join(work, `${tag}.queue`), ...common], { match: /^watching .*()/m });
  }
  let received = 0;
  let viewer;
  if (dashboard) {
    viewer = io(`http://127.0.0.1:${hub.port}/pipeline`, { transports: ['websocket'], forceNew: true });
    await new Promise((r, j) => { viewer.once('connect', r); viewer.once('connect_error', j); });
    viewer.onAny(() => { received++; });
    await viewer.timeout(5000).emitWithAck('subscribe', {});
  }
  await sleep(300); // the watcher's initial scan of the empty folder is done
  const t0 = performance.now();
  renameSync(corpus.dir, join(inbox, 'corpus'));
  const deadline = t0 + 600000;
  let done = 0;
  while ((done = await completed(hub.port, pid)) < corpus.files) {
    if (performance.now() > deadline) throw new Error(`${tag}: ${done}/${corpus.files} after 600 s`);
    await sleep(20);
  }
  const secs = (performance.now() - t0) / 1000;
  if (viewer) viewer.close();
  await stop(watcher);
  await stop(hub);
  renameSync(join(inbox, 'corpus'), corpus.dir); // the next run moves it in again
  return {
    corpus: corpusName, mode, dashboard: dashboard ? 'viewer subscribed to all' : 'none', files: corpus.files,
    mb: +(corpus.bytes / 1e6).toFixed(1), seconds: +secs.toFixed(2), files_per_s: Math.round(corpus.files / secs),
    mb_per_s: +(corpus.bytes / 1e6 / secs).toFixed(1), viewer_events: dashboard ? received : undefined,
  };
}

async function measure(corpusName, corpus, mode, dashboard) {
  const runs = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await run(corpusName, corpus, mode, dashboard, i));
  runs.sort((a, b) => a.files_per_s - b.files_per_s);
  const med = runs[Math.floor(runs.length / 2)];
  med.runs = runs.length;
  med.files_per_s_range = [runs[0].files_per_s, runs.at(-1).files_per_s];
  console.log(JSON.stringify(med));
}

// The watcher alone on a large tree, and its restart: `ragpulse watch` with no hub (events go
// to its on-disk queue), TREE files of ~60 bytes in 20 directories; the clock runs from the
// start of the process to its "idle" log line, first with an empty index, then again over the
// same, unchanged tree (nothing to ingest: the registry check).
async function tree(files) {
  const dir = join(work, 'tree');
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let i = 0; i < files / 20; i++) writeFileSync(join(dir, `d${d}`, `f${i}.txt`), `file ${d} ${i}: ${sentence()}\n`);
  }
  const once = async (label) => {
    const t0 = performance.now();
    const p = spawn(bin, ['watch', dir, '--hub', 'http://127.0.0.1:1', '--index', join(work, 'tree.db'),
      '--queue', join(work, 'tree.queue'), '--settle', '0.05'], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    procs.add(p);
    let err = '';
    const idle = await new Promise((resolve, reject) => {
      p.stderr.on('data', (d) => {
        err += d;
        const m = /"msg":"idle: (\d+) ingested, \d+ failed, (\d+) unchanged/.exec(err);
        if (m && Number(m[1]) + Number(m[2]) === files) resolve(m);
      });
      p.once('exit', (code) => reject(new Error(`watch exited ${code}: ${err.slice(-1000)}`)));
    });
    const secs = (performance.now() - t0) / 1000;
    await stop({ p });
    console.log(JSON.stringify({ corpus: `${files} files in 20 directories`, run: label, mode: 'watch, no hub (queue on disk)',
      ingested: Number(idle[1]), unchanged: Number(idle[2]), seconds: +secs.toFixed(2),
      files_per_s: Math.round(files / secs) }));
  };
  await once('first (empty index)');
  await once('restart (nothing changed)');
}
const ti = process.argv.indexOf('--tree');
await tree(ti > 0 ? Number(process.argv[ti + 1]) : quick ? 2000 : 20000);

const small = makeCorpus('small', SMALL, 1500, 'md', true);
const big = makeCorpus('big', BIG_MB, 1_000_000, 'txt', false);
for (const mode of ['in-process', 'network']) {
  for (const dashboard of [false, true]) {
    await measure(`${SMALL} Markdown files`, small, mode, dashboard);
    await measure(`${BIG_MB} MB of text`, big, mode, dashboard);
  }
}
process.exit(0);
