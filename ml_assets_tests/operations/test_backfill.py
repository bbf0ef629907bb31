"""Cheap assets over a partition range: one run, the same per-day files as day-by-day runs."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.feature_repo.feast_objects import ENTITY_ASSETS
from ml_assets.operations.backfill_launch import SENSOR_EVALUATED_CHECK, day_ranges
from ml_assets.operations.backfill_plan import (
    Limits,
    Prices,
    Step,
    collect_steps,
    fit_step_costs,
    format_plan,
    observe,
    plan_backfill,
    plan_from_instance,
)
from ml_assets.operations.backfill_stale import (
    Materialized,
    Node,
    collect_facts,
    collect_nodes,
    stale_in_instance,
    stale_partitions,
)
from ml_assets.operations.materialize import materialize_days
from ml_assets_tests.conftest import small_settings

CHEAP_STEPS = (
    "raw_flights",
    "raw_weather",
    "flight_features",
    "traffic_features",
    "feast_features",
)
CHEAP = (*CHEAP_STEPS, *ENTITY_ASSETS.values())  # feast_features' step writes the entity views too
DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]
RANGE_TAGS = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _lake(root: Path, landing: Path):
    settings = small_settings(root, landing)
    defs = build_defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    assert all(r.success for r in materialize_days(defs, instance, REFERENCE_JOB, [None]))
    return settings, defs.resolve_implicit_global_asset_job_def(), instance


def _run(job, instance, **kwargs) -> dg.ExecuteInProcessResult:
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(a) for a in CHEAP], **kwargs
    )
    assert result.success
    return result


def _digests(lake: str) -> dict[str, str]:
    return {
        f"{asset}/{day}": hashlib.sha256(
            (Path(lake) / asset / f"{day}.parquet").read_bytes()
        ).hexdigest()
        for asset in CHEAP
        for day in DAYS
    }


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory, landing_dir: Path):
    """One lake built day by day; one built as a range of two days (from the first day of the
    partitions: trailing windows start there) and a range of one (its windows reach back)."""
    daily_settings, job, daily = _lake(tmp_path_factory.mktemp("daily"), landing_dir)
    for day in DAYS:
        _run(job, daily, partition_key=day)
    range_settings, job, ranged = _lake(tmp_path_factory.mktemp("range"), landing_dir)
    results = [
        _run(job, ranged, tags=dict(zip(RANGE_TAGS, (DAYS[0], DAYS[1]), strict=True))),
        _run(job, ranged, tags=dict(zip(RANGE_TAGS, (DAYS[2], DAYS[2]), strict=True))),
    ]
    yield daily_settings, daily, range_settings, ranged, results
    daily.dispose()
    ranged.dispose()


def test_range_runs_write_the_same_bytes_as_daily_runs(lakes) -> None:
    daily_settings, _, range_settings, _, _ = lakes
    assert _digests(range_settings.lake_base) == _digests(daily_settings.lake_base)


def test_each_day_of_a_range_is_its_own_materialization_with_its_own_metadata(lakes) -> None:
    _, daily, _, ranged, results = lakes
    for asset in CHEAP:
        for day in DAYS:
            key = dg.AssetKey(asset)
            filter_ = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day])
            [one] = ranged.fetch_materializations(filter_, limit=5).records
            [reference] = daily.fetch_materializations(filter_, limit=5).records
            got = one.asset_materialization.metadata
            want = reference.asset_materialization.metadata
            assert got["sha256"] == want["sha256"], (asset, day)
            assert got["dagster/row_count"] == want["dagster/row_count"], (asset, day)
            assert got["lake_file"].value.endswith(f"{asset}/{day}.parquet")
    first_run = {e.asset_key.path[-1] for e in results[0].get_asset_materialization_events()}
    assert first_run == set(CHEAP)


def test_contract_checks_of_a_range_judge_every_day(lakes) -> None:
    _, _, _, _, results = lakes
    evaluations = [
        e.event_specific_data
        for e in results[0].all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    contracts = {e.asset_key.path[-1]: e for e in evaluations if e.check_name == "contract"}
    assert {"raw_flights", "raw_weather", "flight_features", "traffic_features"} <= set(contracts)
    for evaluation in contracts.values():
        assert evaluation.passed
        assert evaluation.metadata["days"].value == 2


def _contract_days(instance: dg.DagsterInstance) -> dict[tuple[str, str], dict]:
    """Each (asset, day)'s contract verdict as its evaluation recorded it."""
    out = {}
    for record in instance.get_run_records():
        tag = record.dagster_run.tags.get("dagster/partition")
        for entry in instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ):
            evaluation = entry.dagster_event.event_specific_data
            day = evaluation.partition or tag
            if evaluation.check_name == "contract" and day:
                metadata = {k: v.value for k, v in evaluation.metadata.items()}
                out[(evaluation.asset_key.path[-1], day)] = {
                    "passed": evaluation.passed,
                    **metadata,
                }
    return out


