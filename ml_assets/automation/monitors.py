"""Monitors as pure functions: recorded figures in, alerts out (no Dagster, no IO).

Every alert says what was measured, where, by how much it crossed its threshold, and against
what baseline.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    monitor: str
    where: str
    observed: str
    excess: str
    baseline: str
    link: str | None = None

    def text(self) -> str:
        line = (
            f"[{self.monitor}] {self.where}: {self.observed}, {self.excess}; "
            f"baseline: {self.baseline}"
        )
        return f"{line}\n    {self.link}" if self.link else line


def slow_steps(
    durations: Mapping[str, float],
    history: Sequence[Mapping[str, float]],
    *,
    where: str,
    factor: float,
    min_history: int,
    min_seconds: float,
    link: str | None = None,
) -> list[Alert]:
    """Steps that took more than ``factor`` x their median over the earlier runs in ``history``."""
    alerts = []
    for step, seconds in sorted(durations.items()):
        earlier = [h[step] for h in history if step in h]
        if len(earlier) < min_history or seconds < min_seconds:
            continue
        median = statistics.median(earlier)
        if median > 0 and seconds > factor * median:
            alerts.append(
                Alert(
                    monitor="step_duration",
                    where=f"{where} step {step}",
                    observed=f"took {seconds:.1f} s",
                    excess=f"{seconds / median:.1f}x its trailing median (threshold {factor:g}x), "
                    f"{seconds - median:+.1f} s",
                    baseline=f"median {median:.1f} s over the previous {len(earlier)} runs",
                    link=link,
                )
            )
    return alerts


def failure_rate(
    outcomes: Sequence[bool], *, where: str, threshold: float, min_runs: int
) -> tuple[float, Alert | None]:
    """Share of failed runs in ``outcomes`` (True = success)
    and an alert when above ``threshold``."""
    if not outcomes:
        return 0.0, None
    failed = sum(not ok for ok in outcomes)
    rate = failed / len(outcomes)
    if len(outcomes) < min_runs or rate <= threshold:
        return rate, None
    return rate, Alert(
        monitor="failure_rate",
        where=where,
        observed=f"{failed} of the last {len(outcomes)} runs failed ({rate:.0%})",
        excess=f"{(rate - threshold) * 100:.1f} points above the {threshold:.0%} threshold",
        baseline=f"trailing window of {len(outcomes)} finished runs",
    )


def volume_drop(
    day: str, rows: int, previous_day: str, previous_rows: int | None, *, asset: str, ratio: float
) -> Alert | None:
    """An alert when a day's rows fall below ``ratio`` x the previous day's."""
    if not previous_rows or rows >= ratio * previous_rows:
        return None
    return Alert(
        monitor="day_volume",
        where=f"{asset}[{day}]",
        observed=f"{rows} rows",
        excess=f"{rows / previous_rows:.0%} of the previous day ({rows - previous_rows:+d} rows; "
        f"threshold {ratio:.0%})",
        baseline=f"{asset}[{previous_day}] with {previous_rows} rows",
    )


def model_quality(
    day: str,
    model: str,
    auc: float,
    *,
    gate: float,
    champion: str | None,
    auc_difference: float | None,
    max_drop: float,
) -> list[Alert]:
    """Alerts when the best model is below the gate
    or worse than the champion by more than a margin.

    ``auc_difference`` is best model minus champion on the same holdout rows (None: not compared).
    """
    alerts = []
    if auc < gate:
        alerts.append(
            Alert(
                monitor="model_auc",
                where=f"best model {model} on deployed_model[{day}]",
                observed=f"holdout AUC {auc:.4f}",
                excess=f"{gate - auc:.4f} below the gate",
                baseline=f"absolute AUC gate {gate:.4f}",
            )
        )
    if champion is not None and auc_difference is not None and -auc_difference > max_drop:
        alerts.append(
            Alert(
                monitor="model_auc",
                where=f"best model {model} on deployed_model[{day}]",
                observed=f"AUC {auc:.4f}, {auc_difference:+.4f} vs the champion",
                excess=f"a drop of {-auc_difference:.4f}, more than the {max_drop:.4f} margin",
                baseline=(
                    f"champion {champion} at AUC {auc - auc_difference:.4f} on the same holdout"
                ),
            )
        )
    return alerts


def running_step(
    elapsed: float,
    earlier: Sequence[float],
    *,
    where: str,
    factor: float,
    min_history: int,
    warning_s: float,
    min_seconds: float = 0.0,
    link: str | None = None,
) -> Alert | None:
    """A step still running past ``factor`` x its trailing median (and ``min_seconds``), or past
    ``warning_s`` whatever its history (None while it is within both)."""
    median = statistics.median(earlier) if len(earlier) >= min_history else None
    baseline = (
        f"median {median:.1f} s over the previous {len(earlier)} runs"
        if median is not None
        else f"{len(earlier)} earlier runs (fewer than {min_history}: no median)"
    )
    if median and elapsed > max(factor * median, min_seconds):
        excess = f"{elapsed / median:.1f}x its trailing median (threshold {factor:g}x)"
    elif elapsed > warning_s:
        excess = f"past the {warning_s:g} s warning by {elapsed - warning_s:.0f} s"
    else:
        return None
    observed = f"still running after {elapsed:.0f} s"
    return Alert("slow_step", where, observed, excess, baseline, link)


def step_timeout(elapsed: float, limit: float, *, where: str, link: str | None = None) -> Alert:
    """A running step past its time limit (the watchdog ends its run)."""
    return Alert(
        monitor="step_timeout",
        where=where,
        observed=f"timed out after {elapsed:.0f} s; the run is being terminated",
        excess=f"{elapsed - limit:.0f} s past its limit",
        baseline=f"step time limit {limit:g} s (settings)",
        link=link,
    )
