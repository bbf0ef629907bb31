"""The error taxonomy: which real client errors are retried, and what fails at once."""

from __future__ import annotations

import errno
import smtplib

import dagster as dg
import pytest

from ml_assets.errors import (
    PERSISTENT,
    TRANSIENT,
    TransientError,
    classify,
    fail_fast,
    retry_policy,
)
from ml_assets.resources.feature_store import FeatureStoreError
from ml_assets.resources.lake import CorruptLakeFile
from ml_assets.resources.registry import RegistryError
from ml_assets.security import UnsafeNameError
from ml_assets.settings import Settings
from ml_assets.sources.landing_files import LandingError


def _transient() -> list[BaseException]:
    import google.api_core.exceptions as google
    import psycopg2
    import redis.exceptions
    import sqlalchemy.exc
    from gcsfs.retry import HttpError

    return [
        ConnectionResetError(errno.ECONNRESET, "reset by peer"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError("timed out"),
        OSError(errno.ETIMEDOUT, "timed out"),
        OSError(errno.EPIPE, "broken pipe"),
        TransientError("asked for a retry"),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script"),
        psycopg2.OperationalError("server closed the connection unexpectedly"),
        sqlalchemy.exc.OperationalError("INSERT", {}, Exception("terminating connection")),
        smtplib.SMTPResponseException(451, b"4.3.0 try again later"),
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        google.TooManyRequests("rate limited"),
        google.ServiceUnavailable("backend error"),
        HttpError({"code": 503, "message": "backend error"}),
        HttpError({"code": 429, "message": "rate limited"}),
    ]


def _persistent() -> list[BaseException]:
    import google.api_core.exceptions as google
    import redis.exceptions
    from gcsfs.retry import HttpError

    return [
        ValueError("bad value"),
        KeyError("column"),
        TypeError("code error"),
        FileNotFoundError(errno.ENOENT, "missing upstream partition"),
        PermissionError(errno.EACCES, "permission denied"),
        LandingError("flights for 2013-01-05: file_exists"),
        CorruptLakeFile("not readable Parquet"),
        RegistryError("corrupt model"),
        UnsafeNameError("partition key '../x'"),
        redis.exceptions.ResponseError("WRONGTYPE"),
        redis.exceptions.AuthenticationError("invalid username-password pair"),  # a ConnectionError
        smtplib.SMTPResponseException(550, b"5.1.1 no such user"),
        google.NotFound("no such bucket"),
        google.Forbidden("no access"),
        HttpError({"code": 403, "message": "forbidden"}),
        dg.Failure("contract violated", allow_retries=False),
    ]


@pytest.mark.parametrize("make", range(18))
def test_transient_faults(make: int) -> None:
    exc = _transient()[make]
    assert classify(exc) == TRANSIENT, exc


@pytest.mark.parametrize("make", range(16))
def test_persistent_faults(make: int) -> None:
    exc = _persistent()[make]
    assert classify(exc) == PERSISTENT, exc


def test_lists_are_fully_parametrized() -> None:
    assert (len(_transient()), len(_persistent())) == (18, 16)


def test_a_wrapped_transient_cause_is_transient() -> None:
    import redis.exceptions

    try:
        try:
            raise redis.exceptions.ConnectionError("Error 104 connection reset")
        except redis.exceptions.ConnectionError as exc:
            raise FeatureStoreError("online store unreachable") from exc
    except FeatureStoreError as wrapped:
        assert classify(wrapped) == TRANSIENT
    assert classify(FeatureStoreError("no features for flight x")) == PERSISTENT


def test_fail_fast_lets_transient_faults_reach_the_retry_policy() -> None:
    with pytest.raises(ConnectionResetError), fail_fast("raw_flights[2013-01-05]"):
        raise ConnectionResetError(errno.ECONNRESET, "reset")


def test_fail_fast_turns_persistent_faults_into_failures_without_retries() -> None:
    with pytest.raises(dg.Failure) as info, fail_fast("raw_flights[2013-01-05]"):
        raise KeyError("dep_delay")
    assert not info.value.allow_retries
    assert info.value.description == "raw_flights[2013-01-05]: 'dep_delay'"
    assert info.value.metadata["error_type"].value == "KeyError"
    with pytest.raises(dg.Failure) as info, fail_fast("x"):
        raise ValueError("bad DSN postgresql://ml:hunter2@db/dagster")
    assert info.value.description == "x: bad DSN postgresql://ml:***@db/dagster"
    with pytest.raises(dg.Failure) as info, fail_fast("x"):
        raise dg.Failure("keep me", metadata={"rule": "r"})
    assert not info.value.allow_retries and info.value.metadata["rule"].value == "r"


def test_fail_fast_leaves_dagster_control_flow_alone() -> None:
    with pytest.raises(dg.RetryRequested), fail_fast("model__gbdt[2013-01-05]"):
        raise dg.RetryRequested(max_retries=2)


def test_retry_policy_comes_from_settings(settings: Settings) -> None:
    policy = retry_policy(settings.model_copy(update={"retry_max_retries": 5, "retry_delay_s": 2}))
    assert (policy.max_retries, policy.delay) == (5, 2)
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
    prod = Settings.from_env({"ML_ASSETS_RETRY_MAX": "2", "ML_ASSETS_RETRY_DELAY": "30"})
    assert (prod.retry_max_retries, prod.retry_delay_s) == (2, 30.0)


def test_every_asset_has_the_retry_policy(settings: Settings) -> None:
    from ml_assets.definitions import build_defs

    defs = build_defs(settings)
    graph = defs.resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).assets_def.op.retry_policy
        for key in graph.materializable_asset_keys
    }
    assert policies and all(p == retry_policy(settings) for p in policies.values()), policies


def test_a_code_error_fails_once_and_a_transient_fault_is_retried(settings: Settings) -> None:
    """Through Dagster: ``@classified`` bodies under the settings' ``RetryPolicy``."""
    from ml_assets.errors import classified

    calls = {"buggy": 0, "flaky": 0}

    @dg.asset(retry_policy=retry_policy(settings))
    @classified
    def buggy(context):  # no annotations: this module uses postponed annotations
        calls["buggy"] += 1
        return None + 1  # a bug: persistent

    @dg.asset(retry_policy=retry_policy(settings))
    @classified
    def flaky(context):
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise TimeoutError("read timed out")

    result = dg.materialize([buggy, flaky], raise_on_error=False)
    assert calls == {"buggy": 1, "flaky": 3}
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.step_key == "buggy"
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("buggy: unsupported operand type")


def test_persistent_failures_blocks_let_other_exceptions_reach_outer_contexts() -> None:
    """A guard around the block (e.g. checkpointed training) still sees its own exceptions."""
    from ml_assets.assets.data_errors import persistent_failures

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted), persistent_failures("model__gbdt[2013-01-05]"):
        raise Interrupted("SIGTERM")
    failure = pytest.raises(dg.Failure, match="model__gbdt\\[2013-01-05\\]: no rows")
    with failure, persistent_failures("model__gbdt[2013-01-05]"):
        raise ValueError("no rows")


def test_classified_generator_bodies_of_multi_assets() -> None:
    from ml_assets.errors import classified

    @dg.multi_asset(outs={"a": dg.AssetOut(), "b": dg.AssetOut()}, name="both")
    @classified
    def both(context):
        yield dg.Output(1, output_name="a")
        raise KeyError("b's column")

    result = dg.materialize([both], raise_on_error=False)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data.user_failure_data
    assert data.description == 'both: "b\'s column"' and result.output_for_node("both", "a") == 1
