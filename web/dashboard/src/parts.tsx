// The dashboard's smaller pieces: status pills (icon + word + colour), the connection badge,
// the summary strip, pipeline cards with the stage bar and the 5-minute sparkline.

import type { Health, PipelineState, StatusModel } from '@ragpulse/client';
import { isLate } from '@ragpulse/client';
import { ago, num } from './format.js';

export type Shown = 'online' | 'running' | 'idle' | 'late' | 'offline' | 'error';

const STATUS: Record<Shown, { icon: string; word: string }> = {
  online: { icon: '●', word: 'Online' },
  running: { icon: '▶', word: 'Running' },
  idle: { icon: '◌', word: 'Idle' },
  late: { icon: '◷', word: 'Late' },
  offline: { icon: '✕', word: 'Offline' },
  error: { icon: '▲', word: 'Error' },
};

export function shownStatus(p: PipelineState, serverNow: number): Shown {
  return isLate(p, serverNow) ? 'late' : p.status;
}

export function StatusPill({ status }: { status: Shown }) {
  const s = STATUS[status];
  return (
    <span className={`pill st-${status}`} data-status={status}>
      <span className="pill-icon" aria-hidden="true">
        {s.icon}
      </span>
      {s.word}
    </span>
  );
}

const BADGE: Record<Health['badge'], { icon: string; word: string }> = {
  connecting: { icon: '◌', word: 'Connecting' },
  websocket: { icon: '⚡', word: 'WebSocket' },
  polling: { icon: '⇅', word: 'Polling' },
  http: { icon: '↻', word: 'HTTP fallback' },
  offline: { icon: '✕', word: 'Offline' },
  unauthorized: { icon: '⊘', word: 'Unauthorized' },
};

export function ConnectionBadge({ health, now, lastEventAt }: { health: Health; now: number; lastEventAt: number | null }) {
  const b = BADGE[health.badge];
  const title = `transport: ${health.transport ?? health.mode}; reconnects: ${health.reconnects}; fallbacks: ${health.fallbacks}`;
  return (
    <div className="conn">
      <span className={`badge b-${health.badge}`} data-testid="conn-badge" data-badge={health.badge} title={title}>
        <span aria-hidden="true">{b.icon}</span> {b.word}
        {health.rttMs !== null && health.badge !== 'offline' && health.badge !== 'unauthorized' && (
          <span className="rtt" data-testid="rtt">
            {' '}
            · {health.rttMs < 10 ? health.rttMs.toFixed(1) : Math.round(health.rttMs)} ms
          </span>
        )}
      </span>
      <span className="muted small" data-testid="last-event">
        last event {ago(lastEventAt, now)}
      </span>
    </div>
  );
}

export function fiveMinuteTotals(model: StatusModel, pipelines: PipelineState[], serverNow: number) {
  let completed = 0;
  let failed = 0;
  for (const p of pipelines) {
    const a = model.activity(p, serverNow);
    completed += a.completed.reduce((x, y) => x + y, 0);
    failed += a.failed.reduce((x, y) => x + y, 0);
  }
  return { completed, failed };
}

export function SummaryStrip({ model, pipelines, serverNow }: { model: StatusModel; pipelines: PipelineState[]; serverNow: number }) {
  let online = 0;
  let late = 0;
  let offline = 0;
  let inFlight = 0;
  for (const p of pipelines) {
    const s = shownStatus(p, serverNow);
    if (s === 'offline') offline++;
    else if (s === 'late') late++;
    else online++;
    inFlight += p.files.size + p.unlisted; // the snapshot lists a page; the count is whole
  }
  const { completed, failed } = fiveMinuteTotals(model, pipelines, serverNow);
  const cells: [string, string, number, string][] = [
    ['online', 'Pipelines online', online, 'ok'],
    ['late', 'Late', late, late ? 'warn' : ''],
    ['offline', 'Offline', offline, offline ? 'bad' : ''],
    ['inflight', 'Files in flight', inFlight, ''],
    ['completed', 'Completed · 5 min', completed, 'ok'],
    ['failed', 'Failed · 5 min', failed, failed ? 'bad' : ''],
  ];
  return (
    <section className="summary" aria-label="Summary">
      {cells.map(([k, label, n, tone]) => (
        <div key={k} className={`sum ${tone}`} data-testid={`sum-${k}`}>
          <div className="sum-n">{num(n)}</div>
          <div className="sum-l">{label}</div>
        </div>
      ))}
    </section>
  );
}

const STAGE_COLOURS = 8;
export function stageClass(stage: string, all: string[]): string {
  return `stg-${all.indexOf(stage) % STAGE_COLOURS}`;
}

function Sparkline({ completed, failed }: { completed: number[]; failed: number[] }) {
  const w = 150;
  const h = 32;
  const max = Math.max(1, ...completed, ...failed);
  const pts = (a: number[]) => a.map((v, i) => `${((i / (a.length - 1)) * w).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`).join(' ');
  const sc = completed.reduce((a, b) => a + b, 0);
  const sf = failed.reduce((a, b) => a + b, 0);
  return (
    <svg className="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`Last 5 minutes: ${sc} completed, ${sf} failed`}>
      <polyline className="spark-ok" points={pts(completed)} fill="none" />
      <polyline className="spark-bad" points={pts(failed)} fill="none" />
    </svg>
  );
}

export function PipelineCard(props: {
  p: PipelineState;
  model: StatusModel;
  serverNow: number;
  stages: string[];
  selected: boolean;
  onSelect: (id: string) => void;
}) {
  const { p, model, serverNow, stages, selected } = props;
  const status = shownStatus(p, serverNow);
  const byStage = new Map<string, number>();
  for (const f of p.files.values()) {
    const s = f.stage || 'queued';
    byStage.set(s, (byStage.get(s) ?? 0) + 1);
  }
  const total = p.files.size + p.unlisted; // a snapshot lists a page of the files; the count is all of them
  const act = model.activity(p, serverNow);
  return (
    <article className={`card${selected ? ' selected' : ''}`} data-testid="pipeline-card" data-pipeline={p.id} data-status={status}>
      <header className="card-h">
        <button className="linkish card-title" onClick={() => props.onSelect(p.id)} aria-pressed={selected} title="Show only this pipeline">
          {p.id}
        </button>
        <StatusPill status={status} />
      </header>
      <div className="card-sub muted small">
        <span className="type">{p.type}</span> · heartbeat {ago(p.lastHeartbeat, serverNow)}
        {p.message && status !== 'running' ? <span className="card-msg"> · {p.message}</span> : null}
      </div>
      <div className="stagebar" role="img" aria-label={total ? `${total} in flight: ${[...byStage].map(([s, n]) => `${n} ${s}`).join(', ')}` : 'nothing in flight'}>
        {total === 0 ? <span className="stagebar-empty" /> : null}
        {[...byStage].map(([s, n]) => (
          <span key={s} className={`seg ${stageClass(s, stages)}`} style={{ flexGrow: n }} title={`${s}: ${n}`} />
        ))}
      </div>
      <div className="card-stats">
        <span title="in flight">
          <b data-testid="card-inflight">{num(total)}</b> in flight
        </span>
        <span>
          <b>{num(p.processed)}</b> done
        </span>
        <span className={p.failed ? 'bad-t' : ''}>
          <b>{num(p.failed)}</b> failed
        </span>
        <Sparkline completed={act.completed} failed={act.failed} />
      </div>
    </article>
  );
}
