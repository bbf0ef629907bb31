"""Freshness judged: the policy on ``deployed_model`` and the per-partition deadline after landing.

What is promised (the policy, the checked assets) is declared in ``ml_assets/freshness_policy.py``.

A daily partition is *fresh* once it has been materialized after its files landed. It is
*overdue* when its files landed more than ``partition_deadline_hours`` ago and it has not been.
Only the latest ``freshness_lookback_days`` landed days are judged: older gaps are backfills.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

PartitionState = Literal["fresh", "overdue", "pending", "not_landed"]
PolicyState = Literal["PASS", "WARN", "FAIL", "UNKNOWN"]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Verdict:
    state: PartitionState
    description: str
    overdue_seconds: float = 0.0


def partition_freshness(
    asset: str,
    day: str,
    landed_at: float | None,
    materialized_at: float | None,
    now: float,
    deadline_hours: float,
) -> Verdict:
    """Judge one (asset, day): materialized after its files landed, or within the deadline."""
    where = f"{asset}[{day}]"
    if landed_at is None:
        return Verdict("not_landed", f"{where}: the day has not landed; nothing is expected yet")
    if materialized_at is not None and materialized_at >= landed_at:
        return Verdict(
            "fresh",
            f"{where}: materialized {_hours(materialized_at - landed_at)} after its files landed "
            f"at {_when(landed_at)}",
        )
    age, deadline = now - landed_at, deadline_hours * 3600
    last = (
        f"last materialized {_when(materialized_at)}" if materialized_at else "never materialized"
    )
    if age <= deadline:
        return Verdict(
            "pending",
            f"{where}: files landed {_hours(age)} ago; deadline {deadline_hours:g} h ({last})",
        )
    return Verdict(
        "overdue",
        f"{where}: not materialized {_hours(age)} after its files landed at {_when(landed_at)}, "
        f"overdue by {_hours(age - deadline)} against the {deadline_hours:g} h deadline ({last})",
        overdue_seconds=age - deadline,
    )


def policy_state(
    last_materialized: float | None, now: float, warn_hours: float, fail_hours: float
) -> tuple[PolicyState, str]:
    """Time-window freshness of ``deployed_model``, as Dagster's ``FreshnessPolicy`` defines it."""
    if last_materialized is None:
        return "UNKNOWN", "deployed_model has never been materialized"
    age = now - last_materialized
    text = (
        f"deployed_model last materialized {_hours(age)} ago ({_when(last_materialized)}); "
        f"warn after {warn_hours:g} h, fail after {fail_hours:g} h"
    )
    if age > fail_hours * 3600:
        return "FAIL", f"{text}; stale by {_hours(age - fail_hours * 3600)}"
    if age > warn_hours * 3600:
        return "WARN", text
    return "PASS", text
