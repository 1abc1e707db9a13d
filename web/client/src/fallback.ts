// The connection state machine: which path delivers data (the Socket.IO socket or the HTTP
// long-poll fallback), when to give up on the socket, when to try it again. It is pure: `step`
// takes a state and an input and returns the next state plus the effects the connection
// manager must carry out (open/close the socket, start/stop the HTTP loop, arm timers). That
// keeps every transition unit-testable without a network (test/fallback.test.ts).

export type Mode = 'socket' | 'http';
export type Transport = 'polling' | 'websocket';
/** What a badge shows: the path in use, or why there is none. */
export type Badge = 'connecting' | 'websocket' | 'polling' | 'http' | 'offline' | 'unauthorized';
/**
 * Why the data moved from the socket to HTTP: the socket did not connect in time, it failed
 * maxSocketFailures times, or the hub put this client outside its websocket rollout. The
 * client reports it to the hub (X-RagPulse-Fallback), which counts switches by reason.
 */
export type FallbackReason = 'connect_timeout' | 'socket_errors' | 'rollout';

export interface FallbackConfig {
  /** The socket must connect within this long, else the HTTP path takes over. */
  connectTimeoutMs: number;
  /** This many failed socket attempts in a row also hand over to HTTP. */
  maxSocketFailures: number;
  /** While on HTTP, the socket is tried again after this delay, doubling up to the max. */
  retrySocketMinMs: number;
  retrySocketMaxMs: number;
  /**
   * false: the socket is never opened, HTTP is the only path (the documents'
   * NEXT_PUBLIC_WEBSOCKET_ENABLED=false). Default true.
   */
  socketEnabled: boolean;
  /**
   * false: failures never hand over to HTTP; the socket keeps reconnecting on its own (the
   * documents' NEXT_PUBLIC_FALLBACK_ENABLED=false, `enablePolling: false`). A hub that puts
   * this client outside its websocket rollout still sends it to HTTP. Default true.
   */
  fallbackEnabled: boolean;
}

export const DEFAULT_FALLBACK: FallbackConfig = {
  connectTimeoutMs: 5000,
  maxSocketFailures: 3,
  retrySocketMinMs: 3000,
  retrySocketMaxMs: 30000,
  socketEnabled: true,
  fallbackEnabled: true,
};

export interface FallbackState {
  mode: Mode;
  socket: 'idle' | 'connecting' | 'connected';
  transport: Transport | null;
  http: 'idle' | 'ok' | 'failing';
  socketFailures: number;
  retryDelayMs: number;
  everConnected: boolean;
  /** Set by /api/socket/info: this client is outside the websocket rollout. */
  socketAllowed: boolean;
  /** "unauthorized: ..." / "forbidden: ..." from the server; cleared by a new token. */
  authError: string | null;
  /** How many times the HTTP fallback took over (for the health monitor). */
  fallbacks: number;
  /** Why it last took over (null until it has). */
  fallbackReason: FallbackReason | null;
}

export type FallbackInput =
  | { type: 'start' }
  | { type: 'socket-info'; mode: 'websocket' | 'polling' | 'http' }
  | { type: 'socket-connected'; transport: Transport }
  | { type: 'socket-transport'; transport: Transport }
  | { type: 'socket-error'; auth?: string }
  | { type: 'socket-disconnected' }
  | { type: 'connect-timeout' }
  | { type: 'retry-socket' }
  | { type: 'http-ok' }
  | { type: 'http-error'; auth?: string }
  | { type: 'token' };

export type Effect =
  | { type: 'socket-open' }
  | { type: 'socket-close' }
  | { type: 'http-start' }
  | { type: 'http-stop' }
  | { type: 'arm-connect-timer'; ms: number }
  | { type: 'clear-connect-timer' }
  | { type: 'arm-retry-timer'; ms: number }
  | { type: 'clear-retry-timer' };

export function initialState(cfg: FallbackConfig = DEFAULT_FALLBACK): FallbackState {
  return {
    mode: 'socket',
    socket: 'idle',
    transport: null,
    http: 'idle',
    socketFailures: 0,
    retryDelayMs: cfg.retrySocketMinMs,
    everConnected: false,
    socketAllowed: cfg.socketEnabled,
    authError: null,
    fallbacks: 0,
    fallbackReason: null,
  };
}

interface Result {
  state: FallbackState;
  effects: Effect[];
}

/** Hand the data over to HTTP: close the socket, start polling, schedule the next try. */
function toHttp(s: FallbackState, cfg: FallbackConfig, fx: Effect[], reason: FallbackReason): FallbackState {
  fx.push({ type: 'clear-connect-timer' }, { type: 'socket-close' });
  const wasSocket = s.mode === 'socket';
  if (wasSocket) fx.push({ type: 'http-start' });
  if (s.socketAllowed) fx.push({ type: 'arm-retry-timer', ms: wasSocket ? cfg.retrySocketMinMs : s.retryDelayMs });
  const retry = wasSocket ? cfg.retrySocketMinMs : Math.min(s.retryDelayMs * 2, cfg.retrySocketMaxMs);
  return {
    ...s,
    mode: 'http',
    socket: 'idle',
    transport: null,
    socketFailures: 0,
    retryDelayMs: retry,
    fallbacks: s.fallbacks + (wasSocket ? 1 : 0),
    fallbackReason: wasSocket ? reason : s.fallbackReason,
  };
}

