"""Deterministic LightGBM training and prediction; models travel as LightGBM text, never pickled."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ml_assets.models.features import CATEGORICAL_FEATURES, FEATURES, LABEL
from ml_assets.models.training_set import HOLDOUT, SPLIT, TRAIN

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ml_assets.models.catalog import CatalogEntry
    from ml_assets.models.training_guard import TrainingGuard


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
    gpu_device: str = ""
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
GpuFallback = Literal["cpu", "fail"]


def gpu_plan(fallback: GpuFallback) -> tuple[dict[str, Any], str, str]:
    """For a ``gpu`` entry: (extra LightGBM params, OpenCL device, note if it trains on the CPU).

    The probe (:mod:`ml_assets.models.gpu`) decides; only "no usable GPU" leads to the CPU, and
    only where ``fallback`` is ``cpu``. With ``fail`` (production) a missing GPU, or an OpenCL
    device that is really the CPU, raises :class:`~ml_assets.models.gpu.GpuUnavailable`.
    """
    from ml_assets.models.gpu import GpuUnavailable, probe

    found = probe()
    reason = found.reason
    if found.usable and found.on_cpu and fallback == "fail":
        reason = (
            f"the only OpenCL device is the CPU ({found.device}); "
            "is the NVIDIA OpenCL ICD (/etc/OpenCL/vendors/nvidia.icd) registered?"
        )
    elif found.usable:
        return dict(GPU_PARAMS), found.device, ""
    if fallback == "fail":
        raise GpuUnavailable(reason)
    return {}, "", f"GPU requested but unavailable ({reason}); trained on CPU"


def fit(
    training_set: pd.DataFrame,
    entry: CatalogEntry,
    seed: int,
    num_threads: int,
    guard: TrainingGuard | None = None,
    gpu_fallback: GpuFallback = "cpu",
) -> TrainedModel:
    """Train one catalog entry on its window of the training rows.

    A ``gpu`` profile trains with LightGBM's GPU (OpenCL) learner once a probe has found a usable
    device (:func:`gpu_plan`); otherwise it trains on the CPU with ``device_note`` saying why, or
    fails (``gpu_fallback="fail"``). Errors of the GPU learner itself (memory, bugs) are raised,
    never retried on the CPU. The model hash depends on the data, params, device and
    ``num_threads``. With a ``guard`` training checkpoints as it goes and continues from a
    checkpoint of the same inputs (``init_model``), training only the remaining rounds.
    """
    import lightgbm as lgb

    from ml_assets.models.training_guard import fingerprint, resumable

    rows = training_rows(training_set, entry.window_days)
    if rows.empty:
        raise ValueError(f"model {entry.name}: no training rows in its window")
    params = lightgbm_params(entry, seed, num_threads)
    gpu_device, note = "", ""
    if entry.profile == "gpu":
        extra, gpu_device, note = gpu_plan(gpu_fallback)
        params |= extra
    x, y = model_matrix(rows), rows[LABEL].astype("float64")
    start = None
    if guard is not None:
        key = fingerprint(x, y, params, entry.num_boost_round)
        start = guard.start(key, enabled=resumable(params))
    done = start.iteration if start else 0
    if start is not None and done >= entry.num_boost_round:
        booster = lgb.Booster(model_str=start.model_text)
    else:
        booster = lgb.train(
            params,
            lgb.Dataset(x, label=y),
            num_boost_round=entry.num_boost_round - done,
            init_model=lgb.Booster(model_str=start.model_text) if start else None,
            callbacks=[guard] if guard is not None else None,
        )
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
        device="gpu" if gpu_device else "cpu",
        device_note=note,
        gpu_device=gpu_device,
        resumed_from_iteration=done,
    )


def predict(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """Delay probabilities for the rows of ``frame``."""
    import lightgbm as lgb

    booster = lgb.Booster(model_str=model.model_text)
    return booster.predict(model_matrix(frame, model.features))


def holdout(training_set: pd.DataFrame) -> pd.DataFrame:
    return training_set.loc[training_set[SPLIT] == HOLDOUT]
