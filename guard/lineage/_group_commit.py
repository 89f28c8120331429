"""Group commit: one writer thread per store takes the checks of concurrent callers and commits them together.

A caller hands its check over and waits for the commit of the batch that carries it, so that a
check answered is a check kept. While one batch commits the next one gathers, so the busier the
service, the more checks share a transaction (and SQLite's write lock is never fought over).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, Protocol, TypeVar

from guard.errors import StoreUnavailableError

_log = logging.getLogger("freshguard.store")


class Sized(Protocol):
    """A unit of work that knows how many rows it writes."""

    @property
    def size(self) -> int:
        """Rows it writes."""
        ...


_W = TypeVar("_W", bound=Sized)
_STOP = object()


class GroupCommitWriter(Generic[_W]):
    """Writes what `submit` is given in batches of at most `max_rows` rows, each with `write_batch`.

    When a batch fails with an error that is not the store's unavailability, its items are written
    one by one, so that one bad check cannot fail the others that shared its transaction.
    """

    def __init__(self, write_batch: Callable[[Sequence[_W]], None], *, max_rows: int = 20_000) -> None:
        self._write_batch = write_batch
        self._max_rows = max_rows
        self._queue: queue.SimpleQueue[tuple[_W, Future[None]] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, work: _W) -> Future[None]:
        """Queue `work`; the future completes when its batch is committed (or fails with the batch's error)."""
        done: Future[None] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # started in the process that writes
                self._thread = threading.Thread(target=self._run, name="freshguard-group-commit", daemon=True)
                self._thread.start()
        self._queue.put((work, done))
        return done

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            rows = first[0].size  # type: ignore[index]
            stop = False
            while rows < self._max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                rows += item[0].size  # type: ignore[index]
            self._commit(batch)  # type: ignore[arg-type]
            if stop:
                return

    def _commit(self, batch: list[tuple[_W, Future[None]]]) -> None:
        # A caller that gave up waiting (its deadline passed, it answered 503) cancelled its future: skip it.
        batch = [(work, done) for work, done in batch if done.running() or done.set_running_or_notify_cancel()]
        if not batch:
            return
        for (_, done), failed in zip(batch, commit_batch(self._write_batch, [work for work, _ in batch]), strict=True):
            if failed is None:
                done.set_result(None)
            else:
                done.set_exception(failed)


def commit_batch(write_batch: Callable[[Sequence[_W]], None], batch: Sequence[_W]) -> list[Exception | None]:
    """Write `batch` with `write_batch` in one transaction; per item, None once committed or the error it failed with.

    When the store is away, every item fails with its error. When the batch fails otherwise, its items
    are written one by one, so that one bad check cannot fail the others that shared its transaction.
    """
    try:
        write_batch(batch)
    except StoreUnavailableError as exc:  # the store is away: every check of the batch waits for nothing more
        return [exc] * len(batch)
    except Exception as exc:
        if len(batch) == 1:
            return [exc]
        _log.warning("a batch of %d checks failed to commit (%s); writing them one by one", len(batch), exc)
        return [failed for item in batch for failed in commit_batch(write_batch, [item])]
    return [None] * len(batch)


class LoopGroupCommit(Generic[_W]):
    """Group commit on the caller's event loop, for a store whose write is a short local call (a SQLite file).

    The checks that reach the loop together are written together, on the loop, by
    `write_unless_busy`, which never waits for a lock: when another connection holds the
    database's write lock (another worker, a prune) it writes nothing and says so, and the batch
    goes to `fallback`, the writer thread, which waits for the lock within the deadline while the
    loop goes on serving. Handing every check to a thread and back cost more than writing it:
    the two threads took turns at the GIL for every row the thread wrote.
    """

    def __init__(self, write_unless_busy: Callable[[Sequence[_W]], bool], fallback: GroupCommitWriter[_W]) -> None:
        self._write_unless_busy = write_unless_busy
        self._fallback = fallback
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[tuple[_W, asyncio.Future[Any]]]] = (
            weakref.WeakKeyDictionary()
        )

    async def commit(self, work: _W) -> None:
        """Return once `work` is committed; raise the store's error if its batch failed."""
        loop = asyncio.get_running_loop()
        queued: asyncio.Future[Future[None] | None] = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        pending.append((work, queued))
        if len(pending) == 1:  # the first of a batch: write once the checks now ready have queued theirs
            loop.call_soon(self._flush, loop)
        handed = await queued
        if handed is not None:  # the lock was busy: the writer thread has it
            await asyncio.wrap_future(handed)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        # A caller whose deadline passed was cancelled: its future is done, its check is not written.
        batch = [(work, queued) for work, queued in self._pending.pop(loop, []) if not queued.done()]
        if not batch:
            return
        try:
            written = self._write_unless_busy([work for work, _ in batch])
        except StoreUnavailableError as exc:  # the store is away: every check of the batch waits for nothing more
            for _, queued in batch:
                queued.set_exception(exc)
            return
        except Exception as exc:  # one bad check must not fail the others: the writer thread writes them one by one
            _log.warning(
                "a batch of %d checks failed to commit on the loop (%s); handing it to the writer", len(batch), exc
            )
            written = False
        for work, queued in batch:
            queued.set_result(None if written else self._fallback.submit(work))
