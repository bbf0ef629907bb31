"""The volume guard in real runs: a partial re-delivery is refused before anything is written, a
genuinely quiet day passes with the operator's override, the first days (no history) pass."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ml_assets.checks.volume import earlier_days, judge_volume
from ml_assets.definitions import build_defs
from ml_assets.operations.cli import main
from ml_assets.operations.materialize import RANGE_TAGS
from ml_assets.settings import Settings
from ml_assets.sources.nycflights13 import read_table

DAY = "2013-01-05"  # a Saturday: 720 flights, 78.7 % of the median of the four days before it
HISTORY = ("2013-01-01", "2013-01-04")
RAW = [dg.AssetKey("raw_flights")]


@pytest.fixture
def landing(tmp_path: Path, landing_dir: Path) -> Path:
    """A private copy of the session's landed days (tests move and rewrite files)."""
    return Path(shutil.copytree(landing_dir, tmp_path / "landing"))


def _settings(settings: Settings, landing: Path, **overrides) -> Settings:
    return settings.model_copy(update={"landing_base": str(landing), **overrides})


def _run(
    settings: Settings, instance: dg.DagsterInstance, day: str | None = None, span=None
) -> dg.ExecuteInProcessResult:
    """raw_flights for one day, or one range run over ``span`` (first, last)."""
    tags = {RANGE_TAGS[0]: span[0], RANGE_TAGS[1]: span[1]} if span else None
    job = build_defs(settings).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, partition_key=day, tags=tags, asset_selection=RAW, raise_on_error=False
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return event.step_failure_data.user_failure_data.description or ""


def _metadata(instance: dg.DagsterInstance, day: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW[0], asset_partitions=[day]), limit=1
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _sample(path: Path, share: float) -> bytes:
    """A valid partial delivery: ``share`` of the day's real rows, in their order."""
    rows = pd.read_csv(path)
    return rows.sample(frac=share, random_state=0).sort_index().to_csv(index=False).encode()


def test_settings_read_the_share_from_the_environment() -> None:
    env = {"ML_ASSETS_VOLUME_GUARD_SHARE": "0.3", "ML_ASSETS_ROOT": "/tmp/x"}
    assert Settings.from_env(env).volume_guard_share == 0.3
    assert Settings.from_env({"ML_ASSETS_ROOT": "/tmp/x"}).volume_guard_share == 0.5


def test_judging_against_the_replaced_partition_the_median_or_nothing() -> None:
    first = judge_volume(842, 0.5, None, {})
    assert not first.dropped and first.reference is None and "no earlier day" in first.describe()
    quiet = judge_volume(720, 0.5, None, {"2013-01-01": 842, "2013-01-02": 943, "2013-01-04": 915})
    assert quiet.reference == 915 and not quiet.dropped
    assert "median of 3 earlier days 2013-01-01..2013-01-04" in quiet.describe()
    partial = judge_volume(72, 0.5, 720, {"2013-01-04": 915})
    assert partial.dropped and partial.reference == 720
    assert "72 rows, 10.0% of the reference 720 rows (the partition it would replace)" in (
        partial.describe()
    )
    assert partial.metadata()["volume_guard_share"] == 0.5
    days = [f"2013-01-{d:02d}" for d in range(1, 31)]
    assert earlier_days("2013-01-20", days) == days[12:19]  # the 7 days before, not the day
    assert earlier_days("2013-01-20", ["2013-01-02", "2013-01-05"]) == []  # beyond 14 days
    assert earlier_days("2013-01-20", ["2013-01-06", "2013-01-21"]) == ["2013-01-06"]


def test_no_real_day_of_2013_is_refused_at_the_default_share() -> None:
    """The guard against the whole real year, each day judged on the 7 days before it."""
    flights = read_table("flights")
    counts = (
        flights.assign(day=pd.to_datetime(flights[["year", "month", "day"]]).dt.date.astype(str))
        .groupby("day")
        .size()
        .to_dict()
    )
    refused = []
    for day, rows in counts.items():
        earlier = {d: counts[d] for d in earlier_days(day, counts)}
        if judge_volume(
            rows, Settings.model_fields["volume_guard_share"].default, None, earlier
        ).dropped:
            refused.append(day)
    assert len(counts) == 365 and refused == []


