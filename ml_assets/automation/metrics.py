"""The monitors' figures for Prometheus: a ``/metrics`` endpoint and an optional Pushgateway push.

Every scrape reads the Dagster instance afresh (runs, step stats, recorded metadata), so the
endpoint needs no state of its own: ``ml-assets metrics`` serves it next to the webserver.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg

from ml_assets.automation import history
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.freshness_policy import FRESHNESS_ASSETS
from ml_assets.settings import Settings

JOBS = (DAILY_JOB, FEATURES_JOB, REFERENCE_JOB)
VOLUME_ASSET = "raw_flights"


@dataclass
class Gauge:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, value: float, *labels: str) -> None:
        self.samples.append((labels, float(value)))


def _model_assets(settings: Settings) -> list[str]:
    from ml_assets.models.catalog import load_catalog

    return [f"model__{e.name}" for e in load_catalog(settings.catalog_path)]


def figures(
    instance: dg.DagsterInstance,
    settings: Settings,
    jobs: tuple[str, ...] = JOBS,
    now: float | None = None,
) -> list[Gauge]:
    """The same figures the monitors judge, read from the instance."""
    now = time.time() if now is None else now
    window = settings.monitor_window_runs
    rate = Gauge(
        "ml_assets_run_failure_rate", "Failed share of the trailing finished runs.", ("job",)
    )
    runs = Gauge(
        "ml_assets_runs_finished", "Finished runs in the trailing window.", ("job", "status")
    )
    last = Gauge(
        "ml_assets_step_duration_seconds",
        "Step duration in the latest successful run.",
        ("job", "step"),
    )
    median = Gauge(
        "ml_assets_step_duration_median_seconds",
        "Median step duration over the trailing runs.",
        ("job", "step"),
    )
    for job in jobs:
        recent = history.recent_finished(instance, job, window)
        if not recent:
            continue
        failed = sum(not r.success for r in recent)
        rate.add(failed / len(recent), job)
        runs.add(len(recent) - failed, job, "success")
        runs.add(failed, job, "failure")
        durations = [history.step_durations(instance, r.run_id) for r in recent]
        latest = next((d for r, d in zip(recent, durations, strict=True) if r.success), {})
        for step, seconds in sorted(latest.items()):
            last.add(seconds, job, step)
            median.add(statistics.median(d[step] for d in durations if step in d), job, step)

    rows = Gauge("ml_assets_day_rows", "Rows of the latest materialized day.", ("asset",))
    ratio = Gauge(
        "ml_assets_day_volume_ratio", "Latest day's rows / the previous day's.", ("asset",)
    )
    record = history.latest_materialization(instance, VOLUME_ASSET)
    if record is not None and record.partition_key:
        from ml_assets.automation.monitor_checks import previous_day

        today = history.metadata_values(record).get("dagster/row_count")
        before = history.metadata_values(
            history.latest_materialization(
                instance, VOLUME_ASSET, previous_day(record.partition_key)
            )
        ).get("dagster/row_count")
        if today is not None:
            rows.add(today, VOLUME_ASSET)
            if before:
                ratio.add(today / before, VOLUME_ASSET)

    model_auc = Gauge(
        "ml_assets_model_auc", "Holdout AUC of each model's latest partition.", ("model",)
    )
    for asset in _model_assets(settings):
        auc = history.metadata_values(history.latest_materialization(instance, asset)).get(
            "holdout_auc"
        )
        if auc is not None:
            model_auc.add(auc, asset.removeprefix("model__"))
    best = Gauge("ml_assets_best_auc", "Best model's AUC at the latest deployment decision.")
    difference = Gauge(
        "ml_assets_auc_difference_vs_champion", "Best model minus champion AUC, same holdout."
    )
    promoted = Gauge("ml_assets_deployment_promoted", "1 if the latest decision promoted a model.")
    gate = Gauge("ml_assets_auc_gate", "The absolute AUC gate.")
    gate.add(settings.auc_gate)
    decision = history.metadata_values(history.latest_materialization(instance, "deployed_model"))
    if "candidate_auc" in decision:
        best.add(decision["candidate_auc"])
        promoted.add(1.0 if decision.get("promoted") else 0.0)
        if decision.get("auc_difference_vs_champion") is not None:
            difference.add(decision["auc_difference_vs_champion"])

    age = Gauge(
        "ml_assets_materialization_age_seconds",
        "Seconds since the asset's latest materialization.",
        ("asset",),
    )
    for asset in FRESHNESS_ASSETS:
        latest_record = history.latest_materialization(instance, asset)
        if latest_record is not None:
            age.add(now - latest_record.timestamp, asset)
    return [rate, runs, last, median, rows, ratio, model_auc, best, difference, promoted, gate, age]


class PipelineCollector:
    """A ``prometheus_client`` collector that reads the instance on every scrape."""

    def __init__(
        self, instance: dg.DagsterInstance, settings: Settings, jobs: tuple[str, ...] = JOBS
    ) -> None:
        self.instance = instance
        self.settings = settings
        self.jobs = jobs

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import GaugeMetricFamily

        for gauge in figures(self.instance, self.settings, self.jobs):
            family = GaugeMetricFamily(gauge.name, gauge.help, labels=list(gauge.labels))
            for labels, value in gauge.samples:
                family.add_metric(list(labels), value)
            yield family


def registry_for(instance: dg.DagsterInstance, settings: Settings, jobs: tuple[str, ...] = JOBS):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(instance, settings, jobs))
    return registry


def push(instance: dg.DagsterInstance, settings: Settings, jobs: tuple[str, ...] = JOBS) -> None:
    """Push the figures to ``settings.pushgateway_url`` (job ``ml_assets``)."""
    from prometheus_client import push_to_gateway

    if not settings.pushgateway_url:
        raise ValueError("no Pushgateway configured (ML_ASSETS_PUSHGATEWAY_URL)")
    registry = registry_for(instance, settings, jobs)
    push_to_gateway(settings.pushgateway_url, job="ml_assets", registry=registry)


def start_server(
    instance: dg.DagsterInstance,
    settings: Settings,
    host: str,
    port: int,
    jobs: tuple[str, ...] = JOBS,
):
    """Serve ``/metrics`` from a background thread; returns ``(server, thread)``."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=registry_for(instance, settings, jobs))


def serve(settings: Settings, host: str, port: int) -> int:
    """``ml-assets metrics``: serve ``/metrics`` for the current instance until interrupted."""
    import threading

    with dg.DagsterInstance.get() as instance:
        server, _ = start_server(instance, settings, host, port)
        print(f"Prometheus metrics on http://{host}:{port}/metrics (Ctrl-C to stop)", flush=True)
        if settings.pushgateway_url:
            push(instance, settings)
            print(f"pushed once to {settings.pushgateway_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
    return 0
