"""The online store tells the truth and stays small, on SQLite and on the real Redis: a corrected
day reaches serving (lean reader, Feast SDK, ``ml-assets predict``), an older day never overwrites
a newer one, and rows past the views' TTL are swept."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd
import pytest

from ml_assets.assets.feature_store_assets import online_window
from ml_assets.feature_repo.feast_objects import VIEW_TTL_DAYS
from ml_assets.models.catalog import CatalogEntry
from ml_assets.models.features import KEY
from ml_assets.models.scoring import RowScorer
from ml_assets.models.train import fit
from ml_assets.models.training_set import build_training_set
from ml_assets.resources.feature_store import FeatureStoreError, FeatureStoreResource
from ml_assets.resources.registry import ModelRegistry
from ml_assets.serving import predict
from ml_assets_tests.feature_repo.conftest import DAY, DAYS, feast_store, store_settings

BEFORE = DAYS[-2]


@pytest.fixture(params=["sqlite", "redis"])
def store(request, lake: dict, tmp_path: Path) -> tuple[FeatureStoreResource, Path]:
    """A store over this test's own copy of the lake (the test rewrites its Parquet)."""
    own = dict(lake, lake=str(tmp_path / "lake"), root=tmp_path)
    shutil.copytree(lake["lake"], own["lake"])
    return feast_store(store_settings(own, request.param)), Path(own["lake"])


def _materialize(store: FeatureStoreResource, *days: str):
    start, end = online_window(days[0], 2.0)[0], online_window(days[-1], 2.0)[1]
    return store.materialize(start, end, list(days))


def _edit(lake: Path, asset: str, day: str, where: tuple[str, str], column: str, value) -> None:
    """Change one feature value in the lake's Parquet of ``day`` (a fixed feature bug)."""
    path = lake / asset / f"{day}.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame[where[0]] == where[1], column] = value
    frame.to_parquet(path)


def test_a_corrected_day_reaches_serving(store, lake: dict) -> None:
    online, base = store
    first = _materialize(online, DAY)
    flight = pd.read_parquet(base / "feast_features" / f"{DAY}.parquet").iloc[40]
    carrier = flight["carrier_id"]
    before = online.online([flight[KEY]]).iloc[0]
    assert first.replaced == 0 and before["wx_temp"] != 123.0

    _edit(base, "feast_features", DAY, (KEY, flight[KEY]), "wx_temp", 123.0)
    _edit(base, "feast_carrier_stats", DAY, ("carrier_id", carrier), "carrier_rate_hist", 0.987)
    again = _materialize(online, DAY)
    assert again.replaced > 0  # same event times: Redis alone would have skipped every row

    lean = online.online([flight[KEY]]).iloc[0]
    sdk = online.online_via_sdk([flight[KEY]]).iloc[0]
    assert lean["wx_temp"] == sdk["wx_temp"] == 123.0
    assert lean["carrier_rate_hist"] == sdk["carrier_rate_hist"] == 0.987

    # ml-assets predict scores the corrected row.
    training, _ = build_training_set(lake["flight_features"], lake["traffic_features"], DAY, 2)
    model = fit(training, CatalogEntry(name="m", num_boost_round=20), seed=1, num_threads=1)
    registry = ModelRegistry(base_path=str(base.parent / f"registry-{uuid.uuid4().hex[:6]}"))
    registry.promote(model, {"metrics": {}}, DAY)
    served = predict(online, registry, flight[KEY]).probability
    row = online.online_rows([{KEY: flight[KEY]} | _keys(flight)]).row(0)
    assert served == pytest.approx(RowScorer(model).score([row])[0], abs=1e-12)
    assert row["wx_temp"] == 123.0


def _keys(flight: pd.Series) -> dict:
    return {k: flight[k] for k in ("carrier_id", "origin_id", "route_id", "origin_hour_id")}


def test_an_older_day_never_overwrites_a_newer_one(store) -> None:
    online, base = store
    _materialize(online, DAY)
    flight = pd.read_parquet(base / "feast_features" / f"{DAY}.parquet").iloc[7]
    newest = online.online([flight[KEY]]).iloc[0]["carrier_rate_hist"]
    older = pd.read_parquet(base / "feast_carrier_stats" / f"{BEFORE}.parquet")
    assert older.loc[older["carrier_id"] == flight["carrier_id"], "carrier_rate_hist"].iloc[0] != (
        newest
    )
    report = _materialize(online, BEFORE)  # a backfill of the day before, after the newer day
    assert report.kept_newer > 0
    after = online.online([flight[KEY]]).iloc[0]
    sdk = online.online_via_sdk([flight[KEY]]).iloc[0]
    assert after["carrier_rate_hist"] == sdk["carrier_rate_hist"] == newest
    yesterday = pd.read_parquet(base / "feast_features" / f"{BEFORE}.parquet").iloc[3][KEY]
    assert online.online([yesterday])[KEY].tolist() == [yesterday]  # its own flights are served


