// The connection manager: one object that keeps a viewer's picture of the hub current over
// whichever path works. It runs stock socket.io-client 4.x on /pipeline (reconnection with
// backoff; the hub's connection-state recovery replays what a short drop missed), measures
// health (transport, round trip via the hub's `ping`, reconnects, last event), and follows the
// state machine of fallback.ts to move to the HTTP path (/api/rag-status with `since` and
// long-poll) and back. Consumers see one ordered stream: a `snapshot` (a baseline), then
// `events` whose ids only grow: an event is delivered once, whichever path brought it, and a
// gap left by a switch of path is filled from `?since=` before newer events are delivered.

import { io, type Socket } from 'socket.io-client';
import {
  isRagEvent,
  isSnapshot,
  type Deltas,
  type HubBeat,
  type RagEvent,
  type Snapshot,
  type SocketInfo,
} from './events.js';
import type { Span } from './model.js';
import {
  DEFAULT_FALLBACK,
  badgeOf,
  initialState,
  step,
  type Badge,
  type Effect,
  type FallbackConfig,
  type FallbackInput,
  type FallbackReason,
  type FallbackState,
  type Transport,
} from './fallback.js';
import { subscriptionsFor, tokenPipelines, type Subscription } from './token.js';

export type { Subscription } from './token.js';

export interface ClientOptions extends Partial<FallbackConfig> {
  /** Base URL of the hub (default: the page's origin). */
  url?: string;
  /** A JWT (auth contract): Socket.IO CONNECT auth {token}, HTTP Authorization: Bearer. */
  token?: string | null;
  /** What to watch: one pipeline, one pipeline type, or everything (default). */
  subscribe?: Subscription;
  /** Stable id for /api/socket/info's rollout decision (default: random, kept by the caller). */
  clientId?: string;
  /** Seconds an HTTP long-poll may be held (default 25). */
  pollWaitS?: number;
  /** How often the round trip is measured (default 5000 ms). */
  pingIntervalMs?: number;
  /** Socket.IO transports to offer (default: what /api/socket/info allows). */
  transports?: Transport[];

  // The switches by the names the migration guide uses (its feature flags and its
  // SocketFallbackHandler options); each also has a NEXT_PUBLIC_* variable (see optionsFromEnv).
  // An option given here wins over the variable; the variable over the default.

  /** false: HTTP only, the socket is never opened (alias of socketEnabled). Default true. */
  websocketEnabled?: boolean;
  /** false: never fall back to HTTP on failures (alias of fallbackEnabled). Default true. */
  enablePolling?: boolean;
  /**
   * On the HTTP path, ask `/api/rag-status?since=` every this many ms (plain polls, the
   * guide's `pollingInterval: 10000`) instead of holding a long-poll. Default: long-poll.
   */
  pollingInterval?: number;
  /** Failed socket attempts in a row before HTTP takes over (alias of maxSocketFailures). */
  maxFailures?: number;
}

/** Env values the guide's flags take: "true"/"1" and "false"/"0"; anything else is unset. */
function flag(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const t = v.trim().toLowerCase();
  return t === 'true' || t === '1' ? true : t === 'false' || t === '0' ? false : undefined;
}

/**
 * The client options the guide's environment sets: NEXT_PUBLIC_WEBSOCKET_ENABLED
 * (websocketEnabled) and NEXT_PUBLIC_FALLBACK_ENABLED (fallbackEnabled), "true" or "false".
 * `env` defaults to what the bundler inlined: Next.js replaces `process.env.NEXT_PUBLIC_*`
 * written out literally, as below; elsewhere (no `process`) nothing is set.
 */
export function optionsFromEnv(env?: Record<string, string | undefined>): Partial<ClientOptions> {
  let ws: string | undefined;
  let fb: string | undefined;
  if (env) {
    ws = env.NEXT_PUBLIC_WEBSOCKET_ENABLED;
    fb = env.NEXT_PUBLIC_FALLBACK_ENABLED;
  } else {
    try {
      ws = process.env.NEXT_PUBLIC_WEBSOCKET_ENABLED;
    } catch {
      /* no process in this page */
    }
    try {
      fb = process.env.NEXT_PUBLIC_FALLBACK_ENABLED;
    } catch {
      /* no process in this page */
    }
  }
  const out: Partial<ClientOptions> = {};
  const w = flag(ws);
  const f = flag(fb);
  if (w !== undefined) out.socketEnabled = w;
  if (f !== undefined) out.fallbackEnabled = f;
  return out;
}

