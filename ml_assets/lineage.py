"""Lineage: the exact input partitions of a model with their data versions, and the blast radius
of one partition (the models and deployments built on data derived from it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

STATIC = "static"  # the "partition" of an unpartitioned asset (planes)


Node = tuple[dg.AssetKey, "str | None"]


def _walk(start: Node, step) -> dict[str, list[str]]:
    """Every (asset, partition) reachable from ``start`` through ``step``, grouped by asset."""
    seen: set[Node] = set()
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
    return Lineage(graph).upstream(asset, partition)


def downstream_partitions(
    graph: BaseAssetGraph, asset: str, partition: str | None
) -> dict[str, list[str]]:
    """Every partition of every asset built on data derived from ``asset[partition]``."""
    return _walk((dg.AssetKey(asset), partition), graph.get_children_partitions)


def data_versions(
    instance: dg.DagsterInstance, partitions: dict[str, list[str]]
) -> dict[str, dict[str, str | None]]:
    """The data version of the latest materialization of each (asset, partition); None if never."""
    return {asset: _fetch_versions(instance, asset, parts) for asset, parts in partitions.items()}


class Lineage:
    """Upstream partitions and their data versions for many partitions in one step.

    Consecutive days share all but one day of their trailing windows: each partition's parents
    are computed once and each (asset, partition)'s data version fetched once. Keep one only
    while upstream materializations cannot change (a step whose inputs are all written).
    """

    def __init__(self, graph: BaseAssetGraph, instance: dg.DagsterInstance | None = None) -> None:
        self.graph, self._instance = graph, instance
        self._parents: dict[Node, list[Any]] = {}
        self._versions: dict[tuple[str, str], str | None] = {}

    def upstream(self, asset: str, partition: str) -> dict[str, list[str]]:
        """As :func:`upstream_partitions`."""
        return _walk((dg.AssetKey(asset), partition), self._parents_of)

    def versions(self, partitions: dict[str, list[str]]) -> dict[str, dict[str, str | None]]:
        """As :func:`data_versions`, asking the instance only for (asset, partition)s not
        fetched before."""
        if self._instance is None:
            raise TypeError("Lineage built without an instance has no data versions")
        for asset, parts in partitions.items():
            missing = [p for p in parts if (asset, p) not in self._versions]
            if missing:
                for part, version in _fetch_versions(self._instance, asset, missing).items():
                    self._versions[(asset, part)] = version
        return {
            asset: {p: self._versions[(asset, p)] for p in parts}
            for asset, parts in partitions.items()
        }

    def _parents_of(self, key: dg.AssetKey, partition: str | None) -> list[Any]:
        node = (key, partition)
        if node not in self._parents:
            parents = self.graph.get_parents_partitions(key, partition).parent_partitions
            self._parents[node] = list(parents)
        return self._parents[node]


def _fetch_versions(
    instance: dg.DagsterInstance, asset: str, parts: list[str]
) -> dict[str, str | None]:
    """The data version of the latest materialization of each of ``asset``'s ``parts``."""
    wanted = [p for p in parts if p != STATIC]
    found: dict[str, str | None] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=wanted or None),
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
    return {p: found.get(p) for p in parts}


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
