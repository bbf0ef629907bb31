"""Feast objects: entities, views over the lake's feature Parquet, the model's feature service.

Flight views (entity ``flight``) read ``<lake>/feast_features/<day>.parquet``: one row per flight,
stamped with its prediction time. Entity views (carrier, origin, route, origin-hour, plane) read
``<lake>/feast_<view>/<day>.parquet``: one row per key and day, stamped when the day's values are
known (``entity_stamp``: local midnight minus the horizon). A point-in-time join
(``get_historical_features``) returns, for an entity row at time *t*, per view the latest feature
row stamped at or before *t* and no older than the view's TTL.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from ml_assets.models.features import (
    CATEGORICAL_FEATURES,
    ENTITY_TIMESTAMP,
    ENTITY_VIEWS,
    FLIGHT_FEATURES,
    FLIGHT_TRAFFIC_FEATURES,
    KEY,
    build_entity_rows,
    build_feature_rows,
    join_keys,
)

if TYPE_CHECKING:
    import feast
    import pandas as pd

SERVICE = "delay_model_v1"
SOURCE_ASSET = "feast_features"
ENTITY_ASSETS = {view: f"feast_{view}" for view in ENTITY_VIEWS}
FLIGHT_VIEWS = ("flight_features", "traffic_features")
TIMESTAMP = "prediction_ts"
IDENTITY_FEATURES = ("tailnum",)  # served with the flight so the online path can find its plane
KEY_SOURCES = {"plane_id": "tailnum"}  # join keys a served feature provides (online reads)
VIEW_TTL_DAYS = 2  # one unit: ibis (duckdb store) rejects mixed-unit intervals
TEAM_TAGS = {"team": "ml-platform"}


def feast_frames(
    flight_features: pd.DataFrame, traffic_features: pd.DataFrame, day: str, horizon_hours: float
) -> dict[str, pd.DataFrame]:
    """The day's Parquet frames Feast reads, by asset name (flight rows carry their join keys)."""
    rows = build_feature_rows(flight_features, traffic_features)
    keys = join_keys(flight_features).drop(columns=[KEY])
    keys[KEY] = flight_features[KEY].to_numpy()
    rows = rows.merge(keys, on=KEY, how="left", validate="one_to_one")
    rows["tailnum"] = rows["plane_id"]
    entity = build_entity_rows(flight_features, traffic_features, day, horizon_hours)
    return {SOURCE_ASSET: rows, **{ENTITY_ASSETS[v]: frame for v, frame in entity.items()}}


@cache
def repo_objects(lake_base: str) -> dict[str, Any]:
    """Entities, sources, views and the feature service over ``<lake>/<asset>/*.parquet``."""
    from datetime import timedelta

    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    base = lake_base.rstrip("/")
    flight = Entity(
        name="flight",
        join_keys=[KEY],
        value_type=ValueType.STRING,
        description="One scheduled departure (date/carrier+number/origin-dest/time).",
        tags=TEAM_TAGS,
    )
    entities = {"flight": flight}
    for entity, key, _ in ENTITY_VIEWS.values():
        entities[entity] = Entity(
            name=entity,
            join_keys=[key],
            value_type=ValueType.STRING,
            tags=TEAM_TAGS,
            description=f"Join key {key} (see ml_assets.models.features.join_keys).",
        )

    sources: dict[str, FileSource] = {}  # one per asset: both flight views share theirs

    def view(name, entity, fields, source_asset, timestamp, description) -> FeatureView:
        source = sources.get(source_asset)
        if source is None:
            source = sources[source_asset] = FileSource(
                name=f"{source_asset}_source",
                path=f"{base}/{source_asset}/*.parquet",
                timestamp_field=timestamp,
            )
        return FeatureView(
            name=name,
            entities=[entity],
            ttl=timedelta(days=VIEW_TTL_DAYS),
            schema=fields,
            source=source,
            online=True,
            description=description,
            tags=TEAM_TAGS,
        )

    views = [
        view(
            "flight_features",
            flight,
            [Field(name=c, dtype=String) for c in (*CATEGORICAL_FEATURES, *IDENTITY_FEATURES)]
            + [Field(name=c, dtype=Float64) for c in FLIGHT_FEATURES],
            SOURCE_ASSET,
            TIMESTAMP,
            "Route, calendar, plane and the origin's weather observed by prediction time.",
        ),
        view(
            "traffic_features",
            flight,
            [Field(name=c, dtype=Float64) for c in FLIGHT_TRAFFIC_FEATURES],
            SOURCE_ASSET,
            TIMESTAMP,
            "The flight's congestion, the day's delays known at prediction time, its plane's legs.",
        ),
    ]
    for name, (entity, _, features) in ENTITY_VIEWS.items():
        views.append(
            view(
                name,
                entities[entity],
                [Field(name=c, dtype=Float64) for c in features],
                ENTITY_ASSETS[name],
                ENTITY_TIMESTAMP,
                f"Per {entity} and day, known before the day's first prediction.",
            )
        )
    service = FeatureService(
        name=SERVICE,
        features=views,
        tags=TEAM_TAGS,
        description="Every feature the LightGBM catalog trains on.",
    )
    return {"entities": list(entities.values()), "views": views, "service": service}


def view_sources() -> dict[str, tuple[str, str]]:
    """View -> (the lake asset whose Parquet it reads, its event-time column)."""
    return {
        **{view: (SOURCE_ASSET, TIMESTAMP) for view in FLIGHT_VIEWS},
        **{view: (asset, ENTITY_TIMESTAMP) for view, asset in ENTITY_ASSETS.items()},
    }


def apply_objects(lake_base: str) -> list[feast.Entity | feast.FeatureView | feast.FeatureService]:
    objects = repo_objects(lake_base)
    return [*objects["entities"], *objects["views"], objects["service"]]
