// Helpers for nextjs.test.mjs: pack web/client the way a registry would ship it, make a
// scratch copy of examples/nextjs with that tarball installed (node_modules hard-linked from
// the example's own install, which scripts/bootstrap makes), and run `next` in it.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_DIR, waitUntil } from './helpers.mjs';

export const CLIENT_DIR = path.join(REPO_DIR, 'web/client');
export const EXAMPLE_DIR = path.join(REPO_DIR, 'examples/nextjs');
const NPM = 'npm';

/** A scratch directory removed when the process exits. */
export function scratch() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-nextjs-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `npm pack` of web/client into `dest` (its prepack builds dist/); resolves with the .tgz path and npm's file list. */
export function packClient(dest) {
  const out = execFileSync(NPM, ['pack', '--json', '--pack-destination', dest], {
    cwd: CLIENT_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  return { tgz: path.join(dest, info.filename), files: info.files.map((f) => f.path) };
}

/** The entries of a tarball, and one file of it as text. */
export const tarList = (tgz) => execFileSync('tar', ['tzf', tgz], { encoding: 'utf8' }).split('\n').filter(Boolean);
export const tarRead = (tgz, name) => execFileSync('tar', ['xzOf', tgz, name], { encoding: 'utf8' });

/**
 * Copies examples/nextjs (its sources, not its build output) to `dir`, hard-links the example's
 * node_modules into it and installs `tgz` there with npm, as an app would install the package.
 */
export function appWithClient(dir, tgz) {
  if (!existsSync(path.join(EXAMPLE_DIR, 'node_modules/next/package.json')))
    throw new Error('examples/nextjs/node_modules has no next: run `make setup` (scripts/bootstrap installs it)');
  const skip = new Set(['node_modules', '.next', 'next-env.d.ts', 'tsconfig.tsbuildinfo']);
  mkdirSync(dir, { recursive: true });
  cpSync(EXAMPLE_DIR, dir, { recursive: true, filter: (src) => !skip.has(path.basename(src)) && !src.endsWith('.tgz') });
  // Hard links cost nothing; npm replaces what it changes (it never writes into a package's
  // files), except its own record of the tree, which is copied so the example's stays as is.
  const nm = path.join(dir, 'node_modules');
  try {
    execFileSync('cp', ['-al', path.join(EXAMPLE_DIR, 'node_modules'), nm]);
  } catch {
    rmSync(nm, { recursive: true, force: true });
    execFileSync('cp', ['-a', path.join(EXAMPLE_DIR, 'node_modules'), nm]);
  }
  rmSync(path.join(nm, '.package-lock.json'), { force: true });
  cpSync(path.join(EXAMPLE_DIR, 'node_modules/.package-lock.json'), path.join(nm, '.package-lock.json'));
  rmSync(path.join(nm, '@ragpulse'), { recursive: true, force: true }); // whatever `npm run client` left
  rmSync(path.join(nm, '.cache'), { recursive: true, force: true });
  execFileSync(NPM, ['install', '--no-save', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tgz], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return dir;
}

/** Runs a tool of the app's node_modules/.bin at low priority; resolves with {code, out}. */
export function runBin(dir, bin, args, { env = {}, timeoutMs = 240000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn('nice', ['-n', '10', path.join(dir, 'node_modules/.bin', bin), ...args], {
      cwd: dir, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    // A deadline, not a wait: the exit event ends the wait; this only bounds a hung build.
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${bin} ${args.join(' ')}: no exit after ${timeoutMs} ms\n${out}`)); }, timeoutMs);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, out }); });
  });
}

/**
 * Starts `next <args>` (start or dev) in `dir` in a process group of its own, and waits until
 * GET / answers 200 (the first request of `next dev` compiles the page). stop() kills the group.
 */
export async function startNext(dir, args, port, env, readyMs = 120000) {
  const p = spawn(path.join(dir, 'node_modules/.bin/next'), [...args, '-p', String(port), '-H', '127.0.0.1'], {
    cwd: dir, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const kill = () => { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } };
  process.on('exit', kill);
  const url = `http://127.0.0.1:${port}`;
  let status = 0;
  try {
    await waitUntil(async () => {
      if (p.exitCode !== null) throw new Error(`next ${args.join(' ')} exited ${p.exitCode}:\n${out}`);
      try {
        status = (await fetch(`${url}/`, { signal: AbortSignal.timeout(readyMs) })).status;
      } catch {
        status = 0;
      }
      return status !== 0;
    }, readyMs, () => `next ${args.join(' ')} answering on ${url}:\n${out}`);
  } catch (e) {
    kill();
    throw e;
  }
  return {
    url,
    status,
    out: () => out,
    async stop() {
      const gone = new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
      kill();
      await gone;
    },
  };
}

export const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));
