"""The diamond join, the time split, the catalog and deterministic LightGBM training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ml_assets.models.catalog import RESERVED_PARAMS, load_catalog
from ml_assets.models.evaluate import auc
from ml_assets.models.features import (
    FEATURES,
    KEY,
    LABEL,
)
from ml_assets.models.train import TrainedModel, fit, holdout, predict, training_rows
from ml_assets.models.training_set import (
    HOLDOUT,
    SPLIT,
    TRAIN,
    build_training_set,
    holdout_start,
)
from ml_assets.settings import DEFAULT_CATALOG
from ml_assets_tests import _samples
from ml_assets_tests.models.conftest import FIRST, HOLDOUT_DAYS, LAST, SMALL


@pytest.fixture(scope="module")
def small_model(training_set) -> TrainedModel:
    return fit(training_set, SMALL, seed=42, num_threads=1)


# --- training set ---------------------------------------------------------------------------------


def test_split_is_by_time(training_set) -> None:
    assert holdout_start(LAST, HOLDOUT_DAYS) == "2013-02-12"
    train = training_set.loc[training_set[SPLIT] == TRAIN]
    test = training_set.loc[training_set[SPLIT] == HOLDOUT]
    assert set(training_set[SPLIT]) == {TRAIN, HOLDOUT}
    assert sorted(test["flight_date"].unique()) == ["2013-02-12", "2013-02-13", "2013-02-14"]
    assert sorted(train["flight_date"].unique()) == _samples.days(FIRST, "2013-02-11")
    assert train["sched_dep_ts"].max() < test["sched_dep_ts"].min()
    assert training_set["sched_dep_ts"].is_monotonic_increasing


def test_join_keeps_every_labelled_flight_once(training_set, feature_branches) -> None:
    flight_features, _ = feature_branches
    assert training_set[KEY].is_unique
    labelled = flight_features.loc[flight_features[LABEL].notna(), KEY]
    assert set(training_set[KEY]) == set(labelled)
    for column in FEATURES:
        assert column in training_set.columns


def test_cancelled_flights_are_excluded_and_counted(built, feature_branches) -> None:
    frame, summary = built
    flight_features, _ = feature_branches
    cancelled = int(flight_features[LABEL].isna().sum())
    assert cancelled > 0
    assert summary.unlabelled_rows == cancelled
    assert summary.rows == len(frame) == len(flight_features) - cancelled
    assert frame[LABEL].notna().all()
    assert summary.train_rows + summary.holdout_rows == summary.rows
    assert summary.holdout_rows == (frame[SPLIT] == HOLDOUT).sum()
    assert (summary.first_day, summary.last_day) == (FIRST, LAST)
    assert summary.positive_rate == pytest.approx(frame[LABEL].mean())


def test_flights_without_traffic_features_are_an_error(feature_branches) -> None:
    flight_features, traffic_features = feature_branches
    with pytest.raises(
        ValueError, match=r"training_set 2013-02-14: 5 flights have flight features"
    ):
        build_training_set(flight_features, traffic_features.iloc[5:], LAST, HOLDOUT_DAYS)


def test_flights_quarantined_in_one_branch_are_dropped_and_counted(feature_branches) -> None:
    flight_features, traffic_features = feature_branches
    frame, summary = build_training_set(
        flight_features, traffic_features.iloc[5:], LAST, HOLDOUT_DAYS, max_unmatched_rows=5
    )
    assert summary.unmatched_rows == 5
    assert not set(traffic_features[KEY].iloc[:5]) & set(frame[KEY])


# --- training -------------------------------------------------------------------------------------


def test_fit_is_deterministic(training_set, small_model) -> None:
    again = fit(training_set, SMALL, seed=42, num_threads=1)
    assert again.sha256 == small_model.sha256
    assert again.model_text == small_model.model_text
    other_seed = fit(training_set, SMALL, seed=7, num_threads=1)
    assert other_seed.sha256 != small_model.sha256  # feature_fraction < 1 samples with the seed


def test_fit_records_what_it_trained_on(training_set, small_model) -> None:
    train = training_set.loc[training_set[SPLIT] == TRAIN]
    assert small_model.name == "small"
    assert small_model.train_rows == len(train)
    assert (small_model.train_first_day, small_model.train_last_day) == (FIRST, "2013-02-11")
    assert small_model.features == FEATURES
    assert small_model.num_boost_round == 20
    assert small_model.params["seed"] == 42
    assert small_model.params["deterministic"] is True
    assert small_model.params["objective"] == "binary"
    assert small_model.params["learning_rate"] == 0.1
    assert small_model.catalog_version == "1"


def test_predict_returns_probabilities_that_rank(training_set, small_model) -> None:
    rows = holdout(training_set)
    p = predict(small_model, rows)
    assert p.shape == (len(rows),)
    assert np.isfinite(p).all()
    assert ((p >= 0) & (p <= 1)).all()
    assert p.std() > 0.01
    assert auc(rows[LABEL].to_numpy(), p) > 0.55  # better than chance on unseen days
    # Rows arrive in any column order; categoricals map by value.
    shuffled = rows.loc[:, list(reversed(rows.columns))]
    assert np.allclose(predict(small_model, shuffled), p)


def test_trained_model_verifies_its_checksum(small_model) -> None:
    meta = small_model.meta()
    assert "model_text" not in meta
    json.dumps(meta)  # JSON-serialisable
    restored = TrainedModel(
        model_text=small_model.model_text, **{**meta, "features": tuple(meta["features"])}
    )
    assert restored == small_model
    with pytest.raises(ValueError, match="sha256 mismatch"):
        TrainedModel(model_text=small_model.model_text, **{**meta, "sha256": "0" * 64})
    with pytest.raises(ValueError, match="model small: sha256 mismatch"):
        TrainedModel(model_text=small_model.model_text + "\n", **meta)


@pytest.mark.parametrize(
    ("window_days", "first"), [(None, FIRST), (1, "2013-02-11"), (3, "2013-02-09"), (100, FIRST)]
)
def test_training_rows_respect_the_window(training_set, window_days, first) -> None:
    rows = training_rows(training_set, window_days)
    assert (rows[SPLIT] == TRAIN).all()
    assert rows["flight_date"].min() == first
    assert rows["flight_date"].max() == "2013-02-11"
    train = training_set.loc[training_set[SPLIT] == TRAIN]
    assert len(rows) == (train["flight_date"] >= first).sum()


def test_fit_uses_only_its_window(training_set) -> None:
    entry = SMALL.model_copy(update={"name": "recent", "window_days": 2, "num_boost_round": 5})
    model = fit(training_set, entry, seed=42, num_threads=1)
    assert (model.train_first_day, model.train_last_day) == ("2013-02-10", "2013-02-11")
    expected = training_set.loc[
        (training_set[SPLIT] == TRAIN) & (training_set["flight_date"] >= "2013-02-10")
    ]
    assert model.train_rows == len(expected)


def test_fit_without_training_rows_fails(training_set) -> None:
    with pytest.raises(ValueError, match="model small: no training rows"):
        fit(holdout(training_set), SMALL, seed=42, num_threads=1)


# --- catalog --------------------------------------------------------------------------------------


def test_shipped_catalog_is_valid() -> None:
    entries = load_catalog(DEFAULT_CATALOG)
    names = [e.name for e in entries]
    assert len(entries) >= 5
    assert len(set(names)) == len(names)
    assert {e.profile for e in entries} <= {"cpu-small", "cpu-large", "gpu"}
    for entry in entries:
        assert not set(entry.params) & set(RESERVED_PARAMS)


def test_every_shipped_entry_trains(training_set) -> None:
    """LightGBM accepts each entry's params (rf needs bagging, dart/goss/linear_tree their own)."""
    rows = holdout(training_set)
    for entry in load_catalog(DEFAULT_CATALOG):
        quick = entry.model_copy(update={"num_boost_round": 3})
        model = fit(training_set, quick, seed=42, num_threads=1)
        p = predict(model, rows)
        assert ((p >= 0) & (p <= 1)).all(), entry.name


