// Glue between the connection manager and a UI: events go into the model as they arrive
// (or into a buffer while paused), and the UI is told to render at most once per animation
// frame, never while the tab is hidden (it catches up once when it becomes visible). Framework
// free; react.tsx wraps it in a provider and a hook.

import { RagPulseClient, type ClientOptions, type Health } from './client.js';
import type { RagEvent } from './events.js';
import { StatusModel, type Span } from './model.js';

export class LiveStatus {
  readonly client: RagPulseClient;
  readonly model = new StatusModel();
  /** Increments once per rendered frame with changes; what React's external store reads. */
  frame = 0;
  paused = false;
  /** Events held while paused, applied in order on resume. */
  buffered: RagEvent[] = [];
  /** Where each batch held while paused ends in `buffered`, with its span (see Span). */
  private batches: { end: number; span: Span | undefined }[] = [];
  health: Health;
  private subs = new Set<() => void>();
  private scheduled = false;
  private dirty = false;
  private offs: (() => void)[] = [];
  private onVisible = () => {
    if (!document.hidden && this.dirty) this.schedule();
  };

  constructor(options: ClientOptions = {}) {
    this.client = new RagPulseClient(options);
    this.health = this.client.getHealth();
    this.offs.push(
      this.client.on('snapshot', (s) => {
        this.buffered = [];
        this.batches = [];
        this.model.applySnapshot(s);
        this.changed();
      }),
      this.client.on('events', (evs, _source, span) => {
        if (this.paused) {
          this.buffered.push(...evs);
          this.batches.push({ end: this.buffered.length, span });
        } else {
          this.model.applyEvents(evs, span);
        }
        this.changed();
      }),
      this.client.on('health', (h) => {
        this.health = h;
        this.changed();
      }),
    );
  }

  start(): void {
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.onVisible);
    void this.client.start();
  }

  stop(): void {
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.onVisible);
    this.client.stop();
  }

  setPaused(paused: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    if (!paused) {
      let start = 0;
      for (const b of this.batches) {
        this.model.applyEvents(this.buffered.slice(start, b.end), b.span);
        start = b.end;
      }
      this.buffered = [];
      this.batches = [];
    }
    this.changed();
  }

  subscribe = (fn: () => void): (() => void) => {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  };

  getFrame = (): number => this.frame;

  /** Marks the view stale; renders on the next frame unless hidden. */
  changed(): void {
    this.dirty = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    if (typeof document !== 'undefined' && document.hidden) return;
    this.scheduled = true;
    const raf = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16);
    raf(() => {
      this.scheduled = false;
      if (!this.dirty) return;
      this.dirty = false;
      this.frame++;
      for (const fn of this.subs) fn();
    });
  }
}
