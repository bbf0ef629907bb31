"""``ml-assets up`` without Dagster: argv, health polling against a fake webserver, stopping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml_assets.operations import cli, supervisor
from ml_assets.settings import PROJECT_ROOT


def test_commands_use_the_project_workspace_and_bind_the_host() -> None:
    argv = supervisor.commands("127.0.0.1", 3999)
    assert argv["webserver"][0].endswith("dagster-webserver")
    assert argv["webserver"][1:] == [
        "-h",
        "127.0.0.1",
        "-p",
        "3999",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
    ]
    assert argv["daemon"][0].endswith("dagster-daemon")
    assert argv["daemon"][1:] == ["run", "-w", str(PROJECT_ROOT / "workspace.yaml")]


def fake_webserver(statuses: list[dict]) -> ThreadingHTTPServer:
    """Answers ``/server_info`` and the daemon-health GraphQL query like dagster-webserver."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._send({"dagster_webserver_version": "fake"})

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            health = {"daemonHealth": {"allDaemonStatuses": statuses}}
            self._send({"data": {"instance": health}})

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def serve() -> Iterator:
    servers = []

    def start(statuses: list[dict]) -> str:
        server = fake_webserver(statuses)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def daemon(kind: str, healthy: bool, required: bool = True) -> dict:
    return {"daemonType": kind, "required": required, "healthy": healthy}


def test_healthy_when_every_required_daemon_has_a_heartbeat(serve) -> None:
    url = serve([daemon("SENSOR", True), daemon("ASSET", False, required=False)])
    assert supervisor.webserver_ready(url)
    assert supervisor.unhealthy_daemons(url) == []
    supervisor.wait_healthy(url, {}, timeout_s=5, poll_s=0.1)


def test_waiting_names_the_daemons_without_heartbeat(serve) -> None:
    url = serve([daemon("SENSOR", True), daemon("BACKFILL", None), daemon("SCHEDULER", False)])
    with pytest.raises(TimeoutError, match=r"\['BACKFILL', 'SCHEDULER'\]"):
        supervisor.wait_healthy(url, {}, timeout_s=0.3, poll_s=0.1)


def test_a_process_that_exits_while_starting_fails_the_wait() -> None:
    crashed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    crashed.wait()
    with pytest.raises(RuntimeError, match="daemon exited with code 3"):
        supervisor.wait_healthy("http://127.0.0.1:9", {"daemon": crashed}, timeout_s=5, poll_s=0.1)


def test_stop_terminates_and_waits_for_what_exits() -> None:
    """SIGTERM first; ``stop`` returns as soon as the process has exited (no timing involved:
    the grace period is far longer than any exit, however busy the machine)."""
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor.stop([polite], grace_s=120)
    assert polite.returncode == -signal.SIGTERM


def test_stop_kills_what_ignores_sigterm_after_the_grace_period() -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout.readline().strip() == "ready"  # its SIGTERM handler is installed
    supervisor.stop([stubborn], grace_s=0.2)
    assert stubborn.returncode == -signal.SIGKILL


def test_cli_up_passes_host_port_and_timeout(monkeypatch, tmp_path) -> None:
    calls = []
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setattr(supervisor, "up", lambda *args: calls.append(args) or 0)
    assert cli.main(["up", "--port", "3999", "--timeout", "30"]) == 0
    assert calls == [("127.0.0.1", 3999, 30.0)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_up_stops_both_processes_on_ctrl_c_or_sigterm(monkeypatch, capsys, signum) -> None:
    started: list[subprocess.Popen] = []
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    monkeypatch.setattr(
        supervisor, "commands", lambda host, port: {"webserver": sleeper, "daemon": sleeper}
    )
    real_popen = subprocess.Popen

    def popen(argv, **kwargs):
        started.append(real_popen(argv, **kwargs))
        return started[-1]

    monkeypatch.setattr(supervisor.subprocess, "Popen", popen)
    # The signal arrives once both processes run and up's handlers are installed.
    monkeypatch.setattr(supervisor, "wait_healthy", lambda *args: os.kill(os.getpid(), signum))
    before = signal.getsignal(signum)
    assert supervisor.up("127.0.0.1", 3999, timeout_s=5, env={}) == 0
    assert len(started) == 2 and all(p.returncode is not None for p in started)
    assert signal.getsignal(signum) is before
    assert "stopping the webserver and daemon" in capsys.readouterr().out
