"""SMTP faults against a real server (aiosmtpd): 4xx and resets are retried, 5xx fails at once."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

import dagster as dg
import pytest

from ml_assets.automation.smtp_sink import Inbox, start_sink
from ml_assets.resources.notify import build_notifier
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import free_port
from ml_assets_tests.faults.flaky import ResettingProxy

PASSWORD = "pa55-w0rd-never-logged"


class RefusingInbox(Inbox):
    """Answers the first ``refusals`` messages with ``reply``, then accepts."""

    def __init__(self, refusals: int, reply: str) -> None:
        super().__init__()
        self.refusals, self.reply, self.refused = refusals, reply, 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refused < self.refusals:
            self.refused += 1
            return self.reply
        return await super().handle_DATA(server, session, envelope)


def _login(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=auth_data.password == PASSWORD.encode())


@pytest.fixture
def smtp(request, settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """A real SMTP server with login, refusing as parametrized; yields (inbox, settings)."""
    refusals, reply = request.param
    box, port = RefusingInbox(refusals, reply), free_port()
    controller = start_sink("127.0.0.1", port, box, authenticator=_login, auth_require_tls=False)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    yield box, settings.model_copy(update={"smtp_port": port, "smtp_username": "pipeline"})
    controller.stop()


def _send(settings: Settings) -> None:
    with dg.build_resources({"notifier": build_notifier(settings)}) as resources:
        resources.notifier.send("[ml_assets] alert", "body")


@pytest.mark.parametrize("smtp", [(3, "451 4.3.0 Try again later")], indirect=True)
def test_temporary_refusals_are_retried_and_delivered_once(smtp, caplog) -> None:
    box, settings = smtp
    with caplog.at_level(logging.WARNING, logger="ml_assets.resources.notify"):
        _send(settings)
    assert box.refused == 3 and len(box.messages) == 1
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 3 and "451" in retries[0] and "attempt 1/4" in retries[0]
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("smtp", [(1, "550 5.1.1 Mailbox unavailable")], indirect=True)
def test_permanent_refusal_fails_at_the_first_attempt(smtp, caplog) -> None:
    box, settings = smtp
    with pytest.raises(smtplib.SMTPDataError) as info:
        _send(settings)
    assert info.value.smtp_code == 550 and box.refused == 1 and box.messages == []
    assert PASSWORD not in caplog.text and PASSWORD not in str(info.value)


@pytest.mark.parametrize("smtp", [(0, "")], indirect=True)
def test_connection_resets_are_retried(smtp) -> None:
    box, settings = smtp
    proxy = ResettingProxy(("127.0.0.1", settings.smtp_port), resets=2)
    try:
        _send(settings.model_copy(update={"smtp_port": proxy.port}))
    finally:
        proxy.close()
    assert (proxy.reset_count, proxy.forwarded, len(box.messages)) == (2, 1, 1)


def test_an_unreachable_server_fails_after_every_attempt(settings: Settings) -> None:
    notifier = build_notifier(settings.model_copy(update={"smtp_port": free_port()}))
    with pytest.raises(ConnectionRefusedError):
        notifier.send("subject", "body")