def test_partial_redelivery_of_a_materialized_day_is_refused_and_kept_aside(
    settings: Settings, landing: Path
) -> None:
    settings = _settings(settings, landing)
    lake = Path(settings.lake_base) / "raw_flights" / f"{DAY}.parquet"
    flights = landing / "flights" / f"{DAY}.csv"
    with dg.DagsterInstance.ephemeral() as instance:
        first = _run(settings, instance, DAY)  # the first day in the lake: no history, accepted
        assert first.success
        assert _metadata(instance, DAY)["volume_guard"] == "no history"
        good = lake.read_bytes()
        rows = len(pd.read_parquet(lake))

        partial = _sample(flights, 0.1)
        flights.write_bytes(partial)
        result = _run(settings, instance, DAY)

        assert not result.success
        text = _failure(result)
        sent = partial.count(b"\n") - 1
        assert f"raw_flights[{DAY}]" in text and f"partition: {DAY}" in text
        assert f"file: {flights}" in text and "rule: volume_drop" in text
        assert f"{sent} rows, " in text and f"of the reference {rows} rows" in text
        assert "(the partition it would replace)" in text and "share is 0.5" in text
        assert "--accept-volume-drop" in text
        assert lake.read_bytes() == good  # the good partition is untouched, byte for byte
        (rejected,) = (landing / "rejected" / "flights").glob(f"{DAY}.*.csv")
        assert rejected.name == f"{DAY}.{hashlib.sha256(partial).hexdigest()[:12]}.csv"
        assert rejected.read_bytes() == partial and not flights.exists()
        assert str(rejected) in text
        retries = [
            e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
        ]
        assert retries == []


def test_a_partial_day_in_a_range_run_is_judged_on_the_days_before_it(
    settings: Settings, landing: Path
) -> None:
    """A fresh backfill: the lake is empty, the earlier days of the same run are the history."""
    settings = _settings(settings, landing)
    flights = landing / "flights" / f"{DAY}.csv"
    partial = _sample(flights, 0.1)
    flights.write_bytes(partial)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(settings, instance, span=(HISTORY[0], DAY))
    assert not result.success
    text = _failure(result)
    assert "rule: volume_drop" in text and f"partition: {DAY}" in text
    assert "median of 4 earlier days 2013-01-01..2013-01-04" in text
    assert not (Path(settings.lake_base) / "raw_flights").exists()  # nothing of the range written
    assert [p.read_bytes() for p in (landing / "rejected" / "flights").iterdir()] == [partial]


def test_a_genuinely_quiet_day_passes_with_the_operators_override(
    settings: Settings, landing: Path, capsys: pytest.CaptureFixture
) -> None:
    """At share 0.8 the real Saturday is refused; `land --accept-volume-drop` lets it in."""
    settings = _settings(settings, landing, volume_guard_share=0.8)
    flights = landing / "flights" / f"{DAY}.csv"
    real = flights.read_bytes()
    lake = Path(settings.lake_base) / "raw_flights" / f"{DAY}.parquet"
    with dg.DagsterInstance.ephemeral() as instance:
        assert _run(settings, instance, span=HISTORY).success
        refused = _run(settings, instance, DAY)
        assert not refused.success and not lake.exists()
        text = _failure(refused)
        assert "rule: volume_drop: 720 rows, 78.7% of the reference 914.5 rows" in text
        assert "median of 4 earlier days 2013-01-01..2013-01-04" in text
        assert not flights.exists()

        argv = [
            "land",
            "--start",
            DAY,
            "--end",
            DAY,
            "--landing",
            str(landing),
            "--accept-volume-drop",
            "--by",
            "oncall",
        ]
        assert main(argv) == 0
        assert "volume guard overridden by oncall" in capsys.readouterr().out
        marker = landing / "flights" / f"{DAY}.accept-volume-drop"
        note = json.loads(marker.read_text())
        assert flights.read_bytes() == real
        assert note["sha256"] == hashlib.sha256(real).hexdigest() and note["by"] == "oncall"

        accepted = _run(settings, instance, DAY)
        assert accepted.success
        meta = _metadata(instance, DAY)
        assert meta["volume_guard"] == "volume_drop accepted by operator override"
        assert meta["volume_override"] == str(marker) and "oncall" in meta["volume_override_note"]
        assert meta["volume_rows"] == 720 and meta["volume_reference_rows"] == 914.5
        assert len(pd.read_parquet(lake)) == 720
        good = lake.read_bytes()

        # The marker accepts that file only: a later partial re-delivery is refused again.
        partial = _sample(flights, 0.1)
        flights.write_bytes(partial)
        again = _run(settings, instance, DAY)
        assert not again.success and lake.read_bytes() == good
        text = _failure(again)
        assert "(the partition it would replace)" in text
        assert f"the marker {marker} names another version of the file" in text
        assert hashlib.sha256(partial).hexdigest() in text


def test_a_sha256sum_marker_written_by_hand_is_honoured(settings: Settings, landing: Path) -> None:
    settings = _settings(settings, landing, volume_guard_share=0.8)
    flights = landing / "flights" / f"{DAY}.csv"
    digest = hashlib.sha256(flights.read_bytes()).hexdigest()
    (landing / "flights" / f"{DAY}.accept-volume-drop").write_text(f"{digest}  {flights.name}\n")
    with dg.DagsterInstance.ephemeral() as instance:
        assert _run(settings, instance, span=HISTORY).success
        assert _run(settings, instance, DAY).success
        assert _metadata(instance, DAY)["volume_guard"].endswith("accepted by operator override")
