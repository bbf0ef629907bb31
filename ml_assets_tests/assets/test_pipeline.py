"""The whole graph over consecutive real days, in-process, into a temp lake and registry."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.operations.materialize import materialize_days
from ml_assets.resources.registry import ModelRegistry
from ml_assets.sources.landing_files import days_between

TRAIN_DAYS = ["2013-01-14", "2013-01-15", "2013-01-16"]


def _metadata(instance: dg.DagsterInstance, key: str, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{key}[{partition}] was not materialized"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


_DAILY_RUNS: dict = {}  # what the fixture's daily runs left: outputs, metadata, promotions
MODEL_FACTS = ("holdout_auc", "train_window", "best_auc", "reason", "promoted")


def _record(settings, instance: dg.DagsterInstance) -> dict:
    return {
        "outputs": _outputs(settings),
        "metadata": {
            (asset, day): {
                k: v for k, v in _metadata(instance, asset, day).items() if k in MODEL_FACTS
            }
            for asset in ("model__gbdt", "model_leaderboard", "deployed_model")
            for day in TRAIN_DAYS
        },
        "promoted": [
            h["partition"] for h in ModelRegistry(base_path=settings.registry_base).history()
        ],
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, landing_dir: Path):
    """Features for 13 days, then the whole graph for the last three (module-scoped: runs once)."""
    from ml_assets_tests.conftest import small_settings

    settings = small_settings(tmp_path_factory.mktemp("pipeline"), landing_dir)
    defs = build_defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    runs = materialize_days(defs, instance, REFERENCE_JOB, [None])
    runs += materialize_days(defs, instance, FEATURES_JOB, days_between("2013-01-01", "2013-01-13"))
    runs += materialize_days(defs, instance, DAILY_JOB, TRAIN_DAYS)
    _DAILY_RUNS.update(_record(settings, instance))  # before any test re-runs a day
    yield settings, defs, instance, runs
    instance.dispose()


def test_every_run_succeeds(pipeline) -> None:
    _, _, _, runs = pipeline
    assert [r.success for r in runs] == [True] * (1 + 13 + 3)


def test_lake_holds_each_asset_partition(pipeline) -> None:
    settings, _, _, _ = pipeline
    lake = Path(settings.lake_base)
    assert (lake / "planes.parquet").exists()
    for day in TRAIN_DAYS:
        for asset in (
            "raw_flights",
            "raw_weather",
            "flight_features",
            "traffic_features",
            "training_set",
            "model_leaderboard",
        ):
            assert (lake / asset / f"{day}.parquet").exists(), (asset, day)
        assert (lake / "model__gbdt" / f"{day}.model.txt").exists()
        assert (lake / "deployed_model" / f"{day}.json").exists()
    assert not list(lake.rglob("*.tmp"))


def test_metadata_records_rows_auc_and_hashes(pipeline) -> None:
    _, _, instance, _ = pipeline
    day = TRAIN_DAYS[-1]
    training = _metadata(instance, "training_set", day)
    assert training["train_rows"] > 3_000 and training["holdout_rows"] > 1_000
    assert training["unlabelled_rows_excluded"] > 0  # cancelled flights are counted, not trained on
    model = _metadata(instance, "model__goss", day)
    assert 0.5 < model["holdout_auc"] < 1.0 and len(model["sha256"]) == 64
    board = _metadata(instance, "model_leaderboard", day)
    assert board["models"] == 3 and board["best_auc"] >= model["holdout_auc"]


def test_registry_points_to_a_verified_model_with_manifest(pipeline) -> None:
    settings, _, instance, _ = pipeline
    registry = ModelRegistry(base_path=settings.registry_base)
    current = registry.current()
    assert current is not None
    model, manifest = registry.load(current["sha256"])
    assert model.sha256 == current["sha256"]
    inputs = manifest["inputs"]
    day = current["partition"]
    assert inputs["training_set"] == {day: inputs["training_set"][day]}
    assert inputs["model_leaderboard"][day] and inputs[f"model__{model.name}"][day]
    # the exact partitions down to the landed sources, each with its data version: the training
    # window (12 days), the traffic branch's history (7 days more) and the weather of the day before
    window = days_between(_shift(day, -11), day)
    assert sorted(inputs["flight_features"]) == window
    assert sorted(inputs["feast_origin_stats"]) == window
    assert sorted(inputs["raw_flights"]) == days_between("2013-01-01", day)
    assert sorted(inputs["raw_weather"]) == days_between(_shift(day, -12), day)
    assert inputs["planes"] == {"static": inputs["planes"]["static"]}
    assert all(v for parts in inputs.values() for v in parts.values())  # every data version known
    # landed data is versioned by content, so each day's data version differs, downstream too
    for asset in ("raw_flights", "raw_weather", "flight_features", "feast_route_stats"):
        assert len(set(inputs[asset].values())) == len(inputs[asset]), asset
    assert manifest["catalog_entry"]["name"] == model.name
    assert manifest["metrics"]["auc"] >= settings.auc_gate
    decisions = [
        json.loads((Path(settings.lake_base) / "deployed_model" / f"{d}.json").read_text())
        for d in TRAIN_DAYS
    ]
    assert decisions[0]["promoted"] and decisions[0]["champion_before"] is None
    promoted = [d for d in decisions if d["promoted"]]
    assert current["partition"] == promoted[-1]["partition"]
    later = [d for d in decisions[1:] if d["comparison"] is not None]
    assert all(-1 < d["comparison"]["auc_difference"] < 1 for d in later)


def _shift(day: str, days: int) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def test_one_lineage_over_several_days_answers_as_each_day_alone(pipeline, monkeypatch) -> None:
    """A range run's deployment shares one ``Lineage``: the same partitions and data versions as
    each day's own walk and queries, each (asset, partition) fetched from the instance once."""
    from ml_assets import lineage as lineage_module
    from ml_assets.lineage import Lineage, data_versions, upstream_partitions

    _, defs, instance, _ = pipeline
    graph = defs.resolve_asset_graph()
    alone = {
        day: data_versions(instance, upstream_partitions(graph, "model__gbdt", day))
        for day in TRAIN_DAYS
    }
    fetched: list[tuple[str, str]] = []
    fetch = lineage_module._fetch_versions

    def counted(instance, asset, parts):
        fetched.extend((asset, p) for p in parts)
        return fetch(instance, asset, parts)

    monkeypatch.setattr(lineage_module, "_fetch_versions", counted)
    shared = Lineage(graph, instance)
    for day in TRAIN_DAYS:
        assert shared.versions(shared.upstream("model__gbdt", day)) == alone[day]
    assert len(fetched) == len(set(fetched))
    assert set(fetched) == {(a, p) for day in alone.values() for a, ps in day.items() for p in ps}


