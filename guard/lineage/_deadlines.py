"""Deadlines for store operations: a watchdog thread that cuts off a database call that overruns.

A driver call blocked on a stalled network (or a SQLite query that runs long) does not return by
itself; the watchdog makes it fail: it shuts down a PostgreSQL connection's socket, or interrupts a
SQLite connection. The caller sees a driver error, knows from its `Watch` that the deadline fired,
and discards the connection.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_log = logging.getLogger("freshguard.store")

#: The watchdog wakes at most this often (seconds): a deadline is acted on at most this late.
_TICK_S = 0.05


class Watch:
    """One deadline: `arm` names how to cut the operation off; `fired` says whether it was."""

    __slots__ = ("_cancel", "_lock", "deadline", "done", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self.done = False
        self._cancel: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def arm(self, cancel: Callable[[], None]) -> None:
        """From now on, overrunning the deadline calls `cancel` (at once if it has passed)."""
        with self._lock:
            self._cancel = cancel
            late = self.fired
        if late:
            _quietly(cancel)

    def disarm(self) -> None:
        """The operation is over: nothing to cut off any more."""
        with self._lock:
            self._cancel = None
            self.done = True

    def fire(self) -> None:
        """The deadline passed: cut the operation off (if armed), once."""
        with self._lock:
            if self.fired or self.done:
                return
            self.fired = True
            cancel = self._cancel
        if cancel is not None:
            _quietly(cancel)

    def remaining(self) -> float:
        """Seconds left before the deadline (never below zero)."""
        return max(0.0, self.deadline - time.monotonic())


class Watchdog:
    """A daemon thread that fires every `Watch` whose deadline passes while it is being watched."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, seconds: float | None) -> Iterator[Watch]:
        """A `Watch` that fires after `seconds` unless the block ends first (None: never fires)."""
        if seconds is None:
            yield Watch(float("inf"))
            return
        watch = Watch(time.monotonic() + seconds)
        with self._lock:
            # The thread sleeps until the earliest deadline: wake it only when this one comes first.
            earliest = not self._heap or watch.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            self._start()
        if earliest:
            self._wake.set()
        try:
            yield watch
        finally:
            watch.disarm()  # the heap entry stays until due, then firing it does nothing that matters

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="freshguard-store-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due: list[Watch] = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                # Deadlines come due in bursts (one per operation, done or not): handle them at most every tick.
                wait = max(self._heap[0][0] - now, _TICK_S) if self._heap else None
                self._wake.clear()
            for watch in due:
                if not watch.done:  # still running: its deadline passed
                    _log.warning("a lineage store operation overran its deadline; cutting it off")
                    watch.fire()
            self._wake.wait(wait)


def _quietly(cancel: Callable[[], None]) -> None:
    try:
        cancel()
    except Exception:  # the connection may already be gone: nothing left to cut
        _log.debug("cutting off a store operation failed", exc_info=True)


#: One watchdog for the process: it sleeps unless a store operation is running.
WATCHDOG = Watchdog()
