"""The worker pool of a parallel asset's range run: values and metadata in day order, errors
raised as the worker raised them, no Dagster context on a worker, bounded look-ahead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml_assets.assets.daily_asset import DayContext
from ml_assets.assets.day_pool import DayPool
from ml_assets_tests.conftest import small_settings

DAYS = ["2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04", "2013-01-05"]


def double_delays(day: str, inputs: dict[str, Any], ctx: DayContext) -> pd.DataFrame:
    """A compute of one day from its inputs and settings only; it records its worker's pid."""
    frame = inputs["flights"].assign(dep_delay=inputs["flights"]["dep_delay"] * 2)
    ctx.add_metadata({"rows": len(frame), "pid": os.getpid(), "seed": ctx.settings.seed})
    return frame


def refuse_the_third_day(day: str, inputs: dict[str, Any], ctx: DayContext) -> int:
    if day == DAYS[2]:
        raise ValueError(f"no flights on {day}")
    return len(inputs["flights"])


def ask_for_dagster(day: str, inputs: dict[str, Any], ctx: DayContext) -> Any:
    return ctx.log


def _flights(day: str) -> dict[str, Any]:
    n = int(day[-1])
    return {"flights": pd.DataFrame({"day": [day] * n, "dep_delay": list(range(n))})}


@pytest.fixture
def settings(tmp_path: Path, landing_dir: Path):
    return small_settings(tmp_path, landing_dir, seed=7)


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_days_come_back_in_order_with_their_metadata(settings, start_method: str) -> None:
    asked: list[str] = []

    def inputs(day: str) -> dict[str, Any]:
        asked.append(day)
        return _flights(day)

    pool = DayPool(
        double_delays,
        settings,
        ["feature_store"],
        DAYS,
        inputs,
        workers=2,
        start_method=start_method,
    )
    first, metadata = pool.take(DAYS[0])
    assert asked == DAYS[:4]  # the day taken and workers + 1 more: look-ahead is bounded
    assert list(first["dep_delay"]) == [0]
    assert metadata["rows"] == 1 and metadata["seed"] == 7 and metadata["pid"] != os.getpid()
    for day in DAYS[1:]:
        frame, metadata = pool.take(day)
        assert metadata["pid"] != os.getpid()
        expected = _flights(day)["flights"]
        assert frame["day"].tolist() == expected["day"].tolist()
        assert frame["dep_delay"].tolist() == [2 * d for d in expected["dep_delay"]]
    assert asked == DAYS
    with pytest.raises(RuntimeError, match="closed"):  # the workers stopped after the last day
        pool.take(DAYS[0])


def test_a_workers_error_is_raised_in_the_step_and_stops_the_pool(settings) -> None:
    pool = DayPool(refuse_the_third_day, settings, [], DAYS, _flights, workers=2)
    assert pool.take(DAYS[0])[0] == 1 and pool.take(DAYS[1])[0] == 2
    with pytest.raises(ValueError, match="no flights on 2013-01-03"):
        pool.take(DAYS[2])
    with pytest.raises(RuntimeError, match="2013-01-04: the pool is closed"):
        pool.take(DAYS[3])  # days submitted before the failure are dropped with the pool


def test_a_workers_day_has_no_dagster_context(settings) -> None:
    pool = DayPool(ask_for_dagster, settings, [], DAYS[:2], _flights, workers=2)
    with pytest.raises(TypeError, match="without a Dagster context .*parallel=False"):
        pool.take(DAYS[0])


@pytest.mark.parametrize(("feast_opened", "expected"), [(False, "fork"), (True, "forkserver")])
def test_workers_are_forked_from_the_step_unless_it_opened_duckdb(
    settings, monkeypatch: pytest.MonkeyPatch, feast_opened: bool, expected: str
) -> None:
    from ml_assets.resources import feature_store

    monkeypatch.setattr(feature_store, "feast_store_opened", lambda: feast_opened)
    pool = DayPool(double_delays, settings, [], DAYS[:2], _flights, workers=2)
    try:
        assert pool._pool._mp_context.get_start_method() == expected
        assert pool.take(DAYS[0])[1]["pid"] != os.getpid()
    finally:
        pool.close()
