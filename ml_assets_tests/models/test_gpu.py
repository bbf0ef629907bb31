"""LightGBM's GPU (OpenCL) learner for real: the probe, the learner, the fallback and its refusal.

CI installs Debian's ``pocl-opencl-icd``: a real OpenCL device on the CPU, so the OpenCL code path
of training runs here, not only its fallback. Without an ICD (a developer's machine) the tests
that need a device skip; under CI they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ml_assets.models import gpu
from ml_assets.models.catalog import CatalogEntry
from ml_assets.models.evaluate import auc
from ml_assets.models.features import LABEL
from ml_assets.models.gpu import GpuUnavailable, parse_probe, run_probe
from ml_assets.models.train import fit, holdout, predict

VENDORS = Path("/etc/OpenCL/vendors")
HAS_ICD = VENDORS.is_dir() and any(VENDORS.glob("*.icd"))
needs_opencl = pytest.mark.skipif(
    not HAS_ICD and not os.environ.get("CI"),
    reason="no OpenCL ICD registered (apt-get install pocl-opencl-icd); CI requires one",
)
GBDT = CatalogEntry(
    name="gbdt",
    params={"boosting": "gbdt", "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 30},
    num_boost_round=30,
    profile="gpu",
)


@pytest.fixture
def fresh_probe() -> Iterator[None]:
    """Probe again in this test (the answer is cached per process), and afterwards."""
    gpu.probe.cache_clear()
    yield
    gpu.probe.cache_clear()


@pytest.fixture
def no_opencl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_probe) -> None:
    """No ICD for the OpenCL loader to find, as on a node without the NVIDIA ICD registered."""
    empty = tmp_path / "vendors"
    empty.mkdir()
    monkeypatch.setenv("OCL_ICD_VENDORS", str(empty))


def _auc(model, frame: pd.DataFrame) -> float:
    rows = holdout(frame)
    return auc(rows[LABEL].to_numpy(), predict(model, rows))


@needs_opencl
def test_probe_names_the_opencl_device_lightgbm_uses() -> None:
    found = gpu.probe()
    assert found.usable, found.reason
    assert found.name and found.vendor and found.device == f"{found.name} ({found.vendor})"
    if "pocl" in " ".join(p.read_text() for p in VENDORS.glob("*.icd")):
        assert found.on_cpu  # PoCL: the OpenCL learner, on the CPU


@needs_opencl
def test_gpu_profile_trains_with_the_opencl_learner(training_set: pd.DataFrame) -> None:
    """The GPU learner really runs; same AUC as the CPU within 0.005; same hash on a rerun."""
    on_gpu = fit(training_set, GBDT, seed=42, num_threads=2)
    assert on_gpu.device == "gpu" and on_gpu.device_note == ""
    assert on_gpu.params["device_type"] == "gpu" and on_gpu.gpu_device == gpu.probe().device
    on_cpu = fit(training_set, GBDT.model_copy(update={"profile": "cpu-large"}), 42, num_threads=2)
    assert on_cpu.device == "cpu" and "device_type" not in on_cpu.params
    assert abs(_auc(on_gpu, training_set) - _auc(on_cpu, training_set)) <= 0.005
    # Determinism on the GPU learner: the same hash for the same device and thread count.
    assert fit(training_set, GBDT, seed=42, num_threads=2).sha256 == on_gpu.sha256


@needs_opencl
def test_a_fault_of_the_gpu_learner_is_raised_not_retried_on_the_cpu(training_set) -> None:
    """Only "no usable GPU" leads to the CPU; the GPU learner's own errors fail the step."""
    import lightgbm as lgb

    too_many_bins = GBDT.model_copy(update={"params": GBDT.params | {"max_bin": 1023}})
    with pytest.raises(lgb.basic.LightGBMError, match="cannot run on GPU"):
        fit(training_set, too_many_bins, seed=42, num_threads=1)


def test_without_a_device_training_falls_back_to_the_cpu_and_says_why(
    training_set: pd.DataFrame, no_opencl
) -> None:
    model = fit(training_set, GBDT, seed=42, num_threads=1)
    assert model.device == "cpu" and model.gpu_device == "" and "device_type" not in model.params
    assert model.device_note == (
        "GPU requested but unavailable (No OpenCL device found); trained on CPU"
    )
    cpu = fit(training_set, GBDT.model_copy(update={"profile": "cpu-small"}), 42, num_threads=1)
    assert cpu.device_note == "" and cpu.sha256 == model.sha256


def test_production_refuses_to_train_a_gpu_step_on_the_cpu(training_set, no_opencl) -> None:
    with pytest.raises(GpuUnavailable) as refused:
        fit(training_set, GBDT, seed=42, num_threads=1, gpu_fallback="fail")
    assert refused.value.reason == "No OpenCL device found"
    assert "ML_ASSETS_GPU_FALLBACK=cpu" in str(refused.value)


@needs_opencl
def test_production_refuses_an_opencl_device_that_is_the_cpu(training_set, fresh_probe) -> None:
    """A GPU node whose only OpenCL device is PoCL's would train on the CPU: refused."""
    if not gpu.probe().on_cpu:
        pytest.skip(f"the OpenCL device here is a GPU: {gpu.probe().device}")
    with pytest.raises(GpuUnavailable, match="the only OpenCL device is the CPU"):
        fit(training_set, GBDT, seed=42, num_threads=1, gpu_fallback="fail")


@needs_opencl
def test_a_native_crash_of_the_opencl_runtime_is_contained_by_the_probe() -> None:
    """PoCL without HOME segfaults inside LightGBM: the probe's child dies, not the step."""
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    found = run_probe(env=env)
    if found.usable:
        pytest.skip(f"this OpenCL runtime does not need HOME: {found.device}")
    assert found.reason == "the OpenCL runtime crashed (SIGSEGV) (HOME is not set; PoCL needs it)"


@pytest.mark.parametrize(
    ("code", "output", "usable", "reason"),
    [
        (0, "Using GPU Device: NVIDIA H200, Vendor: NVIDIA Corporation\nPROBE-OK", True, ""),
        (3, "PROBE-ERROR: No OpenCL device found", False, "No OpenCL device found"),
        (-11, "", False, "the OpenCL runtime crashed (SIGSEGV)"),
        (
            1,
            "Traceback\nModuleNotFoundError: lightgbm",
            False,
            "GPU probe failed: ModuleNotFoundError: lightgbm",
        ),
    ],
)
def test_probe_output_is_read_as_lightgbm_wrote_it(code, output, usable, reason) -> None:
    found = parse_probe(code, output, home="/home/dagster")
    assert (found.usable, found.reason) == (usable, reason)
    if usable:
        assert (found.name, found.vendor, found.on_cpu) == (
            "NVIDIA H200",
            "NVIDIA Corporation",
            False,
        )


def test_cpu_opencl_devices_are_told_apart_from_gpus() -> None:
    assert parse_probe(
        0, "Using GPU Device: pthread-skylake, Vendor: GenuineIntel\nPROBE-OK"
    ).on_cpu
    assert parse_probe(
        0, "Using GPU Device: cpu-x86-64-AMD EPYC, Vendor: AuthenticAMD\nPROBE-OK"
    ).on_cpu
    assert not parse_probe(
        0, "Using GPU Device: Tesla T4, Vendor: NVIDIA Corporation\nPROBE-OK"
    ).on_cpu
