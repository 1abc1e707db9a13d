// Completed files: the model's list (the snapshot's recent completions, those completed live)
// filled in with older ones from the hub after each baseline — the file registry
// (`/api/files?pipeline=`), or, when the hub keeps none (`/health` says its store is
// "memory"), the newest pages of the history (`/api/events?pipeline=`). Shown in a virtualised table (only the rows in view plus
// a few are in the DOM) that holds its order while the pointer is over it or it is scrolled,
// new completions waiting behind an "N new" pill; a row opens the file's timeline.

import { useEffect, useMemo, useState } from 'react';
import { HttpError, type CompletedFile, type CompletedRow, type LiveStatus, type RagEvent, type RagPulseClient } from '@ragpulse/client';
import { ago, dur, num } from './format.js';
import { ROW_H, useVirtualRows } from './table.js';

/** History pages (of 1000 events) read per pipeline when the hub has no file registry. */
const HISTORY_PAGES = 5;

interface RegistryRow {
  file_id: string;
  name?: string | null;
  status?: string;
  event_id: number;
  updated: number | string;
}

/** The completed files of the registry: those whose last status is `completed`. */
function fromRegistry(files: RegistryRow[]): CompletedRow[] {
  return files
    .filter((f) => f.status === 'completed' && typeof f.file_id === 'string' && Number.isFinite(f.event_id))
    .map((f) => ({ file_id: f.file_id, name: f.name ?? f.file_id, event_id: f.event_id, ts: f.updated }));
}

/**
 * The completed files of the newest HISTORY_PAGES pages of history, newest first: a file
 * counts when its newest event there is file:completed; its duration comes from the
 * file:processing before it when that is in the pages too.
 */
async function fromHistory(client: RagPulseClient, pid: string): Promise<CompletedRow[]> {
  const decided = new Map<string, CompletedRow | null>();
  let before: number | undefined;
  for (let page = 0; page < HISTORY_PAGES; page++) {
    const q = `/api/events?pipeline=${encodeURIComponent(pid)}&limit=1000${before !== undefined ? `&before=${before}` : ''}`;
    const r = await client.fetchJson<{ events: RagEvent[]; next_before?: number }>(q);
    for (const ev of r.events) {
      const fid = ev.file?.id;
      if (!fid) continue;
      const known = decided.get(fid);
      if (known === undefined) {
        const done = ev.type === 'file:completed';
        decided.set(fid, done ? { file_id: fid, name: ev.file?.name ?? fid, event_id: ev.id, ts: ev.ts, chunks: ev.file?.chunks ?? null } : null);
      } else if (known && known.duration_ms === undefined && ev.type === 'file:processing') {
        known.duration_ms = Date.parse(String(known.ts)) - Date.parse(ev.ts);
      }
    }
    if (r.next_before === undefined) break;
    before = r.next_before;
  }
  return [...decided.values()].filter((c): c is CompletedRow => c !== null);
}

/** Whether the hub keeps a file registry: its store is not "memory" (when unsure, yes). */
async function hasRegistry(client: RagPulseClient): Promise<boolean> {
  try {
    const h = await client.fetchJson<{ store?: { kind?: string } }>('/health');
    return h.store?.kind !== 'memory';
  } catch {
    return true; // a degraded store (503) still has its registry; a 404 below says otherwise
  }
}

/** One pipeline's completed files from the hub (see the file comment). */
export async function loadCompleted(client: RagPulseClient, pid: string, registry = true): Promise<CompletedRow[]> {
  if (!registry) return fromHistory(client, pid);
  try {
    const r = await client.fetchJson<{ files?: RegistryRow[] }>(`/api/files?pipeline=${encodeURIComponent(pid)}`);
    return fromRegistry(r.files ?? []);
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) return fromHistory(client, pid);
    throw e;
  }
}

/**
 * After each baseline (a new snapshot replaced the model), fills every pipeline's completed
 * list from the hub. A failed read merges nothing: the live list stays as it is.
 */
export function useCompletedBackfill(live: LiveStatus, baselines: number): void {
  useEffect(() => {
    if (baselines === 0) return;
    const model = live.model;
    const tickets = [...model.pipelines.keys()].map((pid) => ({ pid, ticket: model.beginCompletedBackfill(pid) }));
    void hasRegistry(live.client).then((registry) => {
      for (const { pid, ticket } of tickets)
        loadCompleted(live.client, pid, registry).then(
          (rows) => {
            if (model.mergeCompleted(pid, rows, ticket)) live.changed();
          },
          () => model.mergeCompleted(pid, [], ticket),
        );
    });
  }, [live, baselines]);
}

