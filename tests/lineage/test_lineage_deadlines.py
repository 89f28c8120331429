"""The store's watchdog: an operation that overruns its deadline is cut off; one that finishes in time never is."""

from __future__ import annotations

import threading
import time

from guard.lineage._deadlines import Watchdog


def test_an_operation_past_its_deadline_is_cut_off_and_one_in_time_is_not() -> None:
    watchdog = Watchdog()
    cut = threading.Event()
    quick_cut = threading.Event()

    with watchdog.watch(5.0) as late_first:  # a far deadline first: the thread sleeps until then...
        late_first.arm(quick_cut.set)
        started = time.monotonic()
        with watchdog.watch(0.2) as overrun:  # ...and a nearer one must wake it
            overrun.arm(cut.set)
            assert cut.wait(2.0)
        took = time.monotonic() - started
    assert overrun.fired
    assert 0.2 <= took < 1.0
    assert not late_first.fired
    assert not quick_cut.is_set()


def test_a_watch_armed_after_its_deadline_cuts_off_at_once() -> None:
    watchdog = Watchdog()
    cut = threading.Event()
    with watchdog.watch(0.05) as watch:
        time.sleep(0.3)  # the deadline passes while the operation is still connecting (nothing armed yet)
        watch.arm(cut.set)
        assert cut.is_set()
    assert watch.fired


def test_no_deadline_never_fires() -> None:
    with Watchdog().watch(None) as watch:
        watch.arm(lambda: None)
        time.sleep(0.1)
    assert not watch.fired
