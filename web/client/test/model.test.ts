// The viewer-side model applies events with the hub's rules (src/hub/state.c): files in
// flight, stage timings, counters, buckets, status transitions; ids applied once, gaps counted;
// completed files kept (snapshot, live, merged from the hub's registry), capped, newest first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PipelineSnapshot, RagEvent, RecentFile, Snapshot } from '../src/events.js';
import { COMPLETED_MAX, StatusModel, isLate, type CompletedRow } from '../src/model.js';

let id = 0;
const T0 = Date.parse('2026-03-01T10:00:00.000Z');
function ev(type: RagEvent['type'], extra: Partial<RagEvent> = {}, dt = 0): RagEvent {
  return { id: ++id, ts: new Date(T0 + dt).toISOString(), type, pipeline_id: 'p1', pipeline_type: 'local_files', ...extra };
}
const empty: Snapshot = { version: 0, server_time: new Date(T0).toISOString(), pipelines: [] };

test('a file goes processing -> progress -> completed; counters and status follow', () => {
  id = 0;
  const m = new StatusModel();
  m.applySnapshot(empty);
  m.applyEvents([ev('pipeline:online', { heartbeat_interval: 5 })]);
  m.applyEvents([ev('file:processing', { file: { id: 'a', name: 'a.pdf', stage: 'parse' } }, 1000)]);
  const p = m.pipelines.get('p1');
  assert.ok(p);
  assert.equal(p.status, 'running');
  assert.equal(m.filesInFlight, 1);
  m.applyEvents([ev('file:progress', { file: { id: 'a', name: 'a.pdf', progress: 0.5, stage: 'embed' } }, 3000)]);
  const f = p.files.get('a');
  assert.ok(f);
  assert.equal(f.progress, 0.5);
  assert.equal(f.stage, 'embed');
  assert.equal(f.stageStartedAt, T0 + 3000);
  assert.equal(f.startedAt, T0 + 1000);
  m.applyEvents([ev('file:completed', { file: { id: 'a', name: 'a.pdf', chunks: 7 } }, 4000)]);
  assert.equal(m.filesInFlight, 0);
  assert.equal(p.processed, 1);
  assert.equal(p.chunks, 7);
  assert.equal(p.status, 'idle');
  assert.equal(p.recentCompleted.at(-1)?.duration_ms, 3000);
  const act = m.activity(p, T0 + 5000);
  assert.equal(act.completed.reduce((a, b) => a + b, 0), 1);
  assert.equal(m.stats.gaps, 0);
});

test('a failure keeps its reason and stage; offline and heartbeat transitions', () => {
  id = 0;
  const m = new StatusModel();
  m.applySnapshot(empty);
  m.applyEvents([
    ev('file:processing', { file: { id: 'b', name: 'b.pdf', stage: 'ocr' } }),
    ev('file:failed', { file: { id: 'b', name: 'b.pdf', error: { message: 'tesseract: timeout' } } }, 10),
    ev('pipeline:offline'),
  ]);
  const p = m.pipelines.get('p1');
  assert.ok(p);
  assert.equal(p.failed, 1);
  assert.equal(p.recentFailed[0]?.error?.message, 'tesseract: timeout');
  assert.equal(p.recentFailed[0]?.stage, 'ocr');
  assert.equal(p.status, 'offline');
  m.applyEvents([ev('heartbeat', {}, 20)]);
  assert.equal(p.status, 'online');
});

test('a deleted file leaves the recent lists and the files in flight; the counts stay', () => {
  id = 0;
  const m = new StatusModel();
  m.applySnapshot(empty);
  m.applyEvents([
    ev('file:processing', { file: { id: 'a', name: 'a.txt' } }),
    ev('file:completed', { file: { id: 'a', name: 'a.txt', chunks: 1 } }, 10),
    ev('file:processing', { file: { id: 'b', name: 'b.txt' } }, 20),
    ev('file:completed', { file: { id: 'b', name: 'b.txt', chunks: 1 } }, 30),
    ev('file:processing', { file: { id: 'c', name: 'c.txt' } }, 40),
  ]);
  const p = m.pipelines.get('p1');
  assert.ok(p);
  assert.equal(m.filesInFlight, 1);
  m.applyEvents([ev('file:deleted', { file: { id: 'a', name: 'a.txt' } }, 50), ev('file:deleted', { file: { id: 'c', name: 'c.txt' } }, 60)]);
  assert.deepEqual(p.recentCompleted.map((r) => r.file_id), ['b']);
  assert.equal(m.filesInFlight, 0);
  assert.equal(p.files.size, 0);
  assert.equal(p.processed, 2, 'what happened is still counted');
  assert.equal(p.status, 'idle');
});

