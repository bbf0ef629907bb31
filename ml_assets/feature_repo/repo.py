"""The repo's Feast objects at module level, for ``feast apply`` / ``feast plan`` run in this
directory (the pipeline registers the same objects itself: ``online_features``)."""

from ml_assets.feature_repo.feast_objects import repo_objects
from ml_assets.settings import Settings

_objects = repo_objects(Settings.from_env().lake_base)
flight, carrier, origin, route, origin_hour, plane = _objects["entities"]
(
    flight_features,
    traffic_features,
    carrier_stats,
    origin_stats,
    route_stats,
    origin_hour_stats,
    plane_stats,
) = _objects["views"]
delay_model_v1 = _objects["service"]
