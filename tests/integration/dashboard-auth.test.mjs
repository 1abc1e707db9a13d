// The dashboard in real Chromium against `ragpulse serve --jwt-secret`: a viewer token for one
// pipeline (given once in the URL fragment) shows that pipeline live and never another one, and
// leaves the address bar; no token, an expired one or a forged one gets the token field instead
// of a spinner, and a valid token typed there goes live; the HTTP fallback carries the token
// too and asks only what a limited viewer may ask (docs/security.md, the role table).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { io } from 'socket.io-client';
import { BUILD_DIR, waitUntil } from './helpers.mjs';
import { suiteHub, T } from './hub-helpers.mjs';
import { badge, launch, openPage, shot, startRefusingProxy, stats } from './dashboard-helpers.mjs';

const SECRET = 'dashboard-test-secret-0123456789';
const token = (role, pipelines, ttl = '1h') =>
  execFileSync(path.join(BUILD_DIR, 'ragpulse'), ['token', '--role', role, '--pipelines', pipelines, '--ttl', ttl],
    { env: { ...process.env, RAGPULSE_JWT_SECRET: SECRET }, timeout: 10000 }).toString().trim();

/** An HS256 token signed by hand (expired, or signed with another secret). */
function handToken(claims, secret) {
  const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

let browser;
let srv;
let tok;
let prod; // a stock socket.io-client producer on /pipeline, with a producer token for a and b
before(async () => {
  browser = await launch();
  srv = await suiteHub(['--jwt-secret', SECRET, '--jwt-leeway', '0']);
  tok = { viewerA: token('viewer', 'a'), producer: token('producer', 'a,b') };
  prod = io(`${srv.url}/pipeline`, { transports: ['websocket'], auth: { token: tok.producer } });
  await new Promise((resolve, reject) => {
    prod.once('connect', resolve);
    prod.once('connect_error', reject);
  });
});
after(async () => {
  prod?.close();
  await browser?.close();
  await srv?.stop();
});

/** Sends one event for pipeline `pid` as the producer; resolves with its id. */
async function send(pid, type, extra = {}) {
  const r = await prod.timeout(T).emitWithAck(type, { type, pipeline_id: pid, pipeline_type: 'local_files', ...extra });
  assert.ok(r && typeof r.id === 'number', `${type} for ${pid}: ${JSON.stringify(r)}`);
  return r.id;
}
const progress = (pid, fid, p) => send(pid, 'file:progress', { file: { id: fid, name: `${pid}-${fid}.pdf`, progress: p, stage: 'parse' } });
const fail = (pid, fid, msg) => send(pid, 'file:failed', { file: { id: fid, name: `${pid}-${fid}.pdf`, error: { message: msg } } });

const card = (page, pid) => page.locator(`[data-testid=pipeline-card][data-pipeline="${pid}"]`);
const row = (page, fid) => page.locator(`[data-testid=file-row][data-file="${fid}"]`);

/** What the page must never show: pipeline b, its files, its failure. */
async function assertNoB(page) {
  assert.equal(await card(page, 'b').count(), 0, 'no card for pipeline b');
  const body = await page.locator('body').textContent();
  assert.doesNotMatch(body, /b-f\d+\.pdf|secret-of-b/, "none of b's files or failures on the page");
}

test('a viewer token for pipeline a: a live, b never shown; the token leaves the URL for sessionStorage', async () => {
  await send('a', 'pipeline:online');
  await send('b', 'pipeline:online');
  await progress('b', 'f1', 0.5);
  await fail('b', 'f9', 'secret-of-b: disk full');
  const { page, context, problems, httpErrors } = await openPage(browser, `${srv.url}/?type=local_files#token=${tok.viewerA}`);
  try {
    await waitUntil(async () => (await badge(page)) === 'websocket', T * 2, 'websocket badge');
    assert.equal(new URL(page.url()).hash, '', 'the token is gone from the address bar');
    assert.equal(new URL(page.url()).search, '?type=local_files', 'the view state stays');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ragpulse.token')), tok.viewerA);
    await card(page, 'a').waitFor({ timeout: T });

    // Live: a's progress moves, its failure appears with its reason; b keeps sending too.
    await progress('a', 'f1', 0.25);
    await progress('b', 'f2', 0.25);
    await waitUntil(async () => (await row(page, 'f1').getAttribute('data-progress').catch(() => null)) === '0.25', T, 'a/f1 at 0.25');
    await progress('a', 'f1', 0.75);
    await fail('a', 'f2', 'a-reason: parser gave up');
    await fail('b', 'f3', 'secret-of-b: quota exceeded');
    const last = await progress('a', 'f3', 0.5);
    await waitUntil(async () => (await stats(page)).version === last, T, 'every event of a applied');
    await waitUntil(async () => (await row(page, 'f1').getAttribute('data-progress')) === '0.75', T, 'a/f1 at 0.75');
    await page.locator('[data-testid=failure-cause]', { hasText: 'a-reason: parser gave up' }).waitFor({ timeout: T });
    await assertNoB(page);
    assert.equal(await page.locator('[data-testid=auth-banner]').count(), 0, 'no auth banner');
    assert.equal((await stats(page)).duplicates, 0);
    assert.deepEqual(httpErrors, [], 'a limited viewer asks only what it may');

    // The drill-down reads /api/events?pipeline=a, which this token may.
    await row(page, 'f1').locator('button.fname').click();
    await page.locator('[data-testid=timeline] li').first().waitFor({ timeout: T });
    assert.ok((await page.locator('[data-testid=timeline] li').count()) >= 2, "f1's timeline");
    await shot(page, 'dashboard-viewer-token');

    // A reload keeps the session's token (sessionStorage), without it in the URL.
    await page.reload();
    await waitUntil(async () => (await badge(page)) === 'websocket', T * 2, 'websocket after reload');
    await card(page, 'a').waitFor({ timeout: T });
    await assertNoB(page);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

for (const [name, make] of [
  ['no token', () => null],
  ['an expired token', () => handToken({ role: 'viewer', pipelines: ['a'], exp: Math.floor(Date.now() / 1000) - 60 }, SECRET)],
  ['a forged token', () => handToken({ role: 'admin', pipelines: ['*'] }, 'not-the-secret-0123456789')],
]) {
  test(`${name}: the page asks for a token instead of spinning; a valid one typed in goes live`, async () => {
    await send('a', 'pipeline:online');
    const t = make();
    const { page, context } = await openPage(browser, `${srv.url}/${t ? `#token=${t}` : ''}`);
    try {
      const banner = page.locator('[data-testid=auth-banner]');
      await banner.waitFor({ timeout: T * 2 });
      assert.equal(await badge(page), 'unauthorized');
      assert.match(await banner.textContent(), t ? /unauthorized: .*token/i : /needs a token/i, 'says what is wrong');
      assert.equal(await page.locator('[data-testid=token-input]').count(), 1, 'the token field');
      assert.equal(await page.locator('.empty', { hasText: 'Loading' }).count(), 0, 'no endless "Loading…"');
      if (name === 'no token') await shot(page, 'dashboard-token-needed');
      // A wrong token typed in is refused again, clearly.
      await page.fill('[data-testid=token-input]', 'not-a-jwt');
      await page.keyboard.press('Enter');
      await waitUntil(async () => /refused this token: unauthorized: bad token/i.test(await banner.textContent()), T, 'refused again');
      assert.equal(await badge(page), 'unauthorized');
      // The right one goes live and is kept for the session.
      await page.fill('[data-testid=token-input]', tok.viewerA);
      await page.keyboard.press('Enter');
      await waitUntil(async () => (await badge(page)) === 'websocket', T * 2, 'live after the token');
      await card(page, 'a').waitFor({ timeout: T });
      assert.equal(await banner.count(), 0);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ragpulse.token')), tok.viewerA);
      const id = await progress('a', 'f7', 0.5);
      await waitUntil(async () => (await stats(page)).version === id, T, 'events arrive');
      await assertNoB(page);
    } finally {
      await context.close();
    }
  });
}

test('HTTP fallback with a viewer token: every request carries it, a limited viewer asks only what it may', async () => {
  const proxy = await startRefusingProxy(srv.port);
  await send('a', 'pipeline:online');
  const { page, context, problems } = await openPage(browser, `${proxy.url}/#token=${tok.viewerA}`);
  try {
    await waitUntil(async () => (await badge(page)) === 'websocket', T * 2, 'websocket badge');
    proxy.refuse(true);
    await waitUntil(async () => (await badge(page)) === 'http', 20000, 'HTTP fallback badge');
    const from = proxy.seen.length;
    await progress('b', 'f4', 0.5);
    await progress('a', 'f4', 0.5);
    await fail('b', 'f5', 'secret-of-b: over HTTP');
    await fail('a', 'f5', 'a-reason: over HTTP');
    const last = await progress('a', 'f4', 0.9);
    await waitUntil(async () => (await stats(page)).version === last, T * 2, 'events over HTTP');
    await waitUntil(async () => (await row(page, 'f4').getAttribute('data-progress')) === '0.9', T, 'a/f4 at 0.9 over HTTP');
    await page.locator('[data-testid=failure-cause]', { hasText: 'a-reason: over HTTP' }).waitFor({ timeout: T });
    await assertNoB(page);
    assert.equal(await badge(page), 'http', 'still on HTTP');
    // The hub leaves b's ids out of a's answers; each answer's version moves the model on, so
    // none of them counts as a gap.
    assert.equal((await stats(page)).gaps, 0, 'no false gap from the ids of pipeline b');
    assert.equal(await page.locator('[data-testid=auth-banner]').count(), 0, 'never refused');

    const api = proxy.seen.slice(from).filter((r) => r.url.startsWith('/api/'));
    assert.ok(api.some((r) => r.url.startsWith('/api/rag-status?since=')), 'long-polls went through the proxy');
    for (const r of api) {
      assert.equal(r.authorization, `Bearer ${tok.viewerA}`, `${r.url} carries the token`);
      assert.ok(r.status < 400, `${r.url} answered ${r.status}: a limited viewer asks only what it may`);
    }
    assert.ok(api.some((r) => r.url === '/api/failures?pipeline=a'), 'failures asked per pipeline');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    proxy.close();
  }
});
