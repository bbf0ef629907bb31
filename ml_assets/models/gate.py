"""The quality gate: promote the leaderboard's best model only when it earns it.

:func:`review` is the one promotion decision: ``deployed_model`` and every benchmark call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml_assets.models.evaluate import PairedComparison

if TYPE_CHECKING:
    import pandas as pd

    from ml_assets.models.train import TrainedModel


@dataclass(frozen=True)
class Candidate:
    name: str
    sha256: str
    auc: float
    partition: str


@dataclass(frozen=True)
class Champion:
    name: str
    sha256: str
    partition: str


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    candidate: Candidate,
    champion: Champion | None,
    comparison: PairedComparison | None,
    auc_gate: float,
    require_improvement: bool = False,
) -> Decision:
    """Apply the gate's rules in order; the first that refuses explains why.

    1. the candidate's holdout AUC reaches the absolute gate;
    2. a backfilled (older) partition never replaces a champion from a newer partition;
    3. the candidate is not already the champion;
    4. the candidate is not significantly worse than the champion on the same holdout rows
       (the upper end of the paired-bootstrap interval of challenger - champion AUC is >= 0);
    5. with ``require_improvement``: it is significantly better (the lower end is > 0).
    """
    if candidate.auc < auc_gate:
        return Decision(
            False, f"{candidate.name} AUC {candidate.auc:.4f} is below the gate {auc_gate:.4f}"
        )
    if champion is None:
        return Decision(
            True,
            f"{candidate.name} AUC {candidate.auc:.4f} clears the gate {auc_gate:.4f}; "
            "no champion yet",
        )
    if champion.partition > candidate.partition:
        return Decision(
            False,
            f"champion {champion.name} comes from the newer partition {champion.partition}; "
            f"a backfill of {candidate.partition} does not replace it",
        )
    if champion.sha256 == candidate.sha256:
        return Decision(
            False, f"{candidate.name} ({candidate.sha256[:12]}) is already the champion"
        )
    if comparison is not None and comparison.ci_high < 0:
        return Decision(
            False,
            f"{candidate.name} is significantly worse than champion {champion.name}: "
            f"AUC difference {comparison.auc_difference:+.4f}, "
            f"95% CI [{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}]",
        )
    if require_improvement and (comparison is None or comparison.ci_low <= 0):
        return Decision(
            False,
            f"{candidate.name} is not significantly better than champion {champion.name}"
            + (
                f": AUC difference {comparison.auc_difference:+.4f}, CI [{comparison.ci_low:+.4f},"
                f" {comparison.ci_high:+.4f}] includes 0 (significant improvement required)"
                if comparison is not None
                else ": the champion could not be scored on this holdout (different features)"
            ),
        )
    versus = (
        f"AUC difference vs champion {comparison.auc_difference:+.4f} (p={comparison.p_value:.3f})"
        if comparison is not None
        else "champion could not be scored on this holdout (different features)"
    )
    return Decision(
        True, f"{candidate.name} AUC {candidate.auc:.4f} clears the gate {auc_gate:.4f}; {versus}"
    )


@dataclass(frozen=True)
class GateRules:
    """The gate's settings: absolute AUC bar, the paired bootstrap, the improvement rule."""

    auc_gate: float
    bootstrap_samples: int
    seed: int
    significance: float = 0.05
    require_improvement: bool = False


@dataclass(frozen=True)
class Review:
    """The leaderboard's best model, its comparison with the champion and the decision."""

    candidate: Candidate
    model: TrainedModel
    comparison: PairedComparison | None
    decision: Decision


def review(
    day: str,
    leaderboard: pd.DataFrame,
    models: Mapping[str, TrainedModel],
    training_set: pd.DataFrame,
    champion: Champion | None,
    load_champion: Callable[[str], TrainedModel],
    rules: GateRules,
) -> Review:
    """Select the best model of ``day``'s leaderboard, compare it with the champion on the day's
    holdout rows (paired bootstrap; only a champion of the same or an older day, with features
    the holdout has) and decide."""
    from ml_assets.models.evaluate import paired_bootstrap
    from ml_assets.models.features import LABEL
    from ml_assets.models.train import holdout, predict

    best = leaderboard.iloc[0]
    model = models[str(best["asset"])]
    candidate = Candidate(
        name=model.name, sha256=model.sha256, auc=float(best["auc"]), partition=day
    )
    comparison = None
    if champion is not None and champion.sha256 != model.sha256 and champion.partition <= day:
        champion_model = load_champion(champion.sha256)
        rows = holdout(training_set)
        if set(champion_model.features) <= set(rows.columns):
            comparison = paired_bootstrap(
                rows[LABEL].to_numpy(),
                predict(model, rows),
                predict(champion_model, rows),
                samples=rules.bootstrap_samples,
                seed=rules.seed,
                level=1 - rules.significance,
            )
    decision = decide(
        candidate,
        champion,
        comparison,
        rules.auc_gate,
        require_improvement=rules.require_improvement,
    )
    return Review(candidate, model, comparison, decision)


def decision_document(
    day: str,
    leaderboard: pd.DataFrame,
    champion: Champion | None,
    verdict: Review,
    rules: GateRules,
) -> dict[str, Any]:
    """The deployment's record of ``day``: decision, reason, candidate, champion, comparison and
    the best model's metrics (``deployed_model`` adds the manifest when it promotes)."""
    comparison = verdict.comparison
    return {
        "partition": day,
        "promoted": verdict.decision.promote,
        "reason": verdict.decision.reason,
        "candidate": verdict.candidate.__dict__,
        "champion_before": champion.__dict__ if champion else None,
        "comparison": comparison.__dict__ if comparison else None,
        "auc_gate": rules.auc_gate,
        "require_significant_improvement": rules.require_improvement,
        "metrics": {
            k: (v.item() if hasattr(v, "item") else v)
            for k, v in leaderboard.iloc[0].to_dict().items()
        },
    }