def test_blast_radius_finds_the_deployed_models_built_on_a_partition(pipeline) -> None:
    from ml_assets.lineage import downstream_partitions, manifests_using

    settings, defs, _, _ = pipeline
    registry = ModelRegistry(base_path=settings.registry_base)
    current = registry.current()
    hits = manifests_using(registry.manifests(), "raw_flights", "2013-01-05")
    assert current["sha256"] in {h["sha256"] for h in hits}
    assert all(h["data_version"] for h in hits)
    assert manifests_using(registry.manifests(), "raw_flights", "2013-02-20") == []
    graph = defs.resolve_asset_graph()
    affected = downstream_partitions(graph, "raw_flights", "2013-01-05")
    # the traffic branch's 7-day history, then the 12-day training window
    assert affected["traffic_features"] == days_between("2013-01-05", "2013-01-12")
    assert affected["model__gbdt"] == days_between("2013-01-05", "2013-01-23")
    assert affected["deployed_model"] == affected["model__gbdt"]


def test_rematerializing_a_model_gives_the_same_hash(pipeline) -> None:
    _, defs, instance, _ = pipeline
    day = TRAIN_DAYS[-1]
    before = _metadata(instance, "model__goss", day)["sha256"]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=day, instance=instance, asset_selection=[dg.AssetKey("model__goss")]
    )
    assert result.success
    assert _metadata(instance, "model__goss", day)["sha256"] == before


def test_backfilled_partition_does_not_replace_newer_champion(pipeline) -> None:
    settings, defs, instance, _ = pipeline
    registry = ModelRegistry(base_path=settings.registry_base)
    champion = registry.current()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=TRAIN_DAYS[0],
        instance=instance,
        asset_selection=[dg.AssetKey("deployed_model")],
    )
    assert result.success
    decision = _metadata(instance, "deployed_model", TRAIN_DAYS[0])
    assert decision["promoted"] is False and "newer partition" in decision["reason"]
    assert registry.current() == champion


def test_rematerializing_a_day_rewrites_byte_identical_files(pipeline) -> None:
    """Idempotency: the day's frames (Parquet) and models come out byte for byte the same."""
    from ml_assets.feature_repo.feast_objects import ENTITY_ASSETS

    settings, defs, instance, _ = pipeline
    day = TRAIN_DAYS[-1]
    lake = Path(settings.lake_base)
    assets = [
        "raw_flights",
        "raw_weather",
        "flight_features",
        "traffic_features",
        "feast_features",
        *ENTITY_ASSETS.values(),
        "training_set",
        "model__gbdt_recent",
    ]
    files = [f for a in assets for f in (lake / a).glob(f"{day}.*")]
    before = {f: f.read_bytes() for f in files}
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=day, instance=instance, asset_selection=[dg.AssetKey(a) for a in assets]
    )
    assert result.success and len(before) == len(assets) + 1  # the model has .txt and .json
    changed = [str(f.relative_to(lake)) for f, data in before.items() if f.read_bytes() != data]
    assert changed == []


