"""Can LightGBM's GPU (OpenCL) learner run here, and on which device? Asked in a child process.

A broken OpenCL set-up does not always raise: PoCL without ``HOME`` segfaults inside LightGBM,
which no ``except`` can catch. So the first GPU training of a process is preceded by a probe, a
one-round training in a child process whose log names the device LightGBM picked
(``Using GPU Device: <name>, Vendor: <vendor>``). Its answer is cached for the process.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

PROBE_TIMEOUT_S = 600.0  # PoCL compiles its kernels on first use: ~20 s on 2 cores, then cached
DEVICE_LINE = re.compile(r"Using GPU Device: (?P<name>.*), Vendor: (?P<vendor>.*)")
# OpenCL runtimes that execute on the CPU: PoCL names its devices "pthread-<cpu>" or
# "cpu-<arch>-<cpu>"; CPU runtimes report the processor's vendor id.
CPU_DEVICE_PREFIXES = ("pthread-", "cpu-")
CPU_VENDORS = ("GenuineIntel", "AuthenticAMD")
PROBE = """
import numpy as np, lightgbm as lgb
x = np.arange(400, dtype="float64").reshape(200, 2) % 17
y = (x[:, 0] > 8).astype("float64")
params = {"objective": "binary", "device_type": "gpu", "gpu_use_dp": True, "verbose": 1,
          "num_threads": 1, "num_leaves": 3, "min_data_in_leaf": 5}
try:
    lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=1)
except lgb.basic.LightGBMError as exc:
    print("PROBE-ERROR:", str(exc).strip().splitlines()[0], flush=True)
    raise SystemExit(3)
print("PROBE-OK", flush=True)
"""


class GpuUnavailable(RuntimeError):
    """A ``gpu`` step cannot use a GPU and its settings refuse to train on the CPU instead."""

    def __init__(self, reason: str):
        super().__init__(
            f"no usable GPU: {reason}; not training on the CPU "
            "(set ML_ASSETS_GPU_FALLBACK=cpu to allow it)"
        )
        self.reason = reason


@dataclass(frozen=True)
class GpuProbe:
    """What the probe found: a usable OpenCL device (``name``, ``vendor``) or why not."""

    usable: bool
    name: str = ""
    vendor: str = ""
    reason: str = ""

    @property
    def on_cpu(self) -> bool:
        """The OpenCL device is the CPU (PoCL, a CPU runtime): the GPU learner, but no GPU."""
        return self.name.startswith(CPU_DEVICE_PREFIXES) or self.vendor in CPU_VENDORS

    @property
    def device(self) -> str:
        return f"{self.name} ({self.vendor})" if self.name else ""


def parse_probe(returncode: int, output: str, home: str | None = "") -> GpuProbe:
    """The probe child's exit status and log (and its ``HOME``) -> :class:`GpuProbe`."""
    found = DEVICE_LINE.search(output)
    name, vendor = (found["name"].strip(), found["vendor"].strip()) if found else ("", "")
    if returncode == 0 and "PROBE-OK" in output:
        return GpuProbe(True, name, vendor)
    if returncode < 0:
        signame = signal.Signals(-returncode).name
        hint = "" if home else " (HOME is not set; PoCL needs it)"
        return GpuProbe(False, name, vendor, f"the OpenCL runtime crashed ({signame}){hint}")
    error = re.search(r"PROBE-ERROR: (.*)", output)
    if error:
        return GpuProbe(False, name, vendor, error[1].strip())
    tail = output.strip().splitlines()[-1:] or [f"exit code {returncode}"]
    return GpuProbe(False, name, vendor, f"GPU probe failed: {tail[0]}")


def run_probe(timeout_s: float = PROBE_TIMEOUT_S, env: Mapping[str, str] | None = None) -> GpuProbe:
    """Probe in a child process (with ``env``, default this process's): a native crash of the
    OpenCL runtime ends the child, not the step."""
    env = dict(os.environ if env is None else env)
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return GpuProbe(False, reason=f"GPU probe did not finish within {timeout_s:.0f} s")
    return parse_probe(done.returncode, done.stdout + done.stderr, env.get("HOME"))


@functools.cache
def probe() -> GpuProbe:
    """:func:`run_probe`, once per process."""
    return run_probe()
