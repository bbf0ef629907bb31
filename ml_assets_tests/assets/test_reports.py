"""AUC per model over time, rendered for the UI."""

from __future__ import annotations

import dagster as dg

from ml_assets.assets.reports import auc_history, auc_table, sparkline, trailing_days


def test_sparkline_scales_between_min_and_max_and_keeps_gaps() -> None:
    assert sparkline([0.70, 0.75, None, 0.80]) == "▁▅ █"
    assert sparkline([0.7, 0.7]) == "▁▁" and sparkline([None]) == ""


def test_trailing_days_stay_inside_2013() -> None:
    assert trailing_days("2013-01-02", 4) == ["2013-01-01", "2013-01-02"]
    assert trailing_days("2013-03-14", 3) == ["2013-03-12", "2013-03-13", "2013-03-14"]


def test_table_has_a_trend_row_per_model_and_a_row_per_day() -> None:
    days = ["2013-03-12", "2013-03-13", "2013-03-14"]
    table = auc_table(
        days, {"gbdt": {"2013-03-12": 0.74, "2013-03-14": 0.76}, "goss": {"2013-03-13": 0.75}}
    )
    lines = table.splitlines()
    assert lines[2] == "| gbdt | `▁ █` | 0.7400 | 0.7600 | 0.7400 | 0.7600 |"
    assert "| 2013-03-13 |  | 0.7500 |" in lines


def test_history_is_read_from_recorded_model_metadata() -> None:
    instance = dg.DagsterInstance.ephemeral()
    for day, auc in (("2013-01-14", 0.71), ("2013-01-15", 0.73), ("2013-01-16", 0.72)):
        instance.report_runless_asset_event(
            dg.AssetMaterialization("model__gbdt", partition=day, metadata={"holdout_auc": auc})
        )
    markdown = auc_history(instance, ["model__gbdt", "model__goss"], "2013-01-16", 14).value
    assert "| gbdt | `▁█▅` | 0.7100 | 0.7200 | 0.7100 | 0.7300 |" in markdown
    assert "| 2013-01-15 | 0.7300 |  |" in markdown
