"""Feast objects: the flight entity, views over the lake's feature Parquet, the model's service.

The views read ``<lake>/feast_features/<day>.parquet`` (asset ``feast_features``: both feature
branches of a day joined, one row per flight). Both views are keyed by flight and time-stamped
with the flight's prediction time, so a
point-in-time join (``get_historical_features``) returns, for an entity row at time *t*, only
feature rows stamped at or before *t* and no older than the view's TTL.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from ml_assets.models.features import CATEGORICAL_FEATURES, FLIGHT_FEATURES, KEY, TRAFFIC_FEATURES

if TYPE_CHECKING:
    import feast

SERVICE = "delay_model_v1"
SOURCE_ASSET = "feast_features"
TIMESTAMP = "prediction_ts"
VIEW_TTL_DAYS = 2  # one unit: ibis (duckdb store) rejects mixed-unit intervals
TEAM_TAGS = {"team": "ml-platform"}


@cache
def repo_objects(lake_base: str) -> dict[str, Any]:
    """Entities, sources, views and the feature service over ``<lake>/<view>/*.parquet``."""
    from datetime import timedelta

    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    flight = Entity(
        name="flight", join_keys=[KEY], value_type=ValueType.STRING,
        description="One scheduled departure (date/carrier+number/origin-dest/time).", tags=TEAM_TAGS,
    )  # fmt: skip
    base = lake_base.rstrip("/")

    source = FileSource(
        name="feast_features_source",
        path=f"{base}/{SOURCE_ASSET}/*.parquet",
        timestamp_field=TIMESTAMP,
    )

    def view(name: str, fields: list[Field], description: str) -> FeatureView:
        return FeatureView(
            name=name, entities=[flight], ttl=timedelta(days=VIEW_TTL_DAYS), schema=fields,
            source=source, online=True, description=description, tags=TEAM_TAGS,
        )  # fmt: skip

    flight_view = view(
        "flight_features",
        [Field(name=c, dtype=String) for c in CATEGORICAL_FEATURES]
        + [Field(name=c, dtype=Float64) for c in FLIGHT_FEATURES],
        "Route, calendar, plane and the origin's weather observed by prediction time.",
    )
    traffic_view = view(
        "traffic_features",
        [Field(name=c, dtype=Float64) for c in TRAFFIC_FEATURES],
        "Congestion, trailing delay rates and the day's delays known at prediction time.",
    )
    service = FeatureService(
        name=SERVICE, features=[flight_view, traffic_view], tags=TEAM_TAGS,
        description="Every feature the LightGBM catalog trains on.",
    )  # fmt: skip
    return {"entities": [flight], "views": [flight_view, traffic_view], "service": service}


def apply_objects(lake_base: str) -> list[feast.Entity | feast.FeatureView | feast.FeatureService]:
    objects = repo_objects(lake_base)
    return [*objects["entities"], *objects["views"], objects["service"]]
