"""SIGKILL in the middle of writing: readers see the old partition or the new one, never a part;
the registry's ``current`` keeps pointing at a complete, verified model; a rerun succeeds."""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ml_assets.atomic import write_atomic
from ml_assets.definitions import build_defs
from ml_assets.resources.registry import ModelRegistry
from ml_assets.settings import Settings
from ml_assets_tests import _samples

# Stops the child just before it publishes ``target`` (os.replace raises the "os.rename" audit
# event), after every byte went to the temp file: the latest moment a crash can happen.
HOLD_AT_PUBLISH = """
import sys, time
def _hold(event, args):
    if event == "os.rename" and str(args[1]).endswith({target!r}):
        print("PUBLISHING", flush=True)
        time.sleep(600)
sys.addaudithook(_hold)
"""


def spawn(script: str, tmp_path: Path, hold_at: str | None = None) -> subprocess.Popen:
    """Run ``script`` in a fresh interpreter; with ``hold_at``, it stops before publishing it."""
    prelude = HOLD_AT_PUBLISH.format(target=hold_at) if hold_at else ""
    path = tmp_path / f"child_{len(list(tmp_path.glob('child_*')))}.py"
    path.write_text(prelude + textwrap.dedent(script))
    return subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )


def kill_at(child: subprocess.Popen, marker: str, timeout_s: float = 300) -> None:
    """SIGKILL ``child`` once it printed ``marker`` (fail if it exits or never does)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 1.0)
        if ready:
            line = child.stdout.readline()
            assert line, f"child exited (rc {child.wait()}) before {marker!r}"
            if line.strip() == marker:
                child.send_signal(signal.SIGKILL)
                assert child.wait() == -signal.SIGKILL
                return
    child.kill()
    pytest.fail(f"child never printed {marker!r}")


def test_kill_at_random_points_leaves_old_or_new_bytes(tmp_path: Path) -> None:
    """A child rewrites one partition with two versions in a loop; 6 kills at arbitrary moments."""
    from upath import UPath

    target = tmp_path / "lake" / "raw_flights" / "2013-01-05.parquet"
    size = 4_000_000
    versions = {b"A" * size, b"B" * size}
    rng = random.Random(10)
    for kill in range(6):
        child = spawn(
            f"""
            from upath import UPath
            from ml_assets.atomic import write_atomic
            print("WRITING", flush=True)
            for i in range(100000):
                write_atomic(UPath({str(target)!r}), (b"A" if i % 2 else b"B") * {size})
            """,
            tmp_path,
        )
        assert child.stdout.readline().strip() == "WRITING"
        time.sleep(rng.uniform(0.0, 0.4))  # an arbitrary moment of the loop, not an assertion
        child.send_signal(signal.SIGKILL)
        child.wait()
        if target.exists():
            assert target.read_bytes() in versions, f"kill {kill}: partial partition"
    write_atomic(UPath(str(target)), b"C" * 10)
    assert target.read_bytes() == b"C" * 10
    visible = [p.name for p in target.parent.iterdir() if not p.name.startswith(".")]
    assert visible == [target.name]


def test_kill_before_publishing_keeps_the_old_partition_and_sweeps_the_leftover(
    tmp_path: Path,
) -> None:
    from upath import UPath

    target = tmp_path / "lake" / "training_set" / "2013-01-05.parquet"
    write_atomic(UPath(str(target)), b"old")
    child = spawn(
        f"""
        from upath import UPath
        from ml_assets.atomic import write_atomic
        write_atomic(UPath({str(target)!r}), b"new" * 1000)
        """,
        tmp_path,
        hold_at=target.name,
    )
    kill_at(child, "PUBLISHING")
    assert target.read_bytes() == b"old"
    [leftover] = [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftover.name.startswith(f".{target.name}.") and leftover.read_bytes() == b"new" * 1000
    write_atomic(UPath(str(target)), b"rerun")
    assert leftover.exists()  # a young temp may belong to a live writer: kept
    an_hour_ago = time.time() - 2 * 3600
    os.utime(leftover, (an_hour_ago, an_hour_ago))
    write_atomic(UPath(str(target)), b"rerun")
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_kill_during_promotion_keeps_current_on_the_verified_champion(tmp_path: Path) -> None:
    registry = ModelRegistry(base_path=str(tmp_path / "registry"))
    champion, challenger = _samples.tiny_model("champion", 3), _samples.tiny_model("challenger", 5)
    registry.promote(champion, {"metrics": {"auc": 0.7}}, "2013-01-04")
    (tmp_path / "challenger.json").write_text(
        json.dumps({**challenger.meta(), "model_text": challenger.model_text})
    )
    child = spawn(
        f"""
        import json
        from ml_assets.models.train import TrainedModel
        from ml_assets.resources.registry import ModelRegistry
        values = json.loads(open({str(tmp_path / "challenger.json")!r}).read())
        values["features"] = tuple(values["features"])
        model = TrainedModel(**values)
        ModelRegistry(base_path={registry.base_path!r}).promote(model, {{}}, "2013-01-05")
        """,
        tmp_path,
        hold_at="current.json",
    )
    kill_at(child, "PUBLISHING")
    assert registry.current()["sha256"] == champion.sha256
    model, _ = registry.load_current()
    assert model == champion
    # The challenger was written and verified before the pointer would move; rerun promotes it.
    registry.promote(challenger, {}, "2013-01-05")
    assert registry.load_current()[0] == challenger


@pytest.mark.slow
def test_killed_step_process_leaves_the_old_partition_and_the_rerun_succeeds(
    settings: Settings, tmp_path: Path, landing_dir: Path
) -> None:
    """The real raw_flights step, killed while publishing its partition."""
    day = "2013-01-05"
    short = tmp_path / "short-landing"
    shutil.copytree(landing_dir, short)
    flights = short / "flights" / f"{day}.csv"
    flights.write_text("".join(flights.read_text().splitlines(keepends=True)[:301]))
    job = [dg.AssetKey("raw_flights")]
    with dg.DagsterInstance.ephemeral() as instance:
        old = settings.model_copy(update={"landing_base": str(short)})
        assert (
            build_defs(old)
            .resolve_implicit_global_asset_job_def()
            .execute_in_process(instance=instance, partition_key=day, asset_selection=job)
            .success
        )
    target = Path(settings.lake_base) / "raw_flights" / f"{day}.parquet"
    old_bytes = target.read_bytes()
    child = spawn(
        f"""
        import dagster as dg
        from ml_assets.definitions import build_defs
        from ml_assets.settings import Settings
        settings = Settings.model_validate_json({settings.model_dump_json()!r})
        with dg.DagsterInstance.ephemeral() as instance:
            build_defs(settings).resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance, partition_key={day!r},
                asset_selection=[dg.AssetKey("raw_flights")],
            )
        """,
        tmp_path,
        hold_at=str(Path("raw_flights") / f"{day}.parquet"),
    )
    kill_at(child, "PUBLISHING")
    assert target.read_bytes() == old_bytes
    assert len(pd.read_parquet(target)) == 300
    with dg.DagsterInstance.ephemeral() as instance:
        assert (
            build_defs(settings)
            .resolve_implicit_global_asset_job_def()
            .execute_in_process(instance=instance, partition_key=day, asset_selection=job)
            .success
        )
    assert len(pd.read_parquet(target)) > 300
