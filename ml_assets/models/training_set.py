"""The diamond join: flight features + traffic features over the window, split by time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.models.features import KEY, LABEL

if TYPE_CHECKING:
    import pandas as pd

SPLIT = "split"
TRAIN, HOLDOUT = "train", "holdout"


@dataclass(frozen=True)
class TrainingSetSummary:
    rows: int
    train_rows: int
    holdout_rows: int
    unlabelled_rows: int
    first_day: str
    last_day: str
    positive_rate: float


def holdout_start(day: str, holdout_days: int) -> str:
    """First day of the holdout that ends on ``day``."""
    return (dt.date.fromisoformat(day) - dt.timedelta(days=holdout_days - 1)).isoformat()


def build_training_set(
    flight_features: pd.DataFrame, traffic_features: pd.DataFrame, day: str, holdout_days: int
) -> tuple[pd.DataFrame, TrainingSetSummary]:
    """Join both feature branches one-to-one, drop unlabelled (cancelled) flights, split by time.

    The last ``holdout_days`` days ending on ``day`` are the holdout; earlier days are training rows.
    """
    joined = flight_features.merge(traffic_features, on=KEY, how="inner", validate="one_to_one")
    if len(joined) != len(flight_features):
        missing = len(flight_features) - len(joined)
        raise ValueError(
            f"training_set {day}: {missing} flights have flight features but no traffic features"
        )
    labelled = joined.loc[joined[LABEL].notna()].copy()
    start = holdout_start(day, holdout_days)
    labelled[SPLIT] = (labelled["flight_date"] >= start).map({True: HOLDOUT, False: TRAIN})
    labelled = labelled.sort_values(["sched_dep_ts", KEY], kind="stable").reset_index(drop=True)
    summary = TrainingSetSummary(
        rows=len(labelled),
        train_rows=int((labelled[SPLIT] == TRAIN).sum()),
        holdout_rows=int((labelled[SPLIT] == HOLDOUT).sum()),
        unlabelled_rows=len(joined) - len(labelled),
        first_day=str(labelled["flight_date"].min()) if len(labelled) else day,
        last_day=str(labelled["flight_date"].max()) if len(labelled) else day,
        positive_rate=float(labelled[LABEL].mean()) if len(labelled) else float("nan"),
    )
    return labelled, summary


def contract_violations(frame: pd.DataFrame, min_training_rows: int) -> list[str]:
    """The seed's contract on a training set: enough rows, labels present, both classes."""
    problems = []
    train = frame.loc[frame[SPLIT] == TRAIN]
    if len(train) <= min_training_rows:
        problems.append(f"training rows {len(train)} <= required {min_training_rows}")
    if frame[LABEL].isna().any():
        problems.append(f"{int(frame[LABEL].isna().sum())} rows have a null label")
    for part, rows in ((TRAIN, train), (HOLDOUT, frame.loc[frame[SPLIT] == HOLDOUT])):
        classes = {float(c) for c in rows[LABEL].dropna().unique()}
        if classes != {0.0, 1.0}:
            problems.append(f"{part} rows hold classes {sorted(classes)}, need both 0 and 1")
    return problems
