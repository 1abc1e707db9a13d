// Builds the dashboard into OUTDIR (argument; default web/dist): assets/app-<hash>.js and
// assets/app-<hash>.css (minified, no source maps, content-hashed names so they can be cached
// forever) and index.html that names them. CMake runs this, then embeds OUTDIR into the
// binary. Nothing here fetches anything: every byte comes from web/node_modules.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? path.join(web, 'dist'));
rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, 'assets'), { recursive: true });
const r = await build({
  entryPoints: { app: path.join(web, 'dashboard/src/main.tsx'), style: path.join(web, 'dashboard/src/styles.css') },
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  legalComments: 'none',
  define: { 'process.env.NODE_ENV': '"production"' },
  alias: {
    '@ragpulse/client/react': path.join(web, 'client/src/react.tsx'),
    '@ragpulse/client': path.join(web, 'client/src/index.ts'),
  },
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(r.metafile.outputs).map((f) => path.basename(f));
const js = outputs.find((f) => f.startsWith('app-') && f.endsWith('.js'));
const css = outputs.find((f) => f.startsWith('style-') && f.endsWith('.css'));
if (!js || !css) throw new Error(`esbuild did not produce app js/css: ${outputs.join(', ')}`);
const html = readFileSync(path.join(web, 'dashboard/index.html'), 'utf8').replace('__JS__', js).replace('__CSS__', css);
writeFileSync(path.join(out, 'index.html'), html);
console.log(`dashboard: ${path.relative(process.cwd(), out)}/index.html, assets/${js}, assets/${css}`);
