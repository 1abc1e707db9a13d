// The fallback state machine, transition by transition: when the socket is given up, when
// HTTP takes over, when the socket is tried again (with backoff), and what the badge says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { badgeOf, initialState, step, type Effect, type FallbackConfig, type FallbackInput, type FallbackState } from '../src/fallback.js';

const cfg: FallbackConfig = {
  connectTimeoutMs: 1000,
  maxSocketFailures: 3,
  retrySocketMinMs: 100,
  retrySocketMaxMs: 350,
  socketEnabled: true,
  fallbackEnabled: true,
};

function run(inputs: FallbackInput[], s: FallbackState = initialState(cfg)) {
  let effects: Effect[] = [];
  for (const i of inputs) ({ state: s, effects } = step(s, i, cfg));
  return { s, effects, types: effects.map((e) => e.type) };
}

test('start opens the socket and arms the connect timeout; badge says connecting', () => {
  const { s, effects } = run([{ type: 'start' }]);
  assert.equal(s.mode, 'socket');
  assert.equal(s.socket, 'connecting');
  assert.ok(effects.some((e) => e.type === 'socket-open'));
  assert.deepEqual(effects.find((e) => e.type === 'arm-connect-timer'), { type: 'arm-connect-timer', ms: 1000 });
  assert.equal(badgeOf(s), 'connecting');
});

test('connected over polling, then upgraded: the badge follows the transport', () => {
  let r = run([{ type: 'start' }, { type: 'socket-connected', transport: 'polling' }]);
  assert.equal(badgeOf(r.s), 'polling');
  assert.ok(r.types.includes('clear-connect-timer'));
  r = run([{ type: 'socket-transport', transport: 'websocket' }], r.s);
  assert.equal(badgeOf(r.s), 'websocket');
});

test('a connect timeout hands over to HTTP and schedules a socket retry', () => {
  const r = run([{ type: 'start' }, { type: 'connect-timeout' }]);
  assert.equal(r.s.mode, 'http');
  assert.deepEqual(r.types.filter((t) => t !== 'clear-connect-timer'), ['socket-close', 'http-start', 'arm-retry-timer']);
  assert.equal(r.s.fallbacks, 1);
  assert.equal(badgeOf(r.s), 'http');
});

test('fewer failures than the limit keep trying the socket; the limit hands over', () => {
  let r = run([{ type: 'start' }, { type: 'socket-error' }, { type: 'socket-error' }]);
  assert.equal(r.s.mode, 'socket');
  assert.equal(r.s.socketFailures, 2);
  assert.ok(!r.types.includes('http-start'));
  r = run([{ type: 'socket-error' }], r.s);
  assert.equal(r.s.mode, 'http');
  assert.ok(r.types.includes('http-start'));
});

test('a socket that was connected and drops gets the timeout to come back before HTTP', () => {
  let r = run([{ type: 'start' }, { type: 'socket-connected', transport: 'websocket' }, { type: 'socket-disconnected' }]);
  assert.equal(r.s.mode, 'socket');
  assert.ok(r.types.includes('arm-connect-timer'));
  assert.equal(badgeOf(r.s), 'offline');
  r = run([{ type: 'connect-timeout' }], r.s);
  assert.equal(r.s.mode, 'http');
});

test('on HTTP, a retry opens the socket; success stops HTTP and returns to the socket', () => {
  let r = run([{ type: 'start' }, { type: 'connect-timeout' }, { type: 'http-ok' }, { type: 'retry-socket' }]);
  assert.equal(r.s.mode, 'http');
  assert.equal(r.s.socket, 'connecting');
  assert.ok(r.types.includes('socket-open'));
  assert.equal(badgeOf(r.s), 'http', 'data still flows over HTTP while the socket is tried');
  r = run([{ type: 'socket-connected', transport: 'websocket' }], r.s);
  assert.equal(r.s.mode, 'socket');
  assert.ok(r.types.includes('http-stop'));
  assert.equal(badgeOf(r.s), 'websocket');
});

test('failed retries back off, doubling up to the maximum', () => {
  let s = run([{ type: 'start' }, { type: 'connect-timeout' }]).s;
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    s = step(s, { type: 'retry-socket' }, cfg).state;
    const r = step(s, { type: 'socket-error' }, cfg);
    s = r.state;
    const arm = r.effects.find((e) => e.type === 'arm-retry-timer');
    assert.ok(arm && arm.type === 'arm-retry-timer');
    delays.push(arm.ms);
    assert.equal(s.mode, 'http');
    assert.ok(!r.effects.some((e) => e.type === 'http-start'), 'HTTP is already running');
  }
  assert.deepEqual(delays, [100, 200, 350, 350]);
});

test('a retry is ignored unless on HTTP with the socket idle', () => {
  const s = run([{ type: 'start' }]).s;
  const r = step(s, { type: 'retry-socket' }, cfg);
  assert.deepEqual(r.effects, []);
  assert.equal(r.state, s);
});

