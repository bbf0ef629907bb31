"""Decoding Feast's serialized values on the lean online read path."""

import pytest
from feast.protos.feast.types.Value_pb2 import Int64List, Value

from ml_assets.feature_repo.online_reader import decode_value


@pytest.mark.parametrize(
    "value, expected",
    [
        (Value(double_val=1.5), 1.5),
        (Value(double_val=-0.0), -0.0),
        (Value(string_val="UA"), "UA"),
        (Value(string_val="x" * 300), "x" * 300),
        (Value(string_val="Zürich"), "Zürich"),
        (Value(int64_val=7), 7),
        (Value(float_val=0.25), 0.25),
        (Value(bool_val=True), True),
        (Value(int64_list_val=Int64List(val=[1, 2])), [1, 2]),
        (Value(), None),
    ],
)
def test_decode_value_matches_protobuf(value: Value, expected: object) -> None:
    assert decode_value(value.SerializeToString()) == expected


def test_decode_nan_and_missing() -> None:
    import math

    assert math.isnan(decode_value(Value(double_val=float("nan")).SerializeToString()))
    assert decode_value(None) is None and decode_value(b"") is None


@pytest.mark.parametrize(
    "join_keys, values",
    [
        (("flight_id",), ("2013-01-14/B627/JFK-BUF/2359",)),
        (("plane_id",), ("",)),
        (("origin_hour_id",), ("JFK-05",)),
        (("route_id", "carrier_id"), ("JFK-BUF", "B6")),
        (("zeta", "alpha", "mid"), ("Zürich", 42, "x" * 300)),
    ],
)
def test_entity_keys_match_feasts_serialization(join_keys, values) -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey

    from ml_assets.feature_repo.online_reader import entity_key_encoder

    feast_key = EntityKey(
        join_keys=list(join_keys), entity_values=[Value(string_val=str(v)) for v in values]
    )
    expected = serialize_entity_key(feast_key, entity_key_serialization_version=3)
    assert entity_key_encoder(3)(join_keys, values) == expected
