"""The exceptions the package raises."""
from __future__ import annotations


class RagpulseError(Exception):
    """Base of every error this package raises."""


class EventRefused(RagpulseError):
    """An event the hub (or the local check that mirrors docs/events.schema.json) refuses.

    `field` is the dotted path of the offending field ("" for the event itself), `rule` the
    rule it breaks, `event` the event as it was built. Such an event is never queued again.
    """

    def __init__(self, field: str, rule: str, event: dict[str, object] | None = None,
                 status: int | None = None) -> None:
        self.field = field
        self.rule = rule
        self.event = event
        self.status = status
        where = f"{field}: " if field else ""
        super().__init__(f"event refused: {where}{rule}")


class QueueLocked(RagpulseError):
    """Another process holds this on-disk queue (one producer per queue file)."""


class PublishError(RagpulseError):
    """A channel message (or batch) the hub did not take: refused (`status` 400, 401, 403,
    404, 413...; `error`, and for a bad message `field` and `rule`, from the hub's answer), or
    not delivered before the retry budget ran out (`status` None, or the last 5xx/429).
    `body` is the hub's JSON answer ({} when none)."""

    def __init__(self, status: int | None, error: str, field: str = "", rule: str = "",
                 body: dict[str, object] | None = None) -> None:
        self.status = status
        self.error = error
        self.field = field
        self.rule = rule
        self.body = body or {}
        where = f" ({field}: {rule})" if field else (f" ({rule})" if rule else "")
        code = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"publish failed: {code}{error}{where}")
