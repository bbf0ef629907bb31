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
