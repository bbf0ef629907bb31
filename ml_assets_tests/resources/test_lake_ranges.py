"""Range runs' partitions: values read or computed on access, in day order, memory bounded."""

from __future__ import annotations

import pandas as pd
import pytest

from ml_assets.resources.lake_ranges import PartitionFrames, window

DAYS = ["2013-03-01", "2013-03-02", "2013-03-03", "2013-03-04"]


def _frame(day: str, rows: int = 1000) -> pd.DataFrame:
    return pd.DataFrame({"day": [day] * rows, "x": range(rows)})


def test_a_lazy_range_computes_nothing_until_a_day_is_read() -> None:
    made: list[str] = []
    frames = PartitionFrames(produce=lambda day: made.append(day) or _frame(day), keys=DAYS[::-1])
    assert frames.lazy and list(frames) == DAYS and len(frames) == 4 and "2013-03-02" in frames
    assert made == []
    assert [frames[d]["day"].iloc[0] for d in frames] == DAYS and made == DAYS
    frames["2013-03-01"]
    assert made == [*DAYS, "2013-03-01"], "nothing kept without keep_bytes: read again"
    with pytest.raises(KeyError):
        frames["2013-02-28"]


def test_kept_days_stay_under_the_budget_dropping_the_oldest_first() -> None:
    made: list[str] = []
    one_day = int(_frame("x").memory_usage(index=False).sum())
    frames = PartitionFrames(
        produce=lambda day: made.append(day) or _frame(day), keys=DAYS, keep_bytes=2 * one_day
    )
    for day in DAYS[:3]:
        window(frames, day, 2)  # a trailing window of two days, day after day
    assert made == DAYS[:3], "each day read once while the window slides"
    frames[DAYS[0]]
    assert made == [*DAYS[:3], DAYS[0]], "the oldest day was dropped"


def test_a_sliding_window_keeps_no_day_it_has_moved_past() -> None:
    """However large the budget, a range run holds its input's window, not the whole range."""
    made: list[str] = []
    frames = PartitionFrames(
        produce=lambda day: made.append(day) or _frame(day), keys=DAYS, keep_bytes=2**40
    )
    for day in DAYS:
        window(frames, day, 2)
    assert made == DAYS, "each day read once"
    assert sorted(frames._values) == DAYS[-2:], "only the last window is kept"
    frames[DAYS[0]]
    assert made == [*DAYS, DAYS[0]], "a day before the window is read again"


def test_window_cuts_a_range_like_the_lake_joins_it() -> None:
    frames = PartitionFrames({d: _frame(d, 3) for d in DAYS})
    joined = window(frames, "2013-03-03", 2)
    assert list(joined["day"].unique()) == ["2013-03-02", "2013-03-03"] and len(joined) == 6
    single = _frame("2013-03-01", 3)
    assert window(single, "2013-03-01", 5) is single, "a daily run's frame passes through"
