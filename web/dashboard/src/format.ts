// Small formatting helpers shared by the dashboard's components.

/** A duration for people: "340 ms" under a second (local files take ~100 ms, never "0 s"),
 * "2.4 s" under ten, then "42 s", "3m 05s", "2h 01m". */
export function dur(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 1000) return `${Math.min(999, Math.round(ms))} ms`;
  if (ms < 10000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

export function ago(ms: number | null, now: number): string {
  if (ms === null) return 'never';
  const d = now - ms;
  return d < 1000 ? 'just now' : `${dur(d)} ago`;
}

export function pct(x: number): string {
  return `${Math.round(Math.max(0, Math.min(1, x)) * 100)}%`;
}

export function num(n: number): string {
  return n.toLocaleString('en-US');
}

export function clock(ts: string | number): string {
  const d = new Date(ts);
  return d.toLocaleTimeString('en-GB', { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}
