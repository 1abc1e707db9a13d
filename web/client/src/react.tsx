'use client';
// React bindings: <RagPulseProvider> owns one LiveStatus (connection + model) for its tree;
// useRagPulse() re-renders a component at most once per animation frame with the current
// model, health and pause state; usePipeline(id) and useFile(pipelineId, fileId) pick one
// pipeline or one file of it. The directive above lets a Next.js server component render the
// provider. Nothing connects during a server render or before the first effect, so the server's
// HTML and the first client render agree (both show the empty model, badge 'connecting'); React
// strict mode's mount, unmount, mount starts, stops and starts the same LiveStatus.

import { createContext, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from 'react';
import type { ClientOptions } from './client.js';
import { LiveStatus } from './live.js';
import type { CompletedFile, FileState, PipelineState } from './model.js';

const Ctx = createContext<LiveStatus | null>(null);

export interface RagPulseProviderProps {
  /** Base URL of the hub (default: options.url, else the page's origin). */
  url?: string;
  /** A JWT for the hub (default: options.token). Changing it reconnects with the new one. */
  token?: string | null;
  /**
   * Everything else ClientOptions takes, the documents' switches among them:
   * websocketEnabled, enablePolling (the fallback), pollingInterval, maxFailures. Read once,
   * when the provider mounts.
   */
  options?: ClientOptions;
  /** A LiveStatus made by the caller (the provider then ignores url, token and options). */
  live?: LiveStatus;
  children?: ReactNode;
}

export function RagPulseProvider(props: RagPulseProviderProps) {
  const [live] = useState(() => {
    if (props.live) return props.live;
    const o: ClientOptions = { ...props.options };
    if (props.url !== undefined) o.url = props.url;
    if (props.token !== undefined) o.token = props.token;
    return new LiveStatus(o);
  });
  useEffect(() => {
    live.start();
    return () => live.stop();
  }, [live]);
  const token = props.token;
  const [firstToken] = useState(token);
  useEffect(() => {
    // The constructor had the first token: only a later change reconnects.
    if (token !== undefined && token !== firstToken) live.client.setToken(token);
  }, [live, token, firstToken]);
  return <Ctx.Provider value={live}>{props.children}</Ctx.Provider>;
}

/** The provider's LiveStatus and a snapshot of its state, re-read once per rendered frame. */
export function useRagPulse() {
  const live = useContext(Ctx);
  if (!live) throw new Error('useRagPulse() needs a <RagPulseProvider> above it');
  const frame = useSyncExternalStore(live.subscribe, live.getFrame, getServerFrame);
  return {
    frame,
    live,
    model: live.model,
    health: live.health,
    client: live.client,
    paused: live.paused,
    buffered: live.buffered.length,
    setPaused: (p: boolean) => live.setPaused(p),
  };
}

/** The server render and hydration see frame 0: the model before any event. */
const getServerFrame = (): number => 0;

/** One pipeline of the live model (undefined until a snapshot or event names it). */
export function usePipeline(id: string): PipelineState | undefined {
  return useRagPulse().model.pipelines.get(id);
}

/**
 * One file of a pipeline as the model knows it: `inFlight` while it is being processed,
 * `completed` once its latest outcome is completed; both undefined for a file the model does
 * not know (or one that failed: see the pipeline's recentFailed).
 */
export function useFile(pipelineId: string, fileId: string): { inFlight: FileState | undefined; completed: CompletedFile | undefined } {
  const p = usePipeline(pipelineId);
  return { inFlight: p?.files.get(fileId), completed: p?.completed.get(fileId) };
}
