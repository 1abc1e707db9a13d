// Helpers shared by the local-files pipeline's integration tests (watch-*.test.mjs): a scratch
// directory per test, the documents of the proof (a real PDF made with ghostscript, a
// corrupt PDF, a binary file), `ragpulse search` and `ragpulse watch` runs, and a viewer that
// records every pipeline event it is sent.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUILD_DIR, connect, track, waitUntil } from './helpers.mjs';
import { T } from './hub-helpers.mjs';

export const RAGPULSE = path.join(BUILD_DIR, 'ragpulse');
export const FILE_TYPES = ['file:processing', 'file:progress', 'file:completed', 'file:failed', 'file:deleted'];

/** A fresh directory removed when the process exits. */
export function scratch(prefix = 'rp-watch-') {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// One sentence per good document: `search` must find each.
export const SENTENCES = {
  'notes.txt': 'Plain text mentions the albatross gliding over cold water.',
  'guide.md': 'Markdown explains how the bioluminescent plankton glows at night.',
  'page.html': 'The HTML page describes a caf\u00e9 serving cr\u00e8me br\u00fbl\u00e9e to the capybara.',
  'report.pdf': 'The PDF report says penguins huddle during the polar winter.',
};

/** Writes the folder into dir: text, Markdown, HTML, a real PDF, a corrupt PDF, a binary. */
export function writeDocuments(dir) {
  writeFileSync(path.join(dir, 'notes.txt'), `Notes\n\n${SENTENCES['notes.txt']}\nSecond line.\n`);
  writeFileSync(path.join(dir, 'guide.md'),
    `# Guide\n\nSome *emphasis* and a [link](http://example.com).\n\n${SENTENCES['guide.md']}\n`);
  writeFileSync(path.join(dir, 'page.html'),
    '<!doctype html><html><head><title>Page</title><style>p{color:red}</style>' +
    '<script>var secret = "zanzibarscript";</script></head><body><h1>Menu</h1>' +
    '<p>The HTML page describes a caf&eacute; serving cr&#232;me br&#xFB;l&eacute;e to the capybara.</p>' +
    '<!-- a comment about the okapi --></body></html>');
  writeFileSync(path.join(dir, 'report.pdf'), makePdf(SENTENCES['report.pdf']));
  writeFileSync(path.join(dir, 'broken.pdf'), '%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntruncated garbage\n');
  const bin = Buffer.alloc(512);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 37 + 11) & 0xff;
  writeFileSync(path.join(dir, 'blob.bin'), bin);
}

/** A real PDF holding `text`, made by ghostscript (Debian's gs) from a small PostScript page. */
export function makePdf(text) {
  const ps = `%!PS\n/Helvetica findfont 12 scalefont setfont\n72 700 moveto (${text}) show\nshowpage\n`;
  return execFileSync('gs', ['-q', '-dNOPAUSE', '-dBATCH', '-dSAFER', '-sDEVICE=pdfwrite', '-sOutputFile=-', '-'],
    { input: ps, timeout: 30000 });
}

/** Runs `ragpulse search ARGS` in cwd; resolves {code, stdout, stderr, hits (with --json)}. */
export function search(cwd, args) {
  return new Promise((resolve) => {
    execFile(RAGPULSE, ['search', ...args], { cwd, timeout: 10000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const hits = args.includes('--json')
        ? stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      resolve({ code, stdout, stderr, hits });
    });
  });
}

/** Asserts that `search` finds `sentence` in the file whose path ends with `name`. */
export async function assertFound(cwd, sentence, name, extra = []) {
  const words = sentence.replace(/[^\p{L}\p{N} ]/gu, ' ').split(/\s+/).filter((w) => w.length > 3).slice(0, 6);
  const r = await search(cwd, [words.join(' '), '--json', ...extra]);
  assert.equal(r.code, 0, `search for "${words.join(' ')}": ${r.stderr}`);
  assert.ok(r.hits.some((h) => h.path.endsWith(`/${name}`)), `hits for ${name}: ${JSON.stringify(r.hits)}`);
  return r.hits;
}

/**
 * Starts `ragpulse watch ARGS` in cwd; resolves once it printed its "watching" line.
 * Returns {proc, stderr(), stop(signal), exited}.
 */
