"""The graph: loadable, the four patterns present, and generated from the catalog."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.models.features import ENTITY_VIEWS
from ml_assets.settings import Settings
from ml_assets_tests.conftest import write_catalog


def _deps(defs: dg.Definitions) -> dict[str, set[str]]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }


def test_definitions_load(settings: Settings) -> None:
    defs = build_defs(settings)
    dg.Definitions.validate_loadable(defs)
    for job in (DAILY_JOB, FEATURES_JOB, REFERENCE_JOB):
        assert defs.resolve_job_def(job).name == job


def test_graph_has_fan_in_fan_out_and_diamond(settings: Settings) -> None:
    deps = _deps(build_defs(settings))
    models = {"model__gbdt", "model__goss", "model__gbdt_recent"}
    assert deps["flight_features"] == {"raw_flights", "raw_weather", "planes"}  # fan-in
    assert deps["traffic_features"] == {"raw_flights"}
    # diamond, joined point in time through Feast (feast_* are the store's offline sources: the
    # flight rows and one file per entity view, written by one step)
    entity_views = {f"feast_{v}" for v in ENTITY_VIEWS}
    assert entity_views == {
        "feast_carrier_stats",
        "feast_origin_stats",
        "feast_route_stats",
        "feast_origin_hour_stats",
        "feast_plane_stats",
    }
    training_deps = {"flight_features", "traffic_features", "feast_features", "online_features"}
    assert deps["training_set"] == training_deps | entity_views
    for source in ("feast_features", *entity_views):
        assert deps[source] == {"flight_features", "traffic_features"}
    assert deps["online_features"] == {"feast_features", *entity_views}
    assert all(deps[m] == {"training_set"} for m in models)  # fan-out
    assert deps["model_leaderboard"] == models | {"training_set"}
    assert deps["deployed_model"] == models | {"model_leaderboard", "training_set"}


def test_windows_map_to_trailing_partitions(settings: Settings) -> None:
    graph = build_defs(settings).resolve_asset_graph()
    training = dg.AssetKey("training_set")
    upstream = graph.get_parent_partition_keys_for_child(
        "2013-01-20", parent_asset_key=dg.AssetKey("flight_features"), child_asset_key=training
    )
    assert len(upstream.partitions_subset.get_partition_keys()) == settings.window_days
    first = graph.get_parent_partition_keys_for_child(
        "2013-01-01",
        parent_asset_key=dg.AssetKey("raw_weather"),
        child_asset_key=dg.AssetKey("flight_features"),
    )
    assert list(first.partitions_subset.get_partition_keys()) == ["2013-01-01"]


def test_model_assets_carry_profile_tags_and_pools(settings: Settings) -> None:
    graph = build_defs(settings).resolve_asset_graph()
    gpu = graph.get(dg.AssetKey("model__gbdt")).assets_def
    cpu = graph.get(dg.AssetKey("model__goss")).assets_def
    gpu_tags = json.loads(gpu.op.tags["dagster-k8s/config"])
    assert gpu_tags["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu.op.pool == "gpu" and cpu.op.pool is None
    assert (
        "nvidia.com/gpu"
        not in json.loads(cpu.op.tags["dagster-k8s/config"])["container_config"]["resources"][
            "limits"
        ]
    )
    assert cpu.op.tags["ml_assets/spot"] == "true"


@pytest.mark.parametrize("count", [100])
def test_catalog_of_100_entries_generates_100_wired_models(
    settings: Settings, tmp_path, count: int
) -> None:
    catalog = {
        "models": [
            {"name": f"m{i:03d}", "params": {"num_leaves": 7 + i % 8}, "num_boost_round": 10}
            for i in range(count)
        ]
    }
    path = write_catalog(tmp_path / "big.yaml", catalog)
    defs = build_defs(settings.model_copy(update={"catalog_path": str(path)}))
    dg.Definitions.validate_loadable(defs)
    deps = _deps(defs)
    models = {k for k in deps if k.startswith("model__")}
    assert len(models) == count
    assert deps["model_leaderboard"] == models | {"training_set"}
    assert models <= deps["deployed_model"]


def test_bad_catalog_fails_loading_with_the_file_named(settings: Settings, tmp_path) -> None:
    path = write_catalog(tmp_path / "bad.yaml", {"models": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ValueError, match=r"(?s)bad.yaml.*duplicate"):
        build_defs(settings.model_copy(update={"catalog_path": str(path)}))


def test_production_training_set_expands_from_the_first_day(tmp_path) -> None:
    prod = Settings.from_env({"ML_ASSETS_ROOT": str(tmp_path), "ML_ASSETS_ENV": "prod"})
    assert prod.window_days == 366 and not prod.require_significant_improvement
    graph = build_defs(prod).resolve_asset_graph()
    upstream = graph.get_parent_partition_keys_for_child(
        "2013-11-30",
        parent_asset_key=dg.AssetKey("flight_features"),
        child_asset_key=dg.AssetKey("training_set"),
    )
    keys = upstream.partitions_subset.get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2013-01-01", "2013-11-30", 334)
    strict = Settings.from_env(
        {"ML_ASSETS_ROOT": str(tmp_path), "ML_ASSETS_REQUIRE_SIGNIFICANT_IMPROVEMENT": "true"}
    )
    assert strict.require_significant_improvement
