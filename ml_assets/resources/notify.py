"""Notifications: alerts and run reports sent as real email through SMTP."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from ml_assets.settings import Settings

logger = logging.getLogger(__name__)


class Notifier(dg.ConfigurableResource, ABC):
    """Where alerts and run reports go."""

    @abstractmethod
    def send(self, subject: str, body: str) -> None:
        """Deliver one message; raise when it cannot be delivered (the sensor tick then fails)."""


class SmtpNotifier(Notifier):
    """Plain, STARTTLS or implicit-TLS SMTP; the password comes from ``dg.EnvVar``."""

    host: str
    port: int
    sender: str
    recipients: list[str]
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password: str | None = Field(
        None, description='Bind dg.EnvVar("SMTP_PASSWORD"), never a literal.', repr=False
    )
    timeout_s: float = 20.0
    attempts: int = Field(4, description="Tries when the server answers 4xx or the link drops.")
    retry_delay_s: float = Field(1.0, description="First wait between tries; doubles each time.")

    def send(self, subject: str, body: str) -> None:
        """Deliver, retrying transient faults (4xx, resets, timeouts) with backoff;
        raise the rest."""
        import time

        from ml_assets.errors import TRANSIENT, classify

        message = self._message(subject, body)
        for attempt in range(1, self.attempts + 1):
            try:
                self._deliver(message)
                return
            except Exception as exc:
                if attempt == self.attempts or classify(exc) != TRANSIENT:
                    raise
                wait = self.retry_delay_s * 2 ** (attempt - 1)
                logger.warning(
                    "SMTP %s:%s attempt %d/%d failed (transient %s: %s); retrying in %.1f s",
                    self.host,
                    self.port,
                    attempt,
                    self.attempts,
                    type(exc).__name__,
                    exc,
                    wait,
                )
                time.sleep(wait)

    def _message(self, subject: str, body: str) -> Any:
        import email.policy
        from email.message import EmailMessage
        from email.utils import make_msgid

        # Lines up to RFC 5322's hard limit: long subjects stay on one line, bodies stay readable.
        message = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Message-ID"] = make_msgid(domain="ml-assets")
        message.set_content(body)
        return message

    def _deliver(self, message: Any) -> None:
        import smtplib
        import ssl

        if self.security == "ssl":
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with client:
            if self.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)


def build_notifier(settings: Settings) -> SmtpNotifier:
    """The notifier for these settings; credentials only when a user is configured."""
    credentials = (
        {"username": settings.smtp_username, "password": dg.EnvVar("SMTP_PASSWORD")}
        if settings.smtp_username
        else {}
    )
    return SmtpNotifier(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        recipients=list(settings.smtp_recipients),
        security=settings.smtp_security,
        attempts=settings.smtp_attempts,
        retry_delay_s=settings.smtp_retry_delay_s,
        **credentials,
    )
