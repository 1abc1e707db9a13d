// The dashboard page: header (connection badge, last event, pause, theme), stale/auth banners,
// the summary strip, pipeline cards, files in flight, completed files, failures by cause, a
// file's drill-down.
// Filters and the open file live in the URL; the model renders at most once per frame.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useRagPulse } from '@ragpulse/client/react';
import type { FailureGroup, PipelineState } from '@ragpulse/client';
import { num } from './format.js';
import { ConnectionBadge, PipelineCard, SummaryStrip, fiveMinuteTotals, shownStatus } from './parts.js';
import { Drilldown, FailuresPanel } from './panels.js';
import { FilesTable, fileKey, type RowKey } from './table.js';
import { CompletedTable, useCompletedBackfill, useCompletedRows } from './completed.js';
import { readView, saveToken, writeView, type ViewState } from './url.js';

type Theme = 'system' | 'light' | 'dark';

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('ragpulse.theme') as Theme | null) ?? 'system');
  useEffect(() => {
    if (theme === 'system') document.documentElement.removeAttribute('data-theme');
    else document.documentElement.setAttribute('data-theme', theme);
    localStorage.setItem('ragpulse.theme', theme);
  }, [theme]);
  const next = useCallback(() => setTheme((t) => (t === 'system' ? 'light' : t === 'light' ? 'dark' : 'system')), []);
  return [theme, next];
}

