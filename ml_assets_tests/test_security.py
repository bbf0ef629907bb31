"""Security: no code-executing deserialization, names that cannot become paths elsewhere,
secrets only from the environment and never in messages, the UI on 127.0.0.1 by default."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from ml_assets.automation.landing_scan import scan_daily_files
from ml_assets.operations import cli, supervisor
from ml_assets.resources.feature_store import FeatureStoreError, FeatureStoreResource
from ml_assets.resources.lake import LakeIOManager, dump_object, load_object
from ml_assets.resources.notify import build_notifier
from ml_assets.resources.registry import ModelRegistry
from ml_assets.security import UnsafeNameError, redact, safe_name
from ml_assets.settings import Settings
from ml_assets_tests import _samples

PACKAGE = Path(__file__).resolve().parents[1] / "ml_assets"
UNSAFE_DESERIALIZERS = re.compile(
    r"\bimport (c?pickle|dill|joblib|shelve|marshal)\b|cloudpickle|read_pickle|to_pickle|"
    r"pickle\.loads?\(|yaml\.(unsafe_)?load\(|allow_pickle=True|torch\.load|\beval\(|\bexec\("
)
UNPICKLING: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "pickle.find_class":
        UNPICKLING.append(f"{args[0]}.{args[1]}")


sys.addaudithook(_audit)


def test_no_code_executing_deserializer_in_the_package() -> None:
    hits = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if UNSAFE_DESERIALIZERS.search(line)
    ]
    assert hits == []


def test_lake_and_registry_round_trips_never_unpickle(tmp_path: Path) -> None:
    """Every type the lake and the registry store goes out and back with no pickle at all."""
    frame = pd.DataFrame({"a": [1, 2], "t": pd.to_datetime(["2013-01-01", "2013-01-02"])})
    model = _samples.tiny_model()
    UNPICKLING.clear()
    for i, obj in enumerate([frame, model, {"promoted": True}]):
        dump_object(obj, UPath(tmp_path) / "lake" / f"obj{i}")
        load_object(UPath(tmp_path) / "lake" / f"obj{i}")
    registry = ModelRegistry(base_path=str(tmp_path / "registry"))
    registry.promote(model, {"metrics": {}}, "2013-01-05")
    registry.load_current()
    assert UNPICKLING == []


def test_the_lake_refuses_objects_it_cannot_store_as_data(tmp_path: Path) -> None:
    @dg.asset(io_manager_key="lake")
    def arbitrary() -> object:
        return {1, 2, 3}

    result = dg.materialize(
        [arbitrary],
        resources={
            "lake": dg.IOManagerDefinition.hardcoded_io_manager(
                LakeIOManager(base_path=UPath(tmp_path))
            )
        },
        raise_on_error=False,
    )
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert (
        "arbitrary: lake write: the lake stores DataFrames, TrainedModels and dicts, not set"
        in (failure.step_failure_data.user_failure_data.description)
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad", ["../2013-01-05", "/etc/passwd", "2013/01/05", "..", "a\\b", "", " x", "2013-01-05\n"]
)
def test_unsafe_names_are_refused(bad: str) -> None:
    with pytest.raises(UnsafeNameError, match="rule safe_name"):
        safe_name(bad, "partition key")


def test_safe_names_pass() -> None:
    for good in ("2013-01-05", "model__gbdt", "gbdt_recent", "v1.2"):
        assert safe_name(good, "name") == good


@pytest.mark.parametrize("key", ["../../outside", "/tmp/absolute", "a/../../b"])
def test_lake_refuses_partition_keys_that_are_paths(tmp_path: Path, key: str) -> None:
    manager = LakeIOManager(base_path=UPath(tmp_path / "lake"))
    context = dg.build_output_context(asset_key=dg.AssetKey("raw_flights"), partition_key=key)
    with pytest.raises(dg.Failure, match="rule safe_name") as info:
        manager.handle_output(context, pd.DataFrame({"a": [1]}))
    assert not info.value.allow_retries
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_landing_scan_ignores_files_that_are_not_days(tmp_path: Path) -> None:
    flights = tmp_path / "flights"
    flights.mkdir()
    for name in (
        "2013-01-05.csv",
        "2013-01-05 (1).csv",
        "..csv",
        "2013-01-05.csv.part",
        "x2013-01-05.csv",
        "2013-1-5.csv",
    ):
        (flights / name).write_text("a\n1\n")
    assert [f.day for f in scan_daily_files(str(tmp_path))] == ["2013-01-05"]


def test_smtp_password_comes_from_the_environment_and_is_never_shown(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "correct-horse-battery"
    monkeypatch.setenv("SMTP_PASSWORD", secret)
    notifier = build_notifier(settings.model_copy(update={"smtp_username": "pipeline"}))
    assert secret not in repr(notifier) and secret not in str(notifier)
    with dg.build_resources({"notifier": notifier}) as resources:
        assert resources.notifier.password == secret
        assert secret not in repr(resources.notifier) and secret not in str(resources.notifier)
    fields = set(Settings.model_fields)
    assert not {f for f in fields if re.search("password|secret|token|credential", f)}


def test_store_credentials_are_masked_in_errors() -> None:
    store = FeatureStoreResource(
        config={"online_store": {"type": "redis", "connection_string": "h:6379,password=s3cr3t"}},
        lake_base="/tmp/lake",
    )

    def unreachable() -> None:
        raise ConnectionError("Error 111 connecting to h:6379")

    with pytest.raises(FeatureStoreError, match="online store unreachable") as info:
        store._guard(unreachable)
    assert "s3cr3t" not in str(info.value)
    assert redact("postgresql://user:pw@db:5432/x") == "postgresql://user:***@db:5432/x"
    assert redact("token=abc&x=1") == "token=***&x=1"
    assert redact("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact('h:6379,password="p,w",ssl=true') == "h:6379,password=***,ssl=true"
    assert redact("{'password': 'pw', 'db': 0}") == "{'password': ***, 'db': 0}"


def test_ui_and_metrics_bind_localhost_by_default(monkeypatch, tmp_path) -> None:
    calls = []
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setattr(supervisor, "up", lambda *args: calls.append(args) or 0)
    assert cli.main(["up"]) == 0
    assert calls[0][0] == "127.0.0.1"
    assert supervisor.commands("127.0.0.1", 3000)["webserver"][1:3] == ["-h", "127.0.0.1"]
    makefile = (PACKAGE.parent / "Makefile").read_text()
    assert "dagster dev -h 127.0.0.1" in makefile and "0.0.0.0" not in makefile
