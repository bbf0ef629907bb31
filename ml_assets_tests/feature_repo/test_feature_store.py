"""Feast on real feature rows: point-in-time retrieval (duckdb), online store on SQLite and on
the real Redis at 127.0.0.1:6379, parity, online prediction and its failure modes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

from ml_assets.feature_repo.config import render_feature_store_yaml
from ml_assets.models.catalog import CatalogEntry
from ml_assets.models.features import (
    ENTITY_FEATURES,
    FEATURES,
    JOIN_KEYS,
    KEY,
    Flight,
    flight_id,
    parity,
    parse_flight_id,
)
from ml_assets.models.train import fit
from ml_assets.models.train import predict as score
from ml_assets.models.training_set import build_training_set
from ml_assets.resources.feature_store import FeatureStoreError, FeatureStoreResource
from ml_assets.resources.registry import ModelRegistry
from ml_assets.serving import Predictor, predict
from ml_assets.settings import Settings
from ml_assets_tests.feature_repo.conftest import DAY, feast_store, store_settings


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def online_store(request, lake: dict) -> FeatureStoreResource:
    from ml_assets.assets.feature_store_assets import online_window

    store = feast_store(store_settings(lake, request.param))
    store.materialize(*online_window(DAY, 2.0))
    return store


def _rows(lake: dict, day: str = DAY) -> pd.DataFrame:
    return pd.read_parquet(Path(lake["lake"]) / "feast_features" / f"{day}.parquet")


def test_historical_features_are_point_in_time_correct(
    online_store: FeatureStoreResource, lake: dict
) -> None:
    rows = _rows(lake).sample(40, random_state=1)
    at = rows.loc[:, [KEY, *JOIN_KEYS, "prediction_ts"]].rename(
        columns={"prediction_ts": "event_timestamp"}
    )
    exact = online_store.historical(at)
    expected = rows.merge(
        lake["traffic_features"].drop(columns=[c for c in rows if c != KEY], errors="ignore"),
        on=KEY,
    )
    assert parity(exact, expected).all().all()  # entity views too, joined point in time
    # A feature row stamped after the entity's time never reaches it.
    before = at.assign(event_timestamp=at["event_timestamp"] - pd.Timedelta(minutes=1))
    early = online_store.historical(before)
    assert early.loc[:, [f for f in FEATURES if f not in ENTITY_FEATURES]].isna().all().all()
    # ... while the entity views' rows of the day were known before its first prediction.
    assert parity(early, expected, ENTITY_FEATURES).all().all()
    # Older than the views' TTL: not served either.
    later = at.assign(event_timestamp=at["event_timestamp"] + pd.Timedelta(days=3))
    assert online_store.historical(later).loc[:, list(FEATURES)].isna().all().all()


def test_online_matches_offline(online_store: FeatureStoreResource, lake: dict) -> None:
    rows = _rows(lake).sample(50, random_state=2)
    online = online_store.online(rows[KEY].tolist())
    offline = online_store.historical(
        rows.loc[:, [KEY, *JOIN_KEYS, "prediction_ts"]].rename(
            columns={"prediction_ts": "event_timestamp"}
        )
    )
    agree = parity(online, offline)
    assert agree.shape == (50, len(FEATURES)) and agree.all().all()
    tampered = online.assign(wx_temp=online["wx_temp"] + 1.0)
    assert not parity(tampered, offline)["wx_temp"].any()


def test_lean_reader_returns_what_the_feast_sdk_returns(
    online_store: FeatureStoreResource, lake: dict
) -> None:
    ids = _rows(lake).sample(30, random_state=3)[KEY].tolist()
    lean = online_store.online(ids).set_index(KEY)
    sdk = online_store.online_via_sdk(ids).set_index(KEY)
    assert list(lean.index) == ids
    for column in FEATURES:
        a, b = lean[column], sdk.loc[ids, column]
        both_missing = a.isna() & b.isna()
        assert (both_missing | (a == b)).all(), column
    assert lean["features_at"].notna().all()


def test_unknown_flight_is_a_clear_answer(online_store: FeatureStoreResource) -> None:
    with pytest.raises(FeatureStoreError, match="no features for 2099-01-01/ZZ1/"):
        online_store.online(["2099-01-01/ZZ1/JFK-LAX/0900"])


def test_predict_scores_a_real_flight_with_the_deployed_model(
    online_store: FeatureStoreResource, lake: dict
) -> None:
    training, _ = build_training_set(
        lake["flight_features"], lake["traffic_features"], DAY, holdout_days=2
    )
    model = fit(
        training,
        CatalogEntry(name="gbdt", num_boost_round=20, params={"num_leaves": 7}),
        seed=1,
        num_threads=1,
    )
    registry = ModelRegistry(base_path=str(lake["root"] / f"registry-{uuid.uuid4().hex[:6]}"))
    registry.promote(model, {"metrics": {}}, DAY)
    flight = _rows(lake).iloc[100][KEY]
    result = predict(online_store, registry, flight)
    assert 0.0 < result.probability < 1.0
    assert result.model_sha256 == model.sha256 and result.model_partition == DAY
    assert result.stale is False
    stale = predict(
        online_store, registry, flight, now=pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(days=5)
    )
    assert stale.stale is True
    # The warm serving path scores like the batch path and follows the registry's pointer.
    predictor = Predictor(online_store, registry, pointer_check_s=0.0)
    ids = _rows(lake).sample(25, random_state=4)[KEY].tolist()
    batch = score(model, online_store.online(ids))
    served = [predictor.predict(i).probability for i in ids]
    assert served == pytest.approx(list(batch), abs=1e-12)
    other = fit(
        training,
        CatalogEntry(name="goss", num_boost_round=10, params={"num_leaves": 5}),
        seed=2,
        num_threads=1,
    )
    registry.promote(other, {"metrics": {}}, DAY)
    assert predictor.predict(flight).model_sha256 == other.sha256


def test_flight_ids_follow_the_pipelines_key() -> None:
    assert (
        flight_id("UA", 1545, "EWR", "IAH", "2013-01-01 05:15") == "2013-01-01/UA1545/EWR-IAH/0515"
    )
    flight = Flight("B6", 27, "JFK", "BUF", "2013-01-14 23:59", tailnum="N123JB")
    assert parse_flight_id(flight.flight_id) == Flight("B6", 27, "JFK", "BUF", "2013-01-14 23:59")
    assert flight.entity_row() == {
        "flight_id": "2013-01-14/B627/JFK-BUF/2359",
        "carrier_id": "B6",
        "origin_id": "JFK",
        "route_id": "JFK-BUF",
        "origin_hour_id": "JFK-23",
        "plane_id": "N123JB",
    }
    from ml_assets.models.features import keys_from_flight_ids

    ids = ["2013-01-14/B627/JFK-BUF/2359", "2013-01-14/9E3320/LGA-BUF/0605"]
    derived = [parse_flight_id(i).entity_row() for i in ids]
    assert derived == keys_from_flight_ids(ids).to_dict("records")


def test_missing_online_store_is_a_clear_error(lake: dict) -> None:
    store = feast_store(store_settings(lake, "sqlite"))
    Path(store.config["online_store"]["path"]).unlink()
    with pytest.raises(FeatureStoreError, match="holds no materialized features"):
        store.online([_rows(lake).iloc[0][KEY]])


def test_redis_down_is_a_clear_error(lake: dict) -> None:
    store = feast_store(store_settings(lake, "redis", connection="127.0.0.1:1"))
    with pytest.raises(FeatureStoreError, match="unreachable"):
        store.online([_rows(lake).iloc[0][KEY]])


def test_feature_store_yaml_is_rendered_from_settings(tmp_path: Path) -> None:
    import yaml

    local = yaml.safe_load(
        render_feature_store_yaml(Settings.from_env({"ML_ASSETS_ROOT": str(tmp_path)}))
    )
    assert local["offline_store"] == {"type": "duckdb"}
    assert local["online_store"]["type"] == "sqlite" and local["registry"].startswith(str(tmp_path))
    prod = yaml.safe_load(
        render_feature_store_yaml(
            Settings.from_env(
                {
                    "ML_ASSETS_ENV": "prod",
                    "ML_ASSETS_LAKE": "gs://b/lake",
                    "ML_ASSETS_REDIS": "redis:6379",
                }
            )
        )
    )
    assert prod["online_store"] == {"type": "redis", "connection_string": "redis:6379"}
    assert prod["registry"] == "gs://b/lake/feast/registry.db"


EXIT_SCRIPT = """
import atexit, json, sys
import pandas as pd

