// Failures grouped by cause (from /api/failures, refreshed when failures arrive) and a file's
// drill-down: its event timeline and the time spent in each stage (from /api/events).

import { useEffect, useRef, useState } from 'react';
import type { FailureGroup, RagEvent, RagPulseClient } from '@ragpulse/client';
import { ago, clock, dur, pct } from './format.js';

function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      className="btn small"
      data-testid="copy"
      aria-label={label}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
        } catch {
          // Clipboard API refused (insecure context): fall back to a selection copy.
          const ta = document.createElement('textarea');
          ta.value = text;
          document.body.appendChild(ta);
          ta.select();
          document.execCommand('copy');
          ta.remove();
        }
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? 'Copied' : 'Copy'}
    </button>
  );
}

export function FailuresPanel(props: {
  groups: FailureGroup[];
  now: number;
  q: string;
  onOpenFile: (key: string) => void;
}) {
  const [open, setOpen] = useState<string | null>(null);
  const q = props.q.toLowerCase();
  const groups = q ? props.groups.filter((g) => g.files.some((f) => f.name.toLowerCase().includes(q)) || g.sample.toLowerCase().includes(q)) : props.groups;
  return (
    <section className="panel" aria-labelledby="fail-h" data-testid="failures">
      <h2 id="fail-h">
        Failures by cause <span className="muted small">{groups.length} {groups.length === 1 ? 'cause' : 'causes'}</span>
      </h2>
      {groups.length === 0 && <p className="empty">No failures{q ? ' match this search' : ''}.</p>}
      <ul className="groups">
        {groups.map((g) => {
          const id = `${g.pipeline_id}\n${g.cause}`;
          const isOpen = open === id;
          return (
            <li key={id} className="group" data-testid="failure-group">
              <button className="group-h" aria-expanded={isOpen} onClick={() => setOpen(isOpen ? null : id)}>
                <span className="count bad-bg" aria-label={`${g.count} failures`}>{g.count}</span>
                <span className="cause" data-testid="failure-cause">{g.sample}</span>
                <span className="muted small group-meta">
                  {g.pipeline_id}
                  {g.kind ? ` · ${g.kind}` : ''} · first {ago(Date.parse(g.first_seen), props.now)} · last {ago(Date.parse(g.last_seen), props.now)}
                </span>
              </button>
              {isOpen && (
                <div className="group-body">
                  <div className="errbox">
                    <pre data-testid="failure-full">{g.sample}</pre>
                    <CopyButton text={g.sample} label="Copy the error" />
                  </div>
                  <div className="muted small">Grouped as: <code>{g.cause}</code></div>
                  <ul className="affected">
                    {g.files.map((f) => (
                      <li key={f.event_id}>
                        <button className="linkish" onClick={() => props.onOpenFile(`${g.pipeline_id}/${f.file_id}`)}>
                          {f.name}
                        </button>{' '}
                        <span className="muted small">{ago(Date.parse(f.ts), props.now)}</span>
                      </li>
                    ))}
                  </ul>
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

interface StageSpan {
  stage: string;
  ms: number;
}

/** Time in each stage from a file's events (oldest first): a stage lasts until the next one. */
export function stageSpans(events: RagEvent[], now: number): StageSpan[] {
  const spans: StageSpan[] = [];
  let cur: { stage: string; at: number } | null = null;
  let ended = false;
  for (const ev of events) {
    const at = Date.parse(ev.ts);
    if (ev.type === 'file:processing' && cur) {
      spans.push({ stage: cur.stage, ms: at - cur.at });
      cur = null;
    }
    const prev: string | undefined = cur?.stage;
    const stage: string = ev.file?.stage ?? prev ?? 'queued';
    if (!cur) cur = { stage, at };
    else if (stage !== cur.stage) {
      spans.push({ stage: cur.stage, ms: at - cur.at });
      cur = { stage, at };
    }
    ended = ev.type === 'file:completed' || ev.type === 'file:failed';
    if (ended) {
      spans.push({ stage: cur.stage, ms: at - cur.at });
      cur = null;
    }
  }
  if (cur) spans.push({ stage: cur.stage, ms: now - cur.at });
  return spans;
}

export function Drilldown(props: { client: RagPulseClient; fileKey: string; rev: number; now: number; onClose: () => void }) {
  const slash = props.fileKey.indexOf('/');
  const pid = props.fileKey.slice(0, slash);
  const fid = props.fileKey.slice(slash + 1);
  const [events, setEvents] = useState<RagEvent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Loaded on open, then again at most every 2 s while new events arrive (it may still move).
  const rev = useRef(props.rev);
  rev.current = props.rev;
  useEffect(() => {
    let gone = false;
    let loaded = -1;
    const load = async () => {
      if (loaded === rev.current) return;
      loaded = rev.current;
      try {
        const r = await props.client.fetchJson<{ events: RagEvent[] }>(
          `/api/events?pipeline=${encodeURIComponent(pid)}&file=${encodeURIComponent(fid)}&limit=500`,
        );
        if (!gone) {
          setEvents([...r.events].sort((a, b) => a.id - b.id));
          setError(null);
        }
      } catch (e) {
        if (!gone) setError(String((e as Error).message));
      }
    };
    setEvents(null);
    void load();
    const t = setInterval(load, 2000);
    return () => {
      gone = true;
      clearInterval(t);
    };
  }, [pid, fid, props.client]);
  const spans = events ? stageSpans(events, props.now) : [];
  const total = spans.reduce((a, s) => a + s.ms, 0) || 1;
  const name = events?.find((e) => e.file?.name)?.file?.name ?? fid;
  return (
    <div className="drill" role="dialog" aria-modal="false" aria-labelledby="drill-h" data-testid="drilldown">
      <div className="drill-h">
        <h2 id="drill-h">
          {name} <span className="muted small">{pid}</span>
        </h2>
        <button className="btn" onClick={props.onClose} data-testid="drill-close">
          <span aria-hidden="true">✕</span> Close <span className="kbd">Esc</span>
        </button>
      </div>
      {error && <p className="bad-t">Could not load the timeline: {error}</p>}
      {!events && !error && <p className="muted">Loading…</p>}
      {events && (
        <>
          <h3>Time in each stage</h3>
          <div className="stagebar big" role="img" aria-label={spans.map((s) => `${s.stage} ${dur(s.ms)}`).join(', ')}>
            {spans.map((s, i) => (
              <span key={i} className={`seg stg-${i % 8}`} style={{ flexGrow: Math.max(s.ms, total / 100) }} title={`${s.stage}: ${dur(s.ms)}`} />
            ))}
          </div>
          <ul className="spans" data-testid="stage-spans">
            {spans.map((s, i) => (
              <li key={i}>
                <span className={`dot stg-${i % 8}`} aria-hidden="true" /> {s.stage} <b>{dur(s.ms)}</b>
              </li>
            ))}
          </ul>
          <h3>Events</h3>
          <ol className="timeline" data-testid="timeline">
            {events.map((ev) => (
              <li key={ev.id} className={`ev ev-${ev.type.replace(':', '-')}`}>
                <span className="mono small muted">{clock(ev.ts)}</span> <b>{ev.type}</b>
                {ev.file?.stage ? <span> · {ev.file.stage}</span> : null}
                {ev.file?.progress !== undefined ? <span> · {pct(ev.file.progress)}</span> : null}
                {ev.file?.error && (
                  <div className="errbox">
                    <pre data-testid="drill-error">{ev.file.error.message}</pre>
                    <CopyButton text={ev.file.error.message} label="Copy the error" />
                  </div>
                )}
              </li>
            ))}
          </ol>
        </>
      )}
    </div>
  );
}
