"""Error taxonomy: transient faults are retried with backoff, persistent ones fail at once.

Transient: network timeouts and resets, HTTP 408/429/5xx (GCS), Postgres or Redis unavailable or
busy, SMTP 4xx replies. Persistent: everything else (contract violations, missing upstream data,
bad configuration, code errors), raised as ``dg.Failure(allow_retries=False)`` so the step fails
once and the failure sensor alerts.
"""

from __future__ import annotations

import errno
import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

if TYPE_CHECKING:
    from ml_assets.settings import Settings

Kind = Literal["transient", "persistent"]
TRANSIENT: Kind = "transient"
PERSISTENT: Kind = "persistent"

TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EAGAIN,
        errno.EBUSY,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)
TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
REDIS_BUSY = (
    "BUSY",
    "LOADING",
    "TRYAGAIN",
    "MASTERDOWN",
)  # replies of a busy or failing-over Redis
# By (module prefix, class name), so classifying never imports redis, psycopg2 or Google clients.
TRANSIENT_CLASSES = frozenset(
    {
        ("redis", "ConnectionError"),
        ("redis", "TimeoutError"),
        ("redis", "BusyLoadingError"),
        ("psycopg2", "OperationalError"),
        ("psycopg", "OperationalError"),
        ("sqlalchemy", "OperationalError"),
        ("sqlalchemy", "DisconnectionError"),
        ("smtplib", "SMTPServerDisconnected"),
        ("smtplib", "SMTPConnectError"),
        ("aiohttp", "ServerDisconnectedError"),
        ("aiohttp", "ClientConnectionError"),
        ("aiohttp", "ClientPayloadError"),  # a reset mid-body (gcsfs: a cut GCS download)
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
        ("urllib3", "ProtocolError"),
        ("google", "RetryError"),
        ("google", "TransportError"),
    }
)


# Refused credentials: redis-py makes them a ConnectionError, but a wrong password never clears by
# itself (a chain holding one is persistent: the step fails once and alerts).
PERSISTENT_CLASSES = frozenset(
    {("redis", "AuthenticationError"), ("redis", "AuthenticationWrongNumberOfArgsError")}
)


class TransientError(RuntimeError):
    """A fault expected to clear by itself (raise it to ask for a retry explicitly)."""


def _http_status(exc: BaseException) -> int | None:
    for attribute in ("status_code", "status", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def _is_transient(exc: BaseException) -> bool:
    import smtplib

    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return True
    module = type(exc).__module__.split(".")[0]
    if any((module, cls.__name__) in TRANSIENT_CLASSES for cls in type(exc).__mro__):
        return True
    if module == "redis" and str(exc).startswith(REDIS_BUSY):
        return True
    return _http_status(exc) in TRANSIENT_HTTP and not isinstance(exc, OSError)


def classify(exc: BaseException) -> Kind:
    """``transient`` if ``exc`` or an exception that caused it is a transient fault."""
    if isinstance(exc, dg.Failure) and not exc.allow_retries:
        return PERSISTENT
    return TRANSIENT if _chain_is_transient(exc) else PERSISTENT


def _chain_is_transient(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (type(current).__module__.split(".")[0], type(current).__name__) in PERSISTENT_CLASSES:
            return False
        if _is_transient(current):
            return True
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return False


def retry_policy(settings: Settings) -> dg.RetryPolicy:
    """Step retries for transient faults: exponential backoff with jitter, from settings."""
    return dg.RetryPolicy(
        max_retries=settings.retry_max_retries,
        delay=settings.retry_delay_s,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def persistent_failure(what: str, exc: BaseException) -> dg.Failure:
    """``Failure(allow_retries=False)`` naming ``what`` and the error's class; secrets masked."""
    from ml_assets.security import redact

    return dg.Failure(
        description=redact(f"{what}: {exc}"),
        metadata={"error_class": PERSISTENT, "error_type": type(exc).__name__},
        allow_retries=False,
    )


@contextmanager
def fail_fast(what: str) -> Iterator[None]:
    """Let transient faults through (the step's ``RetryPolicy`` retries them);
    fail the rest once."""
    try:
        yield
    except dg.Failure as exc:
        if classify(exc) == PERSISTENT and exc.allow_retries:
            raise dg.Failure(exc.description, metadata=exc.metadata, allow_retries=False) from exc
        raise
    except (dg.DagsterError, dg.RetryRequested):
        raise  # Dagster's own control flow (e.g. a step asking to be retried after preemption)
    except Exception as exc:
        if classify(exc) == TRANSIENT:
            raise
        raise persistent_failure(what, exc) from exc


def classified(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Asset body decorator: ``fail_fast`` named after the step and partition of its context.

    Works for plain and generator bodies (``@dg.multi_asset`` yielding outputs).
    """

    def name(context: dg.AssetExecutionContext) -> str:
        what = context.op_def.name
        return f"{what}[{context.partition_key}]" if context.has_partition_key else what

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Any:
            with fail_fast(name(context)):
                yield from fn(context, *args, **kwargs)

        return generator

    @functools.wraps(fn)
    def wrapper(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Any:
        with fail_fast(name(context)):
            return fn(context, *args, **kwargs)

    return wrapper