export function step(s: FallbackState, input: FallbackInput, cfg: FallbackConfig = DEFAULT_FALLBACK): Result {
  const fx: Effect[] = [];
  switch (input.type) {
    case 'start':
    case 'token': {
      const base = { ...s, authError: null, socketFailures: 0, retryDelayMs: cfg.retrySocketMinMs };
      fx.push({ type: 'clear-retry-timer' }, { type: 'clear-connect-timer' }, { type: 'socket-close' });
      if (!base.socketAllowed) {
        if (s.mode !== 'http' || input.type === 'token') fx.push({ type: 'http-stop' }, { type: 'http-start' });
        return { state: { ...base, mode: 'http', socket: 'idle', transport: null }, effects: fx };
      }
      if (s.mode === 'http') fx.push({ type: 'http-stop' });
      fx.push({ type: 'socket-open' }, { type: 'arm-connect-timer', ms: cfg.connectTimeoutMs });
      return { state: { ...base, mode: 'socket', socket: 'connecting', transport: null, http: 'idle' }, effects: fx };
    }
    case 'socket-info': {
      const allowed = cfg.socketEnabled && input.mode !== 'http';
      if (allowed === s.socketAllowed) return { state: s, effects: fx };
      if (!allowed) {
        fx.push({ type: 'clear-retry-timer' });
        const next = toHttp({ ...s, socketAllowed: false }, cfg, fx, 'rollout');
        return { state: next, effects: fx.filter((e) => e.type !== 'arm-retry-timer') };
      }
      // Back inside the rollout: the next retry (soon) tries the socket.
      fx.push({ type: 'arm-retry-timer', ms: cfg.retrySocketMinMs });
      return { state: { ...s, socketAllowed: true }, effects: fx };
    }
    case 'socket-connected': {
      fx.push({ type: 'clear-connect-timer' }, { type: 'clear-retry-timer' });
      if (s.mode === 'http') fx.push({ type: 'http-stop' });
      return {
        state: {
          ...s,
          mode: 'socket',
          socket: 'connected',
          transport: input.transport,
          http: 'idle',
          socketFailures: 0,
          retryDelayMs: cfg.retrySocketMinMs,
          everConnected: true,
          authError: null,
        },
        effects: fx,
      };
    }
    case 'socket-transport':
      return { state: s.socket === 'connected' ? { ...s, transport: input.transport } : s, effects: fx };
    case 'socket-error': {
      if (input.auth) {
        fx.push({ type: 'clear-connect-timer' }, { type: 'clear-retry-timer' }, { type: 'socket-close' });
        if (s.mode === 'http') fx.push({ type: 'http-stop' });
        return { state: { ...s, socket: 'idle', transport: null, http: 'idle', authError: input.auth }, effects: fx };
      }
      if (s.socket === 'idle') return { state: s, effects: fx }; // a late error from a closed socket
      const failures = s.socketFailures + 1;
      const giveUp = s.mode === 'http' || (cfg.fallbackEnabled && failures >= cfg.maxSocketFailures);
      if (giveUp) return { state: toHttp(s, cfg, fx, 'socket_errors'), effects: fx };
      return { state: { ...s, socket: 'connecting', transport: null, socketFailures: failures }, effects: fx };
    }
    case 'socket-disconnected': {
      if (s.socket !== 'connected') return { state: s, effects: fx };
      // socket.io-client reconnects by itself; if it cannot within the timeout, HTTP takes over.
      fx.push({ type: 'arm-connect-timer', ms: cfg.connectTimeoutMs });
      return { state: { ...s, socket: 'connecting', transport: null }, effects: fx };
    }
    case 'connect-timeout':
      if (s.socket !== 'connecting') return { state: s, effects: fx };
      // Without a fallback, socket.io-client's own reconnection goes on: nothing to hand over.
      if (!cfg.fallbackEnabled && s.mode === 'socket') return { state: s, effects: fx };
      return { state: toHttp(s, cfg, fx, 'connect_timeout'), effects: fx };
    case 'retry-socket':
      if (s.mode !== 'http' || !s.socketAllowed || s.authError || s.socket !== 'idle') return { state: s, effects: fx };
      fx.push({ type: 'socket-open' }, { type: 'arm-connect-timer', ms: cfg.connectTimeoutMs });
      return { state: { ...s, socket: 'connecting' }, effects: fx };
    case 'http-ok':
      return { state: s.mode === 'http' ? { ...s, http: 'ok' } : s, effects: fx };
    case 'http-error':
      if (input.auth) {
        fx.push({ type: 'http-stop' }, { type: 'clear-retry-timer' }, { type: 'socket-close' });
        return { state: { ...s, http: 'idle', socket: 'idle', transport: null, authError: input.auth }, effects: fx };
      }
      return { state: s.mode === 'http' ? { ...s, http: 'failing' } : s, effects: fx };
  }
}

/** What the connection badge shows for a state. */
export function badgeOf(s: FallbackState): Badge {
  if (s.authError) return 'unauthorized';
  if (s.mode === 'socket' && s.socket === 'connected') return s.transport ?? 'polling';
  if (s.mode === 'http' && s.http !== 'failing') return 'http';
  if (s.mode === 'socket' && !s.everConnected && s.fallbacks === 0) return 'connecting';
  return 'offline';
}