export async function startWatch(cwd, args, env = {}) {
  const proc = spawn(RAGPULSE, ['watch', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => { stdout += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve({ code, sig })));
  const w = {
    proc, exited, stderr: () => stderr, stdout: () => stdout,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      process.kill(proc.pid, signal);
      const r = await Promise.race([exited, new Promise((res) => setTimeout(res, 8000, null))]);
      if (r === null) { process.kill(proc.pid, 'SIGKILL'); throw new Error(`watch did not stop on ${signal}`); }
      return r.code;
    },
  };
  track({ close() { if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL'); } });
  await waitUntil(() => /^watching /m.test(stdout) || proc.exitCode !== null, T, 'the "watching" line');
  assert.equal(proc.exitCode, null, `ragpulse watch exited: ${stderr}`);
  return w;
}

/** Waits for the watcher's "idle" log line number `n` (counted in `text()`); returns that line. */
export async function idleLine(text, n, ms = 20000) {
  let line = null;
  await waitUntil(() => {
    const lines = text().split('\n').filter((l) => l.includes('"msg":"idle:'));
    line = lines[n - 1] ?? null;
    return line !== null;
  }, ms, () => `idle line #${n}; log:\n${text().slice(-3000)}`);
  return JSON.parse(line).msg;
}

/** A viewer on base/pipeline subscribed to `filter`, recording pipeline events in order. */
export async function viewer(base, filter = {}) {
  const s = await connect(`${base}/pipeline`, { transports: ['websocket'] });
  const got = [];
  s.onAny((name, ev) => {
    if (name === 'sync' || ((name === 'heartbeat' || name === 'hub:heartbeat') && ev?.source === 'hub')) return;
    got.push({ name, ev });
  });
  await s.timeout(T).emitWithAck('subscribe', filter);
  return {
    s, got,
    /** The file events of `name` (the file's relative path), as [type, stage|undefined]. */
    fileEvents(name) {
      return got.filter((g) => FILE_TYPES.includes(g.name) && g.ev.file?.name === name);
    },
    async waitFile(name, final = ['file:completed', 'file:failed'], ms = 20000) {
      await waitUntil(() => this.fileEvents(name).some((g) => final.includes(g.name)), ms,
        () => `the end of ${name}; got ${JSON.stringify(got.map((g) => [g.name, g.ev.file?.name]))}`);
      return this.fileEvents(name);
    },
  };
}

/**
 * A gated `--exec` command in `dir` (outside the watched folder): each run appends
 * "start NAME" to its log, prints "progress P" when `progress` is given, waits until the test
 * opens the gate, appends "end NAME", prints "chunks N" and exits 0. Returns `exec` (the
 * command for --exec), `lines()` (the log so far), `started()` (the names whose run started,
 * in order) and `open()` (lets every run, current and later, finish).
 */
export function gatedExec(dir, { progress = null, chunks = 1 } = {}) {
  const log = path.join(dir, 'runs.log');
  const gate = path.join(dir, 'gate');
  const script = path.join(dir, 'gated.sh');
  writeFileSync(script, [
    '#!/bin/sh',
    `echo "start $(basename "$1")" >> '${log}'`,
    ...(progress === null ? [] : [`echo "progress ${progress}"`]),
    `while [ ! -e '${gate}' ]; do sleep 0.05; done`,
    `echo "end $(basename "$1")" >> '${log}'`,
    `echo "chunks ${chunks}"`, '',
  ].join('\n'));
  const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  return {
    exec: `sh '${script}'`,
    lines,
    started: () => lines().filter((l) => l.startsWith('start ')).map((l) => l.slice('start '.length)),
    open: () => writeFileSync(gate, ''),
  };
}

/** The steps a good document goes through, as [event, stage] pairs. */
export const GOOD_STEPS = [
  ['file:processing', undefined], ['file:progress', 'extract'], ['file:progress', 'chunk'],
  ['file:progress', 'index'], ['file:completed', undefined],
];

export function steps(events) {
  return events.map((g) => [g.name, g.name === 'file:progress' ? g.ev.file.stage : undefined]);
}

export { mkdirSync };
