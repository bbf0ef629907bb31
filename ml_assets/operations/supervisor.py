"""``ml-assets up``: the Dagster webserver and daemon on the project's instance,
stopped together."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from ml_assets.settings import PROJECT_ROOT

WORKSPACE = PROJECT_ROOT / "workspace.yaml"
# The daemon and webserver create runs. A range run (a backfill) then records one "planned"
# event per asset instead of one per asset and day: 1,710 events and 13 s before a 90-day run
# could start. Dagster's trade-off: the days of a failed range run show as missing in the UI,
# not failed (the run, the backfill and the failure email still say it failed).
DAGSTER_ENV = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}
DAEMON_HEALTH = (
    "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"
)


def dagster_command(name: str) -> str:
    """A Dagster console script from this environment (next to the interpreter), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed in this environment")
    return found


def commands(host: str, port: int, workspace: Path = WORKSPACE) -> dict[str, list[str]]:
    """The two processes ``up`` runs, with the project's workspace."""
    return {
        "webserver": [
            dagster_command("dagster-webserver"),
            "-h",
            host,
            "-p",
            str(port),
            "-w",
            str(workspace),
        ],
        "daemon": [dagster_command("dagster-daemon"), "run", "-w", str(workspace)],
    }


def graphql(url: str, query: str, variables: Mapping | None = None, timeout: float = 10) -> dict:
    """POST one GraphQL query to the webserver at ``url``; return its ``data`` (errors raise)."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:  # invalid queries answer 400 with the errors as JSON
        payload = json.load(exc)
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def webserver_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def unhealthy_daemons(url: str) -> list[str]:
    """Required daemons without a recent heartbeat, as the webserver reports them."""
    statuses = graphql(url, DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
    return sorted(s["daemonType"] for s in statuses if s["required"] and not s["healthy"])


def wait_healthy(
    url: str, processes: Mapping[str, subprocess.Popen], timeout_s: float, poll_s: float = 1.0
) -> None:
    """Block until the webserver answers and every required daemon has a heartbeat."""
    deadline = time.monotonic() + timeout_s
    waiting = ["webserver"]
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
        try:
            waiting = ["webserver"] if not webserver_ready(url) else unhealthy_daemons(url)
        except (urllib.error.URLError, OSError):
            waiting = ["webserver"]
        if not waiting:
            return
        time.sleep(poll_s)
    raise TimeoutError(f"not healthy after {timeout_s:.0f} s; still waiting for {waiting}")


def stop(processes: Sequence[subprocess.Popen], grace_s: float = 20.0) -> None:
    """SIGTERM every process, wait up to ``grace_s`` for all of them, then SIGKILL the rest."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Stop(Exception):
    """Raised by the signal handler: SIGINT (Ctrl-C) and SIGTERM take the same path."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def up(host: str, port: int, timeout_s: float, env: Mapping[str, str] | None = None) -> int:
    """Start both processes, wait for health, print the URL, keep running until a signal."""
    url = f"http://{host}:{port}"
    child_env = {**DAGSTER_ENV, **(os.environ if env is None else env)}
    child_env.setdefault("ML_ASSETS_WEBSERVER_URL", url)
    # Explicit handlers: a shell starting `up` in the background may have set SIGINT to ignored.
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands(host, port).items():
            processes[name] = subprocess.Popen(argv, env=child_env)
        print(
            "starting the Dagster webserver and daemon "
            f"(DAGSTER_HOME={child_env.get('DAGSTER_HOME')})",
            flush=True,
        )
        wait_healthy(url, processes, timeout_s)
        pids = ", ".join(f"{name} pid {p.pid}" for name, p in processes.items())
        print(f"Dagster UI: {url}   ({pids}; Ctrl-C stops both)", flush=True)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(1)
        exited = ", ".join(
            f"{n} ({p.returncode})" for n, p in processes.items() if p.poll() is not None
        )
        print(f"stopped: {exited} exited", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, _Stop):
        print("stopping the webserver and daemon", flush=True)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the stop short
            signal.signal(sig, signal.SIG_IGN)
        stop(list(processes.values()))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
