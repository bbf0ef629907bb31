"""Evaluation on a time-based holdout: AUC, log-loss, Brier, calibration, paired bootstrap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-15


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=float)
    positives = y.sum()
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes in the holdout")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[list[dict], float]:
    """Reliability curve over equal-width bins and the expected calibration error."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    curve, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            mean_p, rate = float(p[mask].mean()), float(y[mask].mean())
            curve.append(
                {
                    "bin": b,
                    "count": int(mask.sum()),
                    "mean_predicted": mean_p,
                    "observed_rate": rate,
                }
            )
            ece += mask.mean() * abs(mean_p - rate)
    return curve, float(ece)


@dataclass(frozen=True)
class PairedComparison:
    """Challenger minus champion AUC on the same rows, with a bootstrap CI and p-value."""

    auc_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    samples: int


def paired_bootstrap(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    samples: int,
    seed: int,
    level: float = 0.95,
) -> PairedComparison:
    """Resample holdout rows (same rows for both models) and compare AUCs."""
    y, a, b = (np.asarray(v, dtype=float) for v in (y, challenger, champion))
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(samples):
        idx = rng.integers(0, len(y), len(y))
        ys = y[idx]
        if ys.min() == ys.max():
            continue
        diffs.append(auc(ys, a[idx]) - auc(ys, b[idx]))
    d = np.asarray(diffs)
    alpha = (1 - level) / 2
    two_sided = 2 * min((d <= 0).mean(), (d >= 0).mean())
    return PairedComparison(
        auc_difference=auc(y, a) - auc(y, b),
        ci_low=float(np.quantile(d, alpha)),
        ci_high=float(np.quantile(d, 1 - alpha)),
        p_value=float(min(1.0, two_sided)),
        samples=len(d),
    )


def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The leaderboard's metrics for one model."""
    _, ece = calibration(y, p)
    return {
        "auc": auc(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": ece,
        "mean_predicted": float(np.mean(p)),
        "positive_rate": float(np.mean(y)),
    }
