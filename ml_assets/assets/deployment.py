"""The quality gate: promote the leaderboard's best model to the registry, or keep the champion."""

from typing import Any

import dagster as dg

from ml_assets import __version__
from ml_assets.assets import OWNERS
from ml_assets.assets.range_runs import add_day_metadata, model_backfill_policy, per_day
from ml_assets.assets.reports import auc_history
from ml_assets.errors import classified, retry_policy
from ml_assets.freshness_policy import deployed_model_policy
from ml_assets.models.catalog import CatalogEntry, model_key
from ml_assets.models.gate import GateRules
from ml_assets.partitions import daily
from ml_assets.resources.lake_ranges import window
from ml_assets.resources.registry import ModelRegistry
from ml_assets.settings import Settings
from ml_assets.types import Document, Frame

GROUP = "deployment"


def _input_lineage(context: dg.AssetExecutionContext, model_asset: str, day: str) -> dict[str, Any]:
    """Every partition upstream of the model's partition (partition mappings followed to the
    landed sources) with the data version of its latest materialization."""
    from ml_assets.lineage import data_versions, upstream_partitions

    graph = context.job_def.asset_layer.asset_graph
    partitions = upstream_partitions(graph, model_asset, day)
    partitions[model_asset] = partitions["model_leaderboard"] = [day]
    return data_versions(context.instance, partitions)


def gate_rules(settings: Settings) -> GateRules:
    """The promotion gate's rules from settings (``models.gate.review``)."""
    return GateRules(
        auc_gate=settings.auc_gate,
        bootstrap_samples=settings.bootstrap_samples,
        seed=settings.seed,
        significance=settings.significance,
        require_improvement=settings.require_significant_improvement,
    )


def build_deployment_asset(settings: Settings, catalog: list[CatalogEntry]) -> dg.AssetsDefinition:
    entries = {model_key(e): e for e in catalog}

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"lightgbm"}, owners=OWNERS,
        code_version="1", io_manager_key="lake", retry_policy=retry_policy(settings), ins={k: dg.AssetIn() for k in entries},
        metadata={"auc_gate": settings.auc_gate}, backfill_policy=model_backfill_policy(settings),
        freshness_policy=deployed_model_policy(settings),
    )  # fmt: skip
    @classified
    def deployed_model(
        context: dg.AssetExecutionContext,
        registry: ModelRegistry,
        model_leaderboard: Frame,
        training_set: Frame,
        **models,
    ) -> Document:
        """Promote the best model if it clears the AUC gate and is not worse than the champion.

        A range run decides its days in day order, each against the champion the days before
        it left."""
        return per_day(
            context,
            lambda day: _deploy(
                context,
                registry,
                day,
                window(model_leaderboard, day, 1),
                window(training_set, day, 1),
                {name: window(model, day, 1) for name, model in models.items()},
            ),
            version=True,
            lazy=True,
        )

    def _deploy(
        context: dg.AssetExecutionContext,
        registry: ModelRegistry,
        day: str,
        model_leaderboard: Frame,
        training_set: Frame,
        models: dict,
    ) -> dict[str, Any]:
        from ml_assets.lineage import lineage_summary
        from ml_assets.models.gate import decision_document, review

        best = model_leaderboard.iloc[0]
        champion = registry.champion()
        rules = gate_rules(settings)
        verdict = review(
            day, model_leaderboard, models, training_set, champion,
            lambda sha256: registry.load(sha256)[0], rules,
        )  # fmt: skip
        candidate, comparison, decision = verdict.candidate, verdict.comparison, verdict.decision
        document = decision_document(day, model_leaderboard, champion, verdict, rules)
        if decision.promote:
            document["manifest"] = {
                "catalog_entry": entries[str(best["asset"])].model_dump(mode="json"),
                "code_version": {
                    "ml_assets": __version__,
                    "asset": context.assets_def.code_versions_by_key[context.asset_key],
                },
                "inputs": _input_lineage(context, str(best["asset"]), day),
                "metrics": document["metrics"],
                "decision": decision.reason,
            }
            registry.promote(verdict.model, document["manifest"], day)
        add_day_metadata(
            context,
            day,
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
            },
        )
        return document

    return deployed_model
