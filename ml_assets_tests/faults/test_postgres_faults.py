"""Postgres connection loss during a run: the instance (dagster-postgres) reconnects and the run's
record is complete. The fault is confined to a scratch database of this test."""

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ml_assets.definitions import build_defs
from ml_assets.settings import Settings
from ml_assets_tests.conftest import POSTGRES

DAY = "2013-01-05"
OUTAGE_S = 0.5  # shorter than dagster-postgres's reconnect window (5 tries, backoff from 0.2 s)


def _admin():
    import psycopg2

    admin = psycopg2.connect(
        host=POSTGRES["hostname"],
        port=POSTGRES["port"],
        user=POSTGRES["username"],
        dbname="postgres",
    )
    admin.autocommit = True
    return admin


@pytest.fixture
def scratch_db() -> Iterator[str]:
    name = f"ml_assets_faults_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def drop_connections(database: str, outage_s: float) -> int:
    """Terminate every session on ``database`` and refuse new ones for ``outage_s``."""
    admin = _admin()
    with admin.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        terminated = cursor.fetchone()[0]

    def reopen() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        admin.close()

    threading.Timer(outage_s, reopen).start()
    return terminated


def test_run_survives_postgres_connection_loss(
    settings: Settings, tmp_path: Path, scratch_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    outages: list[int] = []

    @dg.asset(
        partitions_def=build_defs(settings).resolve_assets_def("raw_flights").partitions_def,
        deps=["raw_flights"],
    )
    def postgres_outage(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        context.log.info("dropping every connection to the instance's database")
        outages.append(drop_connections(scratch_db, OUTAGE_S))
        context.log.info("written while the database refused connections, or just after")
        return dg.MaterializeResult(metadata={"terminated": outages[-1]})

    home = tmp_path / "home"
    home.mkdir()
    db = {**POSTGRES, "db_name": scratch_db, "scheme": "postgresql+psycopg2"}
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"storage": {"postgres": {"postgres_db": db}}})
    )
    defs = dg.Definitions.merge(build_defs(settings), dg.Definitions(assets=[postgres_outage]))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            partition_key=DAY,
            raise_on_error=False,
            asset_selection=[dg.AssetKey("raw_flights"), dg.AssetKey("postgres_outage")],
        )
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        records = instance.get_records_for_run(result.run_id).records
        events = [
            r.event_log_entry.dagster_event for r in records if r.event_log_entry.is_dagster_event
        ]
        succeeded = {e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
        assert {"raw_flights", "postgres_outage"} <= succeeded
        assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        materialized = {e.asset_key.to_user_string() for e in events if e.is_step_materialization}
        assert materialized == {"raw_flights", "postgres_outage"}
        logs = [r.event_log_entry.user_message for r in records]
        assert any("written while the database refused connections" in m for m in logs)
    assert len(outages) == 1
    reconnects = [r for r in caplog.records if "Retrying failed database connection" in r.message]
    assert reconnects and "not currently accepting connections" in reconnects[0].message
