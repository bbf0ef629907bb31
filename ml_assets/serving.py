"""Online prediction: a flight's features from the online store, scored by the deployed model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.feature_repo.definitions import VIEW_TTL_DAYS
from ml_assets.models.prepare import LOCAL_TZ

if TYPE_CHECKING:
    from ml_assets.resources.feature_store import FeatureStoreResource
    from ml_assets.resources.registry import ModelRegistry


@dataclass(frozen=True)
class Prediction:
    flight_id: str
    probability: float
    model: str
    model_sha256: str
    model_partition: str
    features_at: str
    stale: bool


def flight_id(carrier: str, flight: int, origin: str, dest: str, scheduled: str) -> str:
    """The pipeline's key for a departure; ``scheduled`` is local New York time 'YYYY-MM-DD HH:MM'."""
    when = dt.datetime.strptime(scheduled, "%Y-%m-%d %H:%M")
    return f"{when:%Y-%m-%d}/{carrier}{int(flight)}/{origin}-{dest}/{when:%H%M}"


def predict(
    feature_store: FeatureStoreResource,
    registry: ModelRegistry,
    flight: str,
    now: dt.datetime | None = None,
) -> Prediction:
    """Delay probability (departure > 15 min late) for one flight, with the model's version.

    Raises ``FeatureStoreError`` for an unknown flight or an unreachable store, and
    ``RegistryError`` when nothing is deployed.
    """
    import pandas as pd

    from ml_assets.models.train import predict as score
    from ml_assets.resources.registry import RegistryError

    deployed = registry.load_current()
    if deployed is None:
        raise RegistryError("no model is deployed yet (deployed_model has never promoted one)")
    model, manifest = deployed
    online = feature_store.online([flight])
    features_at = pd.Timestamp(online["features_at"].iloc[0])
    reference = pd.Timestamp(now) if now is not None else _prediction_time_of(flight)
    stale = reference - features_at > pd.Timedelta(days=VIEW_TTL_DAYS)
    probability = float(score(model, online)[0])
    return Prediction(
        flight_id=flight, probability=probability, model=model.name, model_sha256=model.sha256,
        model_partition=manifest.get("partition", ""), features_at=features_at.isoformat(), stale=bool(stale),
    )  # fmt: skip


def _prediction_time_of(flight: str):
    """A flight's own scheduled departure (the data set's 'now' for replaying 2013)."""
    import pandas as pd

    day, _, _, hhmm = flight.split("/")
    return pd.Timestamp(f"{day} {hhmm[:2]}:{hhmm[2:]}", tz=LOCAL_TZ).tz_convert("UTC")
