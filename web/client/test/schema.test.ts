// The client's event types against docs/events.schema.json: the runtime lists the types are
// derived from must name exactly what the schema names, in its order.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ERROR_FIELDS, EVENT_FIELDS, EVENT_TYPES, FILE_FIELDS, PIPELINE_STATUSES, isRagEvent } from '../src/events.js';

const schema = JSON.parse(readFileSync(path.join(process.env.RAGPULSE_REPO as string, 'docs/events.schema.json'), 'utf8'));

test('event types match the schema enum', () => {
  assert.deepEqual([...EVENT_TYPES], schema.properties.type.enum);
});

test('pipeline statuses match the schema enum', () => {
  assert.deepEqual([...PIPELINE_STATUSES], schema.properties.status.enum);
});

test('event, file and error fields match the schema', () => {
  assert.deepEqual([...EVENT_FIELDS], Object.keys(schema.properties));
  assert.deepEqual([...FILE_FIELDS], Object.keys(schema.$defs.file.properties));
  const errObj = schema.$defs.file.properties.error.oneOf.find((o: { type: string }) => o.type === 'object');
  assert.deepEqual([...ERROR_FIELDS], Object.keys(errObj.properties));
  assert.deepEqual(errObj.required, ['message']);
});

test('isRagEvent accepts a normalised event and refuses unknown types', () => {
  const ev = { id: 3, ts: '2026-01-01T00:00:00.000Z', type: 'file:progress', pipeline_id: 'p', pipeline_type: 't', file: { id: 'a', name: 'a', progress: 0.5 } };
  assert.equal(isRagEvent(ev), true);
  assert.equal(isRagEvent({ ...ev, type: 'file:exploded' }), false);
  assert.equal(isRagEvent({ ...ev, id: '3' }), false);
  assert.equal(isRagEvent(null), false);
});