def test_a_range_runs_checks_keep_the_verdict_its_contract_gate_gave(lakes) -> None:
    """In a range run, a day the run wrote is not read and validated again: its check reports
    what re-validating it in a daily run reports."""
    _, daily, _, ranged, _ = lakes
    by_range, by_day = _contract_days(ranged), _contract_days(daily)
    checked = ("raw_flights", "raw_weather", "flight_features", "traffic_features")
    assert {(a, d) for a in checked for d in DAYS} <= set(by_range)
    for key, verdict in by_range.items():
        assert verdict["validated"].startswith("as written, by the contract gate of this run")
        again = by_day[key]
        for field in ("passed", "rows", "failing_rows", "quarantined_rows", "severity"):
            assert verdict[field] == again[field], (key, field)


# -- the plan ----------------------------------------------------------------------------------

PRICES = Prices(cpu_on_demand=0.04, cpu_spot=0.01, gpu_on_demand=0.40, gpu_spot=0.10)
STEPS = [
    Step("raw_flights", "raw_flights", single_run=True),
    Step("raw_flights_contract", "raw_flights", single_run=True),
    Step("training_set", "training_set"),
    Step("model__gpu", "model__gpu", profile="gpu"),
    Step("model__spot", "model__spot", profile="cpu-large", spot=True),
]
SECONDS = {
    "raw_flights": 0.5,
    "raw_flights_contract": 0.1,
    "training_set": 4.0,
    "model__gpu": 20.0,
    "model__spot": 10.0,
}
TEN_DAYS = [f"2013-02-{d:02d}" for d in range(1, 11)]


def test_plan_runs_single_run_assets_once_and_the_rest_per_day() -> None:
    plan = plan_backfill(TEN_DAYS, STEPS, SECONDS, 5.0, Limits(5, 1, 2.0), PRICES)
    ranged = [r for r in plan.runs if r.ranged]
    assert [(r.days[0], r.days[-1], r.steps) for r in ranged] == [
        ("2013-02-01", "2013-02-10", ("raw_flights", "raw_flights_contract"))
    ]
    per_day = [r for r in plan.runs if not r.ranged]
    assert [r.days for r in per_day] == [(d,) for d in TEN_DAYS]
    assert len(plan.runs) == 11 and plan.steps == 2 + 10 * 3
    assert ranged[0].seconds == pytest.approx(2.0 + 10 * 0.6)
    # CPU: the profiles' requests: 1 core (default), 2 (gpu), 4 (cpu-large); GPU: one device
    cpu_s = 10 * (0.6 * 1 + 4.0 * 1 + 20.0 * 2 + 10.0 * 4)
    assert plan.cpu_hours == pytest.approx(cpu_s / 3600)
    assert plan.gpu_hours == pytest.approx(10 * 20.0 / 3600)
    spot_saving = 10 * 10.0 * 4 / 3600 * (0.04 - 0.01)
    assert plan.cost_on_demand - plan.cost_spot == pytest.approx(spot_saving)


