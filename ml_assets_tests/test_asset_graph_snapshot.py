"""A checked-in snapshot of the asset graph, so that any change to its shape shows up in review.

Definitions are built with the default settings and catalog over temporary paths; per asset the
snapshot holds its group, kinds, owners, tags, op tags, code version, partitions, deps with their
partition mappings, backfill, retry and freshness policies, automation condition and pool; then
the asset checks, jobs (selected assets and checks), schedules, sensors, resources and executor.
Nothing in it depends on the machine, the working directory or the run.

After an intended change, regenerate the snapshot and commit it with the change:

    ML_ASSETS_UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q ml_assets_tests/test_asset_graph_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import dagster as dg

from ml_assets.definitions import build_defs
from ml_assets.settings import PROJECT_ROOT, Settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"
UPDATE_ENV = "ML_ASSETS_UPDATE_SNAPSHOTS"


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return value.days * 86400 + value.seconds + value.microseconds / 1e6


def _no_address(text: str) -> str:
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _call(name: str, fields: dict[str, Any]) -> str:
    """One line, ``Name(field=value, ...)``: a readable diff row."""
    return f"{name}({', '.join(f'{k}={v}' for k, v in fields.items())})"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    fields: dict[str, Any] = {}
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        end = partitions_def.end
        fields = {
            "start": partitions_def.start.isoformat(),
            "end": end.isoformat() if end else None,
            "timezone": partitions_def.timezone,
            "fmt": partitions_def.fmt,
        }
    return _call(type(partitions_def).__name__, fields)


def _mapping(mapping: dg.PartitionMapping | None) -> str | None:
    if mapping is None:
        return None
    fields = ("start_offset", "end_offset", "allow_nonexistent_upstream_partitions")
    return _call(
        type(mapping).__name__, {f: getattr(mapping, f) for f in fields if hasattr(mapping, f)}
    )


def _tag_value(value: str) -> Any:
    """A tag's value; JSON-encoded ones (``dagster-k8s/config``) decoded, for a readable diff."""
    if value.startswith(("{", "[")):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def _tags(tags: dict[str, str] | None) -> dict[str, Any]:
    return {k: _tag_value(str(v)) for k, v in sorted((tags or {}).items())}


def _backfill(policy: dg.BackfillPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "type": policy.policy_type.value,
        "max_partitions_per_run": policy.max_partitions_per_run,
    }


def _retry(policy: dg.RetryPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "max_retries": policy.max_retries,
        "delay": policy.delay,
        "backoff": policy.backoff.value if policy.backoff else None,
        "jitter": policy.jitter.value if policy.jitter else None,
    }


def _freshness(policy: Any) -> dict[str, Any] | None:
    if policy is None:
        return None
    shape: dict[str, Any] = {"type": type(policy).__name__}
    for field in ("fail_window", "warn_window"):
        if hasattr(policy, field):
            shape[f"{field}_s"] = _seconds(getattr(policy, field))
    return shape


def _condition(condition: dg.AutomationCondition | None) -> str | None:
    if condition is None:
        return None
    return condition.get_label() or _no_address(repr(condition))


def _asset(graph: Any, key: dg.AssetKey) -> dict[str, Any]:
    node = graph.get(key)
    op = node.assets_def.node_def if node.is_executable else None
    return {
        "group": node.group_name,
        "kinds": sorted(node.kinds),
        "owners": sorted(node.owners),
        "tags": _tags(node.tags),
        "op_tags": _tags(getattr(op, "tags", None)),
        "code_version": node.code_version,
        "partitions": _partitions(node.partitions_def),
        "deps": {
            parent.to_user_string(): _mapping(graph.get_partition_mapping(key, parent))
            for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string())
        },
        "backfill_policy": _backfill(node.backfill_policy),
        "retry_policy": _retry(getattr(op, "retry_policy", None)),
        "freshness_policy": _freshness(node.freshness_policy),
        "automation_condition": _condition(node.automation_condition),
        "pool": getattr(op, "pool", None),
    }


def _check_name(key: dg.AssetCheckKey) -> str:
    return f"{key.asset_key.to_user_string()}:{key.name}"


def graph_snapshot(defs: dg.Definitions) -> dict[str, Any]:
    """The shape of ``defs`` as plain, sorted values."""
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    checks = sorted(graph.asset_check_keys, key=_check_name)
    jobs = sorted(defs.jobs or [], key=lambda j: j.name)
    return {
        "assets": {key.to_user_string(): _asset(graph, key) for key in keys},
        "asset_checks": {
            _check_name(key): {
                "blocking": graph.get_check_spec(key).blocking,
                "partitions": _partitions(graph.get_check_spec(key).partitions_def),
            }
            for key in checks
        },
        "jobs": {
            job.name: {
                "assets": sorted(k.to_user_string() for k in job.selection.resolve(graph)),
                "checks": sorted(_check_name(k) for k in job.selection.resolve_checks(graph)),
                "tags": _tags(job.tags),
                "partitions": _partitions(job.partitions_def),
            }
            for job in jobs
        },
        "schedules": {
            s.name: {
                "cron_schedule": s.cron_schedule,
                "execution_timezone": s.execution_timezone,
                "job": s.job_name,
                "default_status": s.default_status.value,
            }
            for s in sorted(defs.schedules or [], key=lambda s: s.name)
        },
        "sensors": {
            s.name: {
                "type": type(s).__name__,
                "minimum_interval_seconds": s.minimum_interval_seconds,
                "default_status": s.default_status.value,
            }
            for s in sorted(defs.sensors or [], key=lambda s: s.name)
        },
        "resources": sorted(defs.resources or {}),
        "executor": defs.executor.name
        if isinstance(defs.executor, dg.ExecutorDefinition)
        else None,
    }


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def test_asset_graph_matches_the_snapshot(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "ML_ASSETS_ROOT": str(tmp_path),
            "ML_ASSETS_LAKE": str(tmp_path / "lake"),
            "ML_ASSETS_LANDING": str(tmp_path / "landing"),
        }
    )
    text = render(graph_snapshot(build_defs(settings)))
    for leak in (str(tmp_path), str(PROJECT_ROOT), " at 0x"):
        assert leak not in text, f"the snapshot must not hold {leak!r}"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    expected = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{SNAPSHOT.name} (committed)",
            tofile=f"{SNAPSHOT.name} (built now)",
        )
    )
    assert not diff, (
        f"the asset graph differs from {SNAPSHOT.relative_to(PROJECT_ROOT)}; if intended, rerun "
        f"with {UPDATE_ENV}=1 and commit the snapshot:\n{diff}"
    )
