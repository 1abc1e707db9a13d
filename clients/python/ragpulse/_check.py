"""A local mirror of the hub's event rules (docs/events.schema.json), so that a bad call raises
where it is made. The hub checks again; its 400 answer is raised as well (see _transport)."""
from __future__ import annotations

import re
from typing import Any

from ._errors import EventRefused

TYPES = frozenset({"pipeline:online", "pipeline:offline", "file:processing", "file:progress",
                   "file:completed", "file:failed", "file:deleted", "status:update", "heartbeat"})
FILE_TYPES = frozenset({"file:processing", "file:progress", "file:completed", "file:failed",
                        "file:deleted"})
STATUSES = frozenset({"online", "offline", "running", "idle", "error"})
_PID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_PTYPE = re.compile(r"^[a-z0-9_]{1,64}$")
_CTL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CTL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_FILE_STR = {"id": 256, "name": 1024, "mime_type": 255, "stage": 64, "hash": 128}


def _string(ev: dict[str, Any], field: str, value: Any, maxlen: int, text: bool = False) -> None:
    if not isinstance(value, str) or not value:
        raise EventRefused(field, "must be a non-empty string", ev)
    if len(value) > maxlen:
        raise EventRefused(field, f"must be at most {maxlen} characters", ev)
    if (_CTL_TEXT if text else _CTL).search(value):
        raise EventRefused(field, "must not contain control characters", ev)


def _number(ev: dict[str, Any], field: str, value: Any, lo: float, hi: float | None,
            integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        raise EventRefused(field, "must be an integer" if integer else "must be a number", ev)
    if value < lo or (hi is not None and value > hi):
        raise EventRefused(field, f"must be between {lo} and {hi}" if hi is not None
                           else f"must be at least {lo}", ev)


def check_event(ev: dict[str, Any]) -> None:
    """Raises EventRefused(field, rule) if ev breaks a rule of the schema; returns otherwise."""
    t = ev.get("type")
    if t not in TYPES:
        raise EventRefused("type", "must be one of " + ", ".join(sorted(TYPES)), ev)
    if not isinstance(ev.get("pipeline_id"), str) or not _PID.match(ev["pipeline_id"]):
        raise EventRefused("pipeline_id", "must match ^[A-Za-z0-9._:-]+$ (1 to 128)", ev)
    if not isinstance(ev.get("pipeline_type"), str) or not _PTYPE.match(ev["pipeline_type"]):
        raise EventRefused("pipeline_type", "must match ^[a-z0-9_]+$ (1 to 64)", ev)
    if "message" in ev:
        if not isinstance(ev["message"], str) or len(ev["message"]) > 4096 or \
                _CTL_TEXT.search(ev["message"]):
            raise EventRefused("message", "must be a string of at most 4096 characters", ev)
    if "heartbeat_interval" in ev:
        _number(ev, "heartbeat_interval", ev["heartbeat_interval"], 0, 86400)
        if ev["heartbeat_interval"] <= 0:
            raise EventRefused("heartbeat_interval", "must be greater than 0", ev)
    for k in ("files_total", "files_pending"):
        if k in ev:
            _number(ev, k, ev[k], 0, None, integer=True)
    if (t == "status:update") != ("status" in ev):
        raise EventRefused("status", "required for status:update only", ev)
    if "status" in ev and ev["status"] not in STATUSES:
        raise EventRefused("status", "must be one of " + ", ".join(sorted(STATUSES)), ev)
    if "meta" in ev and not isinstance(ev["meta"], dict):
        raise EventRefused("meta", "must be an object", ev)
    f = ev.get("file")
    if (t in FILE_TYPES) != (f is not None):
        raise EventRefused("file", "required for file events only", ev)
    if f is None:
        return
    if not isinstance(f, dict):
        raise EventRefused("file", "must be an object", ev)
    for k, n in _FILE_STR.items():
        if k in f or k in ("id", "name"):
            _string(ev, "file." + k, f.get(k), n)
    for k, lo in (("size", 0), ("chunks", 0), ("attempt", 1)):
        if k in f:
            _number(ev, "file." + k, f[k], lo, None, integer=True)
    if "progress" in f:
        _number(ev, "file.progress", f["progress"], 0, 1)
    elif t == "file:progress":
        raise EventRefused("file.progress", "required for file:progress", ev)
    if (t == "file:failed") != ("error" in f):
        raise EventRefused("file.error", "required for file:failed only", ev)
    err = f.get("error")
    if isinstance(err, dict):
        _string(ev, "file.error.message", err.get("message"), 8192, text=True)
    elif err is not None:
        _string(ev, "file.error", err, 8192, text=True)
