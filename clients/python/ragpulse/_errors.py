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