/** The fallback config of options: the guide's names (aliases) and its variables folded in. */
export function fallbackConfigOf(options: ClientOptions, env: Partial<ClientOptions> = optionsFromEnv()): FallbackConfig {
  const pick = <T,>(...vs: (T | undefined)[]): T | undefined => vs.find((v) => v !== undefined);
  return {
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_FALLBACK.connectTimeoutMs,
    maxSocketFailures: Math.max(1, pick(options.maxSocketFailures, options.maxFailures) ?? DEFAULT_FALLBACK.maxSocketFailures),
    retrySocketMinMs: options.retrySocketMinMs ?? DEFAULT_FALLBACK.retrySocketMinMs,
    retrySocketMaxMs: options.retrySocketMaxMs ?? DEFAULT_FALLBACK.retrySocketMaxMs,
    socketEnabled: pick(options.socketEnabled, options.websocketEnabled, env.socketEnabled) ?? DEFAULT_FALLBACK.socketEnabled,
    fallbackEnabled: pick(options.fallbackEnabled, options.enablePolling, env.fallbackEnabled) ?? DEFAULT_FALLBACK.fallbackEnabled,
  };
}

export interface Health {
  /** The path in use; 'connecting' until `synced`, even when a path is already up. */
  badge: Badge;
  mode: 'socket' | 'http';
  transport: Transport | null;
  connected: boolean;
  /**
   * True once a snapshot has been applied (the subscribe ack, or /api/rag-status on HTTP):
   * from then on the picture is the hub's. False at start and again after setToken until the
   * new token's snapshot.
   */
  synced: boolean;
  /** Round trip of the last `ping` (socket) or /health request (HTTP), ms. */
  rttMs: number | null;
  reconnects: number;
  fallbacks: number;
  /** Date.now() when the last event arrived, or null. */
  lastEventAt: number | null;
  /** Newest event id seen (the version of the picture). */
  version: number;
  /** Set when the server refused the token ("unauthorized: ..." / "forbidden: ..."). */
  authError: string | null;
  /** The server's clock minus ours, ms (from snapshots and hub heartbeats). */
  clockSkewMs: number;
}

export type EventSource = 'socket' | 'http' | 'gap';

export interface ClientListeners {
  snapshot: (s: Snapshot) => void;
  /**
   * New events in id order. `span`, when given, says the batch holds every event this viewer
   * may see in (span.since, span.through] (an HTTP answer, or a gap read from `?since=`):
   * ids it skips belong to pipelines the token or the subscription leaves out. A batch may be
   * empty when only the span moved the version on.
   */
  events: (events: RagEvent[], source: EventSource, span?: Span) => void;
  health: (h: Health) => void;
  beat: (b: HubBeat) => void;
}

type Listener<K extends keyof ClientListeners> = ClientListeners[K];

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function isAuthMessage(m: unknown): m is string {
  return typeof m === 'string' && /^(unauthorized|forbidden)/i.test(m);
}

export class RagPulseClient {
  readonly options: Required<Pick<ClientOptions, 'url' | 'pollWaitS' | 'pingIntervalMs'>> & ClientOptions;
  private cfg: FallbackConfig;
  private st: FallbackState;
  private socket: Socket | null = null;
  private socketGen = 0;
  private httpAbort: AbortController | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private listeners: { [K in keyof ClientListeners]: Set<Listener<K>> } = {
    snapshot: new Set(),
    events: new Set(),
    health: new Set(),
    beat: new Set(),
  };
  /** Newest event id delivered; -1 until the first snapshot. */
  /** A switch to HTTP not yet reported to the hub (X-RagPulse-Fallback on the next rag-status). */
  private unreported: FallbackReason | null = null;
  private lastId = -1;
  /** A snapshot has been applied since start (or since the last setToken). */
  private synced = false;
  /** Socket events held while a gap is being filled over HTTP. */
  private held: RagEvent[] | null = null;
  private info: SocketInfo | null = null;
  private health: Health;
  private stopped = true;
  /** Counts start() calls (see start). */
  private startGen = 0;
  private machineStarted = false;
  private token: string | null;

  constructor(options: ClientOptions = {}) {
    this.options = {
      url: options.url ?? (typeof location !== 'undefined' ? location.origin : 'http://127.0.0.1:8103'),
      pollWaitS: 25,
      pingIntervalMs: 5000,
      ...options,
    };
    this.cfg = fallbackConfigOf(options);
    this.token = options.token ?? null;
    this.st = initialState(this.cfg);
    this.health = {
      badge: 'connecting',
      mode: 'socket',
      transport: null,
      connected: false,
      synced: false,
      rttMs: null,
      reconnects: 0,
      fallbacks: 0,
      lastEventAt: null,
      version: -1,
      authError: null,
      clockSkewMs: 0,
    };
  }

