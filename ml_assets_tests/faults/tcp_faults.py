"""A TCP proxy that breaks open connections mid-request (a sibling of ``flaky.ResettingProxy``,
which resets connections as they open): for faults of a warm client's requests and replies."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading

REQUEST, REPLY = "request", "reply"


class FaultyTcpProxy:
    """A TCP proxy to ``target`` that can reset the connection carrying a request, or forward
    half of a reply and then reset it.

    ``arm(requests=n)`` resets (RST) the connection of each of the next ``n`` requests before
    forwarding a byte of it; ``arm(replies=n)`` relays the first half of each of the next ``n``
    replies, then resets; ``after=k`` lets ``k`` of them through first (a fault in the middle
    of a client call of several round trips). A request or reply is one chunk read from a
    socket. Each connection is one thread with ``select`` over both ends, so a reset is a plain
    close with ``SO_LINGER`` 0 (nothing else blocks on the socket).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.faults = {REQUEST: 0, REPLY: 0}
        self.after = {REQUEST: 0, REPLY: 0}
        self.seen = {REQUEST: 0, REPLY: 0}
        self.injected = {REQUEST: 0, REPLY: 0}
        self.connections = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, requests: int = 0, replies: int = 0, after: int = 0) -> None:
        """Fault ``requests`` requests and ``replies`` replies once ``after`` of each kind have
        passed (replacing what was armed; ``arm()`` disarms)."""
        with self._lock:
            self.faults = {REQUEST: requests, REPLY: replies}
            self.after = {REQUEST: after, REPLY: after}

    def _take(self, kind: str) -> bool:
        """Count a request or reply; True when it is to be faulted."""
        with self._lock:
            self.seen[kind] += 1
            if self.faults[kind] <= 0:
                return False
            if self.after[kind] > 0:
                self.after[kind] -= 1
                return False
            self.faults[kind] -= 1
            self.injected[kind] += 1
            return True

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes or a fault is due."""
        peer = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client and self._take(REQUEST):
                        return _reset(client)
                    if source is upstream and self._take(REPLY):
                        client.sendall(data[: len(data) // 2])
                        return _reset(client)
                    peer[source].sendall(data)
        except OSError:
            pass
        finally:
            for end in (client, upstream):
                with contextlib.suppress(OSError):
                    end.close()

    def close(self) -> None:
        self._stop.set()
        self._server.close()


def _reset(connection: socket.socket) -> None:
    """Abort the connection: the peer reads RST ('connection reset by peer')."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
