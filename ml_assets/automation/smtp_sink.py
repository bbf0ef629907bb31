"""A local SMTP sink for the demo and the tests (aiosmtpd, a dev dependency: `uv sync --frozen`).

`ml-assets smtp-sink` prints every message it receives; tests read ``Inbox.messages``.
"""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any


class Inbox:
    """An aiosmtpd handler that keeps every received message (parsed) and can wait for one."""

    def __init__(self, echo: bool = False) -> None:
        self.messages: list[EmailMessage] = []
        self.echo = echo
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        if self.echo:
            print(f"--- mail from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}")
            print(message.as_string(), flush=True)
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout_s: float) -> list[EmailMessage]:
        """Block until ``count`` messages arrived (or the timeout passed); return what arrived."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout_s)
            return list(self.messages)


def start_sink(host: str, port: int, inbox: Inbox, **controller_kwargs: Any):
    """Start an SMTP server in a background thread; call ``.stop()`` on the returned controller."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError as exc:  # a production install has no dev group
        raise RuntimeError(
            "the SMTP sink needs aiosmtpd: install the dev group (uv sync --frozen)"
        ) from exc

    controller = Controller(inbox, hostname=host, port=port, **controller_kwargs)
    controller.start()
    return controller


def run_sink(host: str, port: int) -> int:
    """Serve until interrupted, printing each message."""
    controller = start_sink(host, port, Inbox(echo=True))
    print(f"SMTP sink listening on {host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0
