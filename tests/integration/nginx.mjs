// Debian's nginx, started by a test on a free loopback port with one of the configurations in
// deploy/: daemon off, master_process off, every path it writes in a temp dir, stopped by PID
// after the file's tests.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { REPO_DIR, freePort, sleep, withTimeout } from './helpers.mjs';

/**
 * Runs deploy/<name> with `edit(conf, {dir, port})` applied (fill in ports, upstreams, certs).
 * Resolves once `probe(url)` answers true; `url` is scheme://127.0.0.1:port.
 */
export async function startNginx(name, edit, { scheme = 'http', probe } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-nginx-'));
  const port = await freePort();
  let conf = edit(readFileSync(path.join(REPO_DIR, 'deploy', name), 'utf8'), { dir, port });
  conf = conf.replace(/^worker_processes auto;/m, [
    'worker_processes 1;', 'daemon off;', 'master_process off;', `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log;`].join('\n'));
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
  for (const t of temps) mkdirSync(path.join(dir, t));
  conf = conf.replace(/^http \{/m, ['http {', '    access_log off;',
    ...temps.map((t) => `    ${t}_temp_path ${dir}/${t};`)].join('\n'));
  const file = path.join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  const proc = spawn('nginx', ['-p', dir, '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `${scheme}://127.0.0.1:${port}`;
  await withTimeout((async () => {
    for (;;) {
      if (proc.exitCode !== null) {
        let log = '';
        try { log = readFileSync(path.join(dir, 'error.log'), 'utf8'); } catch { /* none */ }
        throw new Error(`nginx exited: ${err} ${log}`);
      }
      if (await probe(url).catch(() => false)) return;
      await sleep(50);
    }
  })(), 10000, 'nginx to answer');
  return { url, port, dir, proc };
}