test('ids already applied are dropped and counted; a skipped id is counted as a gap', () => {
  id = 0;
  const m = new StatusModel();
  m.applySnapshot(empty);
  const a = ev('pipeline:online');
  const b = ev('heartbeat');
  m.applyEvents([a, b, a]);
  assert.equal(m.stats.applied, 2);
  assert.equal(m.stats.duplicates, 1);
  id++;
  m.applyEvents([ev('heartbeat')]);
  assert.equal(m.stats.gaps, 1);
});

test('a span vouches for the ids it skips (other pipelines): no gap, the version moves on', () => {
  id = 0;
  const m = new StatusModel();
  m.applySnapshot(empty);
  const a1 = ev('pipeline:online');
  id += 2; // ids 2 and 3 belong to a pipeline this viewer does not see
  const a4 = ev('heartbeat');
  m.applyEvents([a1, a4], { since: 0, through: 6 });
  assert.equal(m.version, 6, 'through the span, not the last event');
  m.applyEvents([], { since: 6, through: 9 });
  assert.equal(m.version, 9, 'an empty answer moves the version too');
  id = 9;
  m.applyEvents([ev('heartbeat')]);
  assert.equal(m.stats.gaps, 0, 'the next live event follows the span');
  assert.equal(m.stats.applied, 3);
  m.applyEvents([], { since: 12, through: 14 });
  assert.equal(m.stats.gaps, 1, 'a span that starts after the version is a gap');
});

test('late after 1.5 heartbeat intervals, never when offline', () => {
  id = 0;
  const m = new StatusModel();
  m.applySnapshot(empty);
  m.applyEvents([ev('pipeline:online', { heartbeat_interval: 2 })]);
  const p = m.pipelines.get('p1');
  assert.ok(p);
  assert.equal(isLate(p, T0 + 2900), false);
  assert.equal(isLate(p, T0 + 3100), true);
  p.status = 'offline';
  assert.equal(isLate(p, T0 + 10000), false);
});

test('a snapshot is a baseline: files, buckets aligned to server time', () => {
  const m = new StatusModel();
  const completed = Array(30).fill(0);
  completed[29] = 2;
  completed[0] = 1;
  m.applySnapshot({
    version: 42,
    server_time: new Date(T0).toISOString(),
    pipelines: [{
      id: 'p2', type: 'google_drive', status: 'running', heartbeat_interval: 30, last_heartbeat: new Date(T0).toISOString(),
      last_event_id: 42, last_event_at: new Date(T0).toISOString(), counters: { processed: 3, failed: 0, in_flight: 1, chunks: 9 },
      files_total: null, files_pending: null, stages: { chunk: 1 },
      activity: { bucket_seconds: 10, completed, failed: Array(30).fill(0), chunks: Array(30).fill(0) },
      recent_completed: [], recent_failed: [], heartbeat_age_ms: 0, late: false,
      files: [{ id: 'x', name: 'x.docx', progress: 0.25, stage: 'chunk', attempt: 1, started_at: new Date(T0 - 5000).toISOString(), stage_started_at: new Date(T0 - 1000).toISOString(), last_progress_at: new Date(T0).toISOString() }],
    }],
  });
  assert.equal(m.version, 42);
  assert.equal(m.filesInFlight, 1);
  const p = m.pipelines.get('p2');
  assert.ok(p);
  assert.deepEqual(m.activity(p, T0).completed, completed);
  assert.equal(p.files.get('x')?.progress, 0.25);
});

