"""Every step's Kubernetes Job, built by dagster-k8s's own code and validated against the schema."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_k8s_job_name,
    get_user_defined_k8s_config,
)
from kubernetes.client import ApiClient

from ml_assets import k8s
from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB
from ml_assets.models.catalog import load_catalog
from ml_assets.settings import DEFAULT_CATALOG, Settings

K8S_VERSION = "1.30"


def _step_jobs(settings: Settings) -> dict[str, dict]:
    """Each op of the daily job -> the Job manifest the k8s step handler would create."""
    job_def = build_defs(settings).resolve_job_def(DAILY_JOB)
    executor_context = K8sContainerContext(
        namespace="ml-assets",
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(k8s.default_step_config()),
    )
    job_config = DagsterK8sJobConfig(
        job_image="europe-docker.pkg.dev/acme/ml/ml-assets:1.0",
        dagster_home="/opt/dagster/dagster_home",
        image_pull_policy="IfNotPresent",
        instance_config_map="dagster-instance",
        service_account_name="dagster",
    )
    manifests = {}
    for node in job_def.graph.node_defs:
        context = executor_context.merge(
            K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(node.tags))
        )
        name = f"dagster-step-{get_k8s_job_name('0123456789abcdef', node.name)}"
        job = construct_dagster_k8s_job(
            job_config=job_config,
            args=["dagster", "api", "execute_step"],
            job_name=name,
            pod_name=name,
            component="step_worker",
            user_defined_k8s_config=context.run_k8s_config,
            labels={"dagster/job": DAILY_JOB, "dagster/op": node.name},
            env_vars=[{"name": "ML_ASSETS_ENV", "value": "prod"}],
        )
        manifests[node.name] = ApiClient().sanitize_for_serialization(job)
    return manifests


GPU_ENTRY = {"name": "gbdt_gpu", "params": {"boosting": "gbdt"}, "profile": "gpu", "spot": False}


def gpu_catalog(root) -> str:
    """The shipped catalog plus an entry on the gpu profile (none ships on it: README)."""
    shipped = yaml.safe_load(DEFAULT_CATALOG.read_text())
    path = root / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": [*shipped["models"], GPU_ENTRY]}))
    return str(path)


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return gpu_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory, catalog_path: str) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("k8s")
    settings = Settings.from_env(
        {"ML_ASSETS_ROOT": str(root), "ML_ASSETS_ENV": "prod", "ML_ASSETS_CATALOG": catalog_path}
    )
    return _step_jobs(settings)


def _pod(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]


def test_every_step_job_is_a_valid_kubernetes_job(manifests: dict[str, dict]) -> None:
    assert {"raw_flights", "training_set", "model__gbdt_gpu", "deployed_model"} <= set(manifests)
    for name, manifest in manifests.items():
        kubernetes_validate.validate(
            manifest, K8S_VERSION, strict=True
        )  # raises on any schema error
        assert manifest["kind"] == "Job" and manifest["apiVersion"] == "batch/v1", name
        assert manifest["spec"]["backoffLimit"] == 0
        assert manifest["spec"]["ttlSecondsAfterFinished"] == 86_400


def test_gpu_and_spot_land_on_the_right_steps_only(manifests, catalog_path: str) -> None:
    catalog = {f"model__{e.name}": e for e in load_catalog(catalog_path)}
    assert any(e.profile == "gpu" for e in catalog.values())
    for name, manifest in manifests.items():
        pod = _pod(manifest)
        limits = pod["containers"][0]["resources"]["limits"]
        selectors = pod.get("nodeSelector", {})
        tolerations = {t["key"] for t in pod.get("tolerations", [])}
        entry = catalog.get(name)
        gpu = entry is not None and entry.profile == "gpu"
        spot = entry is not None and entry.spot
        assert ("nvidia.com/gpu" in limits) == gpu, name
        assert ("cloud.google.com/gke-accelerator" in selectors) == gpu, name
        assert ("nvidia.com/gpu" in tolerations) == gpu, name
        assert (selectors.get("cloud.google.com/gke-spot") == "true") == spot, name
        assert ("cloud.google.com/gke-spot" in tolerations) == spot, name
        if entry is None:  # ingestion, features, evaluation: right-sized default profile
            assert pod["containers"][0]["resources"] == k8s.PROFILES[k8s.DEFAULT_PROFILE], name
        else:
            assert pod["containers"][0]["resources"] == k8s.PROFILES[entry.profile], name


def test_an_invalid_manifest_is_rejected(manifests: dict[str, dict]) -> None:
    broken = json.loads(json.dumps(manifests["model__gbdt_gpu"]))
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = {"n": 4}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_gpu_step_resources_are_exact(manifests: dict[str, dict]) -> None:
    resources = _pod(manifests["model__gbdt_gpu"])["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    print(json.dumps({"model__gbdt_gpu": resources}))


def test_prod_settings_select_the_k8s_executor(tmp_path) -> None:
    settings = Settings.from_env({"ML_ASSETS_ROOT": str(tmp_path), "ML_ASSETS_ENV": "prod"})
    job_def = build_defs(settings).resolve_job_def(DAILY_JOB)
    assert job_def.executor_def.name == "k8s_job_executor"
    assert settings.auc_gate == 0.75


def test_daily_runs_carry_the_gpu_tag_the_queue_limits(manifests, tmp_path) -> None:
    from ml_assets.execution import GPU_RUN_TAG
    from ml_assets.settings import PROJECT_ROOT

    settings = Settings.from_env({"ML_ASSETS_ROOT": str(tmp_path)})
    assert build_defs(settings).resolve_job_def(DAILY_JOB).tags[GPU_RUN_TAG] == "false"
    with_gpu = settings.model_copy(update={"catalog_path": gpu_catalog(tmp_path)})
    assert build_defs(with_gpu).resolve_job_def(DAILY_JOB).tags[GPU_RUN_TAG] == "true"
    limits = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())[
        "run_coordinator"
    ]["config"]
    assert {"key": GPU_RUN_TAG, "value": "true", "limit": 2} in limits["tag_concurrency_limits"]