def test_plan_of_one_range_run_runs_steps_of_one_depth_side_by_side() -> None:
    steps = [
        Step("training_set", "training_set", single_run=True, depth=0),
        Step("model__a", "model__a", single_run=True, depth=1),
        Step("model__b", "model__b", single_run=True, depth=1),
        Step("model__c", "model__c", single_run=True, depth=1),
        Step("model_leaderboard", "model_leaderboard", single_run=True, depth=2),
    ]
    seconds = {
        "training_set": 1.0,
        "model__a": 6.0,
        "model__b": 2.0,
        "model__c": 3.0,
        "model_leaderboard": 0.5,
    }
    serial = plan_backfill(TEN_DAYS, steps, seconds, 5.0, Limits(5, 1, 4.0), PRICES)
    assert len(serial.runs) == 1 and serial.wall_clock_s == pytest.approx(4.0 + 10 * 12.5)
    two = Limits(5, 1, 4.0, step_slots=2, step_overhead_s=1.5)
    parallel = plan_backfill(TEN_DAYS, steps, seconds, 5.0, two, PRICES)
    # longest first on two slots: a | c then b -> max(60, 30 + 20) plus a step's start each
    models = max(60.0 + 1.5, (30.0 + 1.5) + (20.0 + 1.5))
    assert parallel.wall_clock_s == pytest.approx(4.0 + (10 + 1.5) + models + (5 + 1.5))
    assert parallel.cpu_hours == serial.cpu_hours  # the bill is the same work
    ticked = plan_backfill(TEN_DAYS, steps, seconds, 5.0, replace(two, daemon_tick_s=30.0), PRICES)
    # one stage, requested at a random point of the daemon's 30-s cycle: 15 s on average
    assert ticked.wall_clock_s == pytest.approx(parallel.wall_clock_s + 15.0)


def test_a_parallel_steps_range_spreads_its_days_over_the_workers() -> None:
    steps = [
        Step("training_set", "training_set", single_run=True, parallel=True),
        Step("model__a", "model__a", single_run=True, depth=1),
    ]
    per_day, fixed = {"training_set": 2.0, "model__a": 3.0}, {"training_set": 4.0, "model__a": 1.0}
    limits = Limits(5, 1, 0.0, day_workers=2)
    plan = plan_backfill(
        TEN_DAYS, steps, per_day, 5.0, limits, PRICES, fixed_seconds_per_step=fixed
    )
    (run,) = plan.runs
    assert run.seconds == pytest.approx((4.0 + 2.0 * 10 / 2) + (1.0 + 3.0 * 10))
    assert plan.cpu_hours == pytest.approx(run.seconds / 3600)  # a step's duration, billed
    one_day = plan_backfill(
        TEN_DAYS[:1], steps, per_day, 5.0, limits, PRICES, fixed_seconds_per_step=fixed
    )
    assert one_day.runs[0].seconds == pytest.approx((4.0 + 2.0) + (1.0 + 3.0))  # no pool


def test_a_check_never_seen_costs_the_default_once_per_run_an_asset_per_day() -> None:
    steps = [
        Step("raw_flights", "raw_flights", single_run=True),
        Step("raw_flights_freshness", "raw_flights", single_run=True, depth=1, check=True),
    ]
    (run,) = plan_backfill(TEN_DAYS, steps, {}, 3.0, Limits(5, 1, 0.0), PRICES).runs
    assert run.seconds == pytest.approx(10 * 3.0 + 3.0)


def test_step_costs_are_fitted_from_runs_of_different_lengths() -> None:
    # 5 s to start and 2 s a day: a day run (7 s) and two 10-day ranges (25 s)
    assert fit_step_costs([(1, 7.0), (10, 25.0), (10, 25.0)]) == pytest.approx((5.0, 2.0))
    assert fit_step_costs([(1, 7.0), (1, 9.0)]) == (0.0, 8.0)  # one length: all of it per day
    assert fit_step_costs([(1, 1.2), (56, 1.0)]) == pytest.approx((1.1, 0.0))  # days cost nothing
    assert fit_step_costs([(1, 1.0), (10, 30.0)]) == pytest.approx((0.0, 31.0 / 11))  # no start


def test_plan_wall_clock_follows_the_queue_and_the_gpu_slots() -> None:
    per_day_s = 2.0 + 4.0 + 20.0 + 10.0
    wide = plan_backfill(TEN_DAYS, STEPS, SECONDS, 5.0, Limits(5, 10, 2.0), PRICES)
    assert wide.wall_clock_s == pytest.approx((2.0 + 10 * 0.6) + 2 * per_day_s)
    narrow = plan_backfill(TEN_DAYS, STEPS, SECONDS, 5.0, Limits(1, 10, 2.0), PRICES)
    assert narrow.wall_clock_s == pytest.approx((2.0 + 10 * 0.6) + 10 * per_day_s)
    one_gpu = plan_backfill(TEN_DAYS, STEPS, SECONDS, 5.0, Limits(10, 1, 2.0), PRICES)
    assert one_gpu.wall_clock_s == pytest.approx((2.0 + 10 * 0.6) + 10 * 20.0)


