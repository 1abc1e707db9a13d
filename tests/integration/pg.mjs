// A throwaway PostgreSQL server for the store tests: initdb in a temp dir, pg_ctl start/stop on
// a free loopback port, one database, psql for queries. Run as root, it runs the server as the
// `postgres` user (initdb refuses to run as root).
//
//   const pg = await startPostgres();      // {port, url, dir, start(), stop(), psql(sql), createDatabase(name), destroy()}
//   ... --store pg.url ...
//   await pg.stop(); await pg.start();     // the same data directory and port
//   await pg.destroy();                    // stop (if running) and remove the temp dir
//
// Environment: RP_PG_BIN  directory holding initdb and pg_ctl (default /usr/lib/postgresql/15/bin,
// else the newest /usr/lib/postgresql/*/bin).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from 'node:fs';
import { freePort } from './helpers.mjs';
import os from 'node:os';
import path from 'node:path';

function findBin() {
  if (process.env.RP_PG_BIN) return process.env.RP_PG_BIN;
  const dflt = '/usr/lib/postgresql/15/bin';
  if (existsSync(path.join(dflt, 'pg_ctl'))) return dflt;
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const d = `/usr/lib/postgresql/${v}/bin`;
      if (existsSync(path.join(d, 'pg_ctl'))) return d;
    }
  } catch { /* none */ }
  return dflt;
}

export const PG_BIN = findBin();
const PSQL = existsSync(path.join(PG_BIN, 'psql')) ? path.join(PG_BIN, 'psql') : 'psql';

/** Why PostgreSQL tests cannot run here, or null if they can. */
export function pgUnavailable() {
  for (const b of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(path.join(PG_BIN, b))) return `${path.join(PG_BIN, b)} not found`;
  }
  if (process.getuid && process.getuid() === 0) {
    try { execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' }); } catch { return 'no postgres user'; }
  }
  return null;
}

export { freePort };

const asRoot = process.getuid && process.getuid() === 0;

/** Runs a PostgreSQL tool as the postgres user (when we are root). */
function runPg(bin, args, ms) {
  const cmd = asRoot ? 'runuser' : path.join(PG_BIN, bin);
  const argv = asRoot ? ['-u', 'postgres', '--', path.join(PG_BIN, bin), ...args] : args;
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: ms, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function runPgSync(bin, args, ms) {
  const cmd = asRoot ? 'runuser' : path.join(PG_BIN, bin);
  const argv = asRoot ? ['-u', 'postgres', '--', path.join(PG_BIN, bin), ...args] : args;
  return execFileSync(cmd, argv, { timeout: ms, stdio: 'ignore' });
}

const live = new Set();
process.on('exit', () => {
  for (const pg of live) {
    try { runPgSync('pg_ctl', ['-D', pg.data, 'stop', '-m', 'immediate', '-w', '-t', '5'], 8000); } catch { /* not running */ }
    try { rmSync(pg.dir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
});

/**
 * Creates a cluster in a new temp dir, starts it on a free loopback port and creates database `db`.
 * @returns {Promise<{port:number, url:string, dir:string, data:string, running:()=>boolean,
 *   start:()=>Promise<void>, stop:(mode?:string)=>Promise<void>, psql:(sql:string, db?:string)=>Promise<string>,
 *   createDatabase:(name:string)=>Promise<string>, destroy:()=>Promise<void>}>}
 */
export async function startPostgres({ db = 'rp', timeoutMs = 20000 } = {}) {
  const why = pgUnavailable();
  if (why) throw new Error(`PostgreSQL unavailable: ${why}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const port = await freePort();
  let running = false;
  const pg = {
    port,
    dir,
    data,
    url: `postgres://postgres@127.0.0.1:${port}/${db}`,
    running: () => running,
    async start() {
      // fsync off: the tests kill ragpulse, never the machine; this keeps initdb and commits fast.
      await runPg('pg_ctl', ['-D', data, '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
        '-l', path.join(dir, 'log'), 'start', '-w', '-t', String(Math.ceil(timeoutMs / 1000))], timeoutMs + 2000);
      running = true;
    },
    async stop(mode = 'fast') {
      if (!running) return;
      await runPg('pg_ctl', ['-D', data, 'stop', '-m', mode, '-w', '-t', '10'], 15000);
      running = false;
    },
    /** Runs SQL in database `db`; returns psql's unaligned, tuples-only output. */
    psql(sql, database = db) {
      return new Promise((resolve, reject) => {
        execFile(PSQL, ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port),
          '-U', 'postgres', '-d', database, '-c', sql],
        { timeout: 10000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
          if (err) reject(new Error(`psql ${sql}: ${err.message}\n${stderr}`));
          else resolve(stdout);
        });
      });
    },
    /** Creates another database; returns its URL. */
    async createDatabase(name) {
      await pg.psql(`CREATE DATABASE ${name}`, 'postgres');
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async destroy() {
      live.delete(pg);
      try { await pg.stop('immediate'); } catch { /* best effort */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(pg);
  try {
    await runPg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8',
      '--locale', 'C'], timeoutMs);
    await pg.start();
    await pg.psql(`CREATE DATABASE ${db}`, 'postgres');
  } catch (e) {
    await pg.destroy();
    throw e;
  }
  return pg;
}
