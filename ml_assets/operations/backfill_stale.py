"""Which (asset, day) partitions of a backfill need work, and why: no wasted work.

A partition is up to date when it was materialized with the asset's current code version,
after its day's files landed (raw assets), from the data its parents hold now (the data
version of every parent partition it reads, trailing windows included, is the one it had
then), and no parent partition it reads is itself to be redone.
:func:`stale_partitions` is pure; :func:`collect_facts` reads the facts from the instance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"


@dataclass(frozen=True)
class Materialized:
    """The latest materialization of one asset partition."""

    timestamp: float
    code_version: str | None
    data_version: str | None


@dataclass(frozen=True)
class Node:
    """An asset of the backfill: its code version and its parents with their window (days)."""

    asset: str
    code_version: str | None
    parents: Mapping[str, int]


def _window(day: str, days: int) -> list[str]:
    end = dt.date.fromisoformat(day)
    return [(end - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def stale_partitions(
    nodes: Sequence[Node],
    days: Sequence[str],
    facts: Mapping[tuple[str, str], Sequence[Materialized]],
    landed_at: Mapping[str, float] | None = None,
) -> dict[tuple[str, str], str]:
    """``{(asset, day): reason}`` for every partition to redo; ``nodes`` in topological order.

    ``facts`` holds the materializations of every partition known (parents' included), newest
    first; ``landed_at`` when each day's files landed (for assets without parents in ``nodes``).
    A parent partition materialized again with the same data version (same content, or the same
    code on the same inputs) does not make its children stale.
    """
    stale: dict[tuple[str, str], str] = {}
    for node in nodes:
        for day in days:
            reason = _reason(node, day, facts, landed_at or {}, stale)
            if reason:
                stale[(node.asset, day)] = reason
    return stale


def _reason(
    node: Node,
    day: str,
    facts: Mapping[tuple[str, str], Sequence[Materialized]],
    landed_at: Mapping[str, float],
    stale: Mapping[tuple[str, str], str],
) -> str | None:
    history = facts.get((node.asset, day))
    if not history:
        return "missing"
    mine = history[0]
    if node.code_version and mine.code_version != node.code_version:
        return f"code version {mine.code_version} -> {node.code_version}"
    if not node.parents and landed_at.get(day, 0.0) > mine.timestamp:
        return "landed again since"
    for parent, width in node.parents.items():
        for upstream in _window(day, width):
            if (parent, upstream) in stale:
                return f"{parent}[{upstream}] is redone"
            theirs = facts.get((parent, upstream), ())
            then = next((m for m in theirs if m.timestamp <= mine.timestamp), None)
            if theirs and then is None:
                return f"{parent}[{upstream}] materialized since"
            if theirs and then is not None and theirs[0].data_version != then.data_version:
                return f"{parent}[{upstream}] data changed"
    return None


# -- reading the instance --------------------------------------------------------------------


def collect_nodes(defs: dg.Definitions, job: str) -> list[Node]:
    """The job's assets in topological order, with code versions and parent windows (days)."""
    import dagster as dg

    graph = defs.resolve_asset_graph()
    job_def = defs.resolve_job_def(job)
    selected = job_def.asset_layer.executable_asset_keys
    nodes = []
    for key in graph.toposorted_asset_keys:
        if key not in selected:
            continue
        node = graph.get(key)
        parents = {}
        for parent in node.parent_keys:
            if not graph.get(parent).is_partitioned:
                continue
            mapping = graph.get_partition_mapping(key, parent)
            width = 1
            if isinstance(mapping, dg.TimeWindowPartitionMapping):
                width = mapping.end_offset - mapping.start_offset + 1
            parents[parent.to_user_string()] = width
        nodes.append(Node(key.to_user_string(), node.code_version, parents))
    return nodes


def collect_facts(
    instance: dg.DagsterInstance, assets: Sequence[str], days: Sequence[str]
) -> dict[tuple[str, str], list[Materialized]]:
    """The materializations of each asset partition in ``days``, newest first."""
    import dagster as dg

    facts: dict[tuple[str, str], list[Materialized]] = {}
    for asset in assets:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=list(days)),
            limit=len(days) * 20,
        ).records
        for record in records:  # newest first
            if record.asset_materialization is None:
                continue
            tags = record.asset_materialization.tags or {}
            facts.setdefault((asset, record.partition_key), []).append(
                Materialized(
                    timestamp=record.timestamp,
                    code_version=tags.get(CODE_VERSION_TAG),
                    data_version=tags.get(DATA_VERSION_TAG),
                )
            )
    return facts


def stale_in_instance(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job: str,
    days: Sequence[str],
    landed_at: Mapping[str, float] | None = None,
) -> dict[tuple[str, str], str]:
    """What a backfill of ``job`` over ``days`` must redo, judged from the instance."""
    nodes = collect_nodes(defs, job)
    widest = max((w for n in nodes for w in n.parents.values()), default=1)
    first = (dt.date.fromisoformat(days[0]) - dt.timedelta(days=widest - 1)).isoformat()
    window = sorted(set(days) | {d for d in _window(days[-1], widest + len(days)) if d >= first})
    facts = collect_facts(instance, [n.asset for n in nodes], window)
    return stale_partitions(nodes, days, facts, landed_at)