test('socket info outside the rollout: HTTP only, no socket retries', () => {
  const r = run([{ type: 'start' }, { type: 'socket-info', mode: 'http' }]);
  assert.equal(r.s.mode, 'http');
  assert.ok(!r.types.includes('arm-retry-timer'));
  assert.ok(r.types.includes('http-start'));
  const again = step(r.s, { type: 'retry-socket' }, cfg);
  assert.deepEqual(again.effects, []);
  // Started while outside the rollout: HTTP from the start.
  const st = step({ ...initialState(cfg), socketAllowed: false }, { type: 'start' }, cfg);
  assert.equal(st.state.mode, 'http');
  assert.ok(st.effects.some((e) => e.type === 'http-start'));
  assert.ok(!st.effects.some((e) => e.type === 'socket-open'));
});

test('an auth refusal stops everything and the badge says unauthorized until a new token', () => {
  let r = run([{ type: 'start' }, { type: 'socket-error', auth: 'unauthorized: token expired' }]);
  assert.equal(badgeOf(r.s), 'unauthorized');
  assert.equal(r.s.authError, 'unauthorized: token expired');
  assert.ok(!r.types.includes('http-start'), 'HTTP would be refused the same way');
  r = run([{ type: 'token' }], r.s);
  assert.equal(r.s.authError, null);
  assert.ok(r.types.includes('socket-open'));
  r = run([{ type: 'connect-timeout' }, { type: 'http-error', auth: 'forbidden: pipeline' }], r.s);
  assert.equal(badgeOf(r.s), 'unauthorized');
  assert.ok(r.types.includes('http-stop'));
});

test('HTTP errors show offline while on HTTP, and recover on the next success', () => {
  let r = run([{ type: 'start' }, { type: 'connect-timeout' }, { type: 'http-error' }]);
  assert.equal(badgeOf(r.s), 'offline');
  r = run([{ type: 'http-ok' }], r.s);
  assert.equal(badgeOf(r.s), 'http');
});

test('a late error from a closed socket changes nothing', () => {
  const s = run([{ type: 'start' }, { type: 'connect-timeout' }]).s;
  const r = step(s, { type: 'socket-error' }, cfg);
  assert.equal(r.state, s);
  assert.deepEqual(r.effects, []);
});

test('socketEnabled false: start goes to HTTP alone, no socket, no retry; the hub cannot re-allow it', () => {
  const off: FallbackConfig = { ...cfg, socketEnabled: false };
  let s = initialState(off);
  let r = step(s, { type: 'start' }, off);
  s = r.state;
  assert.equal(s.mode, 'http');
  assert.ok(r.effects.some((e) => e.type === 'http-start'));
  assert.ok(!r.effects.some((e) => e.type === 'socket-open' || e.type === 'arm-retry-timer'));
  r = step(s, { type: 'socket-info', mode: 'websocket' }, off);
  assert.equal(r.state.socketAllowed, false);
  assert.equal(step(r.state, { type: 'retry-socket' }, off).state.socket, 'idle');
  assert.equal(badgeOf(step(s, { type: 'http-ok' }, off).state), 'http');
});

test('fallbackEnabled false: failures past the limit and connect timeouts keep to the socket', () => {
  const nofb: FallbackConfig = { ...cfg, fallbackEnabled: false };
  let s = initialState(nofb);
  const types: string[] = [];
  for (const i of [{ type: 'start' }, { type: 'socket-error' }, { type: 'socket-error' }, { type: 'socket-error' }, { type: 'socket-error' }, { type: 'connect-timeout' }] as FallbackInput[]) {
    const r = step(s, i, nofb);
    s = r.state;
    types.push(...r.effects.map((e) => e.type));
  }
  assert.equal(s.mode, 'socket');
  assert.equal(s.socket, 'connecting', 'socket.io-client goes on reconnecting');
  assert.ok(!types.includes('http-start'));
  assert.equal(s.fallbacks, 0);
  // Once it connects it is the socket's as usual.
  assert.equal(badgeOf(step(s, { type: 'socket-connected', transport: 'websocket' }, nofb).state), 'websocket');
  // The hub's rollout still decides: a client outside it is sent to HTTP.
  const out = step(s, { type: 'socket-info', mode: 'http' }, nofb).state;
  assert.equal(out.mode, 'http');
});

test('each switch to HTTP records its reason: connect timeout, socket errors, the rollout', () => {
  assert.equal(initialState(cfg).fallbackReason, null);
  assert.equal(run([{ type: 'start' }, { type: 'connect-timeout' }]).s.fallbackReason, 'connect_timeout');
  const errs = run([{ type: 'start' }, { type: 'socket-error' }, { type: 'socket-error' }, { type: 'socket-error' }]);
  assert.equal(errs.s.fallbackReason, 'socket_errors');
  assert.equal(errs.s.fallbacks, 1);
  const out = run([{ type: 'start' }, { type: 'socket-connected', transport: 'websocket' }, { type: 'socket-info', mode: 'http' }]);
  assert.equal(out.s.mode, 'http');
  assert.equal(out.s.fallbackReason, 'rollout');
  // A failed retry while already on HTTP is not a new switch: the reason and count stay.
  const again = run([{ type: 'retry-socket' }, { type: 'connect-timeout' }], errs.s);
  assert.equal(again.s.fallbacks, 1);
  assert.equal(again.s.fallbackReason, 'socket_errors');
});