def _write(tmp_path: Path, models) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return path


@pytest.mark.parametrize(
    ("models", "needle"),
    [
        ([{"name": "a"}, {"name": "b"}, {"name": "a"}], "duplicate model names in catalog: ['a']"),
        ([{"name": "a", "params": {"seed": 1}}], "['seed'] are set by the pipeline"),
        (
            [{"name": "a", "params": {"num_threads": 8, "objective": "regression"}}],
            "['num_threads', 'objective']",
        ),
        ([{"name": "Bad-Name"}], "name"),
        ([{"name": "../escape"}], "name"),
        ([{"name": ""}], "name"),
        ([{"name": "a", "num_boost_round": 0}], "num_boost_round"),
        ([{"name": "a", "window_days": 0}], "window_days"),
        ([{"name": "a", "profile": "tpu"}], "profile"),
        ([{"name": "a", "learning_rate": 0.1}], "learning_rate"),
        ([], "at least one model"),
    ],
)
def test_invalid_catalogs_are_rejected_naming_the_file(tmp_path: Path, models, needle: str) -> None:
    path = _write(tmp_path, models)
    with pytest.raises(ValueError, match=r"model catalog .*catalog\.yaml is invalid") as info:
        load_catalog(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_missing_catalog_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.yaml")):
        load_catalog(tmp_path / "nope.yaml")


def test_catalog_entry_defaults(tmp_path: Path) -> None:
    (entry,) = load_catalog(_write(tmp_path, [{"name": "plain"}]))
    assert entry.params == {}
    assert entry.num_boost_round == 200
    assert entry.window_days is None
    assert (entry.profile, entry.spot, entry.version) == ("cpu-small", True, "1")


# --- serving --------------------------------------------------------------------------------------


def test_row_scorer_equals_batch_predict(training_set, small_model) -> None:
    from ml_assets.models.scoring import RowScorer

    rows = holdout(training_set).head(200).copy()
    rows.iloc[0, rows.columns.get_loc("carrier")] = "ZZ"  # a carrier the model never saw
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in rows.loc[:, list(FEATURES)].to_dict("records")
    ]
    assert any(v is None for r in records for v in r.values())
    scorer = RowScorer(small_model)
    assert scorer.score(records) == pytest.approx(predict(small_model, rows), abs=1e-12)
