// Builds the package @ragpulse/client into web/client/dist: tsc emits ESM JavaScript (the
// sources' `./x.js` imports name the emitted files), .d.ts with declaration maps, and source
// maps that carry the sources inline, so the package needs no bundler configuration and ships
// no .ts. `npm pack` runs it (prepack); the dashboard does not need it (it bundles src/).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(pkgDir, 'dist');
const tsc = createRequire(path.join(pkgDir, '..', 'package.json')).resolve('typescript/bin/tsc');
rmSync(dist, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', path.join(pkgDir, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

// Next.js reads the directive from the first statement of the emitted module: without it a
// server component could not import the provider.
const react = readFileSync(path.join(dist, 'react.js'), 'utf8');
if (!/^(\s*\/\/[^\n]*\n)*\s*'use client';/.test(react)) throw new Error("dist/react.js does not start with 'use client'");
const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
for (const [sub, t] of Object.entries(pkg.exports))
  for (const f of Object.values(t))
    if (!existsSync(path.join(pkgDir, f))) throw new Error(`exports["${sub}"] names ${f}, which the build did not write`);
console.log(`@ragpulse/client: ${path.relative(process.cwd(), dist)}/`);
