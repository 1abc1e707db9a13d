"""ragpulse.Pipeline: a run reported to the hub with `with` statements.

Every event is checked locally, given an idempotency key (meta.idempotency_key, unique per
event, kept across resends), appended to the on-disk queue, and sent by the sender thread.
Progress is coalesced per file; a background ticker sends heartbeats and due progress.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, Literal, TypeVar

from ._channels import Publisher, message
from ._check import check_event
from ._errors import EventRefused
from ._queue import DiskQueue, default_queue_path
from ._transport import HttpTransport, Sender

T = TypeVar("T")
R = TypeVar("R")
OnError = Literal["raise", "continue"]
TRACE_MAX = 4000  # characters of traceback kept in file.error.message


def error_of(exc: BaseException) -> dict[str, Any]:
    """file.error for exc: message = str(exc), then a newline and the traceback's last frames
    (bounded to TRACE_MAX characters; the schema has no separate detail field), kind = the
    exception's class name."""
    text = str(exc) or type(exc).__name__
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(tb) > TRACE_MAX:
        tb = "...\n" + tb[-TRACE_MAX:]
    msg = (text + "\n" + tb.rstrip("\n"))[:8192]
    return {"message": msg, "kind": type(exc).__name__[:64]}


class File:
    """One file of the run, from p.file(); a context manager. Set `chunks` (and `stage`) as the
    work goes on; progress() reports a fraction 0..1."""

    def __init__(self, pipeline: "Pipeline", file_id: str, name: str, fields: dict[str, Any],
                 on_error: OnError) -> None:
        self.pipeline = pipeline
        self.id = file_id
        self.name = name
        self.fields = fields
        self.on_error = on_error
        self.chunks: int | None = None
        self.stage: str | None = None
        self.done = False
        self.failed = False

    def _ident(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}

    def start(self) -> None:
        self.pipeline.emit("file:processing", file={**self._ident(), **self.fields})

    def progress(self, value: float, stage: str | None = None, **fields: Any) -> None:
        """file:progress, coalesced: at most one per progress_interval s, the last always sent."""
        if stage is not None:
            self.stage = stage
        f: dict[str, Any] = {**self._ident(), "progress": value, **fields}
        if self.stage is not None:
            f["stage"] = self.stage
        if self.chunks is not None:
            f.setdefault("chunks", self.chunks)
        self.pipeline._progress(self.id, f)

    def complete(self, **fields: Any) -> None:
        """file:completed now (with chunks when set)."""
        f = {**self._ident(), **fields}
        if self.chunks is not None:
            f.setdefault("chunks", self.chunks)
        self.done = True
        self.pipeline.emit("file:completed", file=f)

    def fail(self, error: BaseException | str | dict[str, Any], **fields: Any) -> None:
        """file:failed now; error is an exception (see error_of), a message or an error object."""
        if isinstance(error, BaseException):
            err: Any = error_of(error)
        else:
            err = error
        f = {**self._ident(), "error": err, **fields}
        if self.stage is not None:
            f.setdefault("stage", self.stage)
        self.done = self.failed = True
        self.pipeline.emit("file:failed", file=f)

    def __enter__(self) -> "File":
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if self.done:
            return False
        if exc is None:
            self.complete()
            return False
        if isinstance(exc, EventRefused) or not isinstance(exc, Exception):
            # our own refusal, or KeyboardInterrupt/SystemExit: reported, never swallowed
            self.fail(exc)
            return False
        self.fail(exc)
        return self.on_error == "continue"


