"""Resource profiles -> dagster-k8s op tags and concurrency pools (the only module that knows k8s)."""

from __future__ import annotations

import copy
from typing import Any

GPU_POOL = "gpu"

PROFILES: dict[str, dict[str, Any]] = {
    "cpu-small": {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    },
    "cpu-large": {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"},
    },
    "gpu": {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
    },
}
SPOT_SELECTOR = {"cloud.google.com/gke-spot": "true"}
SPOT_TOLERATION = {
    "key": "cloud.google.com/gke-spot",
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}
GPU_SELECTOR = {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def op_tags(profile: str, spot: bool = False) -> dict[str, Any]:
    """The ``dagster-k8s/config`` tag for a profile: requests/limits, node selectors, tolerations."""
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
    pod_spec: dict[str, Any] = {}
    if node_selector:
        pod_spec["node_selector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    config: dict[str, Any] = {"container_config": {"resources": copy.deepcopy(PROFILES[profile])}}
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return {
        "dagster-k8s/config": config,
        "ml_assets/profile": profile,
        "ml_assets/spot": str(spot).lower(),
    }


def pool(profile: str) -> str | None:
    """GPU steps share the ``gpu`` pool so the instance limits how many run at once."""
    return GPU_POOL if profile == "gpu" else None
