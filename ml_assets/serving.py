"""Online prediction: a flight's features from the online store, scored by the deployed model.

``Predictor`` is the serving path: it keeps the online reader and the parsed booster in memory
and reloads the model only when the registry's ``current`` pointer moves. ``predict`` is the
one-shot form used by the CLI.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml_assets.feature_repo.feast_objects import VIEW_TTL_DAYS
from ml_assets.models.features import Flight, parse_flight_id
from ml_assets.models.prepare import LOCAL_TZ

if TYPE_CHECKING:
    from ml_assets.models.scoring import RowScorer
    from ml_assets.resources.feature_store import FeatureStoreResource
    from ml_assets.resources.registry import ModelRegistry

_TTL = dt.timedelta(days=VIEW_TTL_DAYS)


@dataclass(frozen=True)
class Prediction:
    flight_id: str
    probability: float
    model: str
    model_sha256: str
    model_partition: str
    features_at: str
    stale: bool
    missing_views: tuple[str, ...] = ()


@dataclass
class Predictor:
    """Scores flights in-process with a warm online reader and booster (< 1 ms per flight)."""

    feature_store: FeatureStoreResource
    registry: ModelRegistry
    pointer_check_s: float = 5.0
    _scorer: RowScorer | None = field(default=None, init=False)
    _pointer: dict[str, Any] | None = field(default=None, init=False)
    _checked_at: float = field(default=-1e18, init=False)

    def predict(self, flight: Flight | str, now: dt.datetime | None = None) -> Prediction:
        """Delay probability (departure > 15 min late) for one flight, with the model's version.

        Raises ``FeatureStoreError`` for an unknown flight or an unreachable store, and
        ``RegistryError`` when nothing is deployed.
        """
        flight = parse_flight_id(flight) if isinstance(flight, str) else flight
        scorer = self._current_scorer()
        batch = self.feature_store.online_rows([flight.entity_row()])
        reference = now or _prediction_time_of(flight)
        features_at = batch.event_ts[0]
        model = scorer.model
        return Prediction(
            flight_id=flight.flight_id,
            probability=float(scorer.score([batch.row(0)])[0]),
            model=model.name,
            model_sha256=model.sha256,
            model_partition=(self._pointer or {}).get("partition", ""),
            features_at=features_at.isoformat(),
            stale=reference - features_at > _TTL,
            missing_views=batch.missing_views[0],
        )

    def _current_scorer(self) -> RowScorer:
        """The deployed model, reloaded (checksum verified) when ``current`` has moved."""
        from ml_assets.models.scoring import RowScorer
        from ml_assets.resources.registry import RegistryError

        clock = time.monotonic()
        if self._scorer is None or clock - self._checked_at >= self.pointer_check_s:
            pointer = self.registry.current()
            self._checked_at = clock
            if pointer is None:
                raise RegistryError(
                    "no model is deployed yet (deployed_model has never promoted one)"
                )
            if self._scorer is None or pointer["sha256"] != self._scorer.model.sha256:
                model, _ = self.registry.load(pointer["sha256"])
                self._scorer, self._pointer = RowScorer(model), pointer
        assert self._scorer is not None
        return self._scorer


def predict(
    feature_store: FeatureStoreResource,
    registry: ModelRegistry,
    flight: Flight | str,
    now: dt.datetime | None = None,
) -> Prediction:
    """One-shot ``Predictor.predict`` (the CLI's path); keep a ``Predictor`` to serve many."""
    return Predictor(feature_store, registry).predict(flight, now)


def _prediction_time_of(flight: Flight) -> dt.datetime:
    """A flight's own scheduled departure (the data set's 'now' for replaying 2013)."""
    from zoneinfo import ZoneInfo

    local = dt.datetime.strptime(flight.scheduled, "%Y-%m-%d %H:%M").replace(
        tzinfo=ZoneInfo(LOCAL_TZ)
    )
    return local.astimezone(dt.UTC)
