// Files in flight: a virtualised table (only the rows in view plus a few are in the DOM, so
// 10,000 files keep well under 300 rows). The row order is frozen while the pointer is over
// the table, a row is selected, or the list is scrolled: new files then wait behind an
// "N new" pill and finished files stay in place, marked, so nothing moves under the pointer.

import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { FileState, StatusModel } from '@ragpulse/client';
import { dur, pct } from './format.js';
import { stageClass } from './parts.js';

export const ROW_H = 34;
const OVERSCAN = 8;

/**
 * A virtualised list's scroller: the rows [first, last) to render for `count` rows of ROW_H,
 * and the handlers for the scrolling element, which also tell `onHold` whether the list is
 * held (the pointer over it, or scrolled away from the top) so its owner can freeze the order.
 */
export function useVirtualRows(count: number, onHold: (held: boolean) => void) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const hover = useRef(false);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight || 600));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const hold = () => onHold(hover.current || (scroller.current?.scrollTop ?? 0) > 0);
  const first = Math.max(0, Math.floor(scrollTop / ROW_H) - OVERSCAN);
  const last = Math.min(count, Math.ceil((scrollTop + height) / ROW_H) + OVERSCAN);
  const handlers = {
    onScroll: (e: { currentTarget: HTMLDivElement }) => {
      setScrollTop(e.currentTarget.scrollTop);
      hold();
    },
    onPointerEnter: () => {
      hover.current = true;
      hold();
    },
    onPointerLeave: () => {
      hover.current = false;
      hold();
    },
  };
  return { scroller, first, last, handlers };
}

export interface RowKey {
  key: string; // pipeline_id + "/" + file_id
  seq: number;
}

export function fileKey(f: FileState): string {
  return `${f.pipelineId}/${f.id}`;
}

export function FilesTable(props: {
  model: StatusModel;
  rows: RowKey[];
  now: number;
  stages: string[];
  selected: string;
  onOpen: (key: string) => void;
  onSelect: (key: string) => void;
  onHold: (held: boolean) => void;
  pending: number;
  onMerge: () => void;
  /** No progress for this long flags a file as stalled. */
  stallMs: number;
}) {
  const { model, rows, now, stages } = props;
  const { scroller, first, last, handlers } = useVirtualRows(rows.length, props.onHold);

  // Keep the selected row in view when moving with the keyboard.
  useEffect(() => {
    const el = scroller.current;
    const i = rows.findIndex((r) => r.key === props.selected);
    if (!el || i < 0) return;
    const top = i * ROW_H;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_H > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_H - el.clientHeight;
  }, [props.selected, rows]);

  const visible = rows.slice(first, last);

  return (
    <div className="table-wrap" role="table" aria-label="Files in flight" aria-rowcount={rows.length + 1}>
      {props.pending > 0 && (
        <button className="newpill" data-testid="new-pill" onClick={() => { props.onMerge(); if (scroller.current) scroller.current.scrollTop = 0; }}>
          ↑ {props.pending} new
        </button>
      )}
      <div role="rowgroup">
      <div className="thead" role="row" aria-rowindex={1}>
        <span role="columnheader" className="c-name">File</span>
        <span role="columnheader" className="c-stage">Stage</span>
        <span role="columnheader" className="c-prog">Progress</span>
        <span role="columnheader" className="c-el">Elapsed</span>
        <span role="columnheader" className="c-st">In stage</span>
      </div>
      </div>
      <div
        className="tbody"
        ref={scroller}
        // Empty, it holds a message, not rows: no rowgroup (it must hold rows) and no tab stop
        // in the table (axe). It stays mounted so its pointerleave releases the hold.
        role={rows.length ? 'rowgroup' : undefined}
        data-testid="files-table"
        data-rows={rows.length}
        tabIndex={rows.length ? 0 : undefined}
        style={{ height: Math.max(4, Math.min(rows.length, 18)) * ROW_H }}
        {...handlers}
      >
        <div role="presentation" style={{ height: rows.length * ROW_H, position: 'relative' }}>
          {visible.map((r, i) => (
            <Row
              key={r.key}
              rowKey={r.key}
              index={first + i}
              model={model}
              now={now}
              stages={stages}
              selected={r.key === props.selected}
              onOpen={props.onOpen}
              onSelect={props.onSelect}
              stallMs={props.stallMs}
            />
          ))}
        </div>
        {rows.length === 0 && <div className="empty">No files in flight match this view.</div>}
      </div>
    </div>
  );
}

function Row(props: {
  rowKey: string;
  index: number;
  model: StatusModel;
  now: number;
  stages: string[];
  selected: boolean;
  onOpen: (key: string) => void;
  onSelect: (key: string) => void;
  stallMs: number;
}) {
  const slash = props.rowKey.indexOf('/');
  const pid = props.rowKey.slice(0, slash);
  const fid = props.rowKey.slice(slash + 1);
  const f = props.model.pipelines.get(pid)?.files.get(fid);
  const style = { transform: `translateY(${props.index * ROW_H}px)` };
  const cls = `tr${props.selected ? ' sel' : ''}`;
  if (!f) {
    return (
      <div className={`${cls} gone`} role="row" aria-rowindex={props.index + 2} style={style} data-testid="file-row" data-file={fid} data-done="1" onClick={() => props.onOpen(props.rowKey)}>
        <span className="c-name" role="cell">
          <span className="fname">{fid}</span> <span className="muted small">{pid}</span>
        </span>
        <span className="c-stage muted" role="cell">finished</span>
        <span className="c-prog" role="cell" />
        <span className="c-el" role="cell" />
        <span className="c-st" role="cell" />
      </div>
    );
  }
  const stalledMs = props.now - f.lastProgressAt;
  const stalled = stalledMs >= props.stallMs;
  return (
    <div
      className={`${cls}${stalled ? ' stalled' : ''}`}
      role="row"
      aria-rowindex={props.index + 2}
      style={style}
      data-testid="file-row"
      data-file={f.id}
      data-progress={f.progress}
      onClick={() => props.onSelect(props.rowKey)}
      onDoubleClick={() => props.onOpen(props.rowKey)}
    >
      <span className="c-name" role="cell">
        <button className="linkish fname" onClick={(e) => { e.stopPropagation(); props.onOpen(props.rowKey); }} title={f.name}>
          {f.name}
        </button>
        <span className="muted small"> {f.pipelineId}{f.attempt > 1 ? ` · attempt ${f.attempt}` : ''}</span>
      </span>
      <span className="c-stage" role="cell">
        {f.stage ? (
          <span className="stage-chip">
            <span className={`dot ${stageClass(f.stage, props.stages)}`} aria-hidden="true" /> {f.stage}
          </span>
        ) : <span className="muted">queued</span>}
      </span>
      <span className="c-prog" role="cell">
        <span className="bar" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(f.progress * 100)} aria-label={`${f.name} progress`}>
          <span className="bar-fill" style={{ transform: `scaleX(${Math.max(0, Math.min(1, f.progress))})` }} />
        </span>
        <span className="pct">{pct(f.progress)}</span>
      </span>
      <span className="c-el" role="cell">{dur(props.now - f.startedAt)}</span>
      <span className="c-st" role="cell">
        {dur(props.now - f.stageStartedAt)}
        {stalled && (
          <span className="warn-t" data-testid="stall-warning" title={`No progress for ${dur(stalledMs)}`}>
            {' '}
            <span aria-hidden="true">⚠</span> no progress {dur(stalledMs)}
          </span>
        )}
      </span>
    </div>
  );
}
