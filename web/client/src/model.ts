// A live model of the hub's state on the viewer's side: a snapshot as the baseline, then
// every event applied with the same rules as the hub's src/hub/state.c (status transitions,
// files in flight with stage timings, counters, 10-second activity buckets for 5 minutes), so
// a page can show what changed without asking the server again. Mutations bump `rev`; a UI
// reads the model when it renders (at most once per frame) instead of once per event. It also
// keeps each pipeline's completed files (the snapshot's recent ones, those completed live, and
// older ones a page merges from the hub's file registry), capped, for a list of finished work.

import type { FileError, PipelineSnapshot, PipelineStatus, RagEvent, RecentFile, Snapshot } from './events.js';

export const BUCKET_MS = 10_000;
export const BUCKETS = 30;
/** Completed files kept per pipeline (the newest completions win). */
export const COMPLETED_MAX = 5000;

export interface FileState {
  id: string;
  name: string;
  pipelineId: string;
  pipelineType: string;
  progress: number;
  stage: string;
  attempt: number;
  chunks: number;
  size?: number;
  startedAt: number;
  stageStartedAt: number;
  lastProgressAt: number;
  /** Order of arrival in this model (newest = largest). */
  seq: number;
}

/** A file whose latest outcome is completed. */
export interface CompletedFile {
  id: string;
  name: string;
  pipelineId: string;
  /** The completing event's id (orders the list: newest = largest). */
  eventId: number;
  /** When it completed (ms since the epoch, the hub's clock). */
  completedAt: number;
  /** From its file:processing to its completion, when the model saw both (or the hub said). */
  durationMs: number | null;
  chunks: number | null;
}

/**
 * A completed file as a page learned it outside the event stream (the hub's file registry,
 * `/api/files`, or the history, `/api/events`): merged with StatusModel.mergeCompleted.
 */
export interface CompletedRow {
  file_id: string;
  name: string;
  event_id: number;
  /** RFC 3339, or ms since the epoch (the registry's `updated`). */
  ts: string | number;
  duration_ms?: number | null;
  chunks?: number | null;
}

export interface PipelineState {
  id: string;
  type: string;
  status: PipelineStatus;
  heartbeatInterval: number;
  lastHeartbeat: number | null;
  lastEventAt: number | null;
  lastEventId: number;
  processed: number;
  failed: number;
  chunks: number;
  filesTotal: number | null;
  filesPending: number | null;
  message: string | null;
  /** The files the model knows: the snapshot's page, then those events told of. */
  files: Map<string, FileState>;
  /**
   * Files in flight the model does not list: a snapshot lists a page of each pipeline's files
   * (files_more), so its counters.in_flight can be larger than files.size. In flight in all:
   * files.size + unlisted. Events for a file the model does not know take one from here when
   * they can only be about one of these (progress, completed, failed).
   */
  unlisted: number;
  /** slot (ts / BUCKET_MS) -> counts */
  buckets: Map<number, { completed: number; failed: number }>;
  recentFailed: RecentFile[];
  recentCompleted: RecentFile[];
  /**
   * Files whose latest outcome is completed, oldest completion first, at most COMPLETED_MAX.
   * A later event for a file (processing again, failed) takes it out.
   */
  completed: Map<string, CompletedFile>;
}

/**
 * What a batch of events vouches for: it holds every event the viewer may see with
 * since < id <= through (an HTTP answer, which the hub filters for the token). Ids it skips
 * belong to pipelines the viewer does not see.
 */
export interface Span {
  since: number;
  through: number;
}

export interface ModelStats {
  /** Events applied since the first baseline. */
  applied: number;
  /**
   * Events whose id was not the previous id + 1 and that no span vouched for, plus spans that
   * start after the model's version (only meaningful when watching everything).
   */
  gaps: number;
  /** Events offered again with an id already applied (dropped). */
  duplicates: number;
  baselines: number;
}

const t = (s: string | null | undefined): number | null => (s ? Date.parse(s) : null);

export function errorMessage(e: string | FileError | undefined): string {
  if (!e) return '';
  return typeof e === 'string' ? e : e.message;
}

export class StatusModel {
  pipelines = new Map<string, PipelineState>();
  version = -1;
  rev = 0;
  /** Bumped when files enter or leave flight (a table must rebuild its row list). */
  membershipRev = 0;
  /** Bumped when a pipeline's completed files change (the completed list rebuilds). */
  completedRev = 0;
  stats: ModelStats = { applied: 0, gaps: 0, duplicates: 0, baselines: 0 };
  private seq = 0;
  private inFlight = 0;
  /** Per pipeline with a backfill under way: the files events told of since it began. */
  private backfills = new Map<string, Set<string>>();

