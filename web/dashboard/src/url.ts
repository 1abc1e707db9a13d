// The view's state in the URL query (?pipeline=&type=&status=&errors=1&q=&file=&stall=), so a
// view can be shared and deep-linked. The token never goes here: it comes in the fragment once.

export interface ViewState {
  pipeline: string;
  type: string;
  status: string;
  errors: boolean;
  q: string;
  /** "pipeline_id/file_id" of the open drill-down, or "". */
  file: string;
  /** Seconds without progress before a file is flagged as stalled (default 60; `?stall=`). */
  stall: number;
}

export const DEFAULT_STALL_S = 60;

export const EMPTY_VIEW: ViewState = { pipeline: '', type: '', status: '', errors: false, q: '', file: '', stall: DEFAULT_STALL_S };

export function readView(search: string = location.search): ViewState {
  const p = new URLSearchParams(search);
  return {
    pipeline: p.get('pipeline') ?? '',
    type: p.get('type') ?? '',
    status: p.get('status') ?? '',
    errors: p.get('errors') === '1',
    q: p.get('q') ?? '',
    file: p.get('file') ?? '',
    stall: /^[1-9]\d{0,5}$/.test(p.get('stall') ?? '') ? Number(p.get('stall')) : DEFAULT_STALL_S,
  };
}

export function writeView(v: ViewState, push = false): void {
  const p = new URLSearchParams();
  if (v.pipeline) p.set('pipeline', v.pipeline);
  if (v.type) p.set('type', v.type);
  if (v.status) p.set('status', v.status);
  if (v.errors) p.set('errors', '1');
  if (v.q) p.set('q', v.q);
  if (v.file) p.set('file', v.file);
  if (v.stall !== DEFAULT_STALL_S) p.set('stall', String(v.stall));
  const qs = p.toString();
  const url = `${location.pathname}${qs ? `?${qs}` : ''}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

/** Reads `#token=...` once, keeps it in sessionStorage, and removes it from the address bar. */
export function takeToken(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m?.[1]) {
    const token = decodeURIComponent(m[1]);
    try {
      sessionStorage.setItem('ragpulse.token', token);
    } catch {
      /* storage disabled: keep it for this page only */
    }
    history.replaceState(null, '', `${location.pathname}${location.search}`);
    return token;
  }
  try {
    return sessionStorage.getItem('ragpulse.token');
  } catch {
    return null;
  }
}

export function saveToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem('ragpulse.token', token);
    else sessionStorage.removeItem('ragpulse.token');
  } catch {
    /* ignore */
  }
}
