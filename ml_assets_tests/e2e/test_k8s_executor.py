"""Slow end-to-end: a whole day of daily_pipeline (raw files to deployed_model) through
dagster-k8s's real k8s_job_executor, every step (asset checks included) a Kubernetes Job.

No cluster: the real step handler talks through the real ``kubernetes`` client to
``ml_assets_tests.k8s_api`` (a local API server that validates every Job it receives against the
Kubernetes 1.30 schema, strictly, and runs each Job's container command as a subprocess with what
a pod has). The run's instance is a real one on disk with a ``K8sRunLauncher`` (the executor reads
its settings from it), so each step pod writes its events into the same storage.

The days before DAY (the training window) are materialized in-process (cheap); DAY itself runs
entirely as Jobs. Each step pod pays 3-5 s of process start-up here.
``uv run pytest -m slow -s ml_assets_tests/e2e/test_k8s_executor.py`` prints the figures.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ml_assets import k8s
from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.models.catalog import load_catalog
from ml_assets.operations.materialize import materialize_days
from ml_assets.settings import NODE_NAME_ENV, Settings
from ml_assets.sources.landing_files import days_between
from ml_assets_tests.conftest import small_settings
from ml_assets_tests.k8s_api.server import NODE_NAME, JobRecord, LocalKubeApi

pytestmark = pytest.mark.slow

NAMESPACE = "ml-assets"
IMAGE = "ml-assets:e2e"
DAY, BEFORE = "2013-01-13", "2013-01-12"
DEADLINE_S = 900  # then every pod is killed: the health check fails the steps, the test reports
GPU = "nvidia.com/gpu"
ACCELERATOR = "cloud.google.com/gke-accelerator"
SPOT = "cloud.google.com/gke-spot"
NAMED = re.compile(r"/(jobs|pods)/[^/]+")


def k8s_daily_job(**fields: object) -> dg.JobDefinition:
    """Module-level factory: the test process and every step pod rebuild the same job (the
    whole ``daily_pipeline``, its own checks included) from these arguments."""
    return build_defs(Settings(**fields)).resolve_job_def(DAILY_JOB)


def _write_instance(home: Path, kubeconfig: Path, settings: Settings) -> None:
    forwarded = {
        "DAGSTER_HOME": str(home),
        "ML_ASSETS_ENV": settings.env,
        "ML_ASSETS_LANDING": settings.landing_base,
        "ML_ASSETS_LAKE": settings.lake_base,
        "ML_ASSETS_REGISTRY": settings.registry_base,
        "ML_ASSETS_CATALOG": settings.catalog_path,
    }
    config = {
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "DefaultRunCoordinator",
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {
                "load_incluster_config": False,
                "kubeconfig_file": str(kubeconfig),
                "job_namespace": NAMESPACE,
                "instance_config_map": "dagster-instance",
                "service_account_name": "dagster",
                "dagster_home": str(home),
                "job_image": IMAGE,
                "image_pull_policy": "Never",
                # NAME=value: a bare NAME would be resolved in whichever process builds the Job.
                "env_vars": [f"{name}={value}" for name, value in forwarded.items()],
            },
        },
        "telemetry": {"enabled": False},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _pod(job: JobRecord) -> tuple[dict, dict]:
    spec = job.body["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def _by_step(api: LocalKubeApi) -> dict[str, JobRecord]:
    return {j.body["metadata"]["labels"]["dagster/op"]: j for j in api.jobs.values()}


@pytest.fixture(scope="module")
def k8s_run(tmp_path_factory: pytest.TempPathFactory, landing_dir: Path):
    tmp_path = tmp_path_factory.mktemp("k8s")
    settings = small_settings(tmp_path, landing_dir)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with LocalKubeApi(workdir=tmp_path, log_dir=tmp_path / "pod_logs") as api:
        _write_instance(home, api.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE), settings)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            local = build_defs(settings)  # in-process executor for the upstream days
            assert all(r.success for r in materialize_days(local, instance, REFERENCE_JOB, [None]))
            # Ingestion and features (feature-store tables included) for the days before DAY.
            days = days_between("2013-01-01", BEFORE)
            assert all(r.success for r in materialize_days(local, instance, FEATURES_JOB, days))

            fields = settings.model_copy(update={"executor": "k8s"}).model_dump(
                mode="json", exclude_defaults=True
            )
            job = dg.build_reconstructable_job(
                __name__, k8s_daily_job.__name__, reconstructable_kwargs=fields
            )
            deadline = threading.Timer(DEADLINE_S, api.kill_all)
            deadline.start()
            started = time.perf_counter()
            try:
                result = dg.execute_job(job, instance, tags={"dagster/partition": DAY})
                seconds = time.perf_counter() - started
            finally:
                deadline.cancel()
            with result:
                # Step success comes from the event log; the pods may still be shutting down.
                assert api.wait_all(timeout=120)
                events = [
                    e.dagster_event for e in instance.all_logs(result.run_id) if e.is_dagster_event
                ]
                yield settings, api, result, events, seconds


def _daily_assets(settings: Settings) -> dict[str, str]:
    """Asset -> group of every asset the daily job materializes."""
    graph = build_defs(settings).resolve_job_def(DAILY_JOB).asset_layer.asset_graph
    return {
        key.to_user_string(): graph.get(key).group_name
        for key in graph.executable_asset_keys
        if graph.get(key).is_materializable
    }


def _metadata(events: list, asset: str) -> dict:
    (event,) = [
        e
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and e.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def test_a_whole_day_runs_every_step_as_a_valid_k8s_job(k8s_run) -> None:
    settings, api, result, events, seconds = k8s_run
    failed = {
        e.step_key: e.event_specific_data.error.to_string()[-3000:]
        for e in events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    }
    failed |= {j.name: j.log_path.read_text()[-3000:] for j in api.jobs.values() if j.exit_code}
    assert result.success, failed

    # Every Job the executor posted was valid against the 1.30 schema (strict) and created.
    assert api.invalid == []
    posts = [path for method, path in api.requests if method == "POST"]
    assert posts == [f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"] * len(api.jobs)

    steps = {e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
    jobs = _by_step(api)
    # Every step (assets and their checks) ran in its own Job through the API server; pods exit 0.
    assert set(jobs) == steps
    assert {j.exit_code for j in jobs.values()} == {0}
    assert all(_pod(j)[1]["args"][:3] == ["dagster", "api", "execute_step"] for j in jobs.values())
    assert all(j.namespace == NAMESPACE and _pod(j)[1]["image"] == IMAGE for j in jobs.values())
    # The Job names the executor reported are the Jobs the server created.
    reported = {
        e.step_key: e.event_specific_data.metadata["Kubernetes Job name"].value
        for e in events
        if e.event_type == dg.DagsterEventType.STEP_WORKER_STARTING
    }
    assert reported == {step: j.name for step, j in jobs.items()}

    # The whole day, raw files to deployment: every asset of the job is in the lake, written
    # atomically, and every check passed.
    assets = _daily_assets(settings)
    assert {"raw_flights", "flight_features", "training_set", "deployed_model"} <= set(assets)
    materialized = {
        e.asset_key.to_user_string()
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    assert materialized == set(assets)
    lake = Path(settings.lake_base)
    for asset in (
        "raw_flights",
        "raw_weather",
        "flight_features",
        "traffic_features",
        "training_set",
        "model_leaderboard",
        "deployed_model",
    ):
        assert list((lake / asset).glob(f"{DAY}.*")), f"{asset}[{DAY}] is not in the lake"
    assert not list(lake.rglob("*.tmp"))
    checks = [e for e in events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    assert checks and all(e.event_specific_data.passed for e in checks)

    # The pod env carries what the steps need, forwarded as NAME=value.
    env = {e["name"]: e.get("value") for e in _pod(jobs["model__gbdt"])[1]["env"]}
    assert env["ML_ASSETS_LAKE"] == settings.lake_base and env["DAGSTER_HOME"]
    assert "DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS" in env

    _print_figures(api, events, seconds)


def test_each_job_asks_for_what_its_profile_says(k8s_run) -> None:
    """Resources, threads, node selectors and tolerations of every posted Job, from the catalog."""
    settings, api, result, events, _ = k8s_run
    assert result.success
    catalog = {f"model__{e.name}": e for e in load_catalog(settings.catalog_path)}
    assert {e.profile for e in catalog.values()} >= {"gpu", "cpu-small"}
    for step, job in _by_step(api).items():
        spec, container = _pod(job)
        entry = catalog.get(step)
        profile = entry.profile if entry else k8s.DEFAULT_PROFILE
        assert container["resources"] == k8s.PROFILES[profile], step
        env = {e["name"]: e for e in container["env"]}
        assert env[NODE_NAME_ENV]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
        selector, tolerations = spec.get("nodeSelector") or {}, spec.get("tolerations") or []
        gpu, spot = profile == "gpu", bool(entry and entry.spot)
        assert (GPU in container["resources"]["limits"]) == gpu, step
        assert (selector.get(ACCELERATOR) == "nvidia-tesla-t4") == gpu, step
        assert ({"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in tolerations) == gpu
        assert (selector.get(SPOT) == "true") == spot, step
        spot_toleration = {
            "key": SPOT,
            "operator": "Equal",
            "value": "true",
            "effect": "NoSchedule",
        }
        assert (spot_toleration in tolerations) == spot, step
        if entry is None:
            assert "OMP_NUM_THREADS" not in env, step
            continue
        # A model trains with the threads its profile requests, and says so in its metadata.
        threads = k8s.threads(entry.profile)
        assert env["OMP_NUM_THREADS"]["value"] == str(threads), step
        assert _metadata(events, step)["num_threads"] == threads, step

    gbdt = _metadata(events, "model__gbdt")  # profile gpu
    if Path("/etc/OpenCL/vendors").is_dir() and any(Path("/etc/OpenCL/vendors").iterdir()):
        # The pod has a HOME (PoCL segfaults without one): the OpenCL learner really ran.
        assert gbdt["device"] == "gpu" and gbdt["gpu_device"] != "none", gbdt
    else:
        assert gbdt["device"] == "cpu" and "GPU requested but unavailable" in gbdt["device_note"]
    assert NODE_NAME  # the node the pods ran on, as the downward API told them


def test_step_jobs_end_at_their_time_limit_with_a_grace_period(k8s_run) -> None:
    """Each step's Job: activeDeadlineSeconds = its limit (group, or the model's) + grace, and
    the Job spec's other fields (backoffLimit 0, TTL) survive the deep merge."""
    settings, api, _, _, _ = k8s_run
    groups = _daily_assets(settings)
    grace = settings.preemption_grace_s
    for step, job in _by_step(api).items():
        if step.startswith("model__"):
            limit = settings.model_timeout_s
        elif step in groups:
            limit = settings.step_timeouts_s.get(groups[step], settings.default_step_timeout_s)
        else:  # asset checks: the default step limit
            limit = settings.default_step_timeout_s
        assert job.body["spec"]["activeDeadlineSeconds"] == int(limit) + grace, step
        assert _pod(job)[0]["terminationGracePeriodSeconds"] == grace, step
        assert job.body["spec"]["backoffLimit"] == 0, step
        assert (
            job.body["spec"]["ttlSecondsAfterFinished"]
            == k8s.JOB_SPEC["ttl_seconds_after_finished"]
        )