  /** Files in flight in all pipelines, listed or not (see PipelineState.unlisted). */
  get filesInFlight(): number {
    return this.inFlight;
  }

  /** Files in flight the model does not list (the snapshot gave a page of them). */
  get filesUnlisted(): number {
    let n = 0;
    for (const p of this.pipelines.values()) n += p.unlisted;
    return n;
  }

  applySnapshot(snap: Snapshot): void {
    const serverNow = Date.parse(snap.server_time);
    this.pipelines.clear();
    this.backfills.clear();
    this.inFlight = 0;
    for (const p of snap.pipelines) this.pipelines.set(p.id, this.fromSnapshot(p, serverNow));
    this.version = snap.version;
    this.stats.baselines++;
    this.rev++;
    this.membershipRev++;
    this.completedRev++;
  }

  /**
   * Marks the start of a backfill of `pipelineId`'s completed files (a request to the hub is
   * about to go out). Returns a ticket for mergeCompleted: from now until the merge, events
   * about a file win over the rows, which may be older than they are.
   */
  beginCompletedBackfill(pipelineId: string): number {
    this.backfills.set(pipelineId, new Set());
    return this.stats.baselines;
  }

  /**
   * Merges completed files learned outside the event stream (see CompletedRow) into
   * `pipelineId`'s list: a row is skipped when its file is in flight, was told of by an event
   * since beginCompletedBackfill, or is already listed with a newer completion; the list then
   * keeps the newest COMPLETED_MAX. A ticket from before the latest snapshot is ignored (the
   * snapshot replaced the state the backfill was for). Returns how many rows were added.
   */
  mergeCompleted(pipelineId: string, rows: readonly CompletedRow[], ticket: number): number {
    const p = this.pipelines.get(pipelineId);
    const seen = this.backfills.get(pipelineId);
    this.backfills.delete(pipelineId);
    if (!p || ticket !== this.stats.baselines) return 0;
    const all = [...p.completed.values()];
    let added = 0;
    for (const r of rows) {
      if (seen?.has(r.file_id) || p.files.has(r.file_id)) continue;
      const cur = p.completed.get(r.file_id);
      if (cur && cur.eventId >= r.event_id) continue;
      const at = typeof r.ts === 'number' ? r.ts : Date.parse(r.ts);
      const c: CompletedFile = {
        id: r.file_id,
        name: r.name || r.file_id,
        pipelineId,
        eventId: r.event_id,
        completedAt: Number.isFinite(at) ? at : 0,
        durationMs: r.duration_ms ?? cur?.durationMs ?? null,
        chunks: r.chunks ?? cur?.chunks ?? null,
      };
      if (cur) all.splice(all.indexOf(cur), 1);
      all.push(c);
      added++;
    }
    if (added === 0) return 0;
    all.sort((a, b) => a.eventId - b.eventId);
    p.completed = new Map(all.slice(-COMPLETED_MAX).map((c) => [c.id, c]));
    this.completedRev++;
    this.rev++;
    return added;
  }

  /** Every pipeline's completed files, newest completion first. */
  completedFiles(): CompletedFile[] {
    const out: CompletedFile[] = [];
    for (const p of this.pipelines.values()) for (const c of p.completed.values()) out.push(c);
    return out.sort((a, b) => b.eventId - a.eventId);
  }

  private fromSnapshot(p: PipelineSnapshot, serverNow: number): PipelineState {
    const files = new Map<string, FileState>();
    for (const f of p.files) {
      const fs: FileState = {
        id: f.id,
        name: f.name,
        pipelineId: p.id,
        pipelineType: p.type,
        progress: f.progress,
        stage: f.stage ?? '',
        attempt: f.attempt,
        chunks: f.chunks ?? 0,
        startedAt: Date.parse(f.started_at),
        stageStartedAt: Date.parse(f.stage_started_at),
        lastProgressAt: Date.parse(f.last_progress_at),
        seq: ++this.seq,
      };
      if (f.size !== undefined) fs.size = f.size;
      files.set(f.id, fs);
    }
    const total = p.counters?.in_flight ?? files.size;
    const unlisted = Math.max(0, total - files.size);
    this.inFlight += files.size + unlisted;
    const buckets = new Map<number, { completed: number; failed: number }>();
    const nowSlot = Math.floor(serverNow / BUCKET_MS);
    const n = p.activity.completed.length;
    for (let i = 0; i < n; i++) {
      const c = p.activity.completed[i] ?? 0;
      const fl = p.activity.failed[i] ?? 0;
      if (c || fl) buckets.set(nowSlot - n + 1 + i, { completed: c, failed: fl });
    }
    return {
      id: p.id,
      type: p.type,
      status: p.status,
      heartbeatInterval: p.heartbeat_interval,
      lastHeartbeat: t(p.last_heartbeat),
      lastEventAt: t(p.last_event_at),
      lastEventId: p.last_event_id,
      processed: p.counters.processed,
      failed: p.counters.failed,
      chunks: p.counters.chunks,
      filesTotal: p.files_total,
      filesPending: p.files_pending,
      message: p.message ?? null,
      files,
      unlisted,
      buckets,
      recentFailed: [...p.recent_failed],
      recentCompleted: [...p.recent_completed],
      completed: completedFromRecent(p.id, p.recent_completed, files),
    };
  }

