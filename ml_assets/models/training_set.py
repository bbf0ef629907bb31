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
    unmatched_rows: int
    first_day: str
    last_day: str
    positive_rate: float


def holdout_start(day: str, holdout_days: int) -> str:
    """First day of the holdout that ends on ``day``."""
    return (dt.date.fromisoformat(day) - dt.timedelta(days=holdout_days - 1)).isoformat()


def build_training_set(
    flight_features: pd.DataFrame,
    traffic_features: pd.DataFrame,
    day: str,
    holdout_days: int,
    max_unmatched_rows: int = 0,
) -> tuple[pd.DataFrame, TrainingSetSummary]:
    """Join both feature branches one-to-one, drop unlabelled (cancelled) flights, split by time.

    The last ``holdout_days`` days ending on ``day`` are the holdout; earlier days are training
    rows. A flight present in one branch only (quarantined by the other branch's contract) is
    dropped; more than ``max_unmatched_rows`` of them is an error.
    """
    joined = flight_features.merge(traffic_features, on=KEY, how="inner", validate="one_to_one")
    unmatched = len(flight_features) + len(traffic_features) - 2 * len(joined)
    if unmatched > max_unmatched_rows:
        missing = len(flight_features) - len(joined)
        raise ValueError(
            f"training_set {day}: {missing} flights have flight features but no traffic features"
            f" and {len(traffic_features) - len(joined)} the reverse"
            f" (at most {max_unmatched_rows} may be missing)"
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
        unmatched_rows=unmatched,
        first_day=str(labelled["flight_date"].min()) if len(labelled) else day,
        last_day=str(labelled["flight_date"].max()) if len(labelled) else day,
        positive_rate=float(labelled[LABEL].mean()) if len(labelled) else float("nan"),
    )
    return labelled, summary


def split_served_features(
    flight_features: pd.DataFrame, served: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature-store rows -> the two branches ``build_training_set`` joins.

    Identity and label columns come from ``flight_features``; every feature value from ``served``
    (a point-in-time retrieval). Flights the store had no row for are left out of the traffic
    branch, so ``build_training_set`` counts them as unmatched instead of training on nulls.
    """
    from ml_assets.models.features import CATEGORICAL_FEATURES, FLIGHT_FEATURES, TRAFFIC_FEATURES

    served = served.drop_duplicates(KEY)
    identity = [
        c for c in flight_features.columns if c not in (*CATEGORICAL_FEATURES, *FLIGHT_FEATURES)
    ]
    flight_branch = flight_features.loc[:, identity].merge(
        served.loc[:, [KEY, *CATEGORICAL_FEATURES, *FLIGHT_FEATURES]],
        on=KEY,
        how="left",
        validate="one_to_one",
    )
    found = served[list(CATEGORICAL_FEATURES)].notna().all(axis=1)
    traffic_branch = served.loc[found, [KEY, *TRAFFIC_FEATURES]].reset_index(drop=True)
    return flight_branch.loc[:, list(flight_features.columns)], traffic_branch
