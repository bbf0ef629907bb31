"""Preemption: while training, SIGTERM (node drain, spot preemption) only raises a flag, so the
training callback can write a final checkpoint and stop with a retryable failure."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def sigterm_requests_stop() -> Iterator[Callable[[], str | None]]:
    """Yield ``stop_requested()``: None, or a reason once SIGTERM has arrived.

    The previous handler is restored on exit. Off the main thread (where Python cannot install
    signal handlers) it yields a function that never asks to stop.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    received: list[float] = []

    def handler(signum: int, frame: object) -> None:
        received.append(time.monotonic())

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield lambda: "preempted (SIGTERM)" if received else None
    finally:
        signal.signal(signal.SIGTERM, previous)