def test_job_backfill_runs_every_day_alone_and_unobserved_steps_take_the_default() -> None:
    plan = plan_backfill(TEN_DAYS, STEPS, {}, 3.0, Limits(5, 1, 0.0), PRICES, job_backfill=True)
    assert len(plan.runs) == 10 and not any(r.ranged for r in plan.runs)
    assert set(plan.seconds_per_step_day.values()) == {3.0}


def test_only_the_partitions_to_redo_are_planned() -> None:
    todo = {
        "raw_flights": {"2013-02-03"},
        "training_set": {"2013-02-03", "2013-02-04"},
        "model__gpu": {"2013-02-04"},
    }
    plan = plan_backfill(TEN_DAYS, STEPS, SECONDS, 5.0, Limits(5, 1, 0.0), PRICES, todo=todo)
    assert [(r.days, r.steps) for r in plan.runs] == [
        (("2013-02-03",), ("raw_flights", "raw_flights_contract")),
        (("2013-02-03",), ("training_set",)),
        (("2013-02-04",), ("training_set", "model__gpu")),
    ]
    assert plan.steps == 5 and plan.skipped_step_days == 5 * 10 - 5
    assert plan.gpu_hours == pytest.approx(20.0 / 3600)
    assert "45 step-days up to date, skipped" in format_plan(plan, "daily_pipeline")


def test_plan_reads_policies_and_durations_from_real_runs(lakes) -> None:
    daily_settings, daily, range_settings, ranged, _ = lakes
    defs = build_defs(daily_settings)
    steps = {s.name: s for s in collect_steps(defs, DAILY_JOB)}
    assert steps["raw_flights"].single_run and steps["feast_features"].single_run
    # training sets join the feature assets' range run, and so do the models (model_runs=range)
    assert steps["training_set"].single_run and steps["training_set"].max_days_per_run is None
    assert steps["model__gbdt"].single_run and steps["model__gbdt"].profile == "gpu"
    assert steps["deployed_model"].single_run
    # depth in the graph: models after their training set, side by side; checks after their asset
    assert steps["model__gbdt"].depth == steps["training_set"].depth + 1
    assert {steps[n].depth for n in steps if n.startswith("model__")} == {
        steps["model__gbdt"].depth
    }
    assert steps["raw_flights_contract"].depth == steps["raw_flights"].depth + 1
    daily_models = collect_steps(
        build_defs(daily_settings.model_copy(update={"model_runs": "daily"})), DAILY_JOB
    )
    assert not {s.name: s for s in daily_models}["model__gbdt"].single_run
    assert steps["raw_flights_contract"].single_run  # a check runs with its asset
    assert "raw_flights_partition_freshness" in steps  # an asset backfill runs every check
    assert "raw_flights_partition_freshness" not in {
        s.name for s in collect_steps(defs, DAILY_JOB, job_backfill=True)
    }
    # durations per day: from 3 daily runs, and from 2 range runs (a 2-day run counts per day)
    for instance, runs in ((daily, 3), (ranged, 2)):
        observed = observe(instance, DAYS)
        assert observed.runs == runs
        assert set(CHEAP_STEPS) <= set(observed.seconds_per_step_day)
        # a step's cost: per day, or fixed when runs of two lengths took about as long
        costs = observed.seconds_per_step_day, observed.fixed_seconds_per_step
        assert all(costs[0][k] + costs[1][k] > 0 for k in costs[0])
    plan = plan_from_instance(defs, daily, daily_settings, DAILY_JOB, TEN_DAYS)
    assert set(CHEAP_STEPS) <= plan.observed and "training_set" not in plan.observed
    assert plan.seconds_per_step_day["training_set"] == daily_settings.backfill_default_step_s
    text = format_plan(plan, DAILY_JOB)
    assert "range run 2013-02-01..2013-02-10" in text and "per-day runs" not in text


# -- no wasted work --------------------------------------------------------------------------


