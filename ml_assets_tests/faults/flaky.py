"""Fault injectors around real components: a flaky fsspec filesystem, a resetting TCP proxy and
a faulty HTTP proxy (in front of the GCS emulator)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
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


# RESET: RST before the request reaches the server; CUT: forwarded (the server acts on it), then
# RST halfway through the answer's body (before any answer if it has no body).
RESET, CUT = "reset", "cut"
HTTP_ERRORS = {
    429: ("rateLimitExceeded", "The rate of change requests to the object exceeds the limit."),
    503: ("backendError", "We encountered an internal error. Please try again."),
    403: ("forbidden", "anonymous caller does not have storage.objects access (denied)."),
}


@dataclass
class HttpFault:
    """Fault the 1st, (1 + every)th, ... request that ``match`` accepts, ``limit`` times at most.

    ``kind`` is ``reset``, ``cut`` or an HTTP status (429, 503, 403), or a tuple of them taken in
    turn; ``limit=None`` never stops.
    """

    kind: str | int | tuple[str | int, ...]
    every: int = 1
    limit: int | None = None
    match: Callable[[str, str, bytes], bool] = lambda method, path, body: True
    seen: int = 0
    injected: int = 0

    def wants(self, method: str, path: str, body: bytes) -> str | int | None:
        """Count a matching request; the fault to answer it with, or None."""
        if not self.match(method, path, body):
            return None
        self.seen += 1
        if (self.seen - 1) % self.every or (self.limit is not None and self.injected >= self.limit):
            return None
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        self.injected += 1
        return kinds[(self.injected - 1) % len(kinds)]


def uploads(method: str, path: str, body: bytes) -> bool:
    """Object writes: GCS's upload endpoint."""
    return method == "POST" and "/upload/" in path


def downloads(method: str, path: str, body: bytes) -> bool:
    """Object reads: media downloads."""
    return method == "GET" and "alt=media" in path


def upload_of(suffix: str) -> Callable[[str, str, bytes], bool]:
    """Writes of the object whose name ends with ``suffix`` (named in the upload's metadata)."""
    return lambda method, path, body: uploads(method, path, body) and f'{suffix}"'.encode() in body


class FaultyHttpProxy:
    """An HTTP proxy in front of ``target`` (the GCS emulator) that faults chosen requests.

    Each request is read whole, then answered by a fault (see :class:`HttpFault`) or forwarded
    and its answer relayed; ``log`` keeps ``(method, path, outcome)`` of every request.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        from http.server import ThreadingHTTPServer

        self.target, self.faults, self.log = target, [], []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, *faults: HttpFault) -> None:
        """Replace the armed faults (none: forward everything)."""
        with self._lock:
            self.faults = list(faults)

    def decide(self, method: str, path: str, body: bytes) -> str | int | None:
        """The fault for this request, or None to forward it."""
        with self._lock:
            return next(
                (k for f in self.faults if (k := f.wants(method, path, body)) is not None), None
            )

    def record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.log.append((method, path, outcome))

    def injected(self, kind: str | int | None = None) -> int:
        """How many requests were faulted (of ``kind`` only, if given)."""
        return sum(
            1
            for *_, o in self.log
            if o.startswith("fault") and (kind is None or o == f"fault {kind}")
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(proxy: FaultyHttpProxy) -> type:
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                data = b""
                while size := int(self.rfile.readline().strip() or b"0", 16):
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return data
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._body()
            fault = proxy.decide(self.command, self.path, body)
            proxy.record(self.command, self.path, f"fault {fault}" if fault else "forwarded")
            if fault == RESET:
                self._reset()
            elif isinstance(fault, int):
                self._error(fault)
            else:
                self._forward(body, cut=fault == CUT)

        def _forward(self, body: bytes, cut: bool) -> None:
            import http.client

            upstream = http.client.HTTPConnection(*proxy.target, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
            upstream.close()
            if cut and not content:
                self._reset()  # the server did the work; the client never hears of it
                return
            self.send_response_only(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Connection", "close")
            self.end_headers()
            if cut:
                self.wfile.write(content[: len(content) // 2])
                self._reset()
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(content)  # gcsfs cancels a listing once its object lookup answers

        def _error(self, status: int) -> None:
            import json

            reason, message = HTTP_ERRORS[status]
            error = {"code": status, "message": message, "errors": [{"reason": reason}]}
            content = json.dumps({"error": error}).encode()
            self.send_response_only(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Connection", "close")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(content)  # gcsfs cancels a listing once its object lookup answers

        def _reset(self) -> None:
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.rfile.close()
            self.connection.close()  # the last reference: the kernel sends RST
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
)