  /**
   * Applies events in id order; an id already applied is counted and dropped. Without a span
   * an id that is not the version + 1 is a gap; with one (see Span) only a span that starts
   * after the version is, and the version then moves on to span.through.
   */
  applyEvents(events: readonly RagEvent[], span?: Span): void {
    const before = this.version;
    if (span && this.version >= 0 && span.since > this.version) this.stats.gaps++;
    for (const ev of events) {
      if (ev.id <= this.version) {
        this.stats.duplicates++;
        continue;
      }
      if (!span && this.version >= 0 && ev.id !== this.version + 1) this.stats.gaps++;
      this.version = ev.id;
      this.stats.applied++;
      this.apply(ev);
    }
    if (span && span.through > this.version) this.version = span.through;
    if (this.version !== before) this.rev++;
  }

  private pipeline(ev: RagEvent): PipelineState {
    let p = this.pipelines.get(ev.pipeline_id);
    if (!p) {
      p = {
        id: ev.pipeline_id,
        type: ev.pipeline_type,
        // As the hub's state.c: a pipeline is offline until an event says otherwise.
        status: 'offline',
        heartbeatInterval: 30,
        lastHeartbeat: null,
        lastEventAt: null,
        lastEventId: 0,
        processed: 0,
        failed: 0,
        chunks: 0,
        filesTotal: null,
        filesPending: null,
        message: null,
        files: new Map(),
        unlisted: 0,
        buckets: new Map(),
        recentFailed: [],
        recentCompleted: [],
        completed: new Map(),
      };
      this.pipelines.set(ev.pipeline_id, p);
      this.membershipRev++;
    }
    return p;
  }

