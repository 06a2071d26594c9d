"""Micro-batching: concurrent requests' inputs are gathered for a few ms and encoded in one call."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


class MicroBatcher(Generic[T]):
    """Collects items until `max_batch` or `wait_ms` after the first, then runs `encode` once for all.

    The wait is adaptive: a lone request is encoded at once when nothing else is queued and no other request is
    in flight (`in_flight`, the caller's count of requests being served; without it, whether the previous batch
    had company), so sequential clients pay no batching delay; as soon as requests overlap, batches form again.
    """

    def __init__(self, encode: Callable[[Sequence[T]], np.ndarray], max_batch: int = 32, wait_ms: float = 5.0,
                 executor: ThreadPoolExecutor | None = None, in_flight: Optional[Callable[[], int]] = None) -> None:
        self.encode = encode
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
        self._queue: asyncio.Queue[tuple[T, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.items = 0
        self._last_size = 1
        self.in_flight = in_flight

    def _ensure_started(self) -> asyncio.Queue:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._queue

    async def submit_many(self, items: Sequence[T]) -> np.ndarray:
        """Embeddings of `items`, encoded together with whatever other requests are waiting."""
        queue = self._ensure_started()
        loop = asyncio.get_running_loop()
        futures = []
        for item in items:
            fut: asyncio.Future = loop.create_future()
            queue.put_nowait((item, fut))
            futures.append(fut)
        return np.stack(await asyncio.gather(*futures))

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            company = self.in_flight() > 1 if self.in_flight is not None else self._last_size > 1
            deadline = loop.time() + (self.wait_s if company or not self._queue.empty() else 0.0)
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            items = [item for item, _ in batch]
            try:
                vectors = await loop.run_in_executor(self.executor, self.encode, items)
            except Exception as exc:  # every waiter learns of the failure; the loop keeps serving
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(items)
            self._last_size = len(items)
            for (_, fut), vec in zip(batch, vectors):
                if not fut.done():
                    fut.set_result(vec)

    async def close(self) -> None:
        """Stop the batching loop."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._queue = self._task = None

    def stats(self) -> dict[str, Any]:
        """Batches run and items encoded so far."""
        return {"batches": self.batches, "items": self.items}
