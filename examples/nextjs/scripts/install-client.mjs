// Installs @ragpulse/client into this example the way an app gets it from a registry: builds
// and packs ../../web/client (npm pack runs its build), then `npm install`s the tarball without
// saving it. Usage: npm run client (after npm install). A copy of this app outside the
// repository uses `npm install @ragpulse/client` instead.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const app = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const client = path.resolve(app, '../../web/client');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const out = execFileSync(npm, ['pack', '--json', '--pack-destination', app], { cwd: client, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const json = out.slice(out.indexOf('['));
const tgz = path.join(app, JSON.parse(json)[0].filename);
execFileSync(npm, ['install', '--no-save', '--no-audit', '--no-fund', tgz], { cwd: app, stdio: 'inherit' });
console.log(`installed ${path.basename(tgz)}`);
