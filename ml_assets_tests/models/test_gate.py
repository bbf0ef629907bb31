"""The quality gate's rules, in order, and the numbers its reasons give."""

from __future__ import annotations

import pytest

from ml_assets.models.evaluate import PairedComparison
from ml_assets.models.gate import Candidate, Champion, decide

GATE = 0.70
CANDIDATE = Candidate(name="gbdt", sha256="c" * 64, auc=0.7312, partition="2013-03-14")
CHAMPION = Champion(name="dart", sha256="d" * 64, partition="2013-03-13")
NOT_WORSE = PairedComparison(
    auc_difference=0.0042, ci_low=-0.0101, ci_high=0.0187, p_value=0.612, samples=200
)
WORSE = PairedComparison(
    auc_difference=-0.0315, ci_low=-0.0480, ci_high=-0.0123, p_value=0.0, samples=200
)


def test_below_the_gate_refuses() -> None:
    weak = Candidate(name="rf", sha256="r" * 64, auc=0.6543, partition="2013-03-14")
    decision = decide(weak, None, None, GATE)
    assert not decision.promote
    assert "rf" in decision.reason
    assert "0.6543" in decision.reason and "0.7000" in decision.reason
    # The gate comes first: even a comparison in its favour does not help.
    assert not decide(weak, CHAMPION, NOT_WORSE, GATE).promote


def test_exactly_at_the_gate_passes() -> None:
    at_gate = Candidate(name="gbdt", sha256="c" * 64, auc=GATE, partition="2013-03-14")
    assert decide(at_gate, None, None, GATE).promote


def test_no_champion_promotes() -> None:
    decision = decide(CANDIDATE, None, None, GATE)
    assert decision.promote
    assert "0.7312" in decision.reason and "0.7000" in decision.reason
    assert "no champion" in decision.reason


def test_newer_champion_refuses_a_backfill() -> None:
    newer = Champion(name="dart", sha256="d" * 64, partition="2013-03-20")
    decision = decide(CANDIDATE, newer, NOT_WORSE, GATE)
    assert not decision.promote
    assert "2013-03-20" in decision.reason and "2013-03-14" in decision.reason
    assert "backfill" in decision.reason


def test_same_partition_champion_may_be_replaced() -> None:
    same_day = Champion(name="dart", sha256="d" * 64, partition=CANDIDATE.partition)
    assert decide(CANDIDATE, same_day, NOT_WORSE, GATE).promote


def test_same_model_refuses() -> None:
    itself = Champion(name="gbdt", sha256=CANDIDATE.sha256, partition="2013-03-10")
    decision = decide(CANDIDATE, itself, None, GATE)
    assert not decision.promote
    assert "already the champion" in decision.reason
    assert CANDIDATE.sha256[:12] in decision.reason


def test_significantly_worse_refuses() -> None:
    decision = decide(CANDIDATE, CHAMPION, WORSE, GATE)
    assert not decision.promote
    assert "significantly worse" in decision.reason and "dart" in decision.reason
    assert "-0.0315" in decision.reason
    assert "[-0.0480, -0.0123]" in decision.reason


def test_not_significantly_worse_promotes() -> None:
    decision = decide(CANDIDATE, CHAMPION, NOT_WORSE, GATE)
    assert decision.promote
    assert "0.7312" in decision.reason
    assert "+0.0042" in decision.reason and "p=0.612" in decision.reason


@pytest.mark.parametrize("ci_high", [0.0, 1e-9])
def test_interval_touching_zero_is_not_significant(ci_high: float) -> None:
    borderline = PairedComparison(-0.02, -0.04, ci_high, 0.05, 200)
    assert decide(CANDIDATE, CHAMPION, borderline, GATE).promote


def test_champion_that_cannot_be_scored_promotes_with_a_note() -> None:
    decision = decide(CANDIDATE, CHAMPION, None, GATE)
    assert decision.promote
    assert "could not be scored" in decision.reason


def test_rules_apply_in_order() -> None:
    """Backfill before same-model before significance: each refusal names its own rule."""
    newer_same = Champion(name="gbdt", sha256=CANDIDATE.sha256, partition="2013-04-01")
    assert "backfill" in decide(CANDIDATE, newer_same, WORSE, GATE).reason
    older_same = Champion(name="gbdt", sha256=CANDIDATE.sha256, partition="2013-03-01")
    assert "already the champion" in decide(CANDIDATE, older_same, WORSE, GATE).reason


BETTER = PairedComparison(
    auc_difference=0.0210, ci_low=0.0052, ci_high=0.0371, p_value=0.01, samples=200
)


def test_requiring_improvement_refuses_a_challenger_that_is_merely_not_worse() -> None:
    decision = decide(CANDIDATE, CHAMPION, NOT_WORSE, GATE, require_improvement=True)
    assert not decision.promote
    assert "not significantly better" in decision.reason and "dart" in decision.reason
    assert "+0.0042" in decision.reason and "[-0.0101, +0.0187]" in decision.reason
    # without the requirement the same comparison promotes
    assert decide(CANDIDATE, CHAMPION, NOT_WORSE, GATE).promote


def test_requiring_improvement_promotes_a_significantly_better_challenger() -> None:
    decision = decide(CANDIDATE, CHAMPION, BETTER, GATE, require_improvement=True)
    assert decision.promote and "+0.0210" in decision.reason


def test_requiring_improvement_with_no_champion_or_no_comparison() -> None:
    assert decide(CANDIDATE, None, None, GATE, require_improvement=True).promote
    unscored = decide(CANDIDATE, CHAMPION, None, GATE, require_improvement=True)
    assert not unscored.promote and "could not be scored" in unscored.reason
    # the absolute gate still comes first
    weak = Candidate(name="rf", sha256="r" * 64, auc=0.6543, partition="2013-03-14")
    assert "below the gate" in decide(weak, CHAMPION, BETTER, GATE, require_improvement=True).reason
