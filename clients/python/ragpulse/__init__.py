"""ragpulse: report a RAG pipeline's run to a ragpulse hub.

    import ragpulse
    with ragpulse.Pipeline("docs-1", "local_files") as p:
        with p.file("a.pdf", size=1234) as f:
            f.progress(0.4, stage="chunk")
            f.chunks = 12

Events go through a bounded on-disk queue and POST /api/events (standard library only), with
an idempotency key each, so a hub that is down or a lost answer loses and doubles nothing.
`p.publish(channel, value, ...)` / `p.publish_batch(channel, messages)` post channel messages
(POST /api/channels/NAME) at once and return their offsets.
Command handlers (`on_command`) are not there yet.
"""
from ._aio import AsyncPipeline, AsyncFile
from ._errors import EventRefused, PublishError, QueueLocked, RagpulseError
from ._pipeline import File, Pipeline, error_of
from ._queue import default_queue_path

__all__ = ["Pipeline", "File", "AsyncPipeline", "AsyncFile", "EventRefused", "PublishError",
           "QueueLocked", "RagpulseError", "error_of", "default_queue_path"]
__version__ = "0.1.0"