  on<K extends keyof ClientListeners>(event: K, fn: Listener<K>): () => void {
    (this.listeners[event] as Set<Listener<K>>).add(fn);
    return () => (this.listeners[event] as Set<Listener<K>>).delete(fn);
  }

  /** The fallback rules in force (options, the guide's aliases and variables, defaults). */
  get fallbackConfig(): Readonly<FallbackConfig> {
    return this.cfg;
  }

  getHealth(): Health {
    return this.health;
  }

  /** The pipelines the current token lists (null: all). */
  visiblePipelines(): string[] | null {
    return tokenPipelines(this.token);
  }

  /** What `subscribe` asks for with the current token (see token.ts). */
  subscriptions(): Subscription[] {
    return subscriptionsFor(this.token, this.options.subscribe);
  }

  hasToken(): boolean {
    return this.token !== null && this.token !== '';
  }

  /**
   * GET a per-pipeline API (`/api/failures`, …) the way the token may: once for all, or once
   * per listed pipeline with `?pipeline=` (what a limited token must give); results in order.
   */
  async fetchEachPipeline<T>(path: string, signal?: AbortSignal): Promise<T[]> {
    const ids = this.visiblePipelines();
    if (ids === null) return [await this.fetchJson<T>(path, signal)];
    const sep = path.includes('?') ? '&' : '?';
    return Promise.all(ids.map((id) => this.fetchJson<T>(`${path}${sep}pipeline=${encodeURIComponent(id)}`, signal)));
  }

