"""Channel messages: POST /api/channels/NAME with one message or {"messages": [...]}.

Sent at once (no on-disk queue: the caller wants the offsets back), retried like the events
path on connection errors, 5xx and 429 (backoff, Retry-After honoured) until a deadline.
Every message carries an idempotency key (`id`; one is made when the caller gives none), so
a retry after a lost answer publishes nothing twice: the hub answers the first offsets.
"""
from __future__ import annotations

import random
import re
import threading
import time
import uuid
from typing import Any

from ._errors import PublishError
from ._transport import HttpTransport

NAME_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,128}\Z")
OPS = ("set", "patch", "delete", "append")
FIELDS = ("op", "key", "value", "ttl_ms", "id")
MAX_BATCH = 1000


def message(value: Any = None, op: str | None = None, key: str | None = None,
            ttl_ms: int | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
    """One message as the hub reads it; `value` is left out for a delete (None there)."""
    m: dict[str, Any] = {}
    if op is not None:
        m["op"] = op
    if key is not None:
        m["key"] = key
    if not (op == "delete" and value is None):
        m["value"] = value
    if ttl_ms is not None:
        m["ttl_ms"] = ttl_ms
    if idempotency_key is not None:
        m["id"] = idempotency_key
    return m


def check(channel: str, messages: list[dict[str, Any]]) -> None:
    """The local checks (raise ValueError): a valid channel name, 1..1000 messages of known
    fields, a known op, a non-negative whole ttl_ms, an id of at most 128 bytes."""
    if not isinstance(channel, str) or not NAME_RE.match(channel):
        raise ValueError(f"invalid channel name {channel!r} (1..128 of A-Za-z0-9_.:@-)")
    if not 1 <= len(messages) <= MAX_BATCH:
        raise ValueError(f"a batch is 1..{MAX_BATCH} messages, got {len(messages)}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ValueError(f"messages[{i}] is not a dict")
        unknown = [k for k in m if k not in FIELDS]
        if unknown:
            raise ValueError(f"messages[{i}]: unknown field {unknown[0]!r}")
        if "op" in m and m["op"] not in OPS:
            raise ValueError(f"messages[{i}].op must be one of {', '.join(OPS)}")
        t = m.get("ttl_ms")
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 0):
            raise ValueError(f"messages[{i}].ttl_ms must be a whole number >= 0")
        ik = m.get("id")
        if ik is not None and (not isinstance(ik, str) or not 1 <= len(ik.encode()) <= 128):
            raise ValueError(f"messages[{i}].id must be a string of 1..128 bytes")


class Publisher:
    """Publishes through `transport`, retrying for at most `budget` seconds."""

    def __init__(self, transport: HttpTransport, budget: float = 30.0,
                 backoff_max: float = 2.0) -> None:
        self.transport = transport
        self.budget = budget
        self.backoff_max = backoff_max
        self._run = uuid.uuid4().hex[:16]
        self._seq = 0
        self._lock = threading.Lock()

    def _key(self) -> str:
        with self._lock:
            self._seq += 1
            return f"{self._run}-c{self._seq}"

    def publish(self, channel: str, messages: list[dict[str, Any]], batch: bool) -> list[int]:
        """Checks, keys and sends messages (a batch body when `batch`); returns the offsets."""
        check(channel, messages)
        keyed = [m if "id" in m else {**m, "id": self._key()} for m in messages]
        body: Any = {"messages": keyed} if batch else keyed[0]
        deadline = time.monotonic() + self.budget
        delay = 0.05
        while True:
            status: int | None = None
            try:
                status, answer, retry = self.transport.post_json("/api/channels/" + channel, body)
            except OSError as e:
                answer, retry, error = {}, None, f"hub unreachable: {e}"
            else:
                if status == 200:
                    offsets = answer.get("offsets")
                    if not isinstance(offsets, list):
                        raise PublishError(status, "the hub's answer has no offsets", body=answer)
                    return [int(o) for o in offsets]
                error = str(answer.get("error") or f"HTTP {status}")
                if status != 429 and status < 500:
                    raise PublishError(status, error, str(answer.get("field") or ""),
                                       str(answer.get("rule") or ""), answer)
            delay = min(delay * 2, self.backoff_max)
            wait = retry if retry else delay * (0.5 + random.random() / 2)
            if time.monotonic() + wait > deadline:
                raise PublishError(status, error, body=answer)
            time.sleep(wait)
