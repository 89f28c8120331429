"""The lineage writer in a process of its own: a service's event loop decides, another core commits.

A store made with `writer_process=True` hands its prepared checks to a child process (`serve`, in
a new interpreter) and waits for its answer: committed, or the store's error. The child has a store
of its own on the same database, with the same deadlines, and commits what reaches it together in
one transaction, exactly as the store would. A check is answered only after it is committed, as
before; what moves is the CPU of writing (SQLAlchemy, the driver, SQLite itself), off the process
whose loop serves requests.

Two channels lead to the child, each a socket carrying length-prefixed pickles:
- the *loop channel*, read and written by one event loop without a thread: each check is sent as
  it is ready, without waiting for earlier answers, and the answers (in order) resolve the callers'
  futures; the child commits together every frame that arrived while it was committing the last;
- the *blocking channel*, for callers outside that loop (threads, another loop), one at a time.

The child lives as long as its parent: it stops when the blocking channel closes (the parent closed
the store, exited or was killed). A child that dies, or keeps a frame past its deadline, is stopped
and a new one started; the checks it held are answered "unavailable" (they may have been committed:
a retry with an Idempotency-Key is safe).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait as wait_readable
from typing import TYPE_CHECKING, Any

from guard.errors import StoreError, StoreTimeoutError, StoreUnavailableError
from guard.lineage._checkpoints import JOURNAL_SIZE_LIMIT
from guard.lineage._group_commit import commit_batch

if TYPE_CHECKING:
    from guard.lineage.store import PreparedCheck

_log = logging.getLogger("freshguard.store")
#: The child's program: `serve` on the two sockets whose descriptors are its arguments.
_CHILD = "import sys; from guard.lineage._writer_process import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
#: How long a stopped child has to exit before it is killed (seconds).
_STOP_S = 5.0
#: The least time between two checkpoints of the writer's SQLite WAL (seconds): short ones, often.
CHECKPOINT_GAP_S = 0.05
#: At most this many rows in one of the child's transactions (frames that arrive together are merged).
_MAX_ROWS = 20_000
_HEADER = struct.Struct("!Q")

Answer = StoreError | None  # per check: None when committed


class ProcessWriter:
    """Commits prepared checks through a child process: `commit` from an event loop, `write` from anywhere."""

    def __init__(self, url: str, *, timeout_s: float, shown: str) -> None:
        self._config = (url, timeout_s)
        self._shown = shown  # the store's URL without its password, for messages
        self._lock = threading.Lock()  # the child, and the blocking channel
        self._child: subprocess.Popen[bytes] | None = None
        self._blocking: socket.socket | None = None
        self._loop_end: socket.socket | None = None  # the loop channel's socket, until a loop takes it
        self._channel: _LoopChannel | None = None
        with self._lock:
            self._start()

    async def commit(self, check: PreparedCheck, *, wait_s: float) -> None:
        """Return once `check` is committed; raise the store's error if it was not. Call within a deadline."""
        channel = self._loop_channel(asyncio.get_running_loop())
        if channel is None:  # the loop channel belongs to another loop
            await asyncio.to_thread(self.write, [check], wait_s=wait_s)
            return
        await channel.commit(check, wait_s)

    def write(self, checks: Sequence[PreparedCheck], *, wait_s: float) -> None:
        """Commit `checks` (blocking, up to `wait_s`); raise the first one's error if any was not committed."""
        frame = _frame(list(checks))
        with self._lock:
            try:
                answers: list[Answer] = _read_frame(self._sent_to_child(frame, wait_s))
            except TimeoutError:
                self._stop(kill=True)
                raise self._overran(len(checks), wait_s) from None
            except (EOFError, OSError) as exc:
                self._stop()
                raise self._gone(exc) from exc
        for answer in answers:
            if answer is not None:
                raise answer

    def _sent_to_child(self, frame: bytes, wait_s: float) -> socket.socket:
        """The blocking channel, `frame` sent on it: to a new child if the one there died before it took the
        frame whole (a child that did not read a frame whole committed none of it)."""
        for attempt in range(2):
            if not self._running():
                self._start()
            sock = self._blocking
            assert sock is not None  # noqa: S101 (just started)
            try:
                sock.settimeout(wait_s)
                sock.sendall(frame)
                return sock
            except TimeoutError:
                self._stop(kill=True)
                raise
            except OSError as exc:
                self._stop()
                if attempt:
                    raise self._gone(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Stop the child: it finishes what it holds, then exits."""
        with self._lock:
            self._stop()

    def _loop_channel(self, loop: asyncio.AbstractEventLoop) -> _LoopChannel | None:
        with self._lock:
            channel = self._channel
            if channel is not None and not channel.broken:
                return channel if channel.loop is loop else None
            if not self._running() or self._loop_end is None:
                self._start()
            sock, self._loop_end = self._loop_end, None
            assert sock is not None  # noqa: S101 (just started)
            self._channel = _LoopChannel(loop, sock, on_stuck=self._replace, gone=self._gone, overran=self._overran)
            return self._channel

    def _replace(self) -> None:
        """The child kept a frame past its deadline: stop it; the next commit starts a new one."""
        with self._lock:
            self._stop(kill=True)

    def _overran(self, count: int, wait_s: float) -> StoreTimeoutError:
        return StoreTimeoutError(
            f"the lineage store {self._shown} did not commit {count} checks within {wait_s:.1f} s; its writer "
            "process was restarted: try again shortly"
        )

    def _gone(self, exc: BaseException | None) -> StoreUnavailableError:
        why = type(exc).__name__ if exc is not None else "stopped"
        return StoreUnavailableError(
            f"the lineage writer process of {self._shown} stopped ({why}); a new one is started for the next "
            "check: try again"
        )

    def _running(self) -> bool:
        return self._child is not None and self._blocking is not None and self._child.poll() is None

    def _start(self) -> None:
        """A new child (what is left of the last one closed first)."""
        self._stop(kill=True)
        blocking, blocking_child = socket.socketpair()
        loop_end, loop_child = socket.socketpair()
        with blocking_child, loop_child:
            self._child = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-c", _CHILD, str(blocking_child.fileno()), str(loop_child.fileno())],
                pass_fds=(blocking_child.fileno(), loop_child.fileno()),
                stdin=subprocess.DEVNULL,
            )
        blocking.sendall(_frame(self._config))
        self._blocking, self._loop_end = blocking, loop_end

    def _stop(self, *, kill: bool = False) -> None:
        """Close the child's channels, so that it exits once its work is done; `kill`: it is stuck, kill it now."""
        child, channel = self._child, self._channel
        self._child = None
        for sock in (self._blocking, self._loop_end):
            if sock is not None:
                sock.close()
        self._blocking = self._loop_end = None
        if channel is not None:
            self._channel = None
            try:
                channel.loop.call_soon_threadsafe(channel.break_off, None)
            except RuntimeError:  # its loop is closed: nothing waits on it any more
                channel.abandon()
        if child is not None:
            if kill:
                child.kill()
            try:
                child.wait(_STOP_S)
            except subprocess.TimeoutExpired:
                _log.warning("the lineage writer process %d did not stop within %.0f s: killed", child.pid, _STOP_S)
                child.kill()
                child.wait()


class _LoopChannel:
    """One event loop's link to the child: checks go as they are ready; answers come back in order."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        *,
        on_stuck: Callable[[], None],
        gone: Callable[[BaseException | None], StoreError],
        overran: Callable[[int, float], StoreError],
    ) -> None:
        self.loop = loop
        self.broken = False
        self._sock = sock
        self._on_stuck = on_stuck
        self._gone = gone  # the error of checks whose child went away
        self._overran = overran  # the error of checks the child kept past their deadline
        #: Each frame sent and not yet answered: its callers' futures, its deadline's timer, its wait.
        self._sent: deque[tuple[list[asyncio.Future[None]], asyncio.TimerHandle, float]] = deque()
        self._inbox = bytearray()
        self._outbox = bytearray()
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)

    def commit(self, check: PreparedCheck, wait_s: float) -> asyncio.Future[None]:
        """A future that completes when `check` is committed (or fails with the reason it was not); a frame
        unanswered after `wait_s` means the child is stuck.

        The check is sent at once, in a frame of its own: the child starts committing it while the loop
        decides the next one, and commits together every frame that arrived meanwhile (group commit).
        """
        done: asyncio.Future[None] = self.loop.create_future()
        if self.broken:
            done.set_exception(self._gone(None))
            return done
        timer = self.loop.call_later(wait_s, self._overdue)
        self._sent.append(([done], timer, wait_s))
        self._send(_frame([check]))
        return done

    def break_off(self, exc: BaseException | None) -> None:
        """The child is gone or being replaced: fail every check it holds or would have been sent."""
        if self.broken:
            return
        self.broken = True
        self.loop.remove_reader(self._sock.fileno())
        if self._outbox:
            self.loop.remove_writer(self._sock.fileno())
        self._sock.close()
        waiting = [done for dones, _, _ in self._sent for done in dones]
        for _, timer, _ in self._sent:
            timer.cancel()
        self._sent.clear()
        error = self._gone(exc)
        for done in waiting:
            if not done.done():
                done.set_exception(error)

    def abandon(self) -> None:
        """Its loop is closed: close the socket, nothing else to do."""
        self.broken = True
        self._sock.close()

    def _overdue(self) -> None:
        # Frames are answered in order: when any frame's deadline passes, the oldest one is overdue too.
        if self._sent and not self.broken:
            dones, _, wait_s = self._sent[0]
            _log.warning("the lineage writer process kept %d checks past %.1f s: replacing it", len(dones), wait_s)
            error = self._overran(len(dones), wait_s)
            for done in dones:
                if not done.done():
                    done.set_exception(error)
            self.break_off(None)
            self._on_stuck()

    def _send(self, data: bytes) -> None:
        if self._outbox:
            self._outbox += data
            return
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.break_off(exc)
            return
        if sent < len(data):
            self._outbox += data[sent:]
            self.loop.add_writer(self._sock.fileno(), self._writable)

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._outbox)
        except BlockingIOError:
            return
        except OSError as exc:
            self.break_off(exc)
            return
        del self._outbox[:sent]
        if not self._outbox:
            self.loop.remove_writer(self._sock.fileno())

    def _readable(self) -> None:
        try:
            data = self._sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            self.break_off(exc)
            return
        if not data:
            self.break_off(EOFError("the writer process closed its channel"))
            return
        inbox = self._inbox
        inbox += data
        while len(inbox) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(inbox)
            if len(inbox) < _HEADER.size + size:
                break
            answers: list[Answer] = pickle.loads(inbox[_HEADER.size : _HEADER.size + size])  # noqa: S301 (our child)
            del inbox[: _HEADER.size + size]
            dones, timer, _ = self._sent.popleft()
            timer.cancel()
            for done, answer in zip(dones, answers, strict=True):
                if done.done():
                    continue
                if answer is None:
                    done.set_result(None)
                else:
                    done.set_exception(answer)


def _frame(value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _read_frame(sock: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
    return pickle.loads(_read_exactly(sock, size))  # noqa: S301 (our own parent's or child's frames)


def _read_exactly(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        read = sock.recv_into(view[got:])
        if not read:
            raise EOFError("the other end closed the channel")
        got += read
    return buffer


def _portable(error: BaseException) -> StoreError:
    """An error as the parent raises it: the same kind of store error, with the same words."""
    for kind in (StoreTimeoutError, StoreUnavailableError, StoreError):
        if isinstance(error, kind):
            return kind(str(error))
    return StoreError(f"the lineage writer could not commit a check: {type(error).__name__}: {error}")


def serve(blocking_fd: int, loop_fd: int) -> None:
    """The child: read frames from both channels until the blocking one closes; commit them; answer each."""
    from sqlalchemy import event

    from guard.lineage._checkpoints import no_autocheckpoint
    from guard.lineage.store import LineageStore

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    blocking = socket.socket(fileno=blocking_fd)
    channels = [blocking, socket.socket(fileno=loop_fd)]
    url, timeout_s = _read_frame(blocking)
    store = LineageStore(url, migrate=False, timeout_s=timeout_s)
    wal = _WalKeeper(str(store.engine.url.database)) if store.reads_inline else None
    if wal is not None:  # a SQLite file: checkpoints after answering, never inside a commit
        event.listen(store.engine, "connect", no_autocheckpoint)
    try:
        while blocking in channels:
            for sock in wait_readable(channels):
                assert isinstance(sock, socket.socket)  # noqa: S101 (what we waited on)
                frames = _drain(sock)
                if frames is None:
                    channels.remove(sock)
                    continue
                checks = [check for frame in frames for check in frame]
                outcomes = commit_batch(store.write_checks, checks) if checks else []
                answers = [None if failed is None else _portable(failed) for failed in outcomes]
                try:
                    start = 0
                    for frame in frames:
                        sock.sendall(_frame(answers[start : start + len(frame)]))
                        start += len(frame)
                except OSError:
                    channels.remove(sock)
            if wal is not None:
                wal.after_commits()
    finally:
        if wal is not None:
            wal.close()
        store.close()


class _WalKeeper:
    """Checkpoints a SQLite file's WAL from the writer itself, between its commits, after it has answered them.

    The one writer checkpointing between its own commits lets a checkpoint finish (nothing is written
    meanwhile), and a WAL whose every frame is copied is started over by the next commit: the WAL stays
    short (14 MB under wrk). A checkpoint in another thread, racing the commits, seldom copied the last
    frames, and a WAL is started over only once every frame is copied: the WAL grew by gigabytes a
    minute under load. One inside a commit made the checks of that commit wait for it.
    """

    def __init__(self, path: str) -> None:
        import sqlite3

        self._connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
        self._connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}").fetchall()
        self._due = 0.0

    def after_commits(self) -> None:
        """A passive checkpoint, at most every CHECKPOINT_GAP_S; a failed one is tried again next time."""
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + CHECKPOINT_GAP_S
        try:
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:  # a read-only or vanished file: the commits say so themselves
            _log.debug("a WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        self._connection.close()


def _drain(sock: socket.socket) -> list[list[PreparedCheck]] | None:
    """The frame waiting on `sock` and every other one already arriving (up to _MAX_ROWS); None at its end."""
    frames: list[list[PreparedCheck]] = []
    rows = 0
    while rows < _MAX_ROWS:
        try:
            frame: list[PreparedCheck] = _read_frame(sock)
        except (EOFError, OSError):
            return frames or None
        frames.append(frame)
        rows += sum(check.size for check in frame)
        if not wait_readable([sock], timeout=0):
            break
    return frames
