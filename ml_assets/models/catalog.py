"""The model catalog: one entry per LightGBM configuration;
each becomes an asset ``model__<name>``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Profile = Literal["cpu-small", "cpu-large", "gpu"]
RESERVED_PARAMS = ("objective", "seed", "num_threads", "deterministic", "verbose", "device_type")


class CatalogEntry(BaseModel):
    """One model configuration: LightGBM params, training window and where it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    params: dict[str, Any] = Field(default_factory=dict)
    num_boost_round: int = Field(200, ge=1, le=5000)
    window_days: int | None = Field(
        None, ge=1, description="Trailing training days; None = expanding."
    )
    profile: Profile = "cpu-small"
    spot: bool = True
    version: str = "1"
    description: str = ""
    timeout_s: float | None = Field(None, gt=0, description="Step time limit (default: settings).")

    @field_validator("params")
    @classmethod
    def _no_reserved(cls, params: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(set(params) & set(RESERVED_PARAMS))
        if clash:
            raise ValueError(f"params {clash} are set by the pipeline, not by catalog entries")
        return params


def model_key(entry: CatalogEntry) -> str:
    """The asset key (and op name) of a catalog entry's model: ``model__<name>``."""
    return f"model__{entry.name}"


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[CatalogEntry]

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[CatalogEntry]) -> list[CatalogEntry]:
        if not models:
            raise ValueError("the catalog needs at least one model")
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate model names in catalog: {dupes}")
        return models


def load_catalog(path: str | Path) -> list[CatalogEntry]:
    """Read and validate a YAML catalog (``models: [{name, params, ...}, ...]``)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"model catalog {path} does not exist") from None
    try:
        return Catalog.model_validate(raw).models
    except ValueError as exc:
        raise ValueError(f"model catalog {path} is invalid: {exc}") from None
