"""Persistent faults (bad data, bad config) fail the step at once, without retries."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ml_assets.models.prepare import SchemaError
from ml_assets.sources.landing import LandingError

PERSISTENT = (LandingError, SchemaError, KeyError, ValueError)


@contextmanager
def persistent_failures(what: str) -> Iterator[None]:
    """Turn data and configuration errors into ``Failure(allow_retries=False)`` naming ``what``."""
    try:
        yield
    except PERSISTENT as exc:
        raise dg.Failure(description=f"{what}: {exc}", allow_retries=False) from exc