  private apply(ev: RagEvent): void {
    const ts = Date.parse(ev.ts);
    const p = this.pipeline(ev);
    p.lastEventAt = ts;
    p.lastEventId = ev.id;
    if (ev.heartbeat_interval !== undefined) p.heartbeatInterval = ev.heartbeat_interval;
    if (ev.files_total !== undefined) p.filesTotal = ev.files_total;
    if (ev.files_pending !== undefined) p.filesPending = ev.files_pending;
    if (ev.message !== undefined) p.message = ev.message;
    const jf = ev.file;
    if (jf) {
      this.backfills.get(p.id)?.add(jf.id);
      if (ev.type !== 'file:completed' && p.completed.delete(jf.id)) this.completedRev++;
    }
    switch (ev.type) {
      case 'pipeline:online':
        p.status = 'online';
        p.lastHeartbeat = ts;
        break;
      case 'pipeline:offline':
        p.status = 'offline';
        break;
      case 'heartbeat':
        p.lastHeartbeat = ts;
        if (p.status === 'offline') p.status = p.files.size + p.unlisted ? 'running' : 'online';
        break;
      case 'status:update':
        if (ev.status) p.status = ev.status;
        p.lastHeartbeat = ts;
        break;
      case 'file:processing':
      case 'file:progress': {
        if (!jf) break;
        let f = p.files.get(jf.id);
        if (!f) {
          f = {
            id: jf.id,
            name: jf.name,
            pipelineId: p.id,
            pipelineType: p.type,
            progress: 0,
            stage: '',
            attempt: 1,
            chunks: 0,
            startedAt: ts,
            stageStartedAt: ts,
            lastProgressAt: ts,
            seq: ++this.seq,
          };
          p.files.set(jf.id, f);
          // Progress for a file the model never heard of is about one the snapshot left out.
          if (ev.type === 'file:progress' && p.unlisted > 0) p.unlisted--;
          else this.inFlight++;
          this.membershipRev++;
        } else if (ev.type === 'file:processing' && f.startedAt !== ts) {
          f.attempt++;
          f.startedAt = f.stageStartedAt = ts;
          f.progress = 0;
        }
        if (jf.name) f.name = jf.name;
        if (jf.size !== undefined) f.size = jf.size;
        if (jf.progress !== undefined) {
          f.progress = jf.progress;
          f.lastProgressAt = ts;
        }
        if (jf.stage !== undefined && jf.stage !== f.stage) {
          f.stage = jf.stage;
          f.stageStartedAt = ts;
          f.lastProgressAt = ts;
        }
        if (jf.chunks !== undefined) f.chunks = jf.chunks;
        if (jf.attempt !== undefined) f.attempt = jf.attempt;
        p.status = 'running';
        p.lastHeartbeat = ts;
        break;
      }
      case 'file:completed':
      case 'file:failed': {
        if (!jf) break;
        const f = p.files.get(jf.id);
        const started = f ? f.startedAt : ts;
        const slot = Math.floor(ts / BUCKET_MS);
        const b = p.buckets.get(slot) ?? { completed: 0, failed: 0 };
        p.buckets.set(slot, b);
        for (const k of p.buckets.keys()) if (k <= slot - BUCKETS) p.buckets.delete(k);
        const item: RecentFile = { file_id: jf.id, name: jf.name, event_id: ev.id, ts: ev.ts, duration_ms: ts - started };
        if (ev.type === 'file:completed') {
          const chunks = jf.chunks ?? f?.chunks ?? 0;
          p.processed++;
          p.chunks += chunks;
          b.completed++;
          item.chunks = chunks;
          p.recentCompleted.push(item);
          if (p.recentCompleted.length > 20) p.recentCompleted.shift();
          p.completed.delete(jf.id);
          p.completed.set(jf.id, {
            id: jf.id,
            name: jf.name || jf.id,
            pipelineId: p.id,
            eventId: ev.id,
            completedAt: ts,
            durationMs: f ? ts - started : null,
            chunks,
          });
          if (p.completed.size > COMPLETED_MAX) p.completed.delete(p.completed.keys().next().value as string);
          this.completedRev++;
        } else {
          p.failed++;
          b.failed++;
          if (jf.error) item.error = jf.error;
          item.attempt = f?.attempt ?? 1;
          if (f?.stage) item.stage = f.stage;
          p.recentFailed.push(item);
          if (p.recentFailed.length > 20) p.recentFailed.shift();
        }
        if (f) {
          p.files.delete(jf.id);
          this.inFlight--;
          this.membershipRev++;
        } else if (p.unlisted > 0) {
          p.unlisted--;
          this.inFlight--;
        }
        const left = p.files.size + p.unlisted;
        // A stall (the hub reporting a file without progress) is news of silence, not a sign
        // of life: no heartbeat, and an offline pipeline stays offline (as state.c).
        if (ev.type === 'file:failed' && jf.error?.kind === 'stalled') {
          if (p.status === 'running' && left === 0) p.status = 'idle';
          break;
        }
        p.lastHeartbeat = ts;
        if (p.status === 'running' && left === 0) p.status = 'idle';
        else if (p.status === 'offline') p.status = left ? 'running' : 'idle';
        break;
      }
      case 'file:deleted': {
        // Gone from the source: out of the lists (as the hub's state does), counts kept.
        if (!jf) break;
        if (p.files.delete(jf.id)) {
          this.inFlight--;
          this.membershipRev++;
        }
        p.recentCompleted = p.recentCompleted.filter((r) => r.file_id !== jf.id);
        p.recentFailed = p.recentFailed.filter((r) => r.file_id !== jf.id);
        p.lastHeartbeat = ts;
        if (p.status === 'running' && p.files.size === 0) p.status = 'idle';
        break;
      }
    }
  }

  /** Completions and failures per bucket for the last 5 minutes, oldest first. */
  activity(p: PipelineState, now: number): { completed: number[]; failed: number[] } {
    const nowSlot = Math.floor(now / BUCKET_MS);
    const completed: number[] = [];
    const failed: number[] = [];
    for (let s = nowSlot - BUCKETS + 1; s <= nowSlot; s++) {
      const b = p.buckets.get(s);
      completed.push(b?.completed ?? 0);
      failed.push(b?.failed ?? 0);
    }
    return { completed, failed };
  }
}

/** A snapshot's recent completions as the start of a pipeline's completed list. */
function completedFromRecent(pipelineId: string, recent: readonly RecentFile[], inFlight: Map<string, FileState>): Map<string, CompletedFile> {
  const out = new Map<string, CompletedFile>();
  for (const r of [...recent].sort((a, b) => a.event_id - b.event_id)) {
    if (inFlight.has(r.file_id)) continue; // processing again since
    out.delete(r.file_id);
    out.set(r.file_id, {
      id: r.file_id,
      name: r.name || r.file_id,
      pipelineId,
      eventId: r.event_id,
      completedAt: Date.parse(r.ts),
      durationMs: r.duration_ms,
      chunks: r.chunks ?? null,
    });
  }
  return out;
}

/** "late": the heartbeat is 1.5 intervals overdue but the hub has not said offline yet. */
export function isLate(p: PipelineState, serverNow: number): boolean {
  return p.status !== 'offline' && p.lastHeartbeat !== null && serverNow - p.lastHeartbeat > 1500 * p.heartbeatInterval;
}