  /** Starts connecting (socket first, unless /api/socket/info says HTTP). */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    // A stop() and start() while /api/socket/info is asked (React strict mode mounts, unmounts
    // and mounts again at once) leave two of these awaiting: only the newest may go on.
    const gen = ++this.startGen;
    await this.refreshSocketInfo();
    if (this.stopped || gen !== this.startGen) return;
    this.machineStarted = true;
    this.dispatch({ type: 'start' });
    this.pingTimer = setInterval(() => void this.measureRtt(), this.options.pingIntervalMs);
    void this.measureRtt();
  }

  stop(): void {
    this.stopped = true;
    this.machineStarted = false;
    this.closeSocket();
    this.stopHttp();
    for (const t of [this.connectTimer, this.retryTimer]) if (t) clearTimeout(t);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.connectTimer = this.retryTimer = this.pingTimer = null;
  }

  /** Uses a new token (or none) from now on and reconnects with it. */
  setToken(token: string | null): void {
    this.token = token;
    this.lastId = -1; // another token may see other pipelines: start from a new baseline
    this.synced = false;
    if (this.stopped) return;
    this.dispatch({ type: 'token' });
  }

  /** GET a JSON API path with the token (and extra headers); throws HttpError on a non-2xx answer. */
  async fetchJson<T>(path: string, signal?: AbortSignal, extra?: Record<string, string>): Promise<T> {
    const headers: Record<string, string> = { ...extra, accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const init: RequestInit = { headers, cache: 'no-store' };
    if (signal) init.signal = signal;
    const r = await fetch(new URL(path, this.options.url), init);
    if (!r.ok) {
      let msg = `${r.status} ${r.statusText}`;
      try {
        const body = (await r.json()) as { error?: string; message?: string };
        msg = body.error ?? body.message ?? msg;
      } catch {
        /* not JSON */
      }
      if ((r.status === 401 || r.status === 403) && !isAuthMessage(msg))
        msg = `${r.status === 401 ? 'unauthorized' : 'forbidden'}: ${msg}`;
      throw new HttpError(r.status, msg);
    }
    return (await r.json()) as T;
  }

  // ---- state machine plumbing ----

  private dispatch(input: FallbackInput): void {
    if (this.stopped) return;
    const { state, effects } = step(this.st, input, this.cfg);
    if (state.fallbacks > this.st.fallbacks) this.unreported = state.fallbackReason;
    this.st = state;
    for (const e of effects) this.run(e);
    this.publishHealth();
  }

  private run(e: Effect): void {
    switch (e.type) {
      case 'socket-open':
        this.openSocket();
        break;
      case 'socket-close':
        this.closeSocket();
        break;
      case 'http-start':
        this.startHttp();
        break;
      case 'http-stop':
        this.stopHttp();
        break;
      case 'arm-connect-timer':
        if (this.connectTimer) clearTimeout(this.connectTimer);
        this.connectTimer = setTimeout(() => {
          this.connectTimer = null;
          this.dispatch({ type: 'connect-timeout' });
        }, e.ms);
        break;
      case 'clear-connect-timer':
        if (this.connectTimer) clearTimeout(this.connectTimer);
        this.connectTimer = null;
        break;
      case 'arm-retry-timer':
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(async () => {
          this.retryTimer = null;
          await this.refreshSocketInfo();
          this.dispatch({ type: 'retry-socket' });
        }, e.ms);
        break;
      case 'clear-retry-timer':
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = null;
        break;
    }
  }

  private publishHealth(): void {
    const path = badgeOf(this.st);
    const live = path === 'websocket' || path === 'polling' || path === 'http';
    const h: Health = {
      ...this.health,
      badge: live && !this.synced ? 'connecting' : path,
      synced: this.synced,
      mode: this.st.mode,
      transport: this.st.socket === 'connected' ? this.st.transport : null,
      connected: this.st.socket === 'connected' || (this.st.mode === 'http' && this.st.http === 'ok'),
      fallbacks: this.st.fallbacks,
      version: this.lastId,
      authError: this.st.authError,
    };
    const changed = (Object.keys(h) as (keyof Health)[]).some((k) => h[k] !== this.health[k]);
    this.health = h;
    if (changed) for (const fn of this.listeners.health) fn(h);
  }

  private async refreshSocketInfo(): Promise<void> {
    try {
      const q = this.options.clientId ? `?client_id=${encodeURIComponent(this.options.clientId)}` : '';
      this.info = await this.fetchJson<SocketInfo>(`/api/socket/info${q}`);
      const mode: 'websocket' | 'polling' | 'http' = this.info.mode ?? (this.info.websocket_available ? 'websocket' : 'polling');
      if (this.machineStarted) this.dispatch({ type: 'socket-info', mode });
      else this.st = { ...this.st, socketAllowed: this.cfg.socketEnabled && mode !== 'http' };
    } catch (e) {
      if (e instanceof HttpError && isAuthMessage(e.message)) this.dispatch({ type: 'http-error', auth: e.message });
      /* otherwise the socket attempt itself will tell */
    }
  }

  // ---- the socket path ----

  private transports(): Transport[] {
    if (this.options.transports) return this.options.transports;
    const allowed = this.info?.transports ?? ['polling', 'websocket'];
    const wantWs = this.info?.mode !== 'polling';
    return allowed.filter((t) => t === 'polling' || wantWs) as Transport[];
  }

  private openSocket(): void {
    this.closeSocket();
    const gen = ++this.socketGen;
    const url = new URL('/pipeline', this.options.url).toString();
    const socket = io(url, {
      forceNew: true,
      transports: this.transports(),
      path: this.info?.path ?? '/socket.io/',
      auth: this.token ? { token: this.token } : {},
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      timeout: this.cfg.connectTimeoutMs,
    });
    this.socket = socket;
    const live = () => gen === this.socketGen;
    socket.on('connect', () => {
      if (!live()) return;
      const transport = socket.io.engine?.transport?.name as Transport | undefined;
      socket.io.engine?.on('upgrade', (t: { name: string }) => {
        if (live()) this.dispatch({ type: 'socket-transport', transport: t.name as Transport });
      });
      this.dispatch({ type: 'socket-connected', transport: transport ?? 'polling' });
      void this.subscribe(socket, gen);
      void this.measureRtt();
    });
    socket.on('connect_error', (err: Error & { data?: { message?: string } }) => {
      if (!live()) return;
      const msg = err.data?.message ?? err.message;
      this.dispatch({ type: 'socket-error', ...(isAuthMessage(msg) ? { auth: msg } : {}) });
    });
    socket.on('disconnect', () => {
      if (live()) this.dispatch({ type: 'socket-disconnected' });
    });
    socket.io.on('reconnect', () => {
      if (!live()) return;
      this.health = { ...this.health, reconnects: this.health.reconnects + 1 };
      for (const fn of this.listeners.health) fn(this.health);
    });
    socket.onAny((name: string, ...args: unknown[]) => {
      if (!live()) return;
      const ev = args[0];
      // The hub's beat is hub:heartbeat; a hub with --legacy-events also sends it as
      // heartbeat with source 'hub' (a pipeline's heartbeat is an event: id, pipeline_id).
      const hubBeat = name === 'hub:heartbeat' || (name === 'heartbeat' && (ev as HubBeat | null)?.source === 'hub');
      if (hubBeat && typeof ev === 'object' && ev) {
        this.onBeat(ev as HubBeat);
        return;
      }
      if (isRagEvent(ev)) this.onSocketEvent(ev);
    });
  }

  private closeSocket(): void {
    this.socketGen++;
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.io.removeAllListeners();
      this.socket.disconnect();
      this.socket = null;
    }
    this.held = null;
  }

  /**
   * Subscribes (once per pipeline for a limited token); each ack is a snapshot as of the
   * version when it was taken. They merge into one baseline as of the oldest of them: every
   * event after it for a subscribed pipeline arrives live (held meanwhile), and one already in
   * a later pipeline's snapshot was sent before that subscription, so it is not applied twice.
   * A reconnect fills the gap from `?since=` up to the newest of them before going live.
   */
  private async subscribe(socket: Socket, gen: number): Promise<void> {
    this.held = [];
    const subs = this.subscriptions();
    if (subs.length === 0) {
      this.dispatch({ type: 'socket-error', auth: 'forbidden: this token lists no pipeline' });
      return;
    }
    let acks: unknown[];
    try {
      acks = await Promise.all(subs.map((sub) => socket.timeout(this.cfg.connectTimeoutMs).emitWithAck('subscribe', sub)));
    } catch {
      if (gen === this.socketGen) socket.disconnect().connect(); // no ack: start this connection over
      return;
    }
    if (gen !== this.socketGen) return;
    const refused = acks.find((a) => !isSnapshot(a));
    if (refused !== undefined) {
      const err = (refused as { error?: string } | undefined)?.error ?? 'subscribe refused';
      this.dispatch({ type: 'socket-error', ...(isAuthMessage(err) ? { auth: err } : {}) });
      return;
    }
    const snaps = acks as Snapshot[];
    const byId = new Map<string, Snapshot['pipelines'][number]>();
    for (const a of snaps) for (const p of a.pipelines) if (!byId.has(p.id)) byId.set(p.id, p);
    const snap: Snapshot = {
      version: Math.min(...snaps.map((a) => a.version)),
      server_time: snaps[0]!.server_time,
      pipelines: [...byId.values()],
    };
    await this.catchUp(snap, Math.max(...snaps.map((a) => a.version)), () => gen === this.socketGen);
    if (gen !== this.socketGen) return;
    const held = this.held ?? [];
    this.held = null;
    this.deliver(held, 'socket');
  }

  private onSocketEvent(ev: RagEvent): void {
    if (this.held) this.held.push(ev);
    else this.deliver([ev], 'socket');
  }

  private onBeat(b: HubBeat): void {
    this.health = { ...this.health, clockSkewMs: Date.parse(b.server_time) - Date.now() };
    for (const fn of this.listeners.beat) fn(b);
  }

  /**
   * Brings the picture up to a snapshot: the first time (or when the history no longer
   * reaches back) the snapshot is the baseline; otherwise the events between what we have and
   * `target` (the newest version a subscription's snapshot was taken at) are read from
   * `?since=` so that none is skipped.
   */
  private async catchUp(snap: Snapshot, target: number, live: () => boolean): Promise<void> {
    if (this.lastId < 0) {
      this.baseline(snap);
      return;
    }
    let since = this.lastId;
    while (since < target && live()) {
      let r: Deltas | Snapshot;
      try {
        r = await this.fetchJson<Deltas | Snapshot>(`/api/rag-status?since=${since}`);
      } catch {
        this.baseline(snap); // cannot fill the gap: take the snapshot as the new baseline
        return;
      }
      if (!live()) return;
      if (isSnapshot(r)) {
        this.baseline(r);
        return;
      }
      this.deliver(r.events, 'gap', { since, through: r.version });
      if (r.version <= since) break;
      since = r.version;
    }
  }

  private baseline(snap: Snapshot): void {
    const sub = this.options.subscribe;
    const pipelines = snap.pipelines.filter(
      (p) => (!sub?.pipeline_id || p.id === sub.pipeline_id) && (!sub?.pipeline_type || p.type === sub.pipeline_type),
    );
    this.lastId = snap.version;
    this.synced = true;
    this.health = { ...this.health, clockSkewMs: Date.parse(snap.server_time) - Date.now() };
    const s = { ...snap, pipelines };
    for (const fn of this.listeners.snapshot) fn(s);
    this.publishHealth();
  }

  private matches(ev: RagEvent): boolean {
    const sub = this.options.subscribe;
    return (!sub?.pipeline_id || ev.pipeline_id === sub.pipeline_id) && (!sub?.pipeline_type || ev.pipeline_type === sub.pipeline_type);
  }

  /**
   * The one way events reach consumers: in id order, each id once. With a span (see
   * ClientListeners.events) the version moves on to span.through, and consumers hear of it
   * even when no event of theirs came with it, so their version follows ours.
   */
  private deliver(events: RagEvent[], source: EventSource, span?: Span): void {
    const before = this.lastId;
    const fresh: RagEvent[] = [];
    for (const ev of events) {
      if (ev.id <= this.lastId) continue;
      this.lastId = ev.id;
      if (this.matches(ev)) fresh.push(ev);
    }
    if (span !== undefined && span.through > this.lastId) this.lastId = span.through;
    const moved = span !== undefined && this.lastId > before;
    if (fresh.length === 0 && !moved) return;
    if (fresh.length) this.health = { ...this.health, lastEventAt: Date.now() };
    for (const fn of this.listeners.events) fn(fresh, source, span);
    this.publishHealth();
  }

  // ---- the HTTP path ----

  private startHttp(): void {
    this.stopHttp();
    const ctl = new AbortController();
    this.httpAbort = ctl;
    void this.httpLoop(ctl.signal);
  }

  private stopHttp(): void {
    this.httpAbort?.abort();
    this.httpAbort = null;
  }

  /**
   * The header that reports the last switch to HTTP, until the hub has answered a request
   * that carried it (an answer of any status: the hub has counted it; a network failure
   * leaves it for the next request).
   */
  private fallbackHeader(): Record<string, string> | undefined {
    return this.unreported ? { 'x-ragpulse-fallback': this.unreported } : undefined;
  }

  private reported(e?: unknown): void {
    if (e === undefined || e instanceof HttpError) this.unreported = null;
  }

  private async httpLoop(signal: AbortSignal): Promise<void> {
    let backoff = 500;
    let more = false;
    while (!signal.aborted) {
      try {
        if (this.lastId < 0) {
          const snap = await this.fetchJson<Snapshot>('/api/rag-status', signal, this.fallbackHeader());
          this.reported();
          if (signal.aborted) return;
          this.baseline(snap);
        } else {
          const interval = this.options.pollingInterval;
          const wait: number = more || interval !== undefined ? 0 : this.options.pollWaitS;
          const since = this.lastId;
          const r: Deltas | Snapshot = await this.fetchJson<Deltas | Snapshot>(
            `/api/rag-status?since=${since}&wait=${wait}`,
            signal,
            this.fallbackHeader(),
          );
          this.reported();
          if (signal.aborted) return;
          if (isSnapshot(r)) {
            this.baseline(r);
            more = false;
          } else {
            // The answer holds every event this token may see up to r.version (the last one
            // read when `more`): the version moves on through the model, so ids of other
            // pipelines are not counted as gaps.
            this.deliver(r.events, 'http', { since, through: r.version });
            more = r.more === true;
          }
        }
        backoff = 500;
        this.dispatch({ type: 'http-ok' });
        // Plain polling (pollingInterval): the next question after the interval, unless the
        // hub said there is more to read now.
        if (this.options.pollingInterval !== undefined && !more) await sleep(Math.max(0, this.options.pollingInterval), signal);
      } catch (e) {
        this.reported(e);
        if (signal.aborted) return;
        if (e instanceof HttpError && isAuthMessage(e.message)) {
          this.dispatch({ type: 'http-error', auth: e.message });
          return;
        }
        this.dispatch({ type: 'http-error' });
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }

  // ---- health ----

  private async measureRtt(): Promise<void> {
    if (this.stopped) return;
    const t0 = performance.now();
    try {
      if (this.st.mode === 'socket' && this.st.socket === 'connected' && this.socket) {
        await this.socket.timeout(5000).emitWithAck('ping', {});
      } else if (this.st.mode === 'http') {
        const headers: Record<string, string> = {};
        if (this.token) headers.authorization = `Bearer ${this.token}`;
        const r = await fetch(new URL('/health', this.options.url), { headers, cache: 'no-store' });
        await r.arrayBuffer();
      } else {
        return;
      }
      this.health = { ...this.health, rttMs: Math.round((performance.now() - t0) * 10) / 10 };
      for (const fn of this.listeners.health) fn(this.health);
    } catch {
      /* the state machine hears about failures from the paths themselves */
    }
  }
}
