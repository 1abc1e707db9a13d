// Authentication and authorization (issue 7): JWT from the CONNECT auth, the Authorization
// header or ?token=; roles and per-pipeline access on Socket.IO and HTTP; RS256/ES256 keys and
// the algorithm-confusion attacks; the safe default for non-loopback addresses; `ragpulse token`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUILD_DIR, client, connect, once, sleep, startServer, startSuiteServer, waitUntil, withTimeout } from './helpers.mjs';
import { T, request, requestJson } from './hub-helpers.mjs';

const SECRET = 'test-secret-0123456789-abcdef';
const bin = path.join(BUILD_DIR, 'ragpulse');
const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-auth-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function run(args, env = {}) {
  return new Promise((resolve) => {
    execFile(bin, args, { env: { ...process.env, ...env }, timeout: 10000 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout: stdout.trim(), stderr }));
  });
}

/** A token from the product's own `ragpulse token`. */
async function token(role, pipelines, extra = []) {
  const r = await run(['token', '--role', role, '--pipelines', pipelines, ...extra], { RAGPULSE_JWT_SECRET: SECRET });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const b64u = (b) => Buffer.from(b).toString('base64url');
/** Signs claims by hand (for algorithms and claims `ragpulse token` does not make). */
function jwt(header, claims, sign) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${sign ? sign(input) : ''}`;
}
const hs256 = (key) => (input) => createHmac('sha256', key).update(input).digest('base64url');
const now = () => Math.floor(Date.now() / 1000);

function connectError(url, opts) {
  const s = client(url, opts);
  return withTimeout(new Promise((resolve, reject) => {
    s.once('connect', () => reject(new Error('connected, expected a refusal')));
    s.once('connect_error', (e) => resolve(e));
  }), T, 'connect_error');
}

const ev = (type, pipeline, extra = {}) => ({ type, pipeline_id: pipeline, pipeline_type: 'local_files', ...extra });

describe('auth with an HS256 secret', () => {
  let srv;
  let tok;
  before(async () => {
    srv = await startSuiteServer(['--store', 'memory', '--jwt-secret', SECRET, '--jwt-leeway', '0'], { product: true });
    tok = {
      viewerA: await token('viewer', 'a'),
      producerA: await token('producer', 'a'),
      producerAll: await token('producer', '*'),
      admin: await token('admin', ''),
    };
  });
  after(() => srv.stop());

  test('a socket without a token, with a bad one, an expired one or a future one is refused with the reason', async () => {
    const url = `${srv.url}/pipeline`;
    assert.match((await connectError(url)).message, /^unauthorized: no token/);
    const forged = jwt({ alg: 'HS256', typ: 'JWT' }, { role: 'admin', pipelines: ['*'] }, hs256('not-the-secret-at-all'));
    assert.match((await connectError(url, { auth: { token: forged } })).message, /^unauthorized: bad token/);
    const expired = jwt({ alg: 'HS256', typ: 'JWT' }, { role: 'viewer', pipelines: ['a'], exp: now() - 120 }, hs256(SECRET));
    assert.match((await connectError(url, { auth: { token: expired } })).message, /token expired/);
    const early = jwt({ alg: 'HS256', typ: 'JWT' }, { role: 'viewer', pipelines: ['a'], nbf: now() + 3600 }, hs256(SECRET));
    assert.match((await connectError(url, { auth: { token: early } })).message, /not valid yet/);
    const none = jwt({ alg: 'none', typ: 'JWT' }, { role: 'admin', pipelines: ['*'] }, null);
    assert.match((await connectError(url, { auth: { token: none } })).message, /^unauthorized/);
    const norole = jwt({ alg: 'HS256', typ: 'JWT' }, { pipelines: ['a'] }, hs256(SECRET));
    assert.match((await connectError(url, { auth: { token: norole } })).message, /role must be/);
    const m = await request(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${tok.admin}` } });
    const n = Number(/ragpulse_auth_refused_total\{where="socket",reason="unauthorized"\} (\d+)/.exec(m.text)[1]);
    assert.ok(n >= 6, `refusals counted: ${n}`);
  });

  test('the token may come from the CONNECT auth, ?token= or an Authorization header', async () => {
    const url = `${srv.url}/pipeline`;
    for (const opts of [
      { auth: { token: tok.viewerA } },
      { query: { token: tok.viewerA } },
      { extraHeaders: { authorization: `Bearer ${tok.viewerA}` } },
      { transports: ['websocket'], extraHeaders: { authorization: `Bearer ${tok.viewerA}` } },
    ]) {
      const s = await connect(url, opts);
      const ack = await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' });
      assert.equal(ack.ok, true, JSON.stringify(opts));
      s.disconnect();
    }
  });

  test('a viewer sees only its pipelines and may not send events', async () => {
    const prod = await connect(`${srv.url}/pipeline`, { auth: { token: tok.producerAll } });
    for (const p of ['a', 'b'])
      assert.ok((await prod.timeout(T).emitWithAck('pipeline:online', ev('pipeline:online', p))).id > 0);
    const v = await connect(`${srv.url}/pipeline`, { auth: { token: tok.viewerA } });
    const snap = await v.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' });
    assert.deepEqual(snap.pipelines.map((p) => p.id), ['a']);
    for (const filter of [{ pipeline_id: 'b' }, {}, { pipeline_type: 'local_files' }, { room: 'admin:monitoring' }]) {
      const r = await v.timeout(T).emitWithAck('subscribe', filter);
      assert.match(r.error, /^forbidden: /, JSON.stringify(filter));
    }
    const sent = await v.timeout(T).emitWithAck('file:processing', ev('file:processing', 'a', { file: { id: 'x', name: 'x' } }));
    assert.match(sent.error, /^forbidden: viewers cannot send events/);
    const got = [];
    v.on('file:progress', (e) => got.push(e.pipeline_id));
    for (const p of ['b', 'a'])
      await prod.timeout(T).emitWithAck('file:progress', ev('file:progress', p, { file: { id: 'f', name: 'f', progress: 0.5 } }));
    await waitUntil(() => got.length >= 1, T, 'event of pipeline a');
    // b's event was acked before a's was sent: had it been delivered, it would be here first.
    assert.deepEqual(got, ['a']);
    // The HTTP path holds the same line.
    const hv = { authorization: `Bearer ${tok.viewerA}` };
    const status = await request(`${srv.url}/api/rag-status`, { headers: hv });
    assert.equal(status.status, 200);
    assert.deepEqual(status.json.pipelines.map((p) => p.id), ['a']);
    const delta = await request(`${srv.url}/api/rag-status?since=0`, { headers: hv });
    assert.ok(delta.json.events.length >= 2);
    assert.ok(delta.json.events.every((e) => e.pipeline_id === 'a'), JSON.stringify(delta.json.events));
    assert.equal((await request(`${srv.url}/api/events?pipeline=b`, { headers: hv })).status, 403);
    assert.equal((await request(`${srv.url}/api/events?pipeline=a`, { headers: hv })).status, 200);
    assert.equal((await request(`${srv.url}/api/failures`, { headers: hv })).status, 403);
    assert.equal((await request(`${srv.url}/metrics`, { headers: hv })).status, 403);
    const post = await request(`${srv.url}/api/events`, {
      method: 'POST', headers: { ...hv, 'content-type': 'application/json' }, body: JSON.stringify(ev('heartbeat', 'a')),
    });
    assert.equal(post.status, 403);
    assert.match(post.json.error, /viewers cannot send events/);
  });

  test('a producer sends only for its pipelines; HTTP without a token gets 401 and nothing is stored', async () => {
    const p = await connect(`${srv.url}/pipeline`, { auth: { token: tok.producerA } });
    assert.ok((await p.timeout(T).emitWithAck('heartbeat', ev('heartbeat', 'a'))).id > 0);
    const r = await p.timeout(T).emitWithAck('heartbeat', ev('heartbeat', 'zz'));
    assert.match(r.error, /^forbidden: this token may not send events for that pipeline/);
    const before = (await request(`${srv.url}/api/rag-status`, { headers: { authorization: `Bearer ${tok.admin}` } })).json.version;
    const anon = await requestJson(`${srv.url}/api/events`, { method: 'POST', body: ev('heartbeat', 'a') });
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate'), /^Bearer/);
    assert.match(anon.json.error, /^unauthorized: no token/);
    const mixed = await request(`${srv.url}/api/events`, {
      method: 'POST', headers: { authorization: `Bearer ${tok.producerA}`, 'content-type': 'application/json' },
      body: JSON.stringify([ev('heartbeat', 'a'), ev('heartbeat', 'zz')]),
    });
    assert.equal(mixed.status, 403, 'a batch with one foreign pipeline is refused whole');
    assert.match(mixed.json.error, /event 1, pipeline zz/);
    const after = (await request(`${srv.url}/api/rag-status`, { headers: { authorization: `Bearer ${tok.admin}` } })).json.version;
    assert.equal(after, before, 'nothing was stored');
    const ok = await request(`${srv.url}/api/events?token=${tok.producerA}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ev('heartbeat', 'a')),
    });
    assert.equal(ok.status, 200);
    assert.equal((await request(`${srv.url}/health`)).status, 200, '/health stays open for load balancers');
    assert.equal((await request(`${srv.url}/api/socket/info`)).status, 200, 'socket info stays open');
    assert.equal((await request(`${srv.url}/api/rag-status`)).status, 401);
  });

  test('a token that expires while its socket is connected stops working for new requests', async () => {
    const short = await token('producer', 'a', ['--ttl', '2s']);
    const s = await connect(`${srv.url}/pipeline`, { auth: { token: short } });
    assert.equal((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' })).ok, true);
    await sleep(3100); // time is the test: past the token's 2 s lifetime
    assert.match((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' })).error, /^unauthorized: token expired/);
    assert.match((await s.timeout(T).emitWithAck('heartbeat', ev('heartbeat', 'a'))).error, /^unauthorized: token expired/);
  });

  test('admins watch admin:monitoring and disconnect sockets; others may not', async () => {
    const admin = await connect(`${srv.url}/pipeline`, { auth: { token: tok.admin } });
    const sub = await admin.timeout(T).emitWithAck('subscribe', { room: 'admin:monitoring' });
    assert.equal(sub.ok, true);
    assert.ok(sub.auth_refused && typeof sub.connections === 'number', JSON.stringify(sub));
    const [stats] = await once(admin, 'admin:stats', 6000);
    assert.ok(stats.sockets['/pipeline'] >= 1);
    const victim = await connect(`${srv.url}/pipeline`, { auth: { token: tok.viewerA } });
    const v2 = await connect(`${srv.url}/pipeline`, { auth: { token: tok.viewerA } });
    const denied = await v2.timeout(T).emitWithAck('admin:disconnect', { sid: victim.id });
    assert.match(denied.error, /^forbidden: only admins/);
    assert.equal(victim.connected, true);
    const gone = once(victim, 'disconnect');
    assert.equal((await admin.timeout(T).emitWithAck('admin:disconnect', { sid: victim.id })).ok, true);
    await gone;
    const m = await request(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${tok.admin}` } });
    assert.equal(m.status, 200);
    assert.match(m.text, /ragpulse_auth_refused_total\{where="socket",reason="forbidden"\} [1-9]/);
  });
});

