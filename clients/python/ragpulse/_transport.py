"""POST /api/events (and other JSON posts to the hub) over urllib (the standard library only),
and the sender thread that drains the on-disk queue in order: batches, retried with backoff on
connection errors, 5xx and 429 (Retry-After honoured); a 400 drops the refused event and keeps
the error for the caller."""
from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from ._errors import EventRefused
from ._queue import DiskQueue


class HttpTransport:
    """One request per batch: POST `hub`/api/events with a JSON array (post), or any JSON body
    to another path of the hub (post_json: channel messages)."""

    def __init__(self, hub: str, token: str | None, timeout: float = 10.0) -> None:
        self.base = hub.rstrip("/")
        self.url = self.base + "/api/events"
        self.token = token
        self.timeout = timeout

    def post(self, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], float | None]:
        """Returns (status, JSON body, Retry-After seconds or None). Raises OSError when the
        hub cannot be reached or the connection broke before an answer."""
        return self.post_json("/api/events", events)

    def post_json(self, path: str, payload: Any) -> tuple[int, dict[str, Any], float | None]:
        """POSTs payload as JSON to the hub's `path`; returns and raises as post() does."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        req = urllib.request.Request(self.base + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, _json(r.read()), None
        except urllib.error.HTTPError as e:
            ra = e.headers.get("Retry-After") if e.headers else None
            try:
                retry = float(ra) if ra is not None else None
            except ValueError:
                retry = None
            return e.code, _json(e.read()), retry


def _json(raw: bytes) -> dict[str, Any]:
    try:
        v = json.loads(raw)
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


class Sender:
    """Drains `queue` to `transport` from a daemon thread, oldest first, never reordering."""

    def __init__(self, queue: DiskQueue, transport: HttpTransport, batch: int = 500,
                 backoff_max: float = 2.0) -> None:
        self.queue = queue
        self.transport = transport
        self.batch = batch
        self.backoff_max = backoff_max
        self.refused: list[EventRefused] = []
        self.last_error: str | None = None
        self.sent = 0
        self.on_ack: Callable[[dict[str, Any], int], None] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ragpulse-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.queue.wake()
        self._thread.join()

    def take_refused(self) -> EventRefused | None:
        """The oldest refusal the hub answered that nobody has raised yet."""
        with self._lock:
            return self.refused.pop(0) if self.refused else None

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            events = self.queue.peek(self.batch, 0.2)
            if not events:
                continue
            wait = self._send(events)
            if wait is None:
                delay = 0.05
                continue
            delay = min(delay * 2, self.backoff_max)
            self._stop.wait(wait if wait > 0 else delay * (0.5 + random.random() / 2))

    def _send(self, events: list[dict[str, Any]]) -> float | None:
        """Sends one batch. Returns None when progress was made, or the seconds to wait before
        trying again (0: the backoff's)."""
        try:
            status, body, retry = self.transport.post(events)
        except OSError as e:
            self.last_error = f"hub unreachable: {e}"
            return 0
        if status == 200:
            if self.on_ack is not None:
                for ev, i in zip(events, body.get("ids") or []):
                    self.on_ack(ev, int(i))
            self.queue.ack(len(events))
            self.sent += len(events)
            self.last_error = None
            return None
        if status == 400:
            i = int(body.get("index", 0))
            if i > 0:
                # The events before it are fine: the batch is all or nothing, send them alone.
                return self._send(events[:i])
            with self._lock:
                self.refused.append(EventRefused(str(body.get("field", "")),
                                                 str(body.get("rule") or body.get("error", "")),
                                                 events[0], status))
            self.queue.ack(1)
            return None
        if status == 413 and len(events) > 1:
            self.batch = max(1, len(events) // 2)
            return None
        if status in (429,) or status >= 500:
            self.last_error = f"hub answered {status}: {body.get('error', '')}"
            return retry if retry else 0
        # Anything else (401, 403, a 400 without a field): the hub will not take this event.
        with self._lock:
            self.refused.append(EventRefused("", f"HTTP {status}: {body.get('error', '')}",
                                             events[0], status))
        self.queue.ack(1)
        return None
