// The viewer-side model against the golden vectors of tests/vectors/ (the C hub's
// src/hub/state.c is checked against the same files by tests/unit/hub/test_state_vectors.c):
// each vector's events, numbered 1, 2, ... and stamped with its times, are applied to an empty
// model, and the model, written in the snapshot's shape, must match what the vector expects.
// A vector states a subset: every key it gives must be there and equal (null also matches a
// missing key), arrays have exactly the stated length. Keys the model does not keep at all
// (NOT_MODELLED: stage counts, failure groups, chunks per bucket...) are skipped only when the
// model's output lacks them, so a key it does produce is always checked.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { RagEvent } from '../src/events.js';
import { StatusModel, type PipelineState } from '../src/model.js';

const DIR = path.join(process.env.RAGPULSE_REPO as string, 'tests/vectors');
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const NOT_MODELLED = new Set(['stages', 'failure_groups', 'heartbeat_age_ms', 'files_more', 'files_next', 'mime_type', 'hash', 'bucket_seconds', 'chunks@activity']);

interface Vector {
  rule: string;
  events: { at: number; event: Record<string, unknown> }[];
  now: number;
  expect: { pipelines: unknown[]; failure_groups?: unknown[] };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The model's pipeline in the shape of the hub's snapshot (src/hub/state.c pipeline_json). */
function asSnapshot(m: StatusModel, p: PipelineState, now: number): Record<string, unknown> {
  const files = [...p.files.values()].map((f) => {
    const o: Record<string, unknown> = { id: f.id, name: f.name, progress: f.progress, attempt: f.attempt };
    if (f.size !== undefined) o.size = f.size;
    if (f.stage) o.stage = f.stage;
    if (f.chunks) o.chunks = f.chunks;
    o.started_at = iso(f.startedAt);
    o.stage_started_at = iso(f.stageStartedAt);
    o.last_progress_at = iso(f.lastProgressAt);
    return o;
  });
  return {
    id: p.id,
    type: p.type,
    status: p.status,
    heartbeat_interval: p.heartbeatInterval,
    last_heartbeat: iso(p.lastHeartbeat),
    last_event_id: p.lastEventId,
    last_event_at: iso(p.lastEventAt),
    counters: { processed: p.processed, failed: p.failed, in_flight: p.files.size + p.unlisted, chunks: p.chunks },
    files_total: p.filesTotal,
    files_pending: p.filesPending,
    message: p.message,
    activity: m.activity(p, now),
    files,
    recent_completed: p.recentCompleted,
    recent_failed: p.recentFailed,
  };
}

/** Where got differs from want (see the rules above), or null. */
function mismatch(got: unknown, want: unknown, at: string): string | null {
  if (want === null) return got === null || got === undefined ? null : `${at}: got ${JSON.stringify(got)}, want null`;
  if (got === undefined) return `${at}: missing`;
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) return `${at}: want an array of ${want.length}, got ${JSON.stringify(got)}`;
    for (let i = 0; i < want.length; i++) {
      const d = mismatch(got[i], want[i], `${at}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (typeof want === 'object') {
    if (typeof got !== 'object' || got === null) return `${at}: not an object`;
    const g = got as Record<string, unknown>;
    const key = at.split('.').pop() ?? '';
    for (const [k, v] of Object.entries(want as Record<string, unknown>)) {
      if (!(k in g) && (NOT_MODELLED.has(k) || NOT_MODELLED.has(`${k}@${key}`))) continue;
      const d = mismatch(g[k], v, `${at}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return Object.is(got, want) || got === want ? null : `${at}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
}

const names = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

test('the vectors are there', () => {
  assert.ok(names.length >= 10, `${DIR} holds ${names.length} vectors`);
});

for (const name of names) {
  const v = JSON.parse(readFileSync(path.join(DIR, name), 'utf8')) as Vector;
  test(`${name}: ${v.rule}`, () => {
    const m = new StatusModel();
    m.applySnapshot({ version: 0, server_time: new Date(T0).toISOString(), pipelines: [] });
    const events = v.events.map((s, i) => ({ ...s.event, id: i + 1, ts: new Date(T0 + s.at).toISOString() }) as unknown as RagEvent);
    m.applyEvents(events);
    assert.equal(m.stats.gaps, 0);
    const got = { pipelines: [...m.pipelines.values()].map((p) => asSnapshot(m, p, T0 + v.now)) };
    const d = mismatch(got, v.expect, 'expect');
    assert.equal(d, null, d ?? '');
  });
}
