"""Resource profiles -> dagster-k8s tags and concurrency pools."""

from __future__ import annotations

import pytest

from ml_assets import k8s
from ml_assets.settings import Settings

CONFIG = "dagster-k8s/config"


def _pod_spec(tags: dict) -> dict | None:
    return tags[CONFIG].get("pod_spec_config")


@pytest.mark.parametrize("spot", [False, True])
def test_gpu_profile_requests_a_gpu_node(spot: bool) -> None:
    tags = k8s.op_tags("gpu", spot=spot)
    resources = tags[CONFIG]["container_config"]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    pod = _pod_spec(tags)
    assert pod["node_selector"]["cloud.google.com/gke-accelerator"] == "nvidia-tesla-t4"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert tags["ml_assets/profile"] == "gpu"
    assert tags["ml_assets/spot"] == str(spot).lower()
    assert ("cloud.google.com/gke-spot" in pod["node_selector"]) is spot


@pytest.mark.parametrize("profile", ["cpu-small", "cpu-large", "gpu"])
def test_spot_adds_spot_selector_and_toleration(profile: str) -> None:
    pod = _pod_spec(k8s.op_tags(profile, spot=True))
    assert pod["node_selector"]["cloud.google.com/gke-spot"] == "true"
    assert {
        "key": "cloud.google.com/gke-spot",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    } in pod["tolerations"]


@pytest.mark.parametrize("profile", ["cpu-small", "cpu-large"])
def test_cpu_profiles_without_spot_have_no_pod_spec(profile: str) -> None:
    tags = k8s.op_tags(profile, spot=False)
    assert _pod_spec(tags) is None
    resources = tags[CONFIG]["container_config"]["resources"]
    assert "nvidia.com/gpu" not in resources["limits"]
    assert "nvidia.com/gpu" not in resources["requests"]
    assert tags["ml_assets/spot"] == "false"


def test_cpu_profiles_never_ask_for_gpu_nodes() -> None:
    for profile in ("cpu-small", "cpu-large"):
        pod = _pod_spec(k8s.op_tags(profile, spot=True))
        assert "cloud.google.com/gke-accelerator" not in pod["node_selector"]
        assert all(t["key"] != "nvidia.com/gpu" for t in pod["tolerations"])


def test_profiles_are_sized_in_order() -> None:
    small = k8s.op_tags("cpu-small")[CONFIG]["container_config"]["resources"]
    large = k8s.op_tags("cpu-large")[CONFIG]["container_config"]["resources"]
    assert small == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    assert large["limits"] == {"cpu": "4", "memory": "8Gi"}
    # A step trains with what it requests: requested CPUs = limit = threads.
    for profile, resources in k8s.PROFILES.items():
        assert resources["requests"]["cpu"] == resources["limits"]["cpu"], profile


@pytest.mark.parametrize(("profile", "threads"), [("cpu-small", 1), ("cpu-large", 4), ("gpu", 2)])
def test_model_steps_get_their_profiles_threads_in_the_pod_env(profile: str, threads: int) -> None:
    assert k8s.threads(profile) == threads
    env = k8s.op_tags(profile)[CONFIG]["container_config"]["env"]
    assert {"name": "OMP_NUM_THREADS", "value": str(threads)} in env
    assert k8s.NODE_ENV in env  # the pod knows its node (downward API) to name it in failures
    assert k8s.NODE_ENV in k8s.default_step_config()["container_config"]["env"]


def test_training_threads_follow_the_profile_capped_by_local_cores(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    on_k8s = settings.model_copy(update={"executor": "k8s"})
    assert k8s.training_threads("cpu-large", on_k8s) == 4
    assert k8s.training_threads("cpu-small", on_k8s) == 1
    assert k8s.training_threads("cpu-large", settings) == 4  # in-process: one step at a time
    local = settings.model_copy(update={"executor": "multiprocess", "max_concurrent_steps": 4})
    assert k8s.training_threads("cpu-large", local) == 2  # 8 cores over 4 concurrent steps
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert k8s.training_threads("cpu-large", settings) == 2  # never more threads than cores
    assert k8s.training_threads("cpu-large", settings.model_copy(update={"num_threads": 3})) == 3


def test_production_refuses_the_cpu_fallback_unless_told(tmp_path) -> None:
    root = {"ML_ASSETS_ROOT": str(tmp_path)}
    assert Settings.from_env(root).gpu_fallback == "cpu"
    assert Settings.from_env(root | {"ML_ASSETS_ENV": "prod"}).gpu_fallback == "fail"
    allowed = root | {"ML_ASSETS_ENV": "prod", "ML_ASSETS_GPU_FALLBACK": "cpu"}
    assert Settings.from_env(allowed).gpu_fallback == "cpu"
    with pytest.raises(ValueError, match="gpu_fallback"):
        Settings.from_env(root | {"ML_ASSETS_GPU_FALLBACK": "maybe"})


def test_op_tags_do_not_share_mutable_state() -> None:
    first = k8s.op_tags("gpu", spot=True)
    _pod_spec(first)["tolerations"].append({"key": "x"})
    _pod_spec(first)["node_selector"]["extra"] = "y"
    again = k8s.op_tags("gpu", spot=True)
    assert {"key": "x"} not in _pod_spec(again)["tolerations"]
    assert "extra" not in _pod_spec(again)["node_selector"]
    assert "extra" not in k8s.GPU_SELECTOR


def test_pool_only_for_gpu() -> None:
    assert k8s.pool("gpu") == "gpu"
    assert k8s.pool("cpu-small") is None
    assert k8s.pool("cpu-large") is None


@pytest.mark.parametrize("profile", ["tpu", "GPU", "", "cpu"])
def test_unknown_profile_raises(profile: str) -> None:
    with pytest.raises(ValueError, match=f"unknown resource profile {profile!r}"):
        k8s.op_tags(profile)


def test_step_time_limits_become_job_deadlines_with_a_grace_period() -> None:
    config = k8s.per_step_config({"model__gbdt": 600.0, "raw_flights": 59.5}, grace_s=30)
    assert config["model__gbdt"] == {
        "job_spec_config": {"active_deadline_seconds": 630},
        "pod_spec_config": {"termination_grace_period_seconds": 30},
    }
    assert config["raw_flights"]["job_spec_config"]["active_deadline_seconds"] == 89
    default = k8s.default_step_config(3600.0, 30)
    assert default["job_spec_config"] == {
        "backoff_limit": 0,
        "ttl_seconds_after_finished": 86_400,
        "active_deadline_seconds": 3630,
    }
    assert default["pod_spec_config"] == {"termination_grace_period_seconds": 30}
    assert "active_deadline_seconds" not in k8s.default_step_config()["job_spec_config"]
