// What a token lets this client ask for. The client reads the token's `pipelines` claim only
// to choose its requests: a token limited to some pipelines may not subscribe to all of them
// or to a whole type, and must name a pipeline on the per-pipeline HTTP APIs
// (docs/security.md, the role table). The server verifies the token and stays the authority.

export interface Subscription {
  pipeline_id?: string;
  pipeline_type?: string;
}

/**
 * The pipelines a token's claims say it may see: a list of ids, or null for all (no token, an
 * admin, `pipelines: ["*"]`, or a token this code cannot read). Decoded without verifying:
 * it only chooses what to ask for; the server checks the signature and refuses the rest.
 */
export function tokenPipelines(token: string | null | undefined): string[] | null {
  const part = token?.split('.')[1];
  if (!part) return null;
  let claims: { role?: unknown; pipelines?: unknown };
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    claims = JSON.parse(new TextDecoder().decode(bytes)) as typeof claims;
  } catch {
    return null;
  }
  if (typeof claims !== 'object' || claims === null || claims.role === 'admin') return null;
  const raw = claims.pipelines;
  const list = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : null;
  if (list === null) return null;
  const ids = [...new Set(list.filter((x): x is string => typeof x === 'string').map((x) => x.trim()).filter(Boolean))];
  return ids.includes('*') ? null : ids;
}

/**
 * What to subscribe to: the asked-for subscription when the token sees everything; else one
 * `{pipeline_id}` per pipeline it lists (narrowed to the asked-for pipeline). A type asked for
 * is then the client's own filter on the events of those pipelines.
 */
export function subscriptionsFor(token: string | null | undefined, want: Subscription = {}): Subscription[] {
  const ids = tokenPipelines(token);
  if (ids === null) return [want];
  if (want.pipeline_id) return [{ pipeline_id: want.pipeline_id }];
  return ids.map((pipeline_id) => ({ pipeline_id }));
}
