"""ragpulse.AsyncPipeline: the same run for asyncio. Queueing an event is a local append (no
network), so it is done inline; what may block (opening, flushing, closing) runs in the
default executor."""
from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Literal, TypeVar

from ._pipeline import File, OnError, Pipeline

T = TypeVar("T")


class AsyncFile:
    """`async with p.file(...) as f:` — File's behaviour, asynchronously."""

    def __init__(self, f: File) -> None:
        self._f = f

    @property
    def chunks(self) -> int | None:
        return self._f.chunks

    @chunks.setter
    def chunks(self, n: int | None) -> None:
        self._f.chunks = n

    def progress(self, value: float, stage: str | None = None, **fields: Any) -> None:
        self._f.progress(value, stage, **fields)

    def fail(self, error: Any, **fields: Any) -> None:
        self._f.fail(error, **fields)

    async def __aenter__(self) -> "AsyncFile":
        self._f.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        return self._f.__exit__(et, exc, tb)


class AsyncPipeline:
    """Pipeline's arguments; `async with AsyncPipeline(...) as p:`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = Pipeline(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sync, name)

    async def __aenter__(self) -> "AsyncPipeline":
        await asyncio.get_running_loop().run_in_executor(None, self.sync.open)
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> Literal[False]:
        await asyncio.get_running_loop().run_in_executor(None, self.sync.close, exc)
        return False

    def emit(self, event_type: str, **fields: Any) -> None:
        self.sync.emit(event_type, **fields)

    def file(self, file_id: str, name: str | None = None, **kw: Any) -> AsyncFile:
        return AsyncFile(self.sync.file(file_id, name, **kw))

    async def publish(self, channel: str, value: Any = None, **kw: Any) -> list[int]:
        """Pipeline.publish in the default executor (it waits for the hub)."""
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.sync.publish(channel, value, **kw))

    async def publish_batch(self, channel: str, messages: list[dict[str, Any]]) -> list[int]:
        return await asyncio.get_running_loop().run_in_executor(
            None, self.sync.publish_batch, channel, messages)

    async def flush(self, timeout: float | None = None) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.sync.flush, timeout)

    async def track(self, items: Iterable[T] | AsyncIterable[T],
                    fn: Callable[[T], Awaitable[Any]] | None = None, *,
                    name: Callable[[T], str] = str, id: Callable[[T], str] | None = None,
                    on_error: OnError | None = None) -> AsyncIterator[Any]:
        """As Pipeline.track, with `async for`; fn, when given, is awaited per item."""
        mode = on_error or self.sync.on_error
        async for item in _aiter(items):
            label = name(item)
            f = self.sync.file(id(item) if id else label, label, on_error=mode)
            if fn is None:
                f.start()
                self.sync._open_track = f
                yield item
                self.sync._open_track = None
                if not f.done:
                    f.complete()
                continue
            result: Any = None
            with f:
                result = await fn(item)
            if not f.failed:
                yield result


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for x in items:
            yield x
    else:
        for x in items:
            yield x