describe('issue 13: a live socket\'s pid and critical JWT headers', () => {
  let srv;
  let tok;
  before(async () => {
    srv = await startSuiteServer(['--store', 'memory', '--jwt-secret', SECRET], { product: true });
    tok = {
      viewerA: await token('viewer', 'a'),
      viewerB: await token('viewer', 'b'),
      viewerAB: await token('viewer', 'a,b'),
      producerAll: await token('producer', '*'),
      admin: await token('admin', ''),
    };
  });
  after(() => srv.stop());

  const takeoversRefused = async () => {
    const m = await request(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${tok.admin}` } });
    return Number(/ragpulse_auth_refused_total\{where="socket",reason="takeover"\} (\d+)/.exec(m.text)?.[1]);
  };

  test('a pid presented with a token for other pipelines leaves the live socket alone; one that covers it takes over', async () => {
    const url = `${srv.url}/pipeline`;
    const prod = await connect(url, { auth: { token: tok.producerAll } });
    let n = 0;
    const send = async () => assert.ok((await prod.timeout(T).emitWithAck('heartbeat', ev('heartbeat', 'a', { message: `m${n++}` }))).id > 0);
    const a = await connect(url, { auth: { token: tok.viewerA } });
    const got = [];
    a.on('heartbeat', (e) => e.pipeline_id === 'a' && got.push(e.message));
    assert.equal((await a.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' })).ok, true);
    await send();
    await waitUntil(() => got.length === 1, T, 'the first event');
    const aId = a.id;
    const refusedBefore = await takeoversRefused();

    // Someone with a viewer token for pipeline b presents a's pid (and a valid offset).
    const intruder = await connect(url, { auth: { token: tok.viewerB, pid: a._pid, offset: a._lastOffset } });
    assert.notEqual(intruder.id, aId, 'the intruder got a fresh session, not a\'s');
    const stolen = [];
    intruder.on('heartbeat', (e) => stolen.push(e));
    await send();
    await waitUntil(() => got.length === 2, T, 'the live socket still gets its events');
    assert.equal(a.connected, true, 'the live socket was left alone');
    assert.equal(a.id, aId);
    // (the intruder's ping ack follows any broadcast queued to it before)
    await intruder.timeout(T).emitWithAck('ping');
    assert.deepEqual(stolen, [], 'the intruder got none of a\'s rooms');
    assert.equal(await takeoversRefused(), refusedBefore + 1, 'the refusal is counted');

    // A token that sees everything a's did (pipelines a and b) may take it over: the client moved.
    const gone = once(a, 'disconnect', T);
    const moved = await connect(url, { auth: { token: tok.viewerAB, pid: a._pid, offset: a._lastOffset } });
    assert.equal(moved.id, aId, 'the session was resumed');
    await gone;
    const after = [];
    moved.on('heartbeat', (e) => e.pipeline_id === 'a' && after.push(e.message));
    await send();
    await waitUntil(() => after.length === 1, T, 'the subscription came along');
    assert.equal(await takeoversRefused(), refusedBefore + 1);
  });

  test('the same principal takes its own live socket over; an admin\'s socket is not taken by a viewer', async () => {
    const url = `${srv.url}/pipeline`;
    const prod = await connect(url, { auth: { token: tok.producerAll } });
    const adm = await connect(url, { auth: { token: tok.admin } });
    const seen = [];
    adm.on('heartbeat', (e) => seen.push(e.id));
    assert.equal((await adm.timeout(T).emitWithAck('subscribe', {})).ok, true);
    const id1 = (await prod.timeout(T).emitWithAck('heartbeat', ev('heartbeat', 'a'))).id;
    await waitUntil(() => seen.includes(id1), T, 'the admin socket got an event');
    const intruder = await connect(url, { auth: { token: tok.viewerAB, pid: adm._pid, offset: adm._lastOffset } });
    assert.notEqual(intruder.id, adm.id);
    const id2 = (await prod.timeout(T).emitWithAck('heartbeat', ev('heartbeat', 'b'))).id;
    await waitUntil(() => seen.includes(id2), T, 'the admin socket is still live');
    assert.equal(adm.connected, true);
    const admId = adm.id;
    const gone = once(adm, 'disconnect', T);
    const same = await connect(url, { auth: { token: tok.admin, pid: adm._pid, offset: adm._lastOffset } });
    assert.equal(same.id, admId, 'the same token resumes its own session');
    await gone;
  });

  test('a token with a crit header is refused with the reason (RFC 7515 section 4.1.11)', async () => {
    const claims = { role: 'admin', pipelines: ['*'] };
    const crit = jwt({ alg: 'HS256', typ: 'JWT', crit: ['x-tenant'], 'x-tenant': 't1' }, claims, hs256(SECRET));
    const e = await connectError(`${srv.url}/pipeline`, { auth: { token: crit } });
    assert.equal(e.message, 'unauthorized: unsupported critical header extension (crit: x-tenant)');
    const r = await request(`${srv.url}/api/rag-status`, { headers: { authorization: `Bearer ${crit}` } });
    assert.equal(r.status, 401, r.text);
    assert.match(r.json.error, /unsupported critical header extension \(crit: x-tenant\)/);
    const empty = jwt({ alg: 'HS256', typ: 'JWT', crit: [] }, claims, hs256(SECRET));
    assert.match((await connectError(`${srv.url}/pipeline`, { auth: { token: empty } })).message, /^unauthorized: malformed crit header/);
    // Header members that are not marked critical are ignored: the same claims are accepted.
    const plain = jwt({ alg: 'HS256', typ: 'JWT', 'x-tenant': 't1' }, claims, hs256(SECRET));
    assert.equal((await request(`${srv.url}/api/rag-status`, { headers: { authorization: `Bearer ${plain}` } })).status, 200);
  });
});

describe('auth with a public key', () => {
  for (const kind of ['rsa', 'ec']) {
    test(`${kind === 'rsa' ? 'RS256' : 'ES256'} tokens verify; alg confusion and other algorithms are refused`, async () => {
      const { publicKey, privateKey } = kind === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = publicKey.export({ type: 'spki', format: 'pem' });
      const keyFile = path.join(dir, `${kind}.pem`);
      writeFileSync(keyFile, pem);
      const srv = await startServer(['--store', 'memory', '--jwt-public-key', keyFile, '--jwt-issuer', 'ops',
        '--jwt-audience', 'ragpulse'], { product: true });
      const alg = kind === 'rsa' ? 'RS256' : 'ES256';
      const sign = (input) => createSign('sha256').update(input)
        .sign(kind === 'rsa' ? privateKey : { key: privateKey, dsaEncoding: 'ieee-p1363' }, 'base64url');
      const claims = { role: 'viewer', pipelines: ['a'], iss: 'ops', aud: ['x', 'ragpulse'], exp: now() + 600 };
      const good = jwt({ alg, typ: 'JWT' }, claims, sign);
      const s = await connect(`${srv.url}/pipeline`, { auth: { token: good } });
      assert.equal((await s.timeout(T).emitWithAck('subscribe', { pipeline_id: 'a' })).ok, true);
      // The public key used as an HMAC secret: the classic confusion attack.
      const confused = jwt({ alg: 'HS256', typ: 'JWT' }, claims, hs256(pem));
      assert.match((await connectError(`${srv.url}/pipeline`, { auth: { token: confused } })).message, /^unauthorized/);
      const wrongIss = jwt({ alg, typ: 'JWT' }, { ...claims, iss: 'someone' }, sign);
      assert.match((await connectError(`${srv.url}/pipeline`, { auth: { token: wrongIss } })).message, /issuer/);
      const wrongAud = jwt({ alg, typ: 'JWT' }, { ...claims, aud: 'other' }, sign);
      assert.match((await connectError(`${srv.url}/pipeline`, { auth: { token: wrongAud } })).message, /audience/);
      const r = await request(`${srv.url}/api/rag-status`, { headers: { authorization: `Bearer ${confused}` } });
      assert.equal(r.status, 401);
      await srv.stop();
    });
  }
});

describe('safe defaults and the token command', () => {
  test('serve refuses a non-loopback address without auth and says how to fix it', async () => {
    const r = await run(['serve', '--listen', '0.0.0.0:0', '--store', 'memory']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without authentication/);
    assert.match(r.stderr, /--jwt-secret-file/);
    const weak = await run(['serve', '--listen', '127.0.0.1:0', '--store', 'memory', '--jwt-secret', 'short']);
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /too short/);
  });

  test('ragpulse token: claims as asked, a clear error without a secret or with a bad ttl', async () => {
    const t = await token('producer', 'a,b', ['--ttl', '15m', '--sub', 'drive-watcher']);
    const claims = JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString());
    assert.equal(claims.role, 'producer');
    assert.deepEqual(claims.pipelines, ['a', 'b']);
    assert.equal(claims.sub, 'drive-watcher');
    assert.ok(Math.abs(claims.exp - now() - 900) <= 5, `exp ${claims.exp}`);
    const nosecret = await run(['token', '--role', 'viewer', '--pipelines', 'a'], { RAGPULSE_JWT_SECRET: '' });
    assert.equal(nosecret.code, 2);
    assert.match(nosecret.stderr, /no secret/);
    const badttl = await run(['token', '--role', 'viewer', '--ttl', '5 weeks'], { RAGPULSE_JWT_SECRET: SECRET });
    assert.equal(badttl.code, 2);
    const badrole = await run(['token', '--role', 'root'], { RAGPULSE_JWT_SECRET: SECRET });
    assert.equal(badrole.code, 2);
  });

  test('ragpulse token --channels: the channels claim as the spec says, a clear error for a bad one', async () => {
    const t = await token('viewer', 'a', ['--channels', 'chat:s1=subscribe+send,crawl:*=subscribe;tasks:*=publish']);
    const claims = JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString());
    assert.deepEqual(claims.channels, { 'chat:s1': ['subscribe', 'send'], 'crawl:*': ['subscribe'], 'tasks:*': ['publish'] });
    assert.deepEqual(claims.pipelines, ['a']);
    const none = JSON.parse(Buffer.from((await token('viewer', 'a')).split('.')[1], 'base64url').toString());
    assert.equal(none.channels, undefined, 'no --channels, no claim');
    for (const [spec, why] of [['chat:s1=read', /a right must be subscribe, publish or send, got 'read'/],
      ['chat:s1', /want PATTERN=RIGHT\+RIGHT/], ['chat s1=send', /want PATTERN=RIGHT\+RIGHT/]]) {
      const bad = await run(['token', '--role', 'viewer', '--channels', spec], { RAGPULSE_JWT_SECRET: SECRET });
      assert.equal(bad.code, 2, spec);
      assert.match(bad.stderr, why);
      assert.equal(bad.stdout, '', 'no token printed');
    }
    const help = await run(['token', '--help']);
    assert.match(help.stdout, /--channels SPEC/);
  });
});