def at_exit():  # registered first, so it runs after the resource's own exit hook
    try:
        backend.con.execute("select 1")
        print("duckdb still open at exit")
    except Exception as exc:
        print("duckdb closed at exit:", type(exc).__name__)

atexit.register(at_exit)
from ml_assets.resources.feature_store import FeatureStoreResource
store = FeatureStoreResource(**json.load(open(sys.argv[1])))
rows = store.historical(pd.read_parquet(sys.argv[2]))
import ibis
backend = ibis.get_backend()
print("rows", len(rows), "open:", backend.con.execute("select 1").fetchall() == [(1,)])
"""


def test_a_process_that_queried_feast_closes_duckdb_before_it_exits(
    online_store: FeatureStoreResource, lake: dict, tmp_path: Path
) -> None:
    """DuckDB left open aborts a finished process now and then as the interpreter shuts down
    (duckdb#13904; ``ml-assets demo`` exited -6 once in CI); the resource closes it at exit."""
    import json
    import subprocess
    import sys

    entities = (
        _rows(lake)
        .sample(5, random_state=5)
        .loc[:, [KEY, *JOIN_KEYS, "prediction_ts"]]
        .rename(columns={"prediction_ts": "event_timestamp"})
    )
    entities.to_parquet(tmp_path / "entities.parquet")
    (tmp_path / "store.json").write_text(
        json.dumps({"config": online_store.config, "lake_base": online_store.lake_base})
    )
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, "store.json", "entities.parquet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows 5 open: True" in done.stdout
    assert "duckdb closed at exit: ConnectionException" in done.stdout, done.stdout
