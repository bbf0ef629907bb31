"""Resource profiles -> dagster-k8s op tags and concurrency pools
(the only module that knows k8s)."""

from __future__ import annotations

import copy
import math
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_assets.settings import Settings

GPU_POOL = "gpu"
DEFAULT_PROFILE = "cpu-small"

# CPU requests equal limits: a step trains with as many threads as it requests (training_threads)
# and is billed for what it requests (README, "Compute profiles": bench/bench_profiles.py).
PROFILES: dict[str, dict[str, Any]] = {
    "cpu-small": {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    },
    "cpu-large": {
        "requests": {"cpu": "4", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"},
    },
    "gpu": {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "16Gi", "nvidia.com/gpu": "1"},
    },
}
THREADS_ENV = "OMP_NUM_THREADS"
# Every step pod knows its node (downward API), so a failure can name it.
NODE_ENV = {
    "name": "ML_ASSETS_NODE_NAME",
    "value_from": {"field_ref": {"field_path": "spec.nodeName"}},
}
# Dagster retries steps itself (RetryPolicy), so Kubernetes does not; finished Jobs are cleaned up.
JOB_SPEC = {"backoff_limit": 0, "ttl_seconds_after_finished": 86_400}
SPOT_SELECTOR = {"cloud.google.com/gke-spot": "true"}
SPOT_TOLERATION = {
    "key": "cloud.google.com/gke-spot",
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}
GPU_SELECTOR = {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def k8s_config(profile: str, spot: bool = False) -> dict[str, Any]:
    """dagster-k8s user-defined config for a profile: resources, selectors,
    tolerations, Job spec."""
    if profile not in PROFILES:
        raise ValueError(
            f"unknown resource profile {profile!r}; expected one of {sorted(PROFILES)}"
        )
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, str]] = []
    if profile == "gpu":
        node_selector |= GPU_SELECTOR
        tolerations.append(dict(GPU_TOLERATION))
    if spot:
        node_selector |= SPOT_SELECTOR
        tolerations.append(dict(SPOT_TOLERATION))
    config: dict[str, Any] = {
        "container_config": {
            "resources": copy.deepcopy(PROFILES[profile]),
            "env": [copy.deepcopy(NODE_ENV)],
        },
        "job_spec_config": dict(JOB_SPEC),
    }
    pod_spec: dict[str, Any] = {}
    if node_selector:
        pod_spec["node_selector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return config


def per_step_config(timeouts: dict[str, float], grace_s: int) -> dict[str, dict[str, Any]]:
    """``per_step_k8s_config`` of the k8s executor (deep-merged over op tags): each op's Job ends
    at its time limit plus the grace period (``activeDeadlineSeconds``, counted from the Job's
    start, so the step's own, clearer timeout fires first); its pod gets ``grace_s`` between
    SIGTERM and SIGKILL (``terminationGracePeriodSeconds``) to write a final checkpoint."""
    return {
        op: {
            "job_spec_config": {"active_deadline_seconds": int(seconds) + int(grace_s)},
            "pod_spec_config": {"termination_grace_period_seconds": int(grace_s)},
        }
        for op, seconds in sorted(timeouts.items())
    }


def quantity(value: str) -> float:
    """Kubernetes CPU/GPU quantity (``500m``, ``2``) as a number of cores/devices."""
    value = str(value)
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def threads(profile: str) -> int:
    """Threads a step of ``profile`` trains with: its CPU request, rounded up."""
    return max(1, math.ceil(quantity(PROFILES[profile]["requests"]["cpu"])))


def training_threads(profile: str, settings: Settings) -> int:
    """LightGBM ``num_threads`` for a model of ``profile``: ``settings.num_threads`` if set; on
    Kubernetes the profile's request; locally the same, capped at this machine's share of cores
    per concurrent step (more threads than cores makes OpenMP spin: 10x slower here)."""
    if settings.num_threads:
        return settings.num_threads
    wanted = threads(profile)
    if settings.executor == "k8s":
        return wanted
    steps = settings.max_concurrent_steps if settings.executor == "multiprocess" else 1
    return max(1, min(wanted, (os.cpu_count() or 1) // max(steps, 1)))


PARALLEL_DAYS_TAG = "ml_assets/parallel_days"  # op tag: the asset's range runs use day_workers


def day_workers(settings: Settings) -> int:
    """Processes a range run's parallel asset computes its days on (``assets/day_pool.py``):
    ``settings.range_workers`` if set; on Kubernetes 1 (a step's pod has its one request);
    locally every core (such a step runs alone: its downstream steps wait for it)."""
    if settings.range_workers:
        return settings.range_workers
    return 1 if settings.executor == "k8s" else (os.cpu_count() or 1)


def op_tags(profile: str, spot: bool = False) -> dict[str, Any]:
    """The ``dagster-k8s/config`` op tag for a profile (its threads in the pod's env), plus
    readable profile/spot tags."""
    config = k8s_config(profile, spot)
    config["container_config"]["env"].append({"name": THREADS_ENV, "value": str(threads(profile))})
    return {
        "dagster-k8s/config": config,
        "ml_assets/profile": profile,
        "ml_assets/spot": str(spot).lower(),
    }


def default_step_config(
    timeout_s: float | None = None, grace_s: int | None = None
) -> dict[str, Any]:
    """``step_k8s_config`` for steps without a profile (ingestion, features, evaluation), with
    the time limit of steps that have none of their own (asset checks)."""
    config = k8s_config(DEFAULT_PROFILE)
    if timeout_s is not None and grace_s is not None:
        limits = per_step_config({"step": timeout_s}, grace_s)["step"]
        config["job_spec_config"] |= limits["job_spec_config"]
        config.setdefault("pod_spec_config", {}).update(limits["pod_spec_config"])
    return config


def pool(profile: str) -> str | None:
    """GPU steps share the ``gpu`` pool so the instance limits how many run at once."""
    return GPU_POOL if profile == "gpu" else None
