// React bindings: <RagPulseProvider> owns one LiveStatus (connection + model) for its tree;
// useRagPulse() re-renders a component at most once per animation frame with the current
// model, health and pause state.

import { createContext, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from 'react';
import type { ClientOptions } from './client.js';
import { LiveStatus } from './live.js';

const Ctx = createContext<LiveStatus | null>(null);

export function RagPulseProvider(props: { options?: ClientOptions; live?: LiveStatus; children?: ReactNode }) {
  const [live] = useState(() => props.live ?? new LiveStatus(props.options));
  useEffect(() => {
    live.start();
    return () => live.stop();
  }, [live]);
  return <Ctx.Provider value={live}>{props.children}</Ctx.Provider>;
}

export function useRagPulse() {
  const live = useContext(Ctx);
  if (!live) throw new Error('useRagPulse() needs a <RagPulseProvider> above it');
  const frame = useSyncExternalStore(live.subscribe, live.getFrame, live.getFrame);
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
