// Typed ragpulse events and payloads. The runtime lists below (EVENT_TYPES, PIPELINE_STATUSES,
// EVENT_FIELDS, FILE_FIELDS, ERROR_FIELDS) are what the types are derived from, and the unit
// test test/schema.test.ts checks them against docs/events.schema.json, so the two cannot
// drift apart silently. Accepted events come back from the hub normalised: `id` and `ts` first,
// file.error always an object.

export const EVENT_TYPES = [
  'pipeline:online',
  'pipeline:offline',
  'file:processing',
  'file:progress',
  'file:completed',
  'file:failed',
  'file:deleted',
  'status:update',
  'heartbeat',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const FILE_EVENT_TYPES = ['file:processing', 'file:progress', 'file:completed', 'file:failed', 'file:deleted'] as const;
export type FileEventType = (typeof FILE_EVENT_TYPES)[number];

export const PIPELINE_STATUSES = ['online', 'offline', 'running', 'idle', 'error'] as const;
export type PipelineStatus = (typeof PIPELINE_STATUSES)[number];

/** Top-level fields of an event as a producer sends it (schema order). */
export const EVENT_FIELDS = [
  'type',
  'pipeline_id',
  'pipeline_type',
  'status',
  'message',
  'heartbeat_interval',
  'files_total',
  'files_pending',
  'meta',
  'file',
] as const;
export const FILE_FIELDS = [
  'id',
  'name',
  'size',
  'mime_type',
  'progress',
  'stage',
  'chunks',
  'attempt',
  'hash',
  'error',
] as const;
export const ERROR_FIELDS = ['message', 'kind', 'code', 'retryable'] as const;

export interface FileError {
  message: string;
  kind?: string;
  code?: number | string;
  retryable?: boolean;
}

/** `file` as a producer may send it. */
export interface FileInput {
  id: string;
  name: string;
  size?: number;
  mime_type?: string;
  progress?: number;
  stage?: string;
  chunks?: number;
  attempt?: number;
  hash?: string;
  error?: string | FileError;
}

interface EventBase<T extends EventType> {
  type: T;
  pipeline_id: string;
  pipeline_type: string;
  message?: string;
  heartbeat_interval?: number;
  files_total?: number;
  files_pending?: number;
  meta?: Record<string, unknown>;
}

/** What a producer sends (POST /api/events or an event on /pipeline). */
export type EventInput =
  | (EventBase<'pipeline:online' | 'pipeline:offline' | 'heartbeat'> & { file?: never; status?: never })
  | (EventBase<'status:update'> & { status: PipelineStatus; file?: never })
  | (EventBase<'file:processing' | 'file:completed' | 'file:deleted'> & { file: Omit<FileInput, 'error'>; status?: never })
  | (EventBase<'file:progress'> & { file: Omit<FileInput, 'error'> & { progress: number }; status?: never })
  | (EventBase<'file:failed'> & { file: FileInput & { error: string | FileError }; status?: never });

/** `file` as the hub re-emits it: error always an object. */
export interface EventFile extends Omit<FileInput, 'error'> {
  error?: FileError;
}

/** A normalised event as viewers receive it. */
export interface RagEvent {
  id: number;
  ts: string;
  type: EventType;
  pipeline_id: string;
  pipeline_type: string;
  status?: PipelineStatus;
  message?: string;
  heartbeat_interval?: number;
  files_total?: number;
  files_pending?: number;
  meta?: Record<string, unknown>;
  file?: EventFile;
}

// ---- snapshots and HTTP payloads ----

export interface FileInFlight {
  id: string;
  name: string;
  size?: number;
  mime_type?: string;
  hash?: string;
  progress: number;
  stage?: string;
  chunks?: number;
  attempt: number;
  started_at: string;
  stage_started_at: string;
  last_progress_at: string;
}

export interface RecentFile {
  file_id: string;
  name: string;
  event_id: number;
  ts: string;
  duration_ms: number;
  chunks?: number;
  error?: FileError;
  attempt?: number;
  stage?: string;
}

export interface PipelineSnapshot {
  id: string;
  type: string;
  status: PipelineStatus;
  heartbeat_interval: number;
  last_heartbeat: string | null;
  last_event_id: number;
  last_event_at: string | null;
  counters: { processed: number; failed: number; in_flight: number; chunks: number };
  files_total: number | null;
  files_pending: number | null;
  stages: Record<string, number>;
  activity: { bucket_seconds: number; completed: number[]; failed: number[]; chunks: number[] };
  recent_completed: RecentFile[];
  recent_failed: RecentFile[];
  heartbeat_age_ms: number | null;
  message?: string;
  /** At most a page of the files in flight, oldest first (counters.in_flight: how many). */
  files: FileInFlight[];
  /** More files are in flight than `files` lists; page on with after = files_next. */
  files_more?: boolean;
  files_next?: string;
  late: boolean;
}

/** GET /api/rag-status, and the ack of `subscribe`. */
export interface Snapshot {
  version: number;
  server_time: string;
  pipelines: PipelineSnapshot[];
  ok?: boolean;
  room?: string;
  reset?: boolean;
  error?: string;
}

/** GET /api/rag-status?since=ID. A `reset` answer is a Snapshot instead. */
export interface Deltas {
  version: number;
  since: number;
  events: RagEvent[];
  more?: boolean;
}

export interface FailureGroup {
  pipeline_id: string;
  cause: string;
  sample: string;
  count: number;
  first_seen: string;
  last_seen: string;
  kind: string | null;
  files: { file_id: string; name: string; event_id: number; ts: string }[];
}

export interface SocketInfo {
  websocket_available: boolean;
  /** A base URL io() takes (ws:// or wss://, no path); null without a Host header. */
  websocket_url: string | null;
  websocket_path: string;
  websocket_namespaces: string[];
  fallback_mode: boolean;
  path: string;
  namespaces: string[];
  transports: ('polling' | 'websocket')[];
  ping_interval: number;
  ping_timeout: number;
  rollout_percent: number;
  client_id?: string;
  mode?: 'websocket' | 'polling' | 'http';
}

/** The hub's own beat to viewers, `hub:heartbeat` (no event id; also `heartbeat` under --legacy-events). */
export interface HubBeat {
  source: 'hub';
  server_time: string;
  version: number;
  pipelines: number;
  online: number;
  files_in_flight: number;
  connections: number;
}

export function isRagEvent(v: unknown): v is RagEvent {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.id === 'number' &&
    typeof o.type === 'string' &&
    (EVENT_TYPES as readonly string[]).includes(o.type) &&
    typeof o.pipeline_id === 'string' &&
    typeof o.pipeline_type === 'string'
  );
}

export function isSnapshot(v: unknown): v is Snapshot {
  return typeof v === 'object' && v !== null && Array.isArray((v as Snapshot).pipelines) && typeof (v as Snapshot).version === 'number';
}
