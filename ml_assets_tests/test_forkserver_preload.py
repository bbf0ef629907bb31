"""What the step processes' forkserver loads: every listed module, and the built contracts."""

from __future__ import annotations

import json
import subprocess
import sys

from ml_assets.execution import FORKSERVER_PRELOAD
from ml_assets.forkserver_preload import MODULES

PROBE = """
import json, sys, threading
import ml_assets.forkserver_preload as preload
from pandera.api.dataframe.model import MODEL_CACHE
from ml_assets.checks.schemas import CONTRACTS
built = {cls.__name__ for cls, _ in MODEL_CACHE}
print(json.dumps({
    "missing": [m for m in preload.MODULES if m not in sys.modules],
    "unbuilt": sorted(c.model.__name__ for c in CONTRACTS.values()
                      if c.model.__name__ not in built),
    "threads": threading.active_count(),
}))
"""


def test_the_executor_preloads_this_module() -> None:
    assert FORKSERVER_PRELOAD == ["ml_assets.forkserver_preload"]


def test_every_module_loads_and_every_contract_is_built_without_threads() -> None:
    """A module a Dagster upgrade moved would be skipped silently, and every step would pay its
    import again; a thread started here would be copied, stopped, into every fork."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(probe.stdout.strip().splitlines()[-1])
    assert loaded["missing"] == []
    assert loaded["unbuilt"] == []
    assert loaded["threads"] == 1
    assert "dagster._core.storage.event_log.sqlite" in MODULES