def test_nothing_is_stale_after_daily_or_range_runs_and_a_code_change_redoes_its_dependents(
    lakes,
) -> None:
    daily_settings, daily, range_settings, ranged, _ = lakes
    defs = build_defs(daily_settings)
    for instance in (daily, ranged):
        stale = stale_in_instance(defs, instance, FEATURES_JOB, DAYS)
        assert {k: v for k, v in stale.items() if k[0] in CHEAP} == {}, stale
    nodes = [
        replace(n, code_version="changed") if n.asset == "flight_features" else n
        for n in collect_nodes(defs, FEATURES_JOB)
    ]
    cheap = [n for n in nodes if n.asset in CHEAP]
    facts = collect_facts(daily, [n.asset for n in cheap], DAYS)
    stale = stale_partitions(cheap, DAYS, facts)
    redone = ("flight_features", "feast_features", *ENTITY_ASSETS.values())
    assert set(stale) == {(a, d) for a in redone for d in DAYS}
    assert stale[("flight_features", DAYS[0])] == "code version 2 -> changed"
    assert stale[("feast_features", DAYS[0])] == f"flight_features[{DAYS[0]}] is redone"


def test_stale_partitions_follow_windows_data_versions_and_landing() -> None:
    nodes = [
        Node("raw", "1", {}),
        Node("traffic", "1", {"raw": 2}),
        Node("model", "1", {"traffic": 1}),
    ]
    days = ["2013-01-02", "2013-01-03"]
    at = {"raw": 10.0, "traffic": 20.0, "model": 30.0}
    facts = {
        (asset, day): [Materialized(at[asset], "1", f"{asset}{day}")]
        for asset in at
        for day in ["2013-01-01", *days]
    }
    assert stale_partitions(nodes, days, facts) == {}

    def again(asset: str, day: str, version: str) -> dict:
        return {**facts, (asset, day): [Materialized(40.0, "1", version), *facts[(asset, day)]]}

    # raw of Jan 1 again with the same content: nothing to redo; with other content: the
    # traffic window of Jan 2 reads it (not Jan 3's), and the model of Jan 2 follows
    assert stale_partitions(nodes, days, again("raw", "2013-01-01", "raw2013-01-01")) == {}
    assert stale_partitions(nodes, days, again("raw", "2013-01-01", "new")) == {
        ("traffic", "2013-01-02"): "raw[2013-01-01] data changed",
        ("model", "2013-01-02"): "traffic[2013-01-02] is redone",
    }
    assert stale_partitions(nodes, days, again("traffic", "2013-01-03", "new")) == {
        ("model", "2013-01-03"): "traffic[2013-01-03] data changed"
    }
    landed = stale_partitions(nodes, days, facts, landed_at={"2013-01-03": 15.0})
    assert landed[("raw", "2013-01-03")] == "landed again since" and len(landed) == 3
    del facts[("model", "2013-01-02")]
    assert stale_partitions(nodes, days, facts) == {("model", "2013-01-02"): "missing"}


def test_day_ranges_join_consecutive_days() -> None:
    days = ["2013-01-05", "2013-01-01", "2013-01-02", "2013-01-03", "2013-02-28", "2013-03-01"]
    assert day_ranges(days) == [
        ("2013-01-01", "2013-01-03"),
        ("2013-01-05", "2013-01-05"),
        ("2013-02-28", "2013-03-01"),
    ]


def test_single_run_launches_leave_out_the_checks_the_jobs_leave_out() -> None:
    """``launch_range_run`` (dagster-free) names the sensor-evaluated check as the jobs do."""
    from ml_assets.freshness_policy import CHECK_NAME, SENSOR_EVALUATED_CHECKS

    assert SENSOR_EVALUATED_CHECK == CHECK_NAME
    assert {key.name for key in SENSOR_EVALUATED_CHECKS} == {SENSOR_EVALUATED_CHECK}


def test_plan_backfill_command_prints_a_plan_from_defaults(
    tmp_path: Path, landing_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ml_assets.operations import cli

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("ML_ASSETS_ROOT", str(tmp_path))
    monkeypatch.setenv("ML_ASSETS_LANDING", str(landing_dir))
    argv = ["plan-backfill", "--start", "2013-01-02", "--end", "2013-01-11", "--only-stale"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "Backfill plan: daily_pipeline, 2013-01-02..2013-01-11 (10 days)" in text
    # nothing materialized yet: the whole graph over the range in one run
    assert "runs  : 1 (1 over ranges, 0 one per day)" in text
    assert "observed for 0 of" in text and "on demand" in text
