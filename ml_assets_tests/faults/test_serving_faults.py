"""Redis faults on the serving path: ``Predictor`` (through the lean reader and the real redis
client) behind a TCP proxy that resets requests or cuts replies of its open connections.

A broken request is retried once, whole, on a fresh connection; a second break is a clear
``FeatureStoreError`` naming the (masked) store; a cut reply never becomes a prediction from
part of the features. The proxy faults only its own connections to the shared Redis; each
module has its own Feast project there, torn down at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_assets.assets.feature_store_assets import online_window
from ml_assets.models.catalog import CatalogEntry
from ml_assets.models.features import KEY
from ml_assets.models.train import fit
from ml_assets.models.training_set import build_training_set
from ml_assets.resources.feature_store import FeatureStoreError, FeatureStoreResource, entity_row
from ml_assets.resources.registry import ModelRegistry
from ml_assets.serving import Prediction, Predictor
from ml_assets_tests.faults.tcp_faults import REPLY, REQUEST, FaultyTcpProxy
from ml_assets_tests.feature_repo.conftest import DAY, feast_store, store_settings

FLIGHTS = 12


@pytest.fixture(scope="module")
def served(lake: dict) -> Iterator[dict]:
    """A materialized day on the shared Redis, a deployed model, the predictions without faults,
    and a Predictor whose store is reached through a fault proxy."""
    direct = feast_store(store_settings(lake, "redis"))
    direct.materialize(*online_window(DAY, 2.0))
    training, _ = build_training_set(
        lake["flight_features"], lake["traffic_features"], DAY, holdout_days=2
    )
    model = fit(training, CatalogEntry(name="gbdt", num_boost_round=20), seed=1, num_threads=1)
    registry = ModelRegistry(base_path=str(lake["root"] / f"registry-{uuid.uuid4().hex[:6]}"))
    registry.promote(model, {"metrics": {}}, DAY)
    rows = pd.read_parquet(Path(lake["lake"]) / "feast_features" / f"{DAY}.parquet")
    flights = rows.sample(FLIGHTS, random_state=7)[KEY].tolist()
    expected = {f: Predictor(direct, registry).predict(f) for f in flights}
    proxy = FaultyTcpProxy(("127.0.0.1", 6379))
    online = {"type": "redis", "connection_string": f"127.0.0.1:{proxy.port}"}
    faulty = FeatureStoreResource(
        config={**direct.config, "online_store": online}, lake_base=direct.lake_base
    )
    predictor = Predictor(faulty, registry)
    predictor.predict(flights[0])  # warm: the model parsed, one pooled connection open
    try:
        yield {
            "direct": direct,
            "faulty": faulty,
            "proxy": proxy,
            "predictor": predictor,
            "flights": flights,
            "expected": expected,
            "ids": rows[KEY].tolist(),
        }
    finally:
        proxy.close()
        direct.store().teardown()  # the project's keys leave the shared Redis


def _round_trips(served: dict, flight: str) -> int:
    """Requests one prediction sends (one pipeline of HMGETs per step of key resolution)."""
    proxy = served["proxy"]
    before = proxy.seen[REQUEST]
    served["predictor"].predict(flight)
    return proxy.seen[REQUEST] - before


def test_a_reset_mid_request_is_retried_once_on_a_fresh_connection(served: dict) -> None:
    proxy, predictor = served["proxy"], served["predictor"]
    reader = served["faulty"].reader()
    trips = _round_trips(served, served["flights"][0])
    assert trips == 2  # flight and entity views pipelined, then the plane by its tail number
    retries, connections = reader.retries, proxy.connections
    for i, flight in enumerate(served["flights"]):
        proxy.arm(requests=1, after=i % trips)  # the first, a middle or the last round trip
        prediction = predictor.predict(flight)
        assert isinstance(prediction, Prediction)
        assert prediction == served["expected"][flight]
    assert proxy.injected[REQUEST] == FLIGHTS
    assert reader.retries - retries == FLIGHTS
    assert proxy.connections - connections == FLIGHTS  # each retry on a new connection


def test_resets_on_every_attempt_are_a_clear_error_after_one_retry(served: dict) -> None:
    proxy, predictor = served["proxy"], served["predictor"]
    flight = served["flights"][1]
    before = dict(proxy.injected)
    proxy.arm(requests=100)
    with pytest.raises(FeatureStoreError, match="online store unreachable") as info:
        predictor.predict(flight)
    assert proxy.injected[REQUEST] - before[REQUEST] == 2  # the request and exactly one retry
    assert f"127.0.0.1:{proxy.port}" in str(info.value)  # names the store
    proxy.arm()
    assert predictor.predict(flight) == served["expected"][flight]  # and recovers by itself


def test_a_reply_cut_in_the_middle_is_retried_or_an_error_never_partial_values(
    served: dict,
) -> None:
    proxy, predictor, faulty = served["proxy"], served["predictor"], served["faulty"]
    trips = _round_trips(served, served["flights"][0])
    for i, flight in enumerate(served["flights"]):
        proxy.arm(replies=1, after=i % trips)
        assert predictor.predict(flight) == served["expected"][flight]
    before = proxy.injected[REPLY]
    proxy.arm(replies=100, after=trips // 2)  # the first attempt has read some views already
    with pytest.raises(FeatureStoreError, match="online store unreachable"):
        predictor.predict(served["flights"][2])
    assert proxy.injected[REPLY] - before == 2
    # A batch: many keys' HMGETs pipelined in one request, the reply cut halfway.
    rows = [entity_row(f) for f in served["ids"][:400]]
    proxy.arm()
    whole = faulty.online_rows(rows)
    proxy.arm(replies=1)
    _assert_same_batch(faulty.online_rows(rows), whole)
    proxy.arm(replies=100)
    with pytest.raises(FeatureStoreError, match="online store unreachable"):
        faulty.online_rows(rows)
    proxy.arm()


def _assert_same_batch(batch, expected) -> None:
    assert batch.event_ts == expected.event_ts and batch.missing_views == expected.missing_views
    assert batch.columns.keys() == expected.columns.keys()
    for name, column in expected.columns.items():
        got = batch.columns[name]
        if isinstance(column, np.ndarray):
            np.testing.assert_array_equal(got, column)
        else:
            assert list(got) == list(column), name