/** The completed files matching the search `q` (name or id), newest first. */
export function useCompletedRows(live: LiveStatus, q: string, pipelineIds: string[]): CompletedFile[] {
  const model = live.model;
  const key = pipelineIds.join('\n');
  return useMemo(() => {
    const lq = q.toLowerCase();
    const ids = new Set(pipelineIds);
    return model.completedFiles().filter((c) => ids.has(c.pipelineId) && (!lq || c.name.toLowerCase().includes(lq) || c.id.toLowerCase().includes(lq)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [model, model.completedRev, key, q]);
}

export function CompletedTable(props: { rows: CompletedFile[]; q: string; now: number; onOpen: (key: string) => void }) {
  const { rows, now } = props;
  const [held, setHeld] = useState(false);
  const [shown, setShown] = useState<CompletedFile[]>(rows);
  const { scroller, first, last, handlers } = useVirtualRows(shown.length, setHeld);

  // Live while nobody is looking; frozen under the pointer or when scrolled.
  useEffect(() => {
    if (!held) setShown(rows);
  }, [rows, held]);
  // A new search is the user asking for a new list: at once, held or not.
  useEffect(() => {
    setShown(rows);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.q]);
  const pending = useMemo(() => {
    if (!held) return 0;
    const ids = new Set(shown.map((c) => `${c.pipelineId}/${c.id}`));
    return rows.reduce((n, c) => n + (ids.has(`${c.pipelineId}/${c.id}`) ? 0 : 1), 0);
  }, [held, rows, shown]);

  const visible = shown.slice(first, last);

  return (
    <div className="table-wrap" role="table" aria-label="Completed files" aria-rowcount={shown.length + 1}>
      {pending > 0 && (
        <button
          className="newpill"
          data-testid="completed-new-pill"
          onClick={() => {
            setShown(rows);
            if (scroller.current) scroller.current.scrollTop = 0;
          }}
        >
          ↑ {num(pending)} new
        </button>
      )}
      <div role="rowgroup">
        <div className="thead done" role="row" aria-rowindex={1}>
          <span role="columnheader" className="c-name">File</span>
          <span role="columnheader" className="c-when">Completed</span>
          <span role="columnheader" className="c-took">Took</span>
          <span role="columnheader" className="c-chunks">Chunks</span>
        </div>
      </div>
      <div
        className="tbody"
        ref={scroller}
        // Empty, it holds a message, not rows: no rowgroup (it must hold rows) and no tab stop
        // in the table (axe). It stays mounted so its pointerleave releases the hold.
        role={shown.length ? 'rowgroup' : undefined}
        data-testid="completed-table"
        data-rows={shown.length}
        tabIndex={shown.length ? 0 : undefined}
        style={{ height: Math.max(4, Math.min(shown.length, 12)) * ROW_H }}
        {...handlers}
      >
        <div role="presentation" style={{ height: shown.length * ROW_H, position: 'relative' }}>
          {visible.map((c, i) => {
            const key = `${c.pipelineId}/${c.id}`;
            return (
              <div
                key={key}
                className="tr done"
                role="row"
                aria-rowindex={first + i + 2}
                style={{ transform: `translateY(${(first + i) * ROW_H}px)` }}
                data-testid="completed-row"
                data-file={c.id}
                onDoubleClick={() => props.onOpen(key)}
              >
                <span className="c-name" role="cell">
                  <button className="linkish fname" onClick={() => props.onOpen(key)} title={c.name}>
                    {c.name}
                  </button>
                  <span className="muted small"> {c.pipelineId}</span>
                </span>
                <span className="c-when muted" role="cell" title={c.completedAt ? new Date(c.completedAt).toISOString() : ''}>
                  {c.completedAt ? ago(c.completedAt, now) : '—'}
                </span>
                <span className="c-took" role="cell">{c.durationMs === null ? '—' : dur(c.durationMs)}</span>
                <span className="c-chunks" role="cell">{c.chunks === null ? '—' : num(c.chunks)}</span>
              </div>
            );
          })}
        </div>
        {shown.length === 0 && <div className="empty">No completed files{props.q ? ' match this search' : ' yet'}.</div>}
      </div>
    </div>
  );
}
