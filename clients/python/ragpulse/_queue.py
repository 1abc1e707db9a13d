"""A bounded on-disk FIFO of events that survives the process.

Layout: `<path>` holds one JSON event per line, appended (and flushed to the OS) before the
event is sent; `<path>.acked` holds how many lines from the start the hub has acknowledged,
replaced atomically. When every line is acknowledged both are truncated. A process that dies
leaves the unacknowledged lines, which the next Pipeline on the same path sends first. One
process per queue: the file is locked (fcntl) while open.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from typing import Any

from ._errors import QueueLocked


def default_queue_path(pipeline_id: str) -> str:
    """~/.cache/ragpulse/<pipeline_id>.queue (XDG_CACHE_HOME is honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ragpulse", f"{pipeline_id}.queue")


class DiskQueue:
    """Thread-safe. put() blocks while `max_events` are waiting (the sender drains them)."""

    def __init__(self, path: str, max_events: int = 100_000, fsync: bool = False) -> None:
        self.path = path
        self.max_events = max_events
        self.fsync = fsync
        self._cond = threading.Condition()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._fh = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise QueueLocked(f"{path} is in use by another process") from None
        self._fh.seek(0)
        lines = self._fh.read().splitlines()
        acked = self._read_acked()
        self._items: list[dict[str, Any]] = []
        for line in lines[acked:]:
            try:
                self._items.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash mid-write: it was never sent
        self._acked = acked  # lines of the file already acknowledged
        self._closed = False
        if not self._items:
            self._truncate()

    def _read_acked(self) -> int:
        try:
            with open(self.path + ".acked", encoding="ascii") as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_acked(self) -> None:
        tmp = self.path + ".acked.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(str(self._acked))
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path + ".acked")

    def _truncate(self) -> None:
        self._fh.seek(0)
        self._fh.truncate()
        self._acked = 0
        self._write_acked()

    def put(self, event: dict[str, Any]) -> None:
        """Appends event (durable once this returns, against a crash of this process)."""
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._cond:
            while len(self._items) >= self.max_events and not self._closed:
                self._cond.wait(0.5)
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(line)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            self._items.append(event)
            self._cond.notify_all()

    def peek(self, n: int, timeout: float | None) -> list[dict[str, Any]]:
        """Up to n oldest events, waiting up to timeout s for one; [] when none came."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            return list(self._items[:n])

    def ack(self, n: int) -> None:
        """Drops the n oldest events (the hub has them)."""
        with self._cond:
            del self._items[:n]
            self._acked += n
            if self._items:
                self._write_acked()
            else:
                self._truncate()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def wait_empty(self, timeout: float | None) -> bool:
        """True once every event is acknowledged, False if timeout s passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items, timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._fh.close()  # closing releases the lock
