"""Lineage: the exact input partitions of a model with their data versions, and the blast radius
of one partition (the models and deployments built on data derived from it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

STATIC = "static"  # the "partition" of an unpartitioned asset (planes)


def _walk(start: tuple[dg.AssetKey, str | None], step) -> dict[str, list[str]]:
    """Every (asset, partition) reachable from ``start`` through ``step``, grouped by asset."""
    seen: set[tuple[dg.AssetKey, str | None]] = set()
    stack = [start]
    while stack:
        for nxt in step(*stack.pop()):
            pair = (nxt.asset_key, nxt.partition_key)
            if pair not in seen:
                seen.add(pair)
                stack.append(pair)
    grouped: dict[str, list[str]] = {}
    for key, partition in seen:
        grouped.setdefault(key.to_user_string(), []).append(partition or STATIC)
    return {asset: sorted(parts) for asset, parts in sorted(grouped.items())}


def upstream_partitions(graph: BaseAssetGraph, asset: str, partition: str) -> dict[str, list[str]]:
    """Every partition of every asset upstream of ``asset[partition]``
    (partition mappings followed)."""
    return _walk(
        (dg.AssetKey(asset), partition),
        lambda key, part: graph.get_parents_partitions(key, part).parent_partitions,
    )


def downstream_partitions(
    graph: BaseAssetGraph, asset: str, partition: str | None
) -> dict[str, list[str]]:
    """Every partition of every asset built on data derived from ``asset[partition]``."""
    return _walk((dg.AssetKey(asset), partition), graph.get_children_partitions)


def data_versions(
    instance: dg.DagsterInstance, partitions: dict[str, list[str]]
) -> dict[str, dict[str, str | None]]:
    """The data version of the latest materialization of each (asset, partition); None if never."""
    out: dict[str, dict[str, str | None]] = {}
    for asset, parts in partitions.items():
        wanted = [p for p in parts if p != STATIC]
        found: dict[str, str | None] = {}
        cursor = None
        while True:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey(asset), asset_partitions=wanted or None
                ),
                limit=max(100, 2 * len(parts)),
                cursor=cursor,
            )
            for record in result.records:
                event = record.asset_materialization
                part = (event.partition if event else None) or STATIC
                if part not in found and event is not None:
                    found[part] = (event.tags or {}).get("dagster/data_version")
            if not wanted or len(found) >= len(parts) or not result.has_more:
                break
            cursor = result.cursor
        out[asset] = {p: found.get(p) for p in parts}
    return out


def lineage_summary(inputs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per asset: how many partitions, the first and the last (for metadata and reports)."""
    return {
        asset: {"partitions": len(parts), "first": min(parts), "last": max(parts)}
        for asset, parts in inputs.items()
    }


def manifests_using(
    manifests: Iterable[tuple[str, dict[str, Any]]], asset: str, partition: str
) -> list[dict[str, Any]]:
    """The registered models whose manifest lists ``asset[partition]`` among its inputs."""
    hits = []
    for sha256, manifest in manifests:
        inputs = manifest.get("inputs", {}).get(asset, {})
        if partition in inputs:
            hits.append(
                {
                    "sha256": sha256,
                    "name": manifest.get("model", {}).get("name"),
                    "partition": manifest.get("partition"),
                    "data_version": inputs[partition],
                }
            )
    return sorted(hits, key=lambda h: (h["partition"] or "", h["sha256"]))
