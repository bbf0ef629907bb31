"""Deterministic LightGBM training and prediction; models travel as LightGBM text, never pickled."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml_assets.models.features import CATEGORICAL_FEATURES, FEATURES, LABEL
from ml_assets.models.training_set import HOLDOUT, SPLIT, TRAIN

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ml_assets.models.catalog import CatalogEntry
    from ml_assets.models.checkpoint import TrainingGuard


@dataclass(frozen=True)
class TrainedModel:
    """A trained booster (LightGBM text format) and the facts needed to trust and reuse it."""

    name: str
    model_text: str
    features: tuple[str, ...]
    params: dict[str, Any]
    num_boost_round: int
    train_rows: int
    train_first_day: str
    train_last_day: str
    catalog_version: str
    window: str = "expanding"
    device: str = "cpu"
    device_note: str = ""
    resumed_from_iteration: int = 0
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.model_text.encode()).hexdigest()
        if self.sha256 and self.sha256 != digest:
            raise ValueError(
                f"model {self.name}: sha256 mismatch (stored {self.sha256}, computed {digest})"
            )
        object.__setattr__(self, "sha256", digest)

    def meta(self) -> dict[str, Any]:
        """Everything but the model text (JSON-serialisable)."""
        return {k: v for k, v in self.__dict__.items() if k != "model_text"} | {
            "features": list(self.features)
        }


def lightgbm_params(entry: CatalogEntry, seed: int, num_threads: int) -> dict[str, Any]:
    """The catalog entry's params plus the pipeline's fixed ones (determinism, objective)."""
    return {
        **entry.params,
        "objective": "binary",
        "seed": seed,
        "num_threads": num_threads,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def model_matrix(frame: pd.DataFrame, features: tuple[str, ...] = FEATURES) -> pd.DataFrame:
    """Feature columns with categoricals as pandas categories (LightGBM maps them by value)."""
    import pandas as pd

    x = frame.loc[:, list(features)].copy()
    for column in x.columns:
        if column in CATEGORICAL_FEATURES:
            x[column] = x[column].astype("category")
        elif x[column].dtype == object:  # online rows: None for missing values
            x[column] = pd.to_numeric(x[column], errors="coerce").astype("float64")
    return x


def training_rows(training_set: pd.DataFrame, window_days: int | None) -> pd.DataFrame:
    """The training rows an entry uses: all of them, or the last ``window_days`` days."""
    train = training_set.loc[training_set[SPLIT] == TRAIN]
    if window_days is None or train.empty:
        return train
    last = dt.date.fromisoformat(str(train["flight_date"].max()))
    first = (last - dt.timedelta(days=window_days - 1)).isoformat()
    return train.loc[train["flight_date"] >= first]


GPU_PARAMS = {"device_type": "gpu", "gpu_use_dp": True}


def fit(
    training_set: pd.DataFrame,
    entry: CatalogEntry,
    seed: int,
    num_threads: int,
    guard: TrainingGuard | None = None,
) -> TrainedModel:
    """Train one catalog entry on its window of the training rows.

    A ``gpu`` profile trains with LightGBM's GPU (OpenCL) learner; when no GPU can be used the
    model is trained on the CPU and ``device_note`` says why (the asset logs it as a warning).
    With a ``guard`` training checkpoints as it goes and continues from a checkpoint of the same
    inputs (``init_model``), training only the remaining rounds.
    """
    import lightgbm as lgb

    from ml_assets.models.checkpoint import fingerprint, resumable

    rows = training_rows(training_set, entry.window_days)
    if rows.empty:
        raise ValueError(f"model {entry.name}: no training rows in its window")
    params = lightgbm_params(entry, seed, num_threads)
    x, y = model_matrix(rows), rows[LABEL].astype("float64")
    start = None
    if guard is not None:
        key = fingerprint(x, y, params, entry.num_boost_round)
        start = guard.start(key, enabled=resumable(params))
    done = start.iteration if start else 0

    def train(train_params: dict[str, Any]) -> lgb.Booster:
        if start is not None and done >= entry.num_boost_round:
            return lgb.Booster(model_str=start.model_text)
        return lgb.train(
            train_params,
            lgb.Dataset(x, label=y),
            num_boost_round=entry.num_boost_round - done,
            init_model=lgb.Booster(model_str=start.model_text) if start else None,
            callbacks=[guard] if guard is not None else None,
        )

    device, note, booster = "cpu", "", None
    if entry.profile == "gpu":
        try:
            booster = train(params | GPU_PARAMS)
            device, params = "gpu", params | GPU_PARAMS
        except lgb.basic.LightGBMError as exc:
            reason = str(exc).strip().splitlines()[0]
            note = f"GPU requested but unavailable ({reason}); trained on CPU"
    if booster is None:
        booster = train(params)
    return TrainedModel(
        name=entry.name,
        model_text=booster.model_to_string(),
        features=FEATURES,
        params=params,
        num_boost_round=entry.num_boost_round,
        train_rows=len(rows),
        train_first_day=str(rows["flight_date"].min()),
        train_last_day=str(rows["flight_date"].max()),
        catalog_version=entry.version,
        window="expanding" if entry.window_days is None else f"trailing {entry.window_days}d",
        device=device,
        device_note=note,
        resumed_from_iteration=done,
    )


def predict(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """Delay probabilities for the rows of ``frame``."""
    import lightgbm as lgb

    booster = lgb.Booster(model_str=model.model_text)
    return booster.predict(model_matrix(frame, model.features))


def holdout(training_set: pd.DataFrame) -> pd.DataFrame:
    return training_set.loc[training_set[SPLIT] == HOLDOUT]
