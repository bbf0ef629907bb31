"""Idempotent ingestion: a day re-delivered with the same content runs again but adds no rows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from ml_assets.definitions import build_defs
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import copy_day
from ml_assets_tests.automation.test_sensors import days_of, tick

DAY = "2013-01-03"
RAW = ("raw_flights", "raw_weather")


def _ingest(settings: Settings, instance: dg.DagsterInstance, request: dg.RunRequest) -> None:
    result = (
        build_defs(settings)
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            tags=request.tags,
            asset_selection=[dg.AssetKey(a) for a in RAW],
        )
    )
    assert result.success


def test_redelivered_same_files_rewrite_the_same_rows(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, DAY)
    first = tick(auto_settings, instance, None)
    _ingest(auto_settings, instance, first.run_requests[0])
    lake = Path(auto_settings.lake_base)
    before = {a: (lake / a / f"{DAY}.parquet").read_bytes() for a in RAW}
    rows = {a: len(pd.read_parquet(lake / a / f"{DAY}.parquet")) for a in RAW}

    assert tick(auto_settings, instance, first.cursor).run_requests == []  # nothing new: no run
    for source in ("flights", "weather"):  # the upstream system delivers the same bytes again
        path = landing / source / f"{DAY}.csv"
        shutil.copy(landing_dir / source / f"{DAY}.csv", path)
        later = path.stat().st_mtime + 60
        os.utime(path, (later, later))
    again = tick(auto_settings, instance, first.cursor)
    assert days_of(again) == [DAY]  # a re-delivery may carry changes: it is ingested again
    _ingest(auto_settings, instance, again.run_requests[0])
    assert {a: (lake / a / f"{DAY}.parquet").read_bytes() for a in RAW} == before
    assert {a: len(pd.read_parquet(lake / a / f"{DAY}.parquet")) for a in RAW} == rows
    assert sorted(p.name for p in (lake / "raw_flights").iterdir()) == [f"{DAY}.parquet"]
    assert tick(auto_settings, instance, again.cursor).run_requests == []