test('a snapshot that lists a page of the files: the model knows the total and what events tell', () => {
  id = 10;
  const file = (fid: string) => ({
    id: fid, name: `${fid}.pdf`, progress: 0, attempt: 1,
    started_at: new Date(T0).toISOString(), stage_started_at: new Date(T0).toISOString(), last_progress_at: new Date(T0).toISOString(),
  });
  const snap = {
    version: 10, server_time: new Date(T0).toISOString(),
    pipelines: [{
      id: 'p1', type: 'local_files', status: 'running', heartbeat_interval: 30, last_heartbeat: null, last_event_id: 10,
      last_event_at: null, counters: { processed: 0, failed: 0, in_flight: 5, chunks: 0 }, files_total: null,
      files_pending: null, stages: { queued: 5 }, activity: { bucket_seconds: 10, completed: [], failed: [], chunks: [] },
      recent_completed: [], recent_failed: [], heartbeat_age_ms: null, files: [file('a'), file('b')],
      files_more: true, files_next: 'b', late: false,
    }],
  } as Snapshot;
  const m = new StatusModel();
  m.applySnapshot(snap);
  const p = m.pipelines.get('p1');
  assert.ok(p);
  assert.equal(m.filesInFlight, 5);
  assert.equal(m.filesUnlisted, 3);
  // Progress for an unlisted file lists it; its completion, and an unlisted one's, count down.
  m.applyEvents([ev('file:progress', { file: { id: 'c', name: 'c.pdf', progress: 0.5 } }, 10)]);
  assert.deepEqual([m.filesInFlight, m.filesUnlisted, p.files.size], [5, 2, 3]);
  m.applyEvents([ev('file:completed', { file: { id: 'd', name: 'd.pdf' } }, 20)]);
  assert.deepEqual([m.filesInFlight, m.filesUnlisted], [4, 1]);
  m.applyEvents([ev('file:processing', { file: { id: 'n', name: 'n.pdf' } }, 30)]);
  assert.deepEqual([m.filesInFlight, m.filesUnlisted, p.files.size], [5, 1, 4]);
  for (const fid of ['a', 'b', 'c', 'n', 'e']) m.applyEvents([ev('file:completed', { file: { id: fid, name: `${fid}.pdf` } }, 40)]);
  assert.deepEqual([m.filesInFlight, m.filesUnlisted], [0, 0]);
  assert.equal(p.status, 'idle', 'idle only once the unlisted files are done too');
  assert.equal(m.stats.gaps, 0);
});

/** A snapshot of pipeline p1 with these recent completions and files in flight. */
function snapWith(version: number, recent: RecentFile[], inFlight: string[] = []): Snapshot {
  const p: PipelineSnapshot = {
    id: 'p1', type: 'local_files', status: 'idle', heartbeat_interval: 5, last_heartbeat: null,
    last_event_id: version, last_event_at: null,
    counters: { processed: recent.length, failed: 0, in_flight: inFlight.length, chunks: 0 },
    files_total: null, files_pending: null, stages: {},
    activity: { bucket_seconds: 10, completed: [], failed: [], chunks: [] },
    recent_completed: recent, recent_failed: [], heartbeat_age_ms: null, late: false,
    files: inFlight.map((fid) => ({
      id: fid, name: `${fid}.txt`, progress: 0, stage: 'extract', attempt: 1,
      started_at: new Date(T0).toISOString(), stage_started_at: new Date(T0).toISOString(), last_progress_at: new Date(T0).toISOString(),
    })),
  };
  return { version, server_time: new Date(T0).toISOString(), pipelines: [p] };
}
const recent = (i: number): RecentFile => ({ file_id: `r${i}`, name: `r${i}.txt`, event_id: i, ts: new Date(T0 + i).toISOString(), duration_ms: 80, chunks: 1 });
const row = (fid: string, eventId: number): CompletedRow => ({ file_id: fid, name: `${fid}.txt`, event_id: eventId, ts: T0 + eventId });

