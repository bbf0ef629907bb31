"""Benchmark: a backfill of the whole graph through Dagster vs the same work without it.

(a) the fair baseline (``bench/backfill_baseline.py``, the headline): the pipeline's own functions
    over the days, the same outputs (every asset's files, quarantine, online store, registry,
    checkpoints), the days' training sets, models and leaderboards on a process pool of
    ``os.cpu_count()`` workers. (a') a one-core loop with frames in memory and no outputs.
(b) Dagster: a real instance (SQLite) with the run queue (5 runs), ``dagster-daemon`` and the
    webserver; the daily graph (all but ``planes``) over the days launched through GraphQL as
    an asset backfill (``launchPartitionBackfill``: the daemon's backfill loop submits its run)
    or, with ``--launch single-run``, as the launch dialog's single run over the range
    (``launchRun`` with the range tags); timed from the request to the run's end.

The days before the timed range (a training window) are prepared untimed on both sides. Prints
both times (wall-clock and the machine's CPU-seconds), the ratios, whether both lakes hold the
same files, a profile of the Dagster side from its event log and the plan's comparison. Sensors
and schedules are left out of the benchmark's code location (``bench/backfill_location.py``).

    uv run python bench/backfill.py [--days 90] [--models 5] [--window-days 56]
                                    [--baselines fair,loop] [--launch backfill|single-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pipeline import load_time  # noqa: E402  (bench/ is on the path above)

FIRST_DAY = "2013-01-01"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _catalog(path: Path, models: int) -> Path:
    from ml_assets.settings import DEFAULT_CATALOG

    catalog = yaml.safe_load(Path(DEFAULT_CATALOG).read_text())
    catalog["models"] = catalog["models"][:models]
    path.write_text(yaml.safe_dump(catalog))
    return path


def _env(root: Path, landing: Path, catalog: Path, window_days: int) -> dict[str, str]:
    return {
        "ML_ASSETS_ROOT": str(root),
        "ML_ASSETS_LANDING": str(landing),
        "ML_ASSETS_LAKE": str(root / "lake"),
        "ML_ASSETS_CATALOG": str(catalog),
        "ML_ASSETS_WINDOW_DAYS": str(window_days),
        "ML_ASSETS_EXECUTOR": "multiprocess",
        "ML_ASSETS_MAX_CONCURRENT_STEPS": str(os.cpu_count()),
        "DAGSTER_HOME": str(root / "home"),
    }


# -- (a) plain Python ----------------------------------------------------------------------


class Timer:
    """Seconds per label, summed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu = 0.0  # busy CPU seconds of the machine over the timed part

    def __call__(self, label: str, fn, *args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[label] += time.perf_counter() - started


def plain_python(
    settings, days: list[str], warm: list[str], contracts: bool
) -> tuple[float, Timer]:
    """Every asset's pure function for ``days`` in a loop; returns (seconds, per-stage timer)."""
    import io

    import pandas as pd
    from upath import UPath

    from ml_assets.assets.deployment import gate_rules
    from ml_assets.assets.feature_store_assets import online_window
    from ml_assets.atomic import write_atomic
    from ml_assets.checks.contracts import contract_params, load_references, quarantine_limit
    from ml_assets.checks.validation import validate
    from ml_assets.feature_repo.feast_objects import feast_frames
    from ml_assets.models.catalog import load_catalog
    from ml_assets.models.evaluate import score
    from ml_assets.models.features import (
        LABEL,
        build_flight_features,
        build_traffic_features,
        join_keys,
    )
    from ml_assets.models.gate import Champion, review
    from ml_assets.models.leaderboard import rank
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.models.train import fit, holdout, predict
    from ml_assets.models.training_set import build_training_set, split_served_features
    from ml_assets.resources.feature_store import build_feature_store
    from ml_assets.resources.landing_zone import LandingZone
    from ml_assets.sources.landing_files import read_daily, read_reference

    timer = Timer()
    catalog = load_catalog(settings.catalog_path)
    base, horizon = settings.landing_base, settings.prediction_horizon_hours
    store = build_feature_store(settings)
    references = load_references(LandingZone(base_path=base))
    planes = prepare_planes(read_reference(base, "planes"))
    flights, weather, ff, tf = {}, {}, {}, {}
    order = warm + days

    def check(name: str, frame: pd.DataFrame, day: str | None) -> pd.DataFrame:
        if not contracts:
            return frame
        params = contract_params(settings, day, references)
        return timer("contracts", validate, name, frame, params).clean()

    def features(day: str, i: int) -> None:
        landed = check("landed_flights", timer("read", read_daily, base, "flights", day), day)
        flights[day] = check("raw_flights", timer("raw", prepare_flights, landed, day), day)
        landed = check("landed_weather", timer("read", read_daily, base, "weather", day), day)
        weather[day] = check("raw_weather", timer("raw", prepare_weather, landed, day), day)
        window = pd.concat([weather[d] for d in order[max(0, i - 1) : i + 1]], ignore_index=True)
        ff[day] = check(
            "flight_features",
            timer("features", build_flight_features, flights[day], window, planes, horizon),
            day,
        )
        hist = pd.concat(
            [flights[d] for d in order[max(0, i - settings.history_days) : i + 1]],
            ignore_index=True,
        )
        tf[day] = check(
            "traffic_features", timer("features", build_traffic_features, hist, day, horizon), day
        )
        # what feast_features writes: the flight rows and one frame per entity view
        for name, rows in timer("features", feast_frames, ff[day], tf[day], day, horizon).items():
            buffer = io.BytesIO()
            rows.to_parquet(buffer, index=False)
            timer(
                "write",
                write_atomic,
                UPath(settings.lake_base) / name / f"{day}.parquet",
                buffer.getvalue(),
            )

    def online(first: str, last: str) -> None:
        start = online_window(first, horizon)[0]
        end = online_window(last, horizon)[1]
        timer("feast", store.apply)
        timer("feast", store.materialize, start, end)

    for i, day in enumerate(warm):
        features(day, i)
    online(warm[0], warm[-1])
    timer.seconds.clear()
    champion: Champion | None = None
    kept: dict = {}  # the promoted models, by sha256 (the registry of this loop)
    started, cpu_started = time.perf_counter(), machine_cpu()
    for j, day in enumerate(days):
        features(day, len(warm) + j)
    online(days[0], days[-1])
    for j, day in enumerate(days):
        i = len(warm) + j
        window = order[max(0, i - settings.window_days + 1) : i + 1]
        flight_window = pd.concat([ff[d] for d in window], ignore_index=True)
        entities = join_keys(flight_window)
        entities["event_timestamp"] = flight_window["prediction_ts"].to_numpy()
        served = timer("feast", store.historical, entities)
        branches = split_served_features(flight_window, served)
        frame, _ = timer(
            "training_set",
            build_training_set,
            *branches,
            day,
            settings.holdout_days,
            max_unmatched_rows=int(quarantine_limit(settings, len(flight_window))),
        )
        frame = check("training_set", frame, day)
        rows = holdout(frame)
        y = rows[LABEL].to_numpy()
        models = {
            e.name: timer("models", fit, frame, e, settings.seed, 1) for e in catalog
        }  # one core: one thread each
        board = timer(
            "evaluation", rank, {n: (m, score(y, predict(m, rows))) for n, m in models.items()}
        )
        board = check("model_leaderboard", board, day)
        verdict = timer(
            "evaluation",
            review,
            day,
            board,
            models,
            frame,
            champion,
            kept.__getitem__,
            gate_rules(settings),
        )
        if verdict.decision.promote:
            kept[verdict.model.sha256] = verdict.model
            champion = Champion(verdict.model.name, verdict.model.sha256, day)
    timer.cpu = machine_cpu() - cpu_started
    return time.perf_counter() - started, timer


# -- (b) Dagster -------------------------------------------------------------------------------


def _instance_yaml(home: Path) -> str:
    from ml_assets.settings import PROJECT_ROOT

    project = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    return yaml.safe_dump(
        {
            "storage": {"sqlite": {"base_dir": str(home / "storage")}},
            "compute_logs": {
                "module": "dagster._core.storage.noop_compute_log_manager",
                "class": "NoOpComputeLogManager",
            },
            "run_queue": project["run_queue"],
            "telemetry": {"enabled": False},
            "nux": {"enabled": False},
        }
    )


def _workspace(path: Path) -> Path:
    from ml_assets.settings import PROJECT_ROOT

    location = {
        "python_file": {
            "relative_path": str(HERE / "backfill_location.py"),
            "location_name": "ml_assets",
            "working_directory": str(PROJECT_ROOT),
        }
    }
    path.write_text(yaml.safe_dump({"load_from": [location]}))
    return path


SEED_RANGE_DAYS = 5  # warm days the seed runs the whole graph for as one range run


def seed(root: Path, warm: list[str]) -> None:
    """Untimed: planes, then raw and features (and their online rows) for the warm days, and
    the whole graph for their last days: a range run over ``SEED_RANGE_DAYS`` days, then a run
    of the last day. So the registry holds a champion and the instance the history of a running
    one: each step's durations at two lengths, from which the plan fits its fixed and per-day
    seconds (``backfill_plan.fit_step_costs``). The whole-graph runs go through the code
    location's executor, steps side by side as in the backfill's run, so those durations carry
    the same sharing of the cores."""
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
    from ml_assets.operations.materialize import materialize_days, materialize_range
    from ml_assets.settings import Settings

    defs = build_defs(Settings.from_env())
    graph_days = warm[-SEED_RANGE_DAYS - 1 : -1]
    with dg.DagsterInstance.from_config(str(root / "home")) as instance:
        runs = materialize_days(defs, instance, REFERENCE_JOB, [None])
        runs.append(materialize_range(defs, instance, FEATURES_JOB, warm[0], warm[-1]))
        for first in (graph_days[0], warm[-1]):
            last = graph_days[-1] if first == graph_days[0] else first
            runs.append(materialize_range(defs, instance, DAILY_JOB, first, last, launched=True))
        assert all(r.success for r in runs), runs


def through_dagster(
    root: Path, days: list[str], timeout_s: float, launch: str = "backfill"
) -> tuple[Any, float, float, float]:
    """Launch the range through the webserver + daemon: an asset backfill (``launch``
    "backfill") or the UI's single run over the range ("single-run"). Returns (the runs'
    filter, requested at, seconds to healthy, the machine's CPU-seconds from the request to the
    end)."""
    import dagster as dg

    from ml_assets.execution import DAILY_GROUPS
    from ml_assets.operations.backfill_launch import (
        launch_backfill,
        launch_range_run,
        partitioned_assets,
        wait_backfill,
        wait_run,
    )
    from ml_assets.operations.supervisor import DAGSTER_ENV, commands, stop, wait_healthy

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    argv = commands("127.0.0.1", port, _workspace(root / "workspace.yaml"))
    log = (root / "up.log").open("w")
    processes = {
        name: subprocess.Popen(
            cmd, env={**DAGSTER_ENV, **os.environ}, stdout=log, stderr=subprocess.STDOUT
        )
        for name, cmd in argv.items()
    }
    try:
        up_started = time.perf_counter()
        wait_healthy(url, processes, timeout_s=300)
        up_s = time.perf_counter() - up_started
        if launch == "backfill":
            _at_mid_cycle(root / "home")
        assets = partitioned_assets(url, DAILY_GROUPS)
        started, busy = time.time(), machine_cpu()
        if launch == "backfill":
            backfill_id = launch_backfill(url, days[0], days[-1], assets, "bench/backfill.py")
            status = wait_backfill(url, backfill_id, timeout_s, poll_s=5.0)
            ended = status["status"]
            runs = dg.RunsFilter(tags={"dagster/backfill": backfill_id})
        else:
            run_id = launch_range_run(url, days[0], days[-1], assets, "bench/backfill.py")
            ended = wait_run(url, run_id, timeout_s, poll_s=5.0)
            runs = dg.RunsFilter(run_ids=[run_id])
        cpu = machine_cpu() - busy
        assert ended in ("COMPLETED_SUCCESS", "SUCCESS"), f"{launch} ended {ended}; see {root}"
        return runs, started, up_s, cpu
    finally:
        stop(list(processes.values()))
        log.close()


def _at_mid_cycle(home: Path) -> None:
    """Sleep (untimed) to the middle of the backfill daemon's cycle.

    ``dagster-daemon``'s backfill loop looks for new backfills every 30 s from its start
    (``backfill_plan.DAEMON_TICK_S``, not configurable); a request to a long-running instance
    lands at a uniformly random point of that cycle and waits 15 s on average. A daemon started
    just before the request would make the bench wait nearly the whole cycle instead. The
    daemon writes its heartbeat as an iteration starts, so the cycle's phase is known.
    """
    import dagster as dg

    from ml_assets.operations.backfill_plan import DAEMON_TICK_S

    with dg.DagsterInstance.from_config(str(home)) as instance:
        beat = instance.get_daemon_heartbeats()["BACKFILL"].timestamp
    target = beat + DAEMON_TICK_S / 2
    while target < time.time() + 0.5:
        target += DAEMON_TICK_S
    time.sleep(target - time.time())


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (``/proc/stat``; keep the machine quiet)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _event_times(instance, run_id: str) -> dict[str, float]:
    import dagster as dg

    kinds = {
        dg.DagsterEventType.RUN_ENQUEUED,
        dg.DagsterEventType.RUN_DEQUEUED,
        dg.DagsterEventType.RUN_STARTING,
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.RUN_SUCCESS,
    }
    return {
        e.dagster_event.event_type.name: e.timestamp
        for e in instance.all_logs(run_id, of_type=kinds)
    }


def profile(root: Path, runs_filter: Any, requested: float) -> dict:
    """Runs, steps and where the time went, from the instance's event log."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "home")) as instance:
        records = list(instance.get_run_records(runs_filter))
        by_step: dict[str, float] = defaultdict(float)
        steps = 0
        runs = []
        for record in records:
            stats = [
                s for s in instance.get_run_step_stats(record.dagster_run.run_id) if s.end_time
            ]
            steps += len(stats)
            for stat in stats:
                kind = "model__*" if stat.step_key.startswith("model__") else stat.step_key
                by_step[kind] += stat.end_time - stat.start_time
            times = _event_times(instance, record.dagster_run.run_id)
            runs.append(
                {
                    "ranged": RANGE_TAGS[0] in record.dagster_run.tags,
                    "created": record.create_timestamp.timestamp(),
                    "queued": times["RUN_STARTING"]
                    - times.get("RUN_ENQUEUED", times["RUN_STARTING"]),
                    "launch": times["RUN_START"] - times["RUN_STARTING"],
                    "first_step": min((s.start_time for s in stats), default=times["RUN_START"]),
                    "start": times["RUN_START"],
                    "end": times["RUN_SUCCESS"],
                    "busy": sum(s.end_time - s.start_time for s in stats),
                }
            )
        ranged = [r for r in runs if r["ranged"]]
        daily = [r for r in runs if not r["ranged"]]
        return {
            "runs": len(records),
            "ranged_runs": len(ranged),
            "steps": steps,
            "step_seconds": dict(sorted(by_step.items(), key=lambda kv: -kv[1])),
            "busy": sum(r["busy"] for r in runs),
            "in_run_outside_steps": sum(r["end"] - r["start"] - r["busy"] for r in runs),
            "launch_total": sum(r["launch"] for r in runs),
            "launch_median": statistics.median(r["launch"] for r in runs),
            "queued_median": statistics.median(r["queued"] for r in runs),
            "first_run_after_request": min(r["created"] for r in runs) - requested,
            "range_end_to_day_runs": (
                min(r["created"] for r in daily) - max(r["end"] for r in ranged)
                if ranged and daily
                else 0.0
            ),
            "range_run": sum(r["end"] - r["created"] for r in ranged),
            "wall": max(r["end"] for r in runs) - requested,
        }


def _digest(path: Path) -> str:
    import hashlib
    import json

    if path.name.endswith(".json") and path.parent.name == "deployed_model":
        document = json.loads(path.read_text())
        document.pop("manifest", None)  # its lineage holds the Dagster instance's data versions
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare_lakes(ours: Path, theirs: Path) -> tuple[int, list[str]]:
    """Files of every asset in both lakes: (identical, differing); the registry by its history of
    promoted models. Feast's own files and checkpoints are left out."""
    import json

    same, differ = 0, []
    for path in sorted(ours.rglob("*")):
        relative = path.relative_to(ours)
        if not path.is_file() or relative.parts[0] in ("feast", "registry", "checkpoints"):
            continue
        other = theirs / relative
        if other.is_file() and _digest(path) == _digest(other):
            same += 1
        else:
            differ.append(str(relative))

    def promoted(lake: Path) -> list[tuple[str, str]]:
        folder = lake / "registry" / "models"
        return sorted(
            (json.loads((m / "manifest.json").read_text())["partition"], m.name)
            for m in (folder.iterdir() if folder.exists() else [])
        )

    if promoted(ours) != promoted(theirs):
        differ.append("registry: promoted models")
    else:
        same += len(promoted(ours))
    return same, differ


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=90, help="days backfilled (timed)")
    parser.add_argument("--models", type=int, default=5, help="first N models of the catalog")
    parser.add_argument("--window-days", type=int, default=56, help="training window (warm days)")
    parser.add_argument(
        "--baselines",
        default="fair,loop",
        help="fair (the headline: same work, same outputs, same cores) and/or loop (one core, "
        "frames in memory, no outputs)",
    )
    parser.add_argument("--skip-dagster", action="store_true", help="only the baselines")
    parser.add_argument(
        "--launch",
        choices=("backfill", "single-run"),
        default="backfill",
        help="an asset backfill (the daemon's backfill loop submits its run), or the UI's "
        "'Launch as... Single run' (the run is queued at once)",
    )
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    parser.add_argument("--keep", help="keep the run's files under this folder")
    args = parser.parse_args()

    from backfill_baseline import fair_baseline

    from ml_assets.settings import Settings
    from ml_assets.sources.landing_files import days_between, land

    first = dt.date.fromisoformat(FIRST_DAY) + dt.timedelta(days=args.window_days)
    last = first + dt.timedelta(days=args.days - 1)
    all_days = days_between(FIRST_DAY, last.isoformat())
    days, warm = all_days[-args.days :], all_days[: -args.days]
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="ml-assets-backfill-"))
    landing = tmp / "landing"
    land(str(landing), FIRST_DAY, last.isoformat())
    catalog = _catalog(tmp / "catalog.yaml", args.models)
    print(
        f"backfill of {args.days} days ({days[0]}..{days[-1]}), {args.models} models, "
        f"{args.window_days}-day window; machine: {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}"
    )

    fair = loop = None
    if "fair" in args.baselines:
        root = tmp / "fair"
        root.mkdir()
        settings = Settings.from_env(_env(root, landing, catalog, args.window_days))
        seconds, cpu, stages = fair_baseline(
            settings, days, warm, machine_cpu, seed_graph_days=SEED_RANGE_DAYS + 1
        )
        fair = (seconds, cpu)
        detail = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        print(
            f"(a) fair baseline ({os.cpu_count()} workers): {seconds:8.1f} s wall, "
            f"{fair[1]:8.1f} CPU-s   [{detail}]"
        )
    if "loop" in args.baselines:
        root = tmp / "loop"
        root.mkdir()
        settings = Settings.from_env(_env(root, landing, catalog, args.window_days))
        seconds, timer = plain_python(settings, days, warm, contracts=True)
        loop = (seconds, timer.cpu)
        stages = ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(timer.seconds.items(), key=lambda kv: -kv[1])
        )
        print(
            f"(a') one-core loop, no outputs:  {seconds:8.1f} s wall, {timer.cpu:8.1f} CPU-s   "
            f"[{stages}]"
        )
    if args.skip_dagster:
        return

    root = tmp / "dagster"
    (root / "home").mkdir(parents=True)
    (root / "home" / "dagster.yaml").write_text(_instance_yaml(root / "home"))
    os.environ.update(_env(root, landing, catalog, args.window_days))
    seed(root, warm)
    runs, requested, up_s, dagster_cpu = through_dagster(root, days, args.timeout, args.launch)
    facts = profile(root, runs, requested)
    dagster_s = facts["wall"]
    how = "backfill" if args.launch == "backfill" else "single run over the range"
    print(
        f"(b) Dagster {how} (daemon, webserver, {os.cpu_count()} steps at once): "
        f"{dagster_s:8.1f} s wall, {dagster_cpu:8.1f} CPU-s   "
        f"[{facts['runs']} runs ({facts['ranged_runs']} over the range), {facts['steps']} steps]"
    )
    for name, base in (("fair baseline", fair), ("one-core loop", loop)):
        if base:
            print(
                f"    (b)/({name}): wall {dagster_s / base[0]:.2f}, CPU {dagster_cpu / base[1]:.2f}"
            )
    if fair:
        same, differ = compare_lakes(tmp / "fair" / "lake", root / "lake")
        print(
            f"    outputs: {same} files identical in both lakes"
            + (f"; {len(differ)} differ: {', '.join(differ[:8])}" if differ else "")
        )
    print("    profile of (b) (seconds; sums are over runs and steps, several run at once):")
    print(f"      step compute, sum                        : {facts['busy']:8.1f}")
    print(
        f"      run launch (process start + code load), sum: {facts['launch_total']:8.1f}  "
        f"(median {facts['launch_median']:.1f} per run)"
    )
    print(
        f"      in runs outside steps (events, IO setup), sum: {facts['in_run_outside_steps']:8.1f}"
    )
    print(
        f"      request -> first run created             : {facts['first_run_after_request']:8.1f}"
    )
    print(f"      range run (created -> ended)             : {facts['range_run']:8.1f}")
    print(f"      median wait in the run queue             : {facts['queued_median']:8.1f}")
    print("      step compute by step (sum):")
    for step, seconds in list(facts["step_seconds"].items())[:12]:
        print(f"        {step:34s} {seconds:8.1f} s")
    print(f"    webserver + daemon healthy after {up_s:.1f} s (not counted)")
    if args.launch == "backfill":
        print("the plan from the runs before it (ml-assets plan-backfill --compare):")
        from ml_assets.operations.cli import main as cli

        cli(["plan-backfill", "--compare", "--start", days[0], "--end", days[-1]])
    dagster_import, location = load_time()
    print(
        f"code location load: import dagster {dagster_import:.2f} s, + definitions {location:.2f} s"
    )
    print(f"files: {tmp}" if args.keep else "")


if __name__ == "__main__":
    main()