def test_blast_radius_command_lists_the_deployments(
    pipeline, tmp_path, monkeypatch, capsys
) -> None:
    from ml_assets.operations.cli import main

    settings, _, _, _ = pipeline
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("ML_ASSETS_ROOT", str(tmp_path))
    monkeypatch.setenv("ML_ASSETS_REGISTRY", settings.registry_base)
    assert main(["blast-radius", "--asset", "raw_flights", "--partition", "2013-01-05"]) == 0
    out = capsys.readouterr().out
    current = ModelRegistry(base_path=settings.registry_base).current()
    assert f"{current['sha256'][:12]}  promoted for {current['partition']}" in out
    assert "<- current" in out and "model__gbdt" in out
    assert main(["blast-radius", "--asset", "no_such_asset", "--partition", "2013-01-05"]) == 2


def test_a_gpu_step_without_a_gpu_fails_once_and_alerts_in_production(
    pipeline, inbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production settings: no silent CPU fallback. The step fails at once (no retry), naming
    the node, the step and the reason, and the failure email says the same."""
    from ml_assets.models import gpu
    from ml_assets_tests.automation.test_notifications import run_sensor

    settings, _, instance, _ = pipeline
    empty = tmp_path / "vendors"
    empty.mkdir()
    monkeypatch.setenv("OCL_ICD_VENDORS", str(empty))  # the loader finds no ICD: no OpenCL device
    monkeypatch.setenv("ML_ASSETS_NODE_NAME", "gke-ml-gpu-pool-7f3a")
    prod = settings.model_copy(
        update={"gpu_fallback": "fail", "smtp_port": inbox[1], "smtp_recipients": ("oncall@x",)}
    )
    defs, day = build_defs(prod), TRAIN_DAYS[-1]
    before = (Path(settings.lake_base) / "model__gbdt" / f"{day}.model.txt").read_bytes()
    gpu.probe.cache_clear()
    try:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            partition_key=day,
            instance=instance,
            raise_on_error=False,
            asset_selection=[dg.AssetKey("model__gbdt")],
        )
    finally:
        gpu.probe.cache_clear()
    assert not result.success
    events = [e.event_type for e in result.all_events]
    assert events.count(dg.DagsterEventType.STEP_FAILURE) == 1
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    (failure,) = result.get_step_failure_events()
    error = failure.event_specific_data.error.message
    expected = (
        f"model__gbdt[{day}] on node gke-ml-gpu-pool-7f3a: no usable GPU: No OpenCL device found;"
        " not training on the CPU (set ML_ASSETS_GPU_FALLBACK=cpu to allow it)"
    )
    assert expected in error
    assert (
        failure.event_specific_data.user_failure_data.metadata["error_class"].value == "persistent"
    )
    assert (Path(settings.lake_base) / "model__gbdt" / f"{day}.model.txt").read_bytes() == before

    run_sensor(defs, "email_on_failure", instance, result, result.get_run_failure_event(), prod)
    [message] = inbox[0].wait_for(1, timeout_s=10)
    assert "model__gbdt" in str(message["Subject"]) and expected in message.get_content()


def _outputs(settings) -> dict[str, str]:
    """sha256 of every training set, model, leaderboard and deployment document of TRAIN_DAYS
    (a document without its manifest: its lineage holds each run's data versions)."""
    import hashlib

    lake = Path(settings.lake_base)
    out = {}
    for path in sorted(lake.glob("*/2013-01-1[456]*")):
        if path.parent.name in ("raw_flights", "raw_weather") or "feast" in path.parent.name:
            continue
        data = path.read_bytes()
        if path.parent.name == "deployed_model":
            document = json.loads(data)
            document.pop("manifest", None)
            data = json.dumps(document, sort_keys=True).encode()
        out[f"{path.parent.name}/{path.name}"] = hashlib.sha256(data).hexdigest()
    return out


def test_a_range_run_of_the_whole_graph_matches_daily_runs(
    pipeline, tmp_path: Path, landing_dir: Path
) -> None:
    """Models, leaderboard and deployment in the range run (``model_runs="range"``): the same
    files, model hashes and promotion decisions, taken in day order."""
    from ml_assets.operations.materialize import materialize_range
    from ml_assets_tests.conftest import small_settings

    settings = small_settings(tmp_path, landing_dir)
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        assert materialize_days(defs, instance, REFERENCE_JOB, [None])[0].success
        assert materialize_range(defs, instance, FEATURES_JOB, "2013-01-01", "2013-01-13").success
        assert materialize_range(defs, instance, DAILY_JOB, TRAIN_DAYS[0], TRAIN_DAYS[-1]).success
        ranged = _record(settings, instance)  # each day its own materialization and metadata
    assert len(ranged["outputs"]) >= 3 * 4 and ranged["outputs"] == _DAILY_RUNS["outputs"]
    assert ranged["metadata"] == _DAILY_RUNS["metadata"]
    assert ranged["promoted"] == _DAILY_RUNS["promoted"]