test('completed files: the snapshot\'s recent ones, then live completions on top; a file processed again leaves', () => {
  id = 100;
  const m = new StatusModel();
  m.applySnapshot(snapWith(100, [recent(1), recent(2)]));
  assert.deepEqual(m.completedFiles().map((c) => c.id), ['r2', 'r1']);
  assert.equal(m.completedFiles()[0]?.durationMs, 80);
  const rev = m.completedRev;
  m.applyEvents([
    ev('file:processing', { file: { id: 'n', name: 'n.md' } }, 1000),
    ev('file:completed', { file: { id: 'n', name: 'n.md', chunks: 3 } }, 1120),
  ]);
  assert.ok(m.completedRev > rev);
  const n = m.completedFiles()[0];
  assert.deepEqual({ id: n?.id, durationMs: n?.durationMs, chunks: n?.chunks }, { id: 'n', durationMs: 120, chunks: 3 });
  m.applyEvents([ev('file:processing', { file: { id: 'r1', name: 'r1.txt' } }, 2000)]);
  assert.deepEqual(m.completedFiles().map((c) => c.id), ['n', 'r2'], 'r1 is in flight again');
  m.applyEvents([ev('file:failed', { file: { id: 'r1', name: 'r1.txt', error: { message: 'gone' } } }, 2100)]);
  assert.ok(!m.completedFiles().some((c) => c.id === 'r1'), 'failed: not completed');
});

test('a backfill from the registry fills in older files; events since it began win over its rows', () => {
  id = 100;
  const m = new StatusModel();
  m.applySnapshot(snapWith(100, [recent(90)], ['busy']));
  const ticket = m.beginCompletedBackfill('p1');
  // While the request is out: a completed file starts again, another completes anew.
  m.applyEvents([
    ev('file:processing', { file: { id: 'old3', name: 'old3.txt' } }, 10),
    ev('file:completed', { file: { id: 'old4', name: 'old4.txt' } }, 20),
  ]);
  const rows = [row('old1', 5), row('old2', 6), row('old3', 7), row('old4', 8), row('busy', 9), row('r90', 90)];
  assert.equal(m.mergeCompleted('p1', rows, ticket), 2, 'old1 and old2 only');
  const ids = m.completedFiles().map((c) => c.id);
  assert.deepEqual(ids, ['old4', 'r90', 'old2', 'old1'], 'newest completion first');
  const old4 = m.completedFiles()[0];
  assert.equal(old4?.eventId, 102, 'the live completion, not the row');
  assert.equal(m.completedFiles().find((c) => c.id === 'old1')?.completedAt, T0 + 5, 'a registry row in ms');
  assert.equal(m.completedFiles().find((c) => c.id === 'old1')?.durationMs, null, 'not known from the registry');
  // After merge, events no longer are remembered for it, and a ticket from before a new snapshot is ignored.
  const stale = m.beginCompletedBackfill('p1');
  m.applySnapshot(snapWith(200, []));
  assert.equal(m.mergeCompleted('p1', [row('x', 150)], stale), 0);
  assert.equal(m.completedFiles().length, 0);
});

test('the completed list keeps the newest COMPLETED_MAX per pipeline', () => {
  id = 0;
  const m = new StatusModel();
  m.applySnapshot(empty);
  m.applyEvents([ev('pipeline:online')]);
  const ticket = m.beginCompletedBackfill('p1');
  const rows: CompletedRow[] = [];
  for (let i = 1; i <= COMPLETED_MAX + 10; i++) rows.push(row(`f${i}`, i));
  m.mergeCompleted('p1', rows, ticket);
  assert.equal(m.completedFiles().length, COMPLETED_MAX);
  assert.equal(m.completedFiles().at(-1)?.id, 'f11', 'the oldest ten dropped');
  id = COMPLETED_MAX + 100;
  m.applyEvents([ev('file:completed', { file: { id: 'live', name: 'live.txt' } })]);
  assert.equal(m.completedFiles().length, COMPLETED_MAX);
  assert.equal(m.completedFiles()[0]?.id, 'live');
  assert.equal(m.completedFiles().at(-1)?.id, 'f12');
});
