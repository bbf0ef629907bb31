"""The quality gate: promote the leaderboard's best model to the registry, or keep the champion."""

from typing import Any

import dagster as dg

from ml_assets import __version__
from ml_assets.assets import OWNERS
from ml_assets.assets.training import model_key
from ml_assets.assets.versions import versioned
from ml_assets.automation.freshness import deployed_model_policy
from ml_assets.automation.reports import auc_history
from ml_assets.errors import classified, retry_policy
from ml_assets.models.catalog import CatalogEntry
from ml_assets.partitions import daily
from ml_assets.resources.registry import ModelRegistry
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "deployment"


def _input_lineage(context: dg.AssetExecutionContext, model_asset: str) -> dict[str, Any]:
    """Every partition upstream of the model's partition (partition mappings followed to the
    landed sources) with the data version of its latest materialization."""
    from ml_assets.lineage import data_versions, upstream_partitions

    graph = context.job_def.asset_layer.asset_graph
    partitions = upstream_partitions(graph, model_asset, context.partition_key)
    partitions[model_asset] = partitions["model_leaderboard"] = [context.partition_key]
    return data_versions(context.instance, partitions)


def build_deployment_asset(settings: Settings, catalog: list[CatalogEntry]) -> dg.AssetsDefinition:
    entries = {model_key(e): e for e in catalog}

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"lightgbm"}, owners=OWNERS,
        code_version="1", io_manager_key="lake", retry_policy=retry_policy(settings), ins={k: dg.AssetIn() for k in entries},
        metadata={"auc_gate": settings.auc_gate},
        freshness_policy=deployed_model_policy(settings),
    )  # fmt: skip
    @classified
    def deployed_model(
        context: dg.AssetExecutionContext,
        registry: ModelRegistry,
        model_leaderboard: Frame,
        training_set: Frame,
        **models,
    ) -> dict[str, Any]:
        """Promote the best model if it clears the AUC gate and is not worse than the champion."""
        from ml_assets.lineage import lineage_summary
        from ml_assets.models.evaluate import paired_bootstrap
        from ml_assets.models.features import LABEL
        from ml_assets.models.gate import Candidate, decide
        from ml_assets.models.train import holdout, predict

        day = context.partition_key
        best = model_leaderboard.iloc[0]
        model = models[str(best["asset"])]
        candidate = Candidate(
            name=model.name, sha256=model.sha256, auc=float(best["auc"]), partition=day
        )
        champion = registry.champion()
        comparison = None
        if champion is not None and champion.sha256 != model.sha256 and champion.partition <= day:
            champion_model, _ = registry.load(champion.sha256)
            rows = holdout(training_set)
            if set(champion_model.features) <= set(rows.columns):
                comparison = paired_bootstrap(
                    rows[LABEL].to_numpy(), predict(model, rows), predict(champion_model, rows),
                    samples=settings.bootstrap_samples, seed=settings.seed, level=1 - settings.significance,
                )  # fmt: skip
        decision = decide(
            candidate, champion, comparison, settings.auc_gate,
            require_improvement=settings.require_significant_improvement,
        )  # fmt: skip
        document: dict[str, Any] = {
            "partition": day,
            "promoted": decision.promote,
            "reason": decision.reason,
            "candidate": candidate.__dict__,
            "champion_before": champion.__dict__ if champion else None,
            "comparison": comparison.__dict__ if comparison else None,
            "auc_gate": settings.auc_gate,
            "require_significant_improvement": settings.require_significant_improvement,
            "metrics": {
                k: (v.item() if hasattr(v, "item") else v) for k, v in best.to_dict().items()
            },
        }
        if decision.promote:
            document["manifest"] = {
                "catalog_entry": entries[str(best["asset"])].model_dump(mode="json"),
                "code_version": {
                    "ml_assets": __version__,
                    "asset": context.assets_def.code_versions_by_key[context.asset_key],
                },
                "inputs": _input_lineage(context, str(best["asset"])),
                "metrics": document["metrics"],
                "decision": decision.reason,
            }
            registry.promote(model, document["manifest"], day)
        context.add_output_metadata(
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
        return versioned(context, document)

    return deployed_model
