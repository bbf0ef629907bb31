"""Ranking scored models into a leaderboard frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ml_assets.models.train import TrainedModel


def rank(scored: dict[str, tuple[TrainedModel, dict[str, Any]]]) -> pd.DataFrame:
    """One row per model, best AUC first (ties broken by log-loss, then name)."""
    import pandas as pd

    rows = [
        {
            "model": model.name,
            "asset": asset,
            "sha256": model.sha256,
            **metrics,
            "train_window": model.window,
            "train_rows": model.train_rows,
            "train_first_day": model.train_first_day,
            "train_last_day": model.train_last_day,
        }
        for asset, (model, metrics) in scored.items()
    ]
    board = pd.DataFrame(rows).sort_values(
        ["auc", "log_loss", "model"], ascending=[False, True, True], kind="stable"
    )
    board.insert(0, "rank", range(1, len(board) + 1))
    return board.reset_index(drop=True)
