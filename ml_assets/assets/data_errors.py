"""Data and configuration errors inside an asset body fail the step at once, without retries.

Narrow on purpose: other exceptions pass through to the contexts around it (a checkpoint guard's
own interruptions, for one); the asset's ``@classified`` decorator sorts whatever remains.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from ml_assets.errors import persistent_failure
from ml_assets.models.prepare import SchemaError
from ml_assets.sources.landing_files import LandingError

PERSISTENT = (LandingError, SchemaError, KeyError, ValueError)


@contextmanager
def persistent_failures(what: str) -> Iterator[None]:
    """Turn data and configuration errors into ``Failure(allow_retries=False)`` naming ``what``."""
    try:
        yield
    except PERSISTENT as exc:
        raise persistent_failure(what, exc) from exc
