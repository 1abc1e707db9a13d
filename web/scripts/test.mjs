// Runs the client's unit tests: type-checks everything (tsc --noEmit, strict), bundles each
// client/test/*.test.ts with esbuild into a temporary directory, and runs them with the Node
// test runner. Exit status is the test runner's. Used by `npm test` and by ctest (web.client).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = spawnSync(process.execPath, [path.join(web, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', path.join(web, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const testDir = path.join(web, 'client/test');
const tests = readdirSync(testDir).filter((f) => f.endsWith('.test.ts'));
const out = mkdtempSync(path.join(os.tmpdir(), 'ragpulse-web-test-'));
try {
  await build({
    entryPoints: tests.map((f) => path.join(testDir, f)),
    outdir: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
    // socket.io-client's node build requires node's own modules (client.test.ts bundles it).
    banner: { js: "import { createRequire as __rpRequire } from 'node:module'; const require = __rpRequire(import.meta.url);" },
    define: { 'process.env.RAGPULSE_REPO': JSON.stringify(path.resolve(web, '..')) },
  });
  const files = readdirSync(out).filter((f) => f.endsWith('.mjs')).map((f) => path.join(out, f));
  const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
