"""The quality gate: promote the leaderboard's best model only when it earns it."""

from __future__ import annotations

from dataclasses import dataclass

from ml_assets.models.evaluate import PairedComparison


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
            f"{candidate.name} AUC {candidate.auc:.4f} clears the gate {auc_gate:.4f}; no champion yet",
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
            f"{candidate.name} is significantly worse than champion {champion.name}: AUC difference "
            f"{comparison.auc_difference:+.4f}, 95% CI [{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}]",
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
