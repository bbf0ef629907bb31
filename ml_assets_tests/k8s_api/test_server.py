"""The local API server answers dagster-k8s's client the way a cluster would
(fast: no Dagster run)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import kubernetes
import pytest
from dagster_k8s.client import DagsterKubernetesClient

from ml_assets_tests.k8s_api.server import NODE_NAME, LocalKubeApi

NS = "ns"


@pytest.fixture
def api(tmp_path: Path):
    with LocalKubeApi(workdir=tmp_path, log_dir=tmp_path / "logs") as server:
        yield server


@pytest.fixture
def client(api: LocalKubeApi, tmp_path: Path) -> DagsterKubernetesClient:
    """dagster-k8s's own client over the real ``kubernetes`` client,
    configured by kubeconfig only."""
    config = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
    api_client = kubernetes.config.new_client_from_config(config_file=str(config))
    return DagsterKubernetesClient.production_client(
        batch_api_override=kubernetes.client.BatchV1Api(api_client),
        core_api_override=kubernetes.client.CoreV1Api(api_client),
    )


NODE_REF = kubernetes.client.V1EnvVarSource(
    field_ref=kubernetes.client.V1ObjectFieldSelector(field_path="spec.nodeName")
)


def _job(name: str, code: str, env: dict[str, str] | None = None) -> kubernetes.client.V1Job:
    container = kubernetes.client.V1Container(
        name="dagster",
        image="local",
        command=[sys.executable],
        args=["-c", code],
        env=[
            *(kubernetes.client.V1EnvVar(name=k, value=v) for k, v in (env or {}).items()),
            kubernetes.client.V1EnvVar(name="NODE", value_from=NODE_REF),
        ],
    )
    template = kubernetes.client.V1PodTemplateSpec(
        metadata=kubernetes.client.V1ObjectMeta(labels={"app": "test"}),
        spec=kubernetes.client.V1PodSpec(containers=[container], restart_policy="Never"),
    )
    return kubernetes.client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=kubernetes.client.V1ObjectMeta(name=name),
        spec=kubernetes.client.V1JobSpec(template=template, backoff_limit=0),
    )


def test_job_runs_its_command_with_what_a_pod_has(api, client, tmp_path: Path, monkeypatch) -> None:
    """The Job's env, downward-API fields, the pod's HOSTNAME and a HOME; nothing of the test's."""
    import pwd

    monkeypatch.setenv("LEAKED", "from-the-test")
    names = ("GREETING", "NODE", "HOSTNAME", "HOME", "LEAKED")
    code = (
        "import os, json, pathlib; pathlib.Path('out.json').write_text("
        f"json.dumps([os.environ.get(n) for n in {names!r}]))"
    )
    client.create_namespaced_job_with_retries(_job("ok", code, {"GREETING": "hi"}), NS)
    assert api.wait_all(timeout=30)
    (pod,) = client.get_pods_in_job("ok", NS)
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert json.loads((tmp_path / "out.json").read_text()) == [
        "hi",
        NODE_NAME,
        pod.metadata.name,
        home,
        None,
    ]
    assert pod.spec.node_name == NODE_NAME
    status = client.get_job_status("ok", NS)
    assert status.succeeded == 1 and not status.failed
    assert status.conditions[0].type == "Complete" and status.completion_time is not None
    (pod,) = client.get_pods_in_job("ok", NS)
    assert pod.metadata.labels["job-name"] == "ok" and pod.metadata.labels["app"] == "test"
    terminated = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Succeeded" and terminated.exit_code == 0
    assert client.get_pod_by_name(pod.metadata.name, NS).metadata.uid == pod.metadata.uid


def test_failed_command_fails_the_job_and_keeps_its_log(api, client) -> None:
    client.create_namespaced_job_with_retries(_job("bad", "print('boom'); raise SystemExit(3)"), NS)
    assert api.wait_all(timeout=30)
    assert client.get_job_status("bad", NS).failed == 1
    (pod,) = client.get_pods_in_job("bad", NS)
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3
    log = client.retrieve_pod_logs(pod.metadata.name, NS)
    assert "boom" in log


def test_delete_kills_the_pod_and_the_job_is_gone(api, client) -> None:
    client.create_namespaced_job_with_retries(_job("slow", "import time; time.sleep(60)"), NS)
    assert client.get_job_status("slow", NS).active == 1
    assert client.delete_job("slow", NS) is True  # lists pods by job-name, deletes job and pods
    assert api.wait_all(timeout=30)
    assert api.jobs[(NS, "slow")].exit_code == 128 + 9
    assert client.get_job_status("slow", NS) is None  # 404 -> None, as the health check expects
    assert client.get_pods_in_job("slow", NS) == []
    assert client.delete_job("slow", NS) is False


def test_errors_are_status_objects_with_the_right_code(api, client) -> None:
    client.create_namespaced_job_with_retries(_job("dup", "pass"), NS)
    batch = client.batch_api
    with pytest.raises(kubernetes.client.ApiException) as conflict:
        batch.create_namespaced_job(NS, _job("dup", "pass"))
    assert conflict.value.status == 409 and '"reason": "AlreadyExists"' in conflict.value.body
    with pytest.raises(kubernetes.client.ApiException) as invalid:
        batch.create_namespaced_job(NS, _job("Not_A_Name", "pass"))
    assert invalid.value.status == 422
    with pytest.raises(kubernetes.client.ApiException) as missing:
        client.core_api.read_namespaced_pod("nope", NS)
    assert missing.value.status == 404
    assert api.wait_all(timeout=30)


def test_a_job_invalid_against_the_schema_is_refused_and_recorded(api, client) -> None:
    body = client.batch_api.api_client.sanitize_for_serialization(_job("typo", "pass"))
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": {"n": 4}}}
    body["spec"]["activeDeadlineSecs"] = 60  # an unknown field: strict validation refuses it
    with pytest.raises(kubernetes.client.ApiException) as invalid:
        client.batch_api.create_namespaced_job(NS, body)
    assert invalid.value.status == 422 and '"reason": "Invalid"' in invalid.value.body
    [(name, error)] = api.invalid
    assert name == "typo" and error
    assert (NS, "typo") not in api.jobs
