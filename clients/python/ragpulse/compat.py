"""The documents' PipelineStatus API, unchanged, on a ragpulse hub:

    from ragpulse.compat import PipelineStatus
    pipeline_status = PipelineStatus()
    pipeline_status.update(status="running", pipeline_type="google_drive")
    pipeline_status.add_processing_file("document.pdf", "12345")
    pipeline_status.complete_file("document.pdf", success=True)

The first update() opens the run (pipeline:online); update(status=...) sends status:update
("stopped"/"offline" sends pipeline:offline and closes the run); add_processing_file sends
file:processing; complete_file sends file:completed, or file:failed with the error (a string
or an exception). The pipeline id is RAG_PIPELINE_ID, else the pipeline type.
"""
from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from ._pipeline import Pipeline, error_of

_STATUS = {"running": "running", "processing": "running", "idle": "idle", "error": "error",
           "failed": "error", "online": "online", "started": "running", "waiting": "idle"}
_OFF = {"stopped", "offline", "stopping", "done", "completed"}


class PipelineStatus:
    """The documents' status object. Keyword arguments go to ragpulse.Pipeline."""

    def __init__(self, pipeline_id: str | None = None, pipeline_type: str | None = None,
                 **pipeline_kw: Any) -> None:
        self.pipeline_id = pipeline_id or os.environ.get("RAG_PIPELINE_ID")
        self.pipeline_type = pipeline_type
        self.status = "idle"
        self.processing_files: dict[str, str] = {}  # file name -> file id
        self.processed_count = 0
        self.failed_count = 0
        self._kw = pipeline_kw
        self._p: Pipeline | None = None
        self._lock = threading.Lock()

    def _pipeline(self, pipeline_type: str | None = None) -> Pipeline:
        if self._p is None:
            ptype = pipeline_type or self.pipeline_type or "local_files"
            self.pipeline_type = ptype
            self._p = Pipeline(self.pipeline_id or ptype, ptype, **self._kw)
            self._p.open()
            atexit.register(self.close)
        return self._p

    def update(self, status: str | None = None, pipeline_type: str | None = None,
               **fields: Any) -> None:
        """Sets the status (and the pipeline type on the first call)."""
        with self._lock:
            if status in _OFF:
                self.status = status
                self._close_locked()
                return
            p = self._pipeline(pipeline_type)
            if status is not None:
                self.status = status
                mapped = _STATUS.get(status, "running")
                if mapped != "online":
                    p.status(mapped, **{k: v for k, v in fields.items() if k == "message"})

    def add_processing_file(self, file_name: str, file_id: str | None = None) -> None:
        with self._lock:
            fid = str(file_id) if file_id is not None else file_name
            self.processing_files[file_name] = fid
            self._pipeline().emit("file:processing", file={"id": fid, "name": file_name})

    def complete_file(self, file_name: str, success: bool = True, error: Any = None) -> None:
        with self._lock:
            fid = self.processing_files.pop(file_name, file_name)
            f: dict[str, Any] = {"id": fid, "name": file_name}
            p = self._pipeline()
            if success:
                self.processed_count += 1
                p.emit("file:completed", file=f)
                return
            self.failed_count += 1
            if isinstance(error, BaseException):
                f["error"] = error_of(error)
            else:
                f["error"] = {"message": str(error) if error else "failed"}
            p.emit("file:failed", file=f)

    def close(self) -> None:
        """pipeline:offline and a bounded flush (also run at interpreter exit)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._p is not None:
            p, self._p = self._p, None
            p.close()