def test_rows_past_the_ttl_are_swept(store) -> None:
    """After the week's days, the store holds what serving can still use: the newest flight's
    time minus the views' TTL; flights older than that are gone, reads of live keys unchanged."""
    online, base = store
    for day in DAYS:
        _materialize(online, day)
    upkeep = online.upkeep()
    cutoff = upkeep.cutoff()
    assert cutoff is not None
    assert upkeep.newest_event() - cutoff == pd.Timedelta(days=VIEW_TTL_DAYS)
    first = pd.read_parquet(base / "feast_features" / f"{DAYS[0]}.parquet")
    with pytest.raises(FeatureStoreError, match="no features for"):
        online.online(first[KEY].head(3).tolist())
    live = pd.read_parquet(base / "feast_features" / f"{DAY}.parquet").sample(20, random_state=5)
    lean = online.online(live[KEY].tolist()).set_index(KEY)
    sdk = online.online_via_sdk(live[KEY].tolist()).set_index(KEY)
    for column in ("wx_temp", "carrier_rate_hist", "route_rate_hist"):
        a, b = lean[column], sdk.loc[lean.index, column]
        assert ((a == b) | (a.isna() & b.isna())).all(), column
    assert upkeep.sweep() == 0  # nothing left to sweep


def test_serving_reads_a_value_throughout_a_materialization(store) -> None:
    """Between the upkeep's preparation and Feast's write nothing is missing: the next day's
    materialization and a same-day correction both replace rows in place."""
    online, base = store
    _materialize(online, BEFORE)
    flight = pd.read_parquet(base / "feast_features" / f"{BEFORE}.parquet").iloc[11][KEY]
    upkeep = online.upkeep()
    report = upkeep.prepare(online._writes(upkeep, [DAY]))  # the next day, not yet written
    during = online.online_rows([_entity(base, BEFORE, flight)])
    assert during.missing_views == [()]
    online.store().materialize(*online_window(DAY, 2.0))
    upkeep.restore(report)

    _edit(base, "feast_features", BEFORE, (KEY, flight), "wx_temp", -40.0)
    report = upkeep.prepare(online._writes(upkeep, [BEFORE]))  # a correction, same event times
    assert report.replaced > 0
    during = online.online([flight]).iloc[0]
    assert during["wx_temp"] != -40.0 and not pd.isna(during["wx_temp"])
    online.store().materialize(*online_window(BEFORE, 2.0))
    upkeep.restore(report)
    assert online.online([flight]).iloc[0]["wx_temp"] == -40.0


def _entity(base: Path, day: str, flight: str) -> dict:
    rows = pd.read_parquet(base / "feast_features" / f"{day}.parquet").set_index(KEY)
    return {KEY: flight} | {k: rows.loc[flight, k] for k in _keys(rows.loc[flight])}


def test_a_range_materialized_in_chunks_serves_what_one_call_would(
    store, lake: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range run writes the online store a few days per Feast call (its memory stays flat);
    the store then serves what one call over the whole range leaves."""
    from ml_assets.assets import feature_store_assets

    online, base = store
    backend = online.config["online_store"]["type"]
    whole = feast_store(store_settings(dict(lake, lake=str(base)), backend))
    monkeypatch.setattr(feature_store_assets, "MATERIALIZE_DAYS", 3)
    chunked = feature_store_assets.materialize_days(online, DAYS, 2.0)
    assert chunked.newest_event is not None
    _materialize(whole, *DAYS)
    flights = pd.concat(
        pd.read_parquet(base / "feast_features" / f"{day}.parquet").sample(15, random_state=6)
        for day in DAYS[-2:]
    )[KEY].tolist()
    got, want = online.online(flights).set_index(KEY), whole.online(flights).set_index(KEY)
    assert got.shape == want.shape and list(got.index) == flights
    assert ((got == want) | (got.isna() & want.isna())).all().all()
    with pytest.raises(FeatureStoreError, match="no features for"):  # swept in both
        online.online(pd.read_parquet(base / "feast_features" / f"{DAYS[0]}.parquet")[KEY][:2])