class Pipeline:
    """A pipeline's run: `with Pipeline(...) as p:` sends pipeline:online on entry, heartbeats
    every heartbeat_interval s from a background thread, pipeline:offline on exit (also on an
    exception, which is re-raised). Thread-safe.

    hub, token and pipeline_id default to RAGPULSE_HUB, RAGPULSE_TOKEN and RAG_PIPELINE_ID.
    queue is the on-disk queue's path (default ~/.cache/ragpulse/<pipeline_id>.queue): events
    a previous process could not deliver are sent first. on_error="continue" reports a
    failing file and goes on; "raise" (the default) re-raises after reporting it.
    flush_timeout bounds how long exit waits for the hub; what is left stays queued.
    on_ack(event, id), if given, is called from the sender thread for each event the hub
    acknowledged, with the id it got (the first id for a repeat).
    """

    def __init__(self, pipeline_id: str | None = None, pipeline_type: str = "local_files", *,
                 hub: str | None = None, token: str | None = None,
                 heartbeat_interval: float = 30.0, progress_interval: float = 0.1,
                 queue: str | None = None, max_queued: int = 100_000,
                 on_error: OnError = "raise", flush_timeout: float = 30.0,
                 validate: bool = True, timeout: float = 10.0,
                 meta: dict[str, Any] | None = None,
                 on_ack: Callable[[dict[str, Any], int], None] | None = None) -> None:
        pid = pipeline_id or os.environ.get("RAG_PIPELINE_ID")
        if not pid:
            raise ValueError("no pipeline id: pass one or set RAG_PIPELINE_ID")
        self.pipeline_id: str = pid
        self.pipeline_type = pipeline_type
        self.hub = hub or os.environ.get("RAGPULSE_HUB") or "http://127.0.0.1:8103"
        self.token = token if token is not None else os.environ.get("RAGPULSE_TOKEN") or None
        self.heartbeat_interval = heartbeat_interval
        self.progress_interval = progress_interval
        self.queue_path = queue or default_queue_path(self.pipeline_id)
        self.max_queued = max_queued
        self.on_error: OnError = on_error
        self.flush_timeout = flush_timeout
        self.validate = validate
        self.timeout = timeout
        self.meta = meta
        self.on_ack = on_ack
        self.files_total: int | None = None
        self._run = uuid.uuid4().hex[:16]
        self._seq = 0
        self._lock = threading.RLock()
        self._pending: dict[str, dict[str, Any]] = {}  # file id -> the progress not sent yet
        self._last_progress: dict[str, float] = {}  # file id -> when its last one was queued
        self._queue: DiskQueue | None = None
        self._sender: Sender | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._open_track: File | None = None
        self._publisher: Publisher | None = None

    # ---- events ----

    def emit(self, event_type: str, **fields: Any) -> None:
        """Queues one event (type plus its fields; pipeline_id/type are added). Raises
        EventRefused at once if it breaks a rule, or a refusal the hub answered earlier."""
        self._raise_refused()
        ev: dict[str, Any] = {"type": event_type, "pipeline_id": self.pipeline_id,
                              "pipeline_type": self.pipeline_type, **fields}
        if self.validate:
            check_event(ev)
        with self._lock:
            if self._queue is None:
                raise RuntimeError("the pipeline is not open: use `with Pipeline(...) as p:`")
            f = ev.get("file")
            if event_type != "file:progress" and isinstance(f, dict):
                self._flush_progress(f["id"])  # a file's events stay in order
            self._put(ev)

    def _put(self, ev: dict[str, Any]) -> None:
        self._seq += 1
        meta = dict(ev.get("meta") or {})
        meta["idempotency_key"] = f"{self._run}-{self._seq}"
        ev["meta"] = meta
        assert self._queue is not None
        self._queue.put(ev)

    def _progress(self, file_id: str, f: dict[str, Any]) -> None:
        ev = {"type": "file:progress", "pipeline_id": self.pipeline_id,
              "pipeline_type": self.pipeline_type, "file": f}
        self._raise_refused()
        if self.validate:
            check_event(ev)
        now = time.monotonic()
        with self._lock:
            last = self._last_progress.get(file_id)
            if last is None or now - last >= self.progress_interval:
                self._pending.pop(file_id, None)
                self._last_progress[file_id] = now
                self._put(ev)
            else:
                self._pending[file_id] = ev

    def _flush_progress(self, file_id: str | None = None, due_only: bool = False) -> None:
        """Queues the pending progress of file_id (all files when None); with due_only, only
        those whose interval has passed. Caller holds _lock."""
        now = time.monotonic()
        for fid in [file_id] if file_id is not None else list(self._pending):
            ev = self._pending.get(fid)
            if ev is None:
                continue
            if due_only and now - self._last_progress.get(fid, 0.0) < self.progress_interval:
                continue
            del self._pending[fid]
            self._last_progress[fid] = now
            self._put(ev)
        if file_id is not None and not due_only:
            self._last_progress.pop(file_id, None)

    def _raise_refused(self) -> None:
        s = self._sender
        err = s.take_refused() if s else None
        if err is not None:
            raise err

    def heartbeat(self, **fields: Any) -> None:
        self.emit("heartbeat", **fields)

    def status(self, status: str, **fields: Any) -> None:
        """status:update (online, offline, running, idle, error)."""
        self.emit("status:update", status=status, **fields)

    # ---- channels ----

    def publish(self, channel: str, value: Any = None, op: str | None = None,
                key: str | None = None, ttl_ms: int | None = None,
                idempotency_key: str | None = None) -> list[int]:
        """Publishes one message to a channel (POST /api/channels/NAME) and returns its offsets
        (a list of one). op defaults to the channel's (append on a stream, set on a state
        channel); key names a state entry; value is left out for a delete. Sent at once,
        without the pipeline being open; retried on connection errors, 5xx and 429 for at most
        flush_timeout s, with an idempotency key (made when not given) so nothing is published
        twice. Raises ValueError for a bad name or message, PublishError when the hub refuses
        it or cannot be reached in time."""
        return self._channel_publisher().publish(
            channel, [message(value, op, key, ttl_ms, idempotency_key)], batch=False)

    def publish_batch(self, channel: str, messages: list[dict[str, Any]]) -> list[int]:
        """Publishes 1..1000 messages ({"op", "key", "value", "ttl_ms", "id"}, as the hub reads
        them) all or nothing, and returns their offsets in order. As publish() otherwise."""
        return self._channel_publisher().publish(channel, list(messages), batch=True)

    def _channel_publisher(self) -> Publisher:
        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher(HttpTransport(self.hub, self.token, self.timeout),
                                            self.flush_timeout)
            return self._publisher

    # ---- files ----

    def file(self, file_id: str, name: str | None = None, *, size: int | None = None,
             mime_type: str | None = None, hash: str | None = None, attempt: int | None = None,
             on_error: OnError | None = None) -> File:
        """A context manager for one file: file:processing on entry, file:completed on a normal
        exit (with f.chunks), file:failed on an exception (re-raised unless on_error, or the
        pipeline's, is "continue")."""
        fields = {k: v for k, v in (("size", size), ("mime_type", mime_type), ("hash", hash),
                                    ("attempt", attempt)) if v is not None}
        return File(self, str(file_id), name or str(file_id), fields, on_error or self.on_error)

    def track(self, items: Iterable[T], fn: Callable[[T], R] | None = None, *,
              name: Callable[[T], str] = str, id: Callable[[T], str] | None = None,
              on_error: OnError | None = None) -> Iterator[Any]:
        """tqdm-style: one file per item (file id from `id`, else `name`; the name from `name`).

        Without fn, yields the items: an item is completed when the loop asks for the next one
        (or ends); if the loop body raises, the exception leaves the loop (Python gives it to
        no generator) and the pipeline's exit reports that item failed.
        With fn, calls fn(item) inside the file and yields its results; a raising item is
        reported failed and, with on_error="continue", the loop goes on (nothing yielded)."""
        mode = on_error or self.on_error
        for item in items:
            label = name(item)
            f = self.file(id(item) if id else label, label, on_error=mode)
            if fn is None:
                f.start()
                self._open_track = f
                try:
                    yield item
                except GeneratorExit:
                    return  # left by break or an exception: see __exit__
                self._open_track = None
                if not f.done:
                    f.complete()
                continue
            result: Any = None
            with f:
                result = fn(item)
            if not f.failed:  # failed and continuing: nothing to yield
                yield result

    # ---- the run ----

    def __enter__(self) -> "Pipeline":
        self.open()
        return self

    def open(self) -> None:
        """What `with` does on entry: the queue, the sender, pipeline:online, the ticker."""
        self._queue = DiskQueue(self.queue_path, self.max_queued)
        self._sender = Sender(self._queue, HttpTransport(self.hub, self.token, self.timeout))
        self._sender.on_ack = self.on_ack
        self._sender.start()
        online: dict[str, Any] = {"heartbeat_interval": self.heartbeat_interval}
        if self.files_total is not None:
            online["files_total"] = self.files_total
        if self.meta:
            online["meta"] = self.meta
        self.emit("pipeline:online", **online)
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="ragpulse-ticker", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_interval
        step = min(self.progress_interval, self.heartbeat_interval) / 2
        while not self._stop.wait(step):
            with self._lock:
                self._flush_progress(due_only=True)
            if time.monotonic() >= next_beat:
                next_beat += self.heartbeat_interval
                try:
                    self.heartbeat()
                except Exception:  # a refusal is raised to the caller's next call
                    pass

    def flush(self, timeout: float | None = None) -> bool:
        """Queues pending progress and waits until the hub has every queued event (True) or
        timeout s passed (False). Raises a refusal the hub answered."""
        with self._lock:
            self._flush_progress()
        ok = self._queue.wait_empty(timeout) if self._queue else True
        self._raise_refused()
        return ok

    def close(self, exc: BaseException | None = None, message: str | None = None) -> None:
        """What `with` does on exit: offline (with message, or the exception), a bounded flush,
        threads stopped, queue closed. A second call does nothing."""
        if self._queue is None:
            return
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        refused: EventRefused | None = None
        try:
            t = self._open_track
            if t is not None and not t.done:
                if exc is None:
                    t.complete()
                else:
                    t.fail(exc)
            fields: dict[str, Any] = {}
            if message is not None:
                fields["message"] = message
            if exc is not None:
                fields["message"] = f"{type(exc).__name__}: {exc}"[:4096]
            self.emit("pipeline:offline", **fields)
        except EventRefused as e:
            refused = e
        with self._lock:
            self._flush_progress()
        self._queue.wait_empty(self.flush_timeout)
        assert self._sender is not None
        self._sender.stop()
        self._queue.close()
        self._queue = None
        refused = refused or self._sender.take_refused()
        if refused is not None and exc is None:
            raise refused

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        self.close(exc)
        return False

    @property
    def queued(self) -> int:
        """Events waiting in the on-disk queue."""
        return len(self._queue) if self._queue else 0

    @property
    def last_error(self) -> str | None:
        """Why the last send did not go through (the hub down, a 5xx), or None."""
        return self._sender.last_error if self._sender else None

