"""Fault injectors around real components: a flaky fsspec filesystem and a resetting TCP proxy."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from fsspec.implementations.local import LocalFileSystem

PROTOCOL = "flaky"


class FlakyFileSystem(LocalFileSystem):
    """The local filesystem under ``flaky://``, whose first ``remaining`` opens raise ``fault()``.

    It goes through the object-store code paths (``write_atomic`` writes straight to the store),
    as GCS would; ``injected`` counts the faults raised.
    """

    protocol = PROTOCOL
    fault: ClassVar[Callable[[str], BaseException] | None] = None
    remaining: ClassVar[int] = 0
    injected: ClassVar[int] = 0
    opened: ClassVar[list[str]] = []

    @classmethod
    def arm(cls, count: int, fault: Callable[[str], BaseException]) -> None:
        cls.remaining, cls.fault, cls.injected, cls.opened = count, fault, 0, []

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        if path.startswith(f"{PROTOCOL}://"):
            path = path[len(PROTOCOL) + 3 :]
        return super()._strip_protocol(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        type(self).opened.append(f"{mode} {path}")
        if type(self).remaining > 0 and type(self).fault is not None:
            type(self).remaining -= 1
            type(self).injected += 1
            raise type(self).fault(path)
        return super()._open(path, mode, **kwargs)


def register() -> None:
    """Make ``flaky://`` known to fsspec and universal-pathlib (idempotent)."""
    import fsspec

    fsspec.register_implementation(PROTOCOL, FlakyFileSystem, clobber=True)


class ResettingProxy:
    """A TCP proxy to ``target`` that resets (RST) its first ``resets`` connections.

    Tests fault a private server this way, never the shared one other agents use.
    """

    def __init__(self, target: tuple[str, int], resets: int) -> None:
        self.target, self.remaining, self.reset_count, self.forwarded = target, resets, 0, 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.remaining > 0:
                self.remaining -= 1
                self.reset_count += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            self.forwarded += 1
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
