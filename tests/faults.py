"""Faults to put between the service and what it depends on: a real TCP proxy of the tests' own.

`TcpProxy` forwards a loopback port to a target (PostgreSQL). `stall()` stops forwarding while
keeping every connection open (a network that drops packets, a database that hangs); `outage()`
closes every connection and stops listening (a database that is gone); `restore()` undoes either.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.serving import free_port


class TcpProxy:
    """A loopback TCP proxy to `target` on `port`, with a stall and an outage at the test's command."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False

    def start(self) -> None:
        """Listen on `port` and forward every connection."""
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stall(self) -> None:
        """Stop forwarding: bytes wait in the buffers, connections stay open, nothing answers."""
        self._forwarding.clear()

    def outage(self) -> None:
        """Close every connection and stop listening: connecting is refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            doomed = list(self._sockets)
            self._sockets.clear()
        if listener is not None:
            _close(listener)  # shutdown first: it wakes the thread blocked in accept(), and the port stops listening
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        """Forward again (after a stall), listening again (after an outage)."""
        if self._listener is None:
            self.start()
        self._forwarding.set()

    def close(self) -> None:
        """Stop for good."""
        self._closed = True
        self.outage()
        self._forwarding.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                sock.setblocking(True)
                selector.register(sock, selectors.EVENT_READ, data=sock)
            try:
                while not self._closed:
                    if not self._forwarding.wait(0.05):
                        continue
                    for key, _ in selector.select(0.05):
                        if not self._forwarding.is_set():
                            break
                        ready = peers[key.data]
                        data = key.data.recv(65536)
                        if not data:
                            return
                        ready.sendall(data)
            except OSError:
                return
            finally:
                for sock in peers:
                    _close(sock)
                with self._lock:
                    self._sockets.difference_update(peers)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextmanager
def proxied(target: tuple[str, int]) -> Iterator[TcpProxy]:
    """A started `TcpProxy` to `target`, closed after the block."""
    proxy = TcpProxy(target)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
