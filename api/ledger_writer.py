"""Group commit for the ledger: one writer thread appends what concurrent requests submit,
many submissions per transaction.

A request hands its records (one decision, or a whole batch) to ``submit`` and waits. The
writer takes every submission waiting at that moment and writes them in one transaction,
so fifty concurrent decisions cost one lock on the chain head and one commit instead of
fifty. A submission is never split: a batch is stored all or nothing. When a group's
transaction fails (a database constraint refusing one submission, say a second approval),
the writer retries the group's submissions one transaction each, so the failure reaches
only the request that caused it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

S = TypeVar("S")  # what one request appends (a store Submission)
R = TypeVar("R")  # what it gets back (its records)


class GroupCommitter(Generic[S, R]):
    """Serializes ledger appends through one thread; ``write`` stores a group in one transaction."""

    def __init__(self, write: Callable[[Sequence[S]], list[R]], max_group: int = 256) -> None:
        self._write = write
        self._max_group = max_group
        self._queue: queue.SimpleQueue[list[tuple[S, Future[R]]] | None] = queue.SimpleQueue()
        self._closed = False
        self._this_turn: list[tuple[S, Future[R]]] = []  # from the event loop, queued at the end of its turn
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, entries: S) -> R:
        """Append ``entries`` as one unit and wait; raises what writing them raised."""
        return self.enqueue(entries).result()

    def enqueue(self, entries: S) -> Future[R]:
        """Append ``entries`` as one unit without waiting: the future holds the records, or
        what writing them raised (an event loop awaits it instead of blocking a thread)."""
        if self._closed:
            raise RuntimeError("the ledger writer is closed")
        future: Future[R] = Future()
        self._queue.put([(entries, future)])
        return future

    def from_loop(self, entries: S) -> asyncio.Future[R]:
        """``enqueue`` for a coroutine: what the event loop submits during one turn goes to the
        writer as one piece when the turn ends, so it shares a transaction. The loop decides
        requests one after another; the writer would otherwise take each alone as it came, and
        a transaction of one costs nearly what one of fifty does."""
        if self._closed:
            raise RuntimeError("the ledger writer is closed")
        if not self._this_turn:
            asyncio.get_running_loop().call_soon(self._end_of_turn)
        future: Future[R] = Future()
        self._this_turn.append((entries, future))
        return asyncio.wrap_future(future)

    def _end_of_turn(self) -> None:
        batch, self._this_turn = self._this_turn, []
        self._queue.put(batch)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = list(item)
            stop = False
            while len(group) < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group += more
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[tuple[S, Future[R]]]) -> None:
        try:
            results = self._write([sub for sub, _ in group])
        except BaseException as exc:
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            for sub, future in group:  # one transaction each: a failure reaches only its own request
                try:
                    (result,) = self._write([sub])
                except BaseException as one:
                    future.set_exception(one)
                else:
                    future.set_result(result)
            return
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)
