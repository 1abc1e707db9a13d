'use client';
// The live part of the page: the connection badge (which path the data takes), one pipeline's
// status and counters, its files in flight and its recent failures. It re-renders at most once
// per animation frame (useRagPulse); the data-* attributes let a test read what is on screen.
import { errorMessage, type Badge } from '@ragpulse/client';
import { usePipeline, useRagPulse } from '@ragpulse/client/react';

const LABEL: Record<Badge, string> = {
  connecting: 'Connecting…',
  websocket: 'Live over WebSocket',
  polling: 'Live over long-polling',
  http: 'HTTP fallback',
  offline: 'Offline, retrying',
  unauthorized: 'Not authorised',
};

export function StatusPanel({ pipelineId }: { pipelineId: string }) {
  const { health, model, frame } = useRagPulse();
  const p = usePipeline(pipelineId);
  const files = p ? [...p.files.values()].sort((a, b) => a.name.localeCompare(b.name)) : [];
  return (
    <section>
      <p>
        <span className="badge" data-testid="conn-badge" data-badge={health.badge}>
          {LABEL[health.badge]}
        </span>
        {health.authError ? <span> {health.authError}</span> : null}
      </p>
      <p
        className="counters"
        data-testid="model"
        data-frame={frame}
        data-version={model.version}
        data-applied={model.stats.applied}
        data-gaps={model.stats.gaps}
        data-duplicates={model.stats.duplicates}
        data-baselines={model.stats.baselines}
        data-fallbacks={health.fallbacks}
      >
        version {model.version} · {model.stats.applied} events applied · {model.stats.gaps} gaps · {model.stats.duplicates}{' '}
        duplicates
      </p>
      {p ? (
        <>
          <p data-testid="pipeline" data-status={p.status} data-processed={p.processed} data-failed={p.failed}>
            {p.status} · {p.processed} processed · {p.failed} failed
          </p>
          <h2>In flight</h2>
          <table>
            <tbody>
              {files.map((f) => (
                <tr key={f.id} data-testid="file-row" data-file={f.id} data-progress={f.progress}>
                  <td>{f.name}</td>
                  <td>{f.stage}</td>
                  <td>
                    <progress max={1} value={f.progress} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Failures</h2>
          <ul>
            {p.recentFailed.map((f) => (
              <li key={`${f.file_id}-${f.event_id}`} data-testid="failure" data-file={f.file_id}>
                {f.name}: {errorMessage(f.error)}
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p data-testid="no-pipeline">Waiting for pipeline {pipelineId}…</p>
      )}
    </section>
  );
}