def _print_figures(api: LocalKubeApi, events: list, seconds: float) -> None:
    """The figures for the issue's closing note (visible with ``-s``)."""
    jobs = _by_step(api)
    took = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in events
        if e.event_type == dg.DagsterEventType.STEP_SUCCESS
    }
    out = sys.stdout
    print(f"\nk8s_job_executor: {DAILY_JOB}[{DAY}], the whole day", file=out)
    print(
        f"  {len(jobs)} steps as Jobs (all valid, strict 1.30), run wall {seconds:.1f} s", file=out
    )
    print(f"  {'step':<44} exit  step s  pod s", file=out)
    for step, job in sorted(jobs.items(), key=lambda kv: kv[1].started_at or 0):
        print(f"  {step:<44} {job.exit_code:>4} {took[step]:>7.1f} {job.seconds:>6.1f}", file=out)
    spec, container = _pod(jobs["model__gbdt"])
    print(f"  model__gbdt resources:    {container['resources']}", file=out)
    print(f"  model__gbdt nodeSelector: {spec.get('nodeSelector')}", file=out)
    print(f"  model__gbdt tolerations:  {spec.get('tolerations')}", file=out)
    body = jobs["model__gbdt"].body["spec"]
    print(
        f"  Job spec: backoffLimit {body.get('backoffLimit')}, "
        f"activeDeadlineSeconds {body.get('activeDeadlineSeconds')}, "
        f"ttlSecondsAfterFinished {body.get('ttlSecondsAfterFinished')}",
        file=out,
    )
    calls = Counter(method + " " + NAMED.sub(r"/\1/{name}", path) for method, path in api.requests)
    print(f"  API calls: {dict(calls)}", file=out)
