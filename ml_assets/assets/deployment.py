"""The quality gate: promote the leaderboard's best model to the registry, or keep the champion."""

import functools
from typing import Any

import dagster as dg

from ml_assets import __version__
from ml_assets.assets.daily_asset import DailyAssetSpec, DayContext, daily_asset
from ml_assets.assets.reports import auc_history
from ml_assets.freshness_policy import deployed_model_policy
from ml_assets.models.catalog import CatalogEntry, model_key
from ml_assets.models.gate import GateRules
from ml_assets.resources.registry import ModelRegistry
from ml_assets.settings import Settings
from ml_assets.types import Document

GROUP = "deployment"


def _input_lineage(ctx: DayContext, model_asset: str, day: str) -> dict[str, Any]:
    """Every partition upstream of the model's partition (partition mappings followed to the
    landed sources) with the data version of its latest materialization. A range run's days
    share one ``Lineage``: their inputs are all written before this step."""
    from ml_assets.lineage import Lineage

    context = ctx.dagster
    if "lineage" not in ctx.shared:
        graph = context.job_def.asset_layer.asset_graph
        ctx.shared["lineage"] = Lineage(graph, context.instance)
    lineage = ctx.shared["lineage"]
    partitions = lineage.upstream(model_asset, day)
    partitions[model_asset] = partitions["model_leaderboard"] = [day]
    return lineage.versions(partitions)


def gate_rules(settings: Settings) -> GateRules:
    """The promotion gate's rules from settings (``models.gate.review``)."""
    return GateRules(
        auc_gate=settings.auc_gate,
        bootstrap_samples=settings.bootstrap_samples,
        seed=settings.seed,
        significance=settings.significance,
        require_improvement=settings.require_significant_improvement,
    )


def deploy(
    entries: dict[str, CatalogEntry], day: str, inputs: dict[str, Any], ctx: DayContext
) -> Document:
    """The gate's decision on the day's best model; a promotion moves the registry's pointer."""
    from ml_assets.lineage import lineage_summary
    from ml_assets.models.gate import decision_document, review

    settings, registry, context = ctx.settings, ctx.resources["registry"], ctx.dagster
    model_leaderboard, training_set = inputs["model_leaderboard"], inputs["training_set"]
    models = {name: inputs[name] for name in entries}
    best = model_leaderboard.iloc[0]
    champion = registry.champion()
    rules = gate_rules(settings)
    verdict = review(
        day,
        model_leaderboard,
        models,
        training_set,
        champion,
        lambda sha256: registry.load(sha256)[0],
        rules,
    )
    candidate, comparison, decision = verdict.candidate, verdict.comparison, verdict.decision
    document = decision_document(day, model_leaderboard, champion, verdict, rules)
    if decision.promote:
        document["manifest"] = {
            "catalog_entry": entries[str(best["asset"])].model_dump(mode="json"),
            "code_version": {
                "ml_assets": __version__,
                "asset": context.assets_def.code_versions_by_key[context.asset_key],
            },
            "inputs": _input_lineage(ctx, str(best["asset"]), day),
            "metrics": document["metrics"],
            "decision": decision.reason,
        }
        registry.promote(verdict.model, document["manifest"], day)
    ctx.add_metadata(
        {
            **(
                {"input_partitions": lineage_summary(document["manifest"]["inputs"])}
                if decision.promote
                else {}
            ),
            "comparison": comparison.__dict__ if comparison else None,
            "promoted": decision.promote,
            "reason": decision.reason,
            "candidate": candidate.name,
            "candidate_auc": candidate.auc,
            "candidate_sha256": candidate.sha256,
            "champion": (registry.champion() or candidate).name,
            "auc_difference_vs_champion": comparison.auc_difference if comparison else None,
            "p_value_vs_champion": comparison.p_value if comparison else None,
            "champion_before": champion.name if champion else None,
            "auc_history": auc_history(
                context.instance, sorted(entries), day, settings.auc_history_days
            ),
        }
    )
    return document


def build_deployment_asset(settings: Settings, catalog: list[CatalogEntry]) -> dg.AssetsDefinition:
    entries = {model_key(e): e for e in catalog}
    spec = DailyAssetSpec(
        name="deployed_model",
        group=GROUP,
        kinds=frozenset({"lightgbm"}),
        code_version="1",
        description="Promote the best model if it clears the AUC gate and is not worse than the "
        "champion.\n\nA range run decides its days in day order, each against the champion the "
        "days before\nit left.",
        ins={"model_leaderboard": None, "training_set": None, **dict.fromkeys(entries)},
        resources={"registry": ModelRegistry},
        backfill="model",
        lazy=True,
        metadata={"auc_gate": settings.auc_gate},
        freshness_policy=deployed_model_policy(settings),
    )
    return daily_asset(spec, settings, functools.partial(deploy, entries))