export function App() {
  const { model, health, client, live, paused, buffered, setPaused, frame } = useRagPulse();
  const [view, setViewState] = useState<ViewState>(() => readView());
  const setView = useCallback((patch: Partial<ViewState>, push = false) => {
    setViewState((v) => {
      const n = { ...v, ...patch };
      writeView(n, push);
      return n;
    });
  }, []);
  useEffect(() => {
    const onPop = () => setViewState(readView());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const [theme, nextTheme] = useTheme();
  const [help, setHelp] = useState(false);
  const search = useRef<HTMLInputElement>(null);

  // A clock for ages and late pipelines: re-render once a second even without events.
  useEffect(() => {
    const t = setInterval(() => live.changed(), 1000);
    return () => clearInterval(t);
  }, [live]);
  const now = Date.now() + health.clockSkewMs;

  // ---- pipelines and filters ----
  const allPipelines = [...model.pipelines.values()];
  const types = [...new Set(allPipelines.map((p) => p.type))].sort();
  const pipelines = allPipelines.filter(
    (p) =>
      (!view.type || p.type === view.type) &&
      (!view.pipeline || p.id === view.pipeline) &&
      (!view.status || shownStatus(p, now) === view.status) &&
      (!view.errors || p.failed > 0 || p.status === 'error'),
  );
  const stagesRef = useRef<string[]>(['queued']);
  for (const p of allPipelines)
    for (const f of p.files.values()) if (f.stage && !stagesRef.current.includes(f.stage)) stagesRef.current.push(f.stage);
  const stages = stagesRef.current;

  // ---- the files table's row list, frozen while held ----
  const held = useRef(false);
  const [rows, setRows] = useState<RowKey[]>([]);
  const [pending, setPending] = useState(0);
  const [selected, setSelected] = useState('');
  const pipelineKey = pipelines.map((p) => p.id).join('\n');
  const computed = useMemo(() => {
    const q = view.q.toLowerCase();
    const out: RowKey[] = [];
    for (const p of pipelines)
      for (const f of p.files.values()) if (!q || f.name.toLowerCase().includes(q) || f.id.toLowerCase().includes(q)) out.push({ key: fileKey(f), seq: f.seq });
    out.sort((a, b) => b.seq - a.seq); // newest first
    return out;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [model.membershipRev, model.version < 0, pipelineKey, view.q]);
  const lastComputed = useRef<RowKey[] | null>(null);
  const merge = useCallback(() => {
    setRows(computed);
    setPending(0);
  }, [computed]);
  useEffect(() => {
    if (lastComputed.current === computed) return;
    lastComputed.current = computed;
    if (!held.current) {
      setRows(computed);
      setPending(0);
      return;
    }
    setRows((cur) => {
      const shown = new Set(cur.map((r) => r.key));
      setPending(computed.reduce((n, r) => n + (shown.has(r.key) ? 0 : 1), 0));
      return cur;
    });
  }, [computed]);
  // A filter or search change is the user asking for a new list: apply it at once.
  useEffect(() => {
    setRows(computed);
    setPending(0);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [pipelineKey, view.q]);
  const onHold = useCallback(
    (h: boolean) => {
      held.current = h || selected !== '';
      if (!held.current && lastComputed.current) {
        setRows(lastComputed.current);
        setPending(0);
      }
    },
    [selected],
  );

  // ---- completed files: the model's, filled in from the hub after each baseline ----
  useCompletedBackfill(live, model.stats.baselines);
  const completed = useCompletedRows(live, view.q, pipelines.map((p) => p.id));

  // ---- failures by cause ----
  const [groups, setGroups] = useState<FailureGroup[]>([]);
  let failedTotal = 0;
  for (const p of allPipelines) failedTotal += p.failed;
  const failSeen = useRef({ n: -1, at: 0, timer: 0 as unknown as ReturnType<typeof setTimeout> | 0 });
  useEffect(() => {
    const s = failSeen.current;
    if (failedTotal === s.n || health.version < 0) return;
    const load = async () => {
      s.timer = 0;
      s.at = Date.now();
      s.n = failedTotal;
      try {
        // A token for some pipelines only must name each one (docs/security.md).
        const rs = await client.fetchEachPipeline<{ groups: FailureGroup[] }>('/api/failures');
        setGroups(rs.length === 1 ? rs[0]!.groups : rs.flatMap((r) => r.groups).sort((a, b) => b.last_seen.localeCompare(a.last_seen)));
      } catch {
        s.n = -1; // try again on the next change
      }
    };
    if (s.timer) return;
    const wait = Math.max(0, 1500 - (Date.now() - s.at));
    s.timer = setTimeout(load, wait);
  }, [failedTotal, health.version, client]);
  const shownGroups = groups.filter((g) => (!view.pipeline || g.pipeline_id === view.pipeline) && pipelines.some((p) => p.id === g.pipeline_id));

  // ---- screen-reader summary, at most every 5 s ----
  const [announce, setAnnounce] = useState('');
  const srPrev = useRef<{ c: number; f: number; i: number } | null>(null);
  useEffect(() => {
    const t = setInterval(() => {
      const ps = [...model.pipelines.values()];
      const c = ps.reduce((a, p) => a + p.processed, 0);
      const f = ps.reduce((a, p) => a + p.failed, 0);
      const i = model.filesInFlight;
      const prev = srPrev.current;
      srPrev.current = { c, f, i };
      if (!prev || (prev.c === c && prev.f === f && prev.i === i)) return;
      const parts = [];
      if (c > prev.c) parts.push(`${c - prev.c} completed`);
      if (f > prev.f) parts.push(`${f - prev.f} failed`);
      parts.push(`${i} in flight`);
      setAnnounce(`In the last 5 seconds: ${parts.join(', ')}.`);
    }, 5000);
    return () => clearInterval(t);
  }, [model]);

  // ---- keyboard ----
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const tgt = e.target as HTMLElement | null;
      const typing = tgt && (tgt.tagName === 'INPUT' || tgt.tagName === 'TEXTAREA' || tgt.tagName === 'SELECT');
      if (e.key === 'Escape') {
        if (typing && tgt === search.current) search.current?.blur();
        else if (help) setHelp(false);
        else if (view.file) setView({ file: '' }, true);
        else setSelected('');
        return;
      }
      if (typing || e.metaKey || e.ctrlKey || e.altKey) return;
      const r = rowsRef.current;
      const i = r.findIndex((x) => x.key === selected);
      switch (e.key) {
        case '/':
          e.preventDefault();
          search.current?.focus();
          break;
        case 'j':
        case 'ArrowDown':
          if (tgt?.closest('.tbody') || e.key === 'j') {
            e.preventDefault();
            const n = r[Math.min(r.length - 1, i + 1)];
            if (n) setSelected(n.key);
            held.current = true;
          }
          break;
        case 'k':
        case 'ArrowUp':
          if (tgt?.closest('.tbody') || e.key === 'k') {
            e.preventDefault();
            const n = r[Math.max(0, i - 1)];
            if (n) setSelected(n.key);
            held.current = true;
          }
          break;
        case 'Enter':
          if (selected && !tgt?.closest('button,a')) setView({ file: selected }, true);
          break;
        case 'p':
          setPaused(!paused);
          break;
        case 'e':
          setView({ errors: !view.errors });
          break;
        case 't':
          nextTheme();
          break;
        case '?':
          setHelp((h) => !h);
          break;
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [help, view, selected, paused, setPaused, setView, nextTheme]);

  // ---- test and debugging hook (read-only numbers) ----
  useEffect(() => {
    (window as unknown as { __ragpulse: unknown }).__ragpulse = {
      stats: () => ({
        ...model.stats,
        version: model.version,
        inFlight: model.filesInFlight,
        completed: model.completedFiles().length,
        frame: live.frame,
        buffered: live.buffered.length,
      }),
      health: () => live.health,
      file: (pid: string, fid: string) => {
        const f = model.pipelines.get(pid)?.files.get(fid);
        return f ? { progress: f.progress, stage: f.stage } : null;
      },
      recentCompleted: (pid: string) => model.pipelines.get(pid)?.recentCompleted.map((r) => r.name) ?? null,
    };
  }, [model, live]);

  const stale = health.badge === 'offline' && health.version >= 0;
  const totals = fiveMinuteTotals(model, pipelines, now);
  document.title = `${totals.failed ? `(${totals.failed} failed) ` : ''}ragpulse`;

  return (
    <div className="app" data-frame={frame}>
      <a className="skip" href="#files-h">Skip to files in flight</a>
      <header className="top">
        <h1 className="brand">
          <span className="logo" aria-hidden="true">◉</span> ragpulse
        </h1>
        <ConnectionBadge health={health} now={Date.now()} lastEventAt={health.lastEventAt ?? lastSeen(allPipelines, health.clockSkewMs)} />
        <div className="top-actions">
          <button className={`btn${paused ? ' on' : ''}`} aria-pressed={paused} onClick={() => setPaused(!paused)} data-testid="pause">
            {paused ? `▶ Resume${buffered ? ` (${num(buffered)} waiting)` : ''}` : '❚❚ Pause'} <span className="kbd">p</span>
          </button>
          <button className="btn" onClick={nextTheme} title="Change theme: system, light, dark" data-testid="theme">
            {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'} {theme} <span className="kbd">t</span>
          </button>
          <button className="btn" onClick={() => setHelp(true)} title="Keyboard shortcuts">
            ? <span className="sr-only">Keyboard shortcuts</span>
          </button>
        </div>
      </header>

      {health.badge === 'unauthorized' && (
        <AuthBanner message={health.authError ?? 'unauthorized'} hadToken={client.hasToken()} onToken={(t) => { saveToken(t); client.setToken(t); }} />
      )}
      {stale && (
        <div className="banner warn" role="status" data-testid="stale-banner">
          <span aria-hidden="true">⚠</span> Live updates are interrupted: what you see may be stale. Reconnecting…
        </div>
      )}
      {paused && (
        <div className="banner info" role="status" data-testid="paused-banner">
          Paused: {num(buffered)} events are waiting. <button className="linkish" onClick={() => setPaused(false)}>Resume</button>
        </div>
      )}

      <main>
      <div className="filters" role="search">
        <label className="search">
          <span className="sr-only">Search files</span>
          <input
            ref={search}
            type="search"
            placeholder="Search files…  /"
            value={view.q}
            onChange={(e) => setView({ q: e.target.value })}
            data-testid="search"
          />
        </label>
        <label>
          <span className="lbl">Type</span>
          <select value={view.type} onChange={(e) => setView({ type: e.target.value })} data-testid="filter-type">
            <option value="">All types</option>
            {types.map((t) => (
              <option key={t} value={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          <span className="lbl">Status</span>
          <select value={view.status} onChange={(e) => setView({ status: e.target.value })} data-testid="filter-status">
            <option value="">Any status</option>
            {['online', 'running', 'idle', 'late', 'offline', 'error'].map((s) => (
              <option key={s} value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label className="toggle">
          <input type="checkbox" checked={view.errors} onChange={(e) => setView({ errors: e.target.checked })} data-testid="errors-only" />
          Errors only <span className="kbd">e</span>
        </label>
        {view.pipeline && (
          <button className="chip" onClick={() => setView({ pipeline: '' }, true)} data-testid="pipeline-chip">
            pipeline: {view.pipeline} <span aria-hidden="true">✕</span>
            <span className="sr-only">remove this filter</span>
          </button>
        )}
      </div>

      <SummaryStrip model={model} pipelines={pipelines} serverNow={now} />

      <section aria-labelledby="pipes-h">
        <h2 id="pipes-h" className="sr-only">Pipelines</h2>
        <div className="cards">
          {pipelines.map((p: PipelineState) => (
            <PipelineCard
              key={p.id}
              p={p}
              model={model}
              serverNow={now}
              stages={stages}
              selected={view.pipeline === p.id}
              onSelect={(id) => setView({ pipeline: view.pipeline === id ? '' : id }, true)}
            />
          ))}
          {pipelines.length === 0 && (
            <p className="empty">
              {health.badge === 'unauthorized'
                ? 'A token is needed to see pipelines.'
                : health.version < 0
                  ? 'Loading…'
                  : allPipelines.length
                    ? 'No pipeline matches these filters.'
                    : 'No pipeline has reported yet.'}
            </p>
          )}
        </div>
      </section>

      <div className={`main${view.errors ? ' errors-only' : ''}`}>
        {!view.errors && (
          <div className="col">
          <section className="panel files" aria-labelledby="files-h">
            <h2 id="files-h">
              Files in flight <span className="muted small" data-testid="files-count">{num(computed.length)}</span>
            </h2>
            {model.filesUnlisted > 0 && (
              <p className="muted small" data-testid="files-unlisted">
                {num(model.filesUnlisted)} more files in flight (not listed: the hub sends a page of each pipeline's files)
              </p>
            )}
            <FilesTable
              model={model}
              rows={rows}
              now={now}
              stages={stages}
              selected={selected}
              onOpen={(k) => setView({ file: k }, true)}
              onSelect={(k) => {
                setSelected(k === selected ? '' : k);
                held.current = k !== selected;
              }}
              onHold={onHold}
              pending={pending}
              onMerge={merge}
              stallMs={view.stall * 1000}
            />
          </section>
          <section className="panel completed" aria-labelledby="done-h">
            <h2 id="done-h">
              Completed files <span className="muted small" data-testid="completed-count">{num(completed.length)}</span>
            </h2>
            <CompletedTable rows={completed} q={view.q} now={now} onOpen={(k) => setView({ file: k }, true)} />
          </section>
          </div>
        )}
        <FailuresPanel groups={shownGroups} now={now} q={view.q} onOpenFile={(k) => setView({ file: k }, true)} />
      </div>

      </main>
      {view.file && <Drilldown client={client} fileKey={view.file} rev={model.rev} now={now} onClose={() => setView({ file: '' }, true)} />}
      {help && <HelpDialog onClose={() => setHelp(false)} />}
      <div className="sr-only" aria-live="polite" data-testid="sr-summary">
        {announce}
      </div>
    </div>
  );
}

/** When the newest event the snapshot knows of happened, in our clock. */
function lastSeen(pipelines: PipelineState[], skew: number): number | null {
  let t: number | null = null;
  for (const p of pipelines) if (p.lastEventAt !== null && (t === null || p.lastEventAt > t)) t = p.lastEventAt;
  return t === null ? null : t - skew;
}

function AuthBanner({ message, hadToken, onToken }: { message: string; hadToken: boolean; onToken: (t: string) => void }) {
  const [value, setValue] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.focus();
  }, [message]);
  return (
    <form
      className="banner bad"
      data-testid="auth-banner"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) onToken(value.trim());
      }}
    >
      <span role="alert">
        <span aria-hidden="true">⊘</span>{' '}
        {hadToken ? (
          <>
            The hub refused this token: <b>{message}</b>.
          </>
        ) : (
          <>
            This hub needs a token to show pipelines (<b>{message}</b>).
          </>
        )}{' '}
        Paste a viewer token (<code>ragpulse token --role viewer</code>) to continue.
      </span>
      <label>
        <span className="sr-only">Token</span>
        <input
          ref={input}
          type="password"
          autoComplete="off"
          placeholder="eyJhbGciOi…"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          data-testid="token-input"
        />
      </label>
      <button className="btn" type="submit">Use token</button>
    </form>
  );
}

function HelpDialog({ onClose }: { onClose: () => void }) {
  const keys: [string, string][] = [
    ['/', 'search files'],
    ['j / k', 'next / previous file'],
    ['Enter', "open the selected file's timeline"],
    ['Esc', 'close, clear selection'],
    ['p', 'pause / resume live updates'],
    ['e', 'errors only'],
    ['t', 'theme: system, light, dark'],
    ['?', 'this help'],
  ];
  return (
    <div className="modal" role="dialog" aria-modal="true" aria-labelledby="help-h">
      <div className="modal-body">
        <h2 id="help-h">Keyboard shortcuts</h2>
        <dl className="keys">
          {keys.map(([k, d]) => (
            <div key={k}>
              <dt>
                <span className="kbd">{k}</span>
              </dt>
              <dd>{d}</dd>
            </div>
          ))}
        </dl>
        <button className="btn" onClick={onClose} autoFocus>
          Close
        </button>
      </div>
    </div>
  );
}
