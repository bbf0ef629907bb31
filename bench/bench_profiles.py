"""Benchmark: which compute profile should each catalog entry run on?

Trains every catalog entry with the pipeline's own ``fit`` on the full-year production training
set (prediction day 2013-12-31, an expanding window from 2013-01-01: about 300k training rows)
on each profile it could use, and prints seconds, holdout AUC and the cost of the step on that
profile, billed as ``ml-assets plan-backfill`` bills it (``backfill_plan.Bill``: the profile's
requests times the settings' price table, spot where the entry allows it).

- ``cpu-small`` / ``cpu-large``: LightGBM's CPU learner with the profile's threads
  (``k8s.threads``), capped at this machine's cores (the cap is printed: on a smaller machine the
  figure is an upper bound for the profile).
- ``gpu``: LightGBM's OpenCL learner on the device the probe finds. On a machine whose only
  OpenCL device is the CPU (PoCL) the figure says nothing about a GPU and is marked so.

Features come from the pure functions (``bench/quality.py``'s cached year of features). No
Dagster side: this compares profiles of the same ``fit`` on the same rows, so wall-clock and the
process's CPU-seconds are printed per profile (billing uses the profile's requests, as the plan).

    uv run python bench/bench_profiles.py [--entries gbdt,dart] [--profiles cpu-small,cpu-large]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
DAY = "2013-12-31"


def measure(frame, entry, profile: str, settings):
    """Train ``entry`` on ``profile``: (wall seconds, CPU seconds of this process and its
    threads, AUC, threads, model)."""
    from ml_assets import k8s
    from ml_assets.models.evaluate import auc
    from ml_assets.models.features import LABEL
    from ml_assets.models.train import fit, holdout, predict

    threads = min(k8s.threads(profile), os.cpu_count() or 1)
    on_profile = entry.model_copy(update={"profile": profile})
    started, cpu = time.perf_counter(), time.process_time()
    model = fit(frame, on_profile, settings.seed, threads)
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    rows = holdout(frame)
    return seconds, cpu_s, auc(rows[LABEL].to_numpy(), predict(model, rows)), threads, model


def cost(seconds: float, profile: str, spot: bool, settings) -> float:
    """Dollars for one step of ``seconds`` on ``profile``, as the backfill plan bills it."""
    from ml_assets.operations.backfill_plan import Bill, Step, prices_from

    bill = Bill()
    bill.add(Step("model", "model", profile=profile, spot=spot), seconds, prices_from(settings))
    return bill.spot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default="/tmp/ml-assets-quality")
    parser.add_argument("--entries", default="", help="catalog subset (default: all)")
    parser.add_argument("--profiles", default="cpu-small,cpu-large,gpu")
    args = parser.parse_args()

    from quality import window, year_features  # bench/ is on the path above

    from ml_assets.models import gpu
    from ml_assets.models.catalog import load_catalog
    from ml_assets.models.training_set import SPLIT, TRAIN
    from ml_assets.settings import Settings

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(
        {
            "ML_ASSETS_ENV": "prod",
            "ML_ASSETS_ROOT": str(cache),
            "ML_ASSETS_LANDING": str(cache / "landing"),
        }
    )
    catalog = load_catalog(settings.catalog_path)
    names = set(args.entries.split(",")) if args.entries else {e.name for e in catalog}
    profiles = args.profiles.split(",")
    ff, tf = year_features(settings, cache)
    frame = window(ff, tf, DAY, settings)
    train_rows = int((frame[SPLIT] == TRAIN).sum())
    found = gpu.probe()
    device = found.device if found.usable else f"none ({found.reason})"
    if found.usable and found.on_cpu:
        device += ": OpenCL on the CPU, not a GPU"
    print(
        f"training set of {DAY}: {train_rows} training rows, {len(frame) - train_rows} holdout;"
        f" {os.cpu_count()} cores here; OpenCL device: {device}"
    )
    print(
        f"prices: CPU ${settings.price_cpu_hour_on_demand}/h (spot {settings.price_cpu_hour_spot}),"
        f" GPU ${settings.price_gpu_hour_on_demand}/h (spot {settings.price_gpu_hour_spot})"
    )
    print(
        f"{'entry':<12} {'profile':<10} {'threads':>7} {'device':<7} {'wall s':>8} "
        f"{'CPU s':>8} {'AUC':>7} {'$ / step':>10}  note"
    )
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for entry in (e for e in catalog if e.name in names):
        for profile in profiles:
            if profile == "gpu" and not found.usable:
                print(f"{entry.name:<12} {profile:<10} {'-':>7} {'-':<7} skipped: {found.reason}")
                continue
            seconds, cpu_s, score, threads, model = measure(frame, entry, profile, settings)
            dollars = cost(seconds, profile, entry.spot, settings)
            results.setdefault(entry.name, {})[profile] = (seconds, dollars)
            note = "capped: fewer cores here" if threads < _wanted(profile) else ""
            if model.device == "gpu" and found.on_cpu:
                note = "OpenCL on the CPU (PoCL): not a GPU figure"
            print(
                f"{entry.name:<12} {profile:<10} {threads:>7} {model.device:<7} {seconds:>8.2f} "
                f"{cpu_s:>8.2f} {score:>7.4f} {dollars:>10.6f}  {note}",
                flush=True,
            )
        on = results.get(entry.name, {})
        if on:
            cheapest = min(on, key=lambda p: on[p][1])
            fastest = min(on, key=lambda p: on[p][0])
            print(
                f"{entry.name:<12} -> cheapest {cheapest}, fastest {fastest}; "
                f"catalog: {entry.profile}"
            )


def _wanted(profile: str) -> int:
    from ml_assets import k8s

    return k8s.threads(profile)


if __name__ == "__main__":
    main()
