"""Prometheus: the monitors' figures on /metrics and pushed to a Pushgateway."""

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from ml_assets.automation.metrics import push, start_server
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import free_port
from ml_assets_tests.automation.test_monitors import launch

JOBS = ("tiny",)


@pytest.fixture
def history(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """Three good runs and a failed one, two days of flights, models and a deployment decision."""
    for fail in (False, False, False, True):
        launch(instance, fail=fail)
    events = [
        ("raw_flights", "2013-01-02", {"dagster/row_count": 900}),
        ("raw_flights", "2013-01-03", {"dagster/row_count": 400}),
        ("model__gbdt", "2013-01-03", {"holdout_auc": 0.74}),
        ("model__goss", "2013-01-03", {"holdout_auc": 0.73}),
        (
            "deployed_model",
            "2013-01-03",
            {"candidate_auc": 0.74, "promoted": True, "auc_difference_vs_champion": -0.01},
        ),
    ]
    for asset, day, metadata in events:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset, partition=day, metadata=metadata)
        )
    return instance


def test_metrics_endpoint_serves_the_figures(auto_settings: Settings, history) -> None:
    port = free_port()
    server, _ = start_server(history, auto_settings, "127.0.0.1", port, JOBS)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
    assert 'ml_assets_run_failure_rate{job="tiny"} 0.25' in text
    assert 'ml_assets_runs_finished{job="tiny",status="failure"} 1.0' in text
    assert 'ml_assets_step_duration_seconds{job="tiny",step="work"}' in text
    assert 'ml_assets_step_duration_median_seconds{job="tiny",step="work"}' in text
    assert 'ml_assets_day_rows{asset="raw_flights"} 400.0' in text
    assert 'ml_assets_day_volume_ratio{asset="raw_flights"} 0.444' in text
    assert 'ml_assets_model_auc{model="gbdt"} 0.74' in text
    assert "ml_assets_best_auc 0.74" in text and "ml_assets_deployment_promoted 1.0" in text
    assert "ml_assets_auc_difference_vs_champion -0.01" in text
    assert f"ml_assets_auc_gate {auto_settings.auc_gate}" in text
    assert 'ml_assets_materialization_age_seconds{asset="deployed_model"}' in text


class Gateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_PUT(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def gateway() -> Iterator[str]:
    Gateway.received = []
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_push_to_a_pushgateway(auto_settings: Settings, history, gateway: str) -> None:
    push(history, auto_settings.model_copy(update={"pushgateway_url": gateway}), JOBS)
    [(method, path, body)] = Gateway.received
    assert (method, path) == ("PUT", "/metrics/job/ml_assets")
    assert b'ml_assets_run_failure_rate{job="tiny"} 0.25' in body


def test_push_needs_a_url(auto_settings: Settings, history) -> None:
    with pytest.raises(ValueError, match="ML_ASSETS_PUSHGATEWAY_URL"):
        push(history, auto_settings, JOBS)


def test_monitor_sensor_pushes_after_new_runs(
    auto_settings: Settings, instance, gateway: str
) -> None:
    from ml_assets.automation.sensors import build_monitor_sensor
    from ml_assets.resources.notify import build_notifier

    settings = auto_settings.model_copy(update={"pushgateway_url": gateway})
    sensor = build_monitor_sensor(settings)
    resources = {"notifier": build_notifier(settings)}
    context = dg.build_sensor_context(instance=instance, resources=resources)
    sensor(context)
    launch(instance)
    sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor, resources=resources))
    assert [(m, p) for m, p, _ in Gateway.received] == [("PUT", "/metrics/job/ml_assets")]
