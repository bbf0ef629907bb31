"""AUC per model over time, as a Markdown table with a text sparkline per model.

``deployed_model`` records it as metadata, read back from the instance's materializations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

BARS = "▁▂▃▄▅▆▇█"


def trailing_days(day: str, count: int) -> list[str]:
    """``count`` days ending on ``day``, oldest first (within 2013's partitions)."""
    last = dt.date.fromisoformat(day)
    days = [(last - dt.timedelta(days=i)).isoformat() for i in range(count)][::-1]
    return [d for d in days if d >= "2013-01-01"]


def sparkline(values: Sequence[float | None]) -> str:
    """One bar per value, scaled between the series' min and max; a gap for a missing value."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    return "".join(
        " " if v is None else BARS[round((v - low) / span * (len(BARS) - 1))] for v in values
    )


def auc_table(days: Sequence[str], aucs: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown: one row per model (trend, first/last/min/max), then one row per day."""
    models = sorted(aucs)
    lines = [
        "| model | trend | first | last | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        series = [aucs[model].get(d) for d in days]
        present = [v for v in series if v is not None]
        if not present:
            continue
        lines.append(
            f"| {model} | `{sparkline(series).strip()}` | {present[0]:.4f} | {present[-1]:.4f} "
            f"| {min(present):.4f} | {max(present):.4f} |"
        )
    lines += ["", "| day | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for d in days:
        cells = [aucs[m].get(d) for m in models]
        if any(c is not None for c in cells):
            lines.append(
                f"| {d} | " + " | ".join("" if c is None else f"{c:.4f}" for c in cells) + " |"
            )
    return "\n".join(lines)


def auc_history(
    instance: dg.DagsterInstance, model_assets: Sequence[str], day: str, count: int
) -> dg.MetadataValue:
    """Holdout AUC of every model asset over the ``count`` days ending on ``day``."""
    days = trailing_days(day, count)
    aucs = {
        asset.removeprefix("model__"): {
            d: float(v)
            for d, v in values_by_partition(instance, asset, days, "holdout_auc").items()
        }
        for asset in model_assets
    }
    return dg.MetadataValue.md(auc_table(days, aucs))


def values_by_partition(
    instance: dg.DagsterInstance, asset: str, partitions: list[str], key: str
) -> dict[str, Any]:
    """The latest recorded ``key`` metadata value of each partition of ``asset``
    (missing: absent)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=partitions),
        limit=max(50, 4 * len(partitions)),
    ).records
    found: dict[str, Any] = {}
    for record in records:  # newest first: keep the first value seen per partition
        event = record.asset_materialization
        if event is None or event.partition in found or key not in event.metadata:
            continue
        found[event.partition] = event.metadata[key].value
    return found
