// What a token's claims make the client ask for: tokenPipelines() reads the `pipelines` claim
// (never trusted: the server verifies), and subscriptions() turns it into one subscribe per
// pipeline for a limited token, since such a token may not subscribe to all or to a type.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { subscriptionsFor, tokenPipelines } from '../src/token.js';

const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: unknown) => `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u(claims)}.c2ln`;

test('tokenPipelines: a list, a comma string, "*", admin, and tokens it cannot read', () => {
  assert.deepEqual(tokenPipelines(jwt({ role: 'viewer', pipelines: ['a', 'b', 'a'] })), ['a', 'b']);
  assert.deepEqual(tokenPipelines(jwt({ role: 'viewer', pipelines: 'a, b' })), ['a', 'b']);
  assert.deepEqual(tokenPipelines(jwt({ role: 'viewer', pipelines: [] })), []);
  assert.equal(tokenPipelines(jwt({ role: 'viewer', pipelines: ['a', '*'] })), null);
  assert.equal(tokenPipelines(jwt({ role: 'admin', pipelines: ['a'] })), null, 'admins ignore the list');
  assert.equal(tokenPipelines(jwt({ role: 'viewer' })), null, 'no claim: let the server decide');
  // Non-ASCII ids survive the base64url + UTF-8 decoding.
  assert.deepEqual(tokenPipelines(jwt({ role: 'viewer', pipelines: ['dépôt-1'] })), ['dépôt-1']);
  for (const bad of [null, undefined, '', 'not-a-jwt', 'a.!!!.c', `x.${b64u('just a string')}.y`, `x.${Buffer.from('{').toString('base64url')}.y`])
    assert.equal(tokenPipelines(bad), null, String(bad));
});

test('subscriptionsFor: all for an unlimited token, one per pipeline for a limited one', () => {
  assert.deepEqual(subscriptionsFor(null), [{}]);
  assert.deepEqual(subscriptionsFor(null, { pipeline_type: 't' }), [{ pipeline_type: 't' }]);
  assert.deepEqual(subscriptionsFor(jwt({ role: 'viewer', pipelines: ['*'] }), { pipeline_type: 't' }), [{ pipeline_type: 't' }]);
  const limited = jwt({ role: 'viewer', pipelines: ['a', 'b'] });
  assert.deepEqual(subscriptionsFor(limited), [{ pipeline_id: 'a' }, { pipeline_id: 'b' }]);
  assert.deepEqual(subscriptionsFor(limited, { pipeline_type: 't' }), [{ pipeline_id: 'a' }, { pipeline_id: 'b' }],
    'a type is filtered client-side from the per-pipeline subscriptions');
  assert.deepEqual(subscriptionsFor(limited, { pipeline_id: 'b' }), [{ pipeline_id: 'b' }]);
  assert.deepEqual(subscriptionsFor(jwt({ role: 'viewer', pipelines: [] })), [], 'nothing to ask for');
});
