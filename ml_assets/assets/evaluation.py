"""Fan-in of every model: scored on the same time-based holdout."""

from typing import Any

import dagster as dg

from ml_assets.assets.daily_asset import DailyAssetSpec, DayContext, daily_asset
from ml_assets.models.catalog import CatalogEntry, model_key
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "evaluation"


def model_leaderboard(day: str, inputs: dict[str, Any], ctx: DayContext) -> Frame:
    """Every model of the day scored on the training set's holdout rows, ranked."""
    from ml_assets.models.evaluate import score
    from ml_assets.models.features import LABEL
    from ml_assets.models.leaderboard import rank
    from ml_assets.models.train import holdout, predict

    rows = holdout(inputs["training_set"])
    y = rows[LABEL].to_numpy()
    models = {name: model for name, model in inputs.items() if name != "training_set"}
    ctx.add_metadata({"holdout_rows": len(rows)})
    return rank({name: (model, score(y, predict(model, rows))) for name, model in models.items()})


def _board_summary(board: Frame) -> dict[str, Any]:
    best = board.iloc[0]
    return {
        "best_model": str(best["model"]),
        "best_auc": float(best["auc"]),
        "models": len(board),
        "leaderboard": dg.MetadataValue.md(
            board.drop(columns=["sha256"]).to_markdown(index=False, floatfmt=".4f")
        ),
    }


def build_leaderboard_asset(settings: Settings, catalog: list[CatalogEntry]) -> dg.AssetsDefinition:
    spec = DailyAssetSpec(
        name="model_leaderboard",
        group=GROUP,
        kinds=frozenset({"pandas", "parquet"}),
        code_version="2",
        description="Every model on the same holdout rows: AUC, log-loss, Brier, calibration; "
        "ranked by AUC.",
        ins={"training_set": None, **{model_key(e): None for e in catalog}},
        contract="model_leaderboard",
        describe=_board_summary,
        backfill="model",
        lazy=True,
    )
    return daily_asset(spec, settings, model_leaderboard)
