"""Persistent faults (bad data, bad config, bugs) fail the step at once, without retries."""

from collections.abc import Iterator
from contextlib import contextmanager

from ml_assets.errors import fail_fast


@contextmanager
def persistent_failures(what: str) -> Iterator[None]:
    """``Failure(allow_retries=False)`` naming ``what``, unless the fault is transient."""
    with fail_fast(what):
        yield
