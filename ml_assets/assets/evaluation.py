"""Fan-in of every model: scored on the same time-based holdout."""

import dagster as dg

from ml_assets.assets import OWNERS
from ml_assets.assets.range_runs import model_backfill_policy, per_day
from ml_assets.errors import classified, retry_policy
from ml_assets.models.catalog import CatalogEntry, model_key
from ml_assets.partitions import daily
from ml_assets.resources.lake_ranges import window
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "evaluation"


def build_leaderboard_asset(settings: Settings, catalog: list[CatalogEntry]) -> dg.AssetsDefinition:
    ins = {model_key(e): dg.AssetIn() for e in catalog}

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="2", io_manager_key="lake", retry_policy=retry_policy(settings), ins=ins,
        backfill_policy=model_backfill_policy(settings),
    )  # fmt: skip
    @classified
    def model_leaderboard(
        context: dg.AssetExecutionContext, training_set: Frame, **models
    ) -> Frame:
        """Every model on the same holdout rows: AUC, log-loss, Brier, calibration; ranked by AUC."""
        return per_day(
            context,
            lambda day: _leaderboard(
                context,
                day,
                window(training_set, day, 1),
                {name: window(model, day, 1) for name, model in models.items()},
            ),
            version=True,
            lazy=True,
        )

    def _leaderboard(
        context: dg.AssetExecutionContext, day: str, training_set: Frame, models: dict
    ) -> Frame:
        from ml_assets.checks.contracts import ContractGate
        from ml_assets.models.evaluate import score
        from ml_assets.models.features import LABEL
        from ml_assets.models.leaderboard import rank
        from ml_assets.models.train import holdout, predict

        rows = holdout(training_set)
        y = rows[LABEL].to_numpy()
        scored = {name: (model, score(y, predict(model, rows))) for name, model in models.items()}
        gate = ContractGate(context, settings, partition=day)
        board = gate.check("model_leaderboard", rank(scored), gate.params())
        best = board.iloc[0]
        return gate.finish(
            board,
            "model_leaderboard",
            {
                "best_model": str(best["model"]),
                "best_auc": float(best["auc"]),
                "models": len(board),
                "holdout_rows": len(rows),
                "leaderboard": dg.MetadataValue.md(
                    board.drop(columns=["sha256"]).to_markdown(index=False, floatfmt=".4f")
                ),
            },
        )

    return model_leaderboard
