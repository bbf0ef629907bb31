"""The deploy kit: Helm values agree with the Dockerfile, and the production instance config
(deploy/dagster.yaml) boots on real Postgres, GCS (emulator) and the K8sRunLauncher."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ml_assets.definitions import build_defs
from ml_assets.execution import FEATURES_JOB, REFERENCE_JOB
from ml_assets.operations.materialize import materialize_days
from ml_assets.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"


def _dockerfile_cmd() -> list[str]:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    return json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_helm_values_serve_the_dockerfiles_code_location() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    cmd = _dockerfile_cmd()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    exposed = re.search(r"^EXPOSE (\d+)$", (PROJECT_ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert (
        _flag(cmd, "--module-name")
        == _flag(deployment["codeServerArgs"], "--module-name")
        == "ml_assets.definitions"
    )
    assert _flag(cmd, "--location-name") == _flag(deployment["codeServerArgs"], "--location-name")
    assert int(_flag(cmd, "--port")) == int(exposed) == deployment["port"]
    assert deployment["image"]["repository"] and deployment["image"]["tag"]
    assert {"name": "ML_ASSETS_ENV", "value": "prod"} in deployment["env"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert coordinator["maxConcurrentRuns"] == 5


def test_dockerfile_installs_the_lock_without_dev_tools_as_non_root() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in text and "UV_COMPILE_BYTECODE=1" in text
    assert re.search(r"^USER dagster$", text, re.M) and "AS runtime" in text
    assert "COPY deploy/dagster.yaml" in text


def test_image_lets_gpu_steps_reach_the_nvidia_gpu() -> None:
    """LightGBM's OpenCL loader finds the NVIDIA driver only through an ICD file naming the
    library the NVIDIA container runtime mounts, which it mounts only for these capabilities."""
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    runtime = text[text.index("AS runtime") :]
    assert re.search(
        r'echo "libnvidia-opencl\.so\.1" > /etc/OpenCL/vendors/nvidia\.icd', runtime
    ), "the runtime image must register the NVIDIA OpenCL ICD"
    env = dict(re.findall(r"^\s*(?:ENV )?([A-Z_]+)=(\S+?)\s*\\?$", runtime, re.M))
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert set(env["NVIDIA_DRIVER_CAPABILITIES"].split(",")) >= {"compute", "utility"}
    assert env["HOME"] == "/home/dagster"  # PoCL and LightGBM's kernel cache need a HOME
    assert "pocl" not in runtime.lower()  # a CPU OpenCL device would shadow the GPU


@pytest.fixture
def prod_instance(tmp_path: Path, postgres_db: dict, gcs: str, monkeypatch: pytest.MonkeyPatch):
    """deploy/dagster.yaml, with only the in-cluster switch turned off (a kubeconfig instead)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    text = (DEPLOY / "dagster.yaml").read_text()
    assert "load_incluster_config: true" in text
    text = text.replace(
        "load_incluster_config: true",
        f"load_incluster_config: false\n    kubeconfig_file: {kubeconfig}",
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(text)
    for var, value in {
        "DAGSTER_PG_HOST": postgres_db["hostname"],
        "DAGSTER_PG_DB": postgres_db["db_name"],
        "DAGSTER_PG_USERNAME": postgres_db["username"],
        "DAGSTER_PG_PASSWORD": postgres_db["password"],
        "ML_ASSETS_LOG_BUCKET": gcs.removeprefix("gs://"),
    }.items():
        monkeypatch.setenv(var, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_production_instance_runs_on_postgres_with_logs_on_gcs(
    prod_instance, gcs: str, landing_dir: Path, tmp_path: Path
) -> None:
    instance = prod_instance
    assert type(instance.run_launcher).__name__ == "K8sRunLauncher"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 5
    assert {
        type(s).__name__
        for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
    } == {
        "PostgresRunStorage",
        "PostgresEventLogStorage",
        "PostgresScheduleStorage",
    }
    settings = Settings.from_env(
        {
            "ML_ASSETS_ENV": "ci",
            "ML_ASSETS_ROOT": str(tmp_path),
            "ML_ASSETS_LANDING": str(landing_dir),
            "ML_ASSETS_LAKE": str(tmp_path / "lake"),
        }
    )
    defs = build_defs(settings)
    runs = materialize_days(defs, instance, REFERENCE_JOB, [None])
    runs += materialize_days(defs, instance, FEATURES_JOB, ["2013-01-01", "2013-01-02"])
    assert all(r.success for r in runs)
    stored = instance.get_runs(filters=dg.RunsFilter(job_name=FEATURES_JOB))
    assert {r.tags["dagster/partition"] for r in stored} == {"2013-01-01", "2013-01-02"}
    assert instance.get_materialized_partitions(dg.AssetKey("traffic_features")) == {
        "2013-01-01",
        "2013-01-02",
    }
    assert instance.all_instigator_state() == []

    import gcsfs

    fs = gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)
    assert (tmp_path / "lake" / "traffic_features" / "2013-01-02.parquet").exists()
    assert fs.find(f"{gcs}/dagster-compute-logs"), "compute logs were not uploaded to GCS"
