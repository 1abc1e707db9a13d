// The page is a server component: it reads where the hub is at request time and renders the
// provider from @ragpulse/client/react directly (that entry is a client module, so the server
// only passes it serialisable props). Everything live happens in <StatusPanel> in the browser.
import { RagPulseProvider } from '@ragpulse/client/react';
import { StatusPanel } from './status-panel';

// The hub's address comes from the environment of `next start`, not from the build.
export const dynamic = 'force-dynamic';

export default function Page() {
  const url = process.env.RAGPULSE_URL ?? 'http://127.0.0.1:8103';
  const pipelineId = process.env.RAGPULSE_PIPELINE ?? 'local-files';
  const token = process.env.RAGPULSE_TOKEN ?? null;
  return (
    <main>
      <h1>
        Pipeline <code>{pipelineId}</code>
      </h1>
      {/* options={{ websocketEnabled, enablePolling, pollingInterval, ... }} would set the switches
          in code; without them NEXT_PUBLIC_WEBSOCKET_ENABLED / NEXT_PUBLIC_FALLBACK_ENABLED decide. */}
      <RagPulseProvider url={url} token={token}>
        <StatusPanel pipelineId={pipelineId} />
      </RagPulseProvider>
    </main>
  );
}
