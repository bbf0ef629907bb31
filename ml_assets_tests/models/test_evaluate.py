"""Holdout metrics against hand-computed values, the paired bootstrap and the leaderboard."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ml_assets.models.evaluate import (
    auc,
    brier,
    calibration,
    log_loss,
    paired_bootstrap,
    score,
)
from ml_assets.models.leaderboard import rank
from ml_assets.models.train import TrainedModel


def _pairwise_auc(y: np.ndarray, p: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half."""
    pos, neg = p[y == 1], p[y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_hand_computed() -> None:
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered correctly.
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    # A tie between a positive and a negative counts one half: (1 + 0.5) / 2.
    assert auc(np.array([0, 0, 1]), np.array([0.2, 0.5, 0.5])) == pytest.approx(0.75)


def test_auc_extremes() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    assert auc(y, y * 0.9 + 0.05) == 1.0
    assert auc(y, 1 - y) == 0.0
    assert auc(y, np.full(6, 0.3)) == 0.5


def test_auc_matches_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200) * 0.5 + y * 0.3, 1)  # coarse scores: many ties
    assert auc(y, p) == pytest.approx(_pairwise_auc(y, p), abs=1e-12)
    assert auc(y.astype(float), p) == auc(y.astype(bool), p)


@pytest.mark.parametrize("y", [[0, 0, 0], [1, 1]])
def test_auc_needs_both_classes(y) -> None:
    with pytest.raises(ValueError, match="both classes"):
        auc(np.array(y), np.linspace(0, 1, len(y)))


def test_log_loss_known_values() -> None:
    y, p = np.array([1, 0]), np.array([0.8, 0.3])
    assert log_loss(y, p) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    assert log_loss(np.array([1, 0, 1, 0]), np.full(4, 0.5)) == pytest.approx(math.log(2))
    assert log_loss(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0.0, abs=1e-12)
    # Confidently wrong predictions are clipped, not infinite.
    wrong = log_loss(np.array([1, 0]), np.array([0.0, 1.0]))
    assert math.isfinite(wrong) and wrong > 30


def test_brier_known_values() -> None:
    assert brier(np.array([1, 0]), np.array([0.8, 0.3])) == pytest.approx((0.04 + 0.09) / 2)
    assert brier(np.array([1, 0, 1]), np.array([1.0, 0.0, 1.0])) == 0.0
    assert brier(np.array([1, 0]), np.array([0.0, 1.0])) == 1.0


def test_calibration_is_zero_for_perfectly_calibrated_bins() -> None:
    y = np.array([1, 0, 0, 0] + [1, 1, 1, 0] + [1] * 5)
    p = np.array([0.25] * 4 + [0.75] * 4 + [1.0] * 5)
    curve, ece = calibration(y, p)
    assert ece == pytest.approx(0.0, abs=1e-12)
    assert [(c["bin"], c["count"]) for c in curve] == [
        (2, 4),
        (7, 4),
        (9, 5),
    ]  # 1.0 is in the last bin
    assert [c["observed_rate"] for c in curve] == [0.25, 0.75, 1.0]


def test_calibration_error_weights_bins_by_size() -> None:
    y = np.array([1, 0] * 5 + [0] * 10)
    p = np.array([0.9] * 10 + [0.05] * 10)
    curve, ece = calibration(y, p)
    # Half the rows are 0.4 too confident, half are 0.05 too high.
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.05)
    assert [c["bin"] for c in curve] == [0, 9]


def test_score_reports_all_metrics() -> None:
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    metrics = score(y, p)
    assert set(metrics) == {"auc", "log_loss", "brier", "ece", "mean_predicted", "positive_rate"}
    assert metrics["auc"] == pytest.approx(0.75)
    assert metrics["positive_rate"] == 0.5
    assert metrics["mean_predicted"] == pytest.approx(0.4125)


@pytest.fixture(scope="module")
def holdout_labels() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 2, 400).astype(float)


def test_bootstrap_of_identical_predictions_is_zero(holdout_labels) -> None:
    p = np.random.default_rng(2).random(len(holdout_labels))
    result = paired_bootstrap(holdout_labels, p, p.copy(), samples=100, seed=0)
    assert result.auc_difference == 0.0
    assert result.ci_low <= 0.0 <= result.ci_high
    assert result.ci_low == result.ci_high == 0.0
    assert result.p_value == 1.0
    assert result.samples == 100


def test_bootstrap_detects_a_clearly_better_model(holdout_labels) -> None:
    rng = np.random.default_rng(3)
    better = np.clip(holdout_labels * 0.4 + rng.random(len(holdout_labels)) * 0.6, 0, 1)
    noise = rng.random(len(holdout_labels))
    result = paired_bootstrap(holdout_labels, better, noise, samples=200, seed=0)
    assert result.auc_difference == pytest.approx(
        auc(holdout_labels, better) - auc(holdout_labels, noise)
    )
    assert result.auc_difference > 0.2
    assert result.ci_low > 0
    assert result.ci_low <= result.auc_difference <= result.ci_high
    assert result.p_value < 0.05
    # Swapping the roles mirrors the result.
    worse = paired_bootstrap(holdout_labels, noise, better, samples=200, seed=0)
    assert worse.ci_high < 0
    assert worse.auc_difference == pytest.approx(-result.auc_difference)


def test_bootstrap_is_reproducible_by_seed(holdout_labels) -> None:
    rng = np.random.default_rng(4)
    a = np.clip(holdout_labels * 0.1 + rng.random(len(holdout_labels)), 0, 1)
    b = rng.random(len(holdout_labels))
    first = paired_bootstrap(holdout_labels, a, b, samples=50, seed=9)
    assert paired_bootstrap(holdout_labels, a, b, samples=50, seed=9) == first
    assert paired_bootstrap(holdout_labels, a, b, samples=50, seed=10) != first


def _model(name: str, text: str) -> TrainedModel:
    return TrainedModel(
        name=name,
        model_text=text,
        features=("x",),
        params={},
        num_boost_round=1,
        train_rows=10,
        train_first_day="2013-01-01",
        train_last_day="2013-01-05",
        catalog_version="1",
    )


def test_leaderboard_ranks_by_auc_then_log_loss_then_name() -> None:
    scored = {
        "model__b": (_model("b", "b"), {"auc": 0.71, "log_loss": 0.50}),
        "model__a": (_model("a", "a"), {"auc": 0.71, "log_loss": 0.50}),
        "model__c": (_model("c", "c"), {"auc": 0.71, "log_loss": 0.45}),
        "model__d": (_model("d", "d"), {"auc": 0.74, "log_loss": 0.60}),
        "model__e": (_model("e", "e"), {"auc": 0.60, "log_loss": 0.30}),
    }
    board = rank(scored)
    assert board["model"].tolist() == ["d", "c", "a", "b", "e"]
    assert board["rank"].tolist() == [1, 2, 3, 4, 5]
    assert board.loc[0, "asset"] == "model__d"
    assert board.loc[0, "sha256"] == scored["model__d"][0].sha256
    assert board.loc[0, "train_rows"] == 10
