"""Benchmark: peak memory of a backfill's range part (raw data through training sets), by length.

A backfill runs the raw, feature, Feast and training-set assets once over its whole range
(``BackfillPolicy.single_run()``). Memory should not grow with the range: range inputs are read
a day at a time and dropped once a sliding window has passed them, the training sets are written
as they are computed, the online store is materialized a few weeks per Feast call. For each
length this runs, in a fresh process and lake, one run of those assets over the range with the
in-process executor, every step in this process, through ``dg.execute_job`` as a run worker runs
it (``execute_in_process`` would keep every step's output for its result), and prints that
process's peak RSS, the peak while each step ran, and the wall-clock. (The training sets' worker
processes, ``assets/day_pool.py``, come from a forkserver, so they are not counted; each holds
one day's inputs and result at a time.)

The first ``--warm`` days (raw data and features only, in a run of their own, not measured) give
the first training set its history: ``min_training_rows`` needs about three weeks of flights.

    uv run python bench/range_memory.py [--days 90,344] [--warm 21]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

FIRST_DAY = "2013-01-01"
RANGE_PART = ("raw", "features", "training")  # groups; the models are left out


def _day(offset: int) -> str:
    return (dt.date.fromisoformat(FIRST_DAY) + dt.timedelta(days=offset)).isoformat()


class RssSampler(threading.Thread):
    """This process's resident memory, sampled every 0.2 s while the run goes on."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.start()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            with open("/proc/self/statm") as statm:
                self.samples.append((time.time(), int(statm.read().split()[1]) * page))
            time.sleep(0.2)

    def by_step(self, instance: Any, run_id: str) -> dict[str, float]:
        """The peak RSS (MiB) while each step ran, from its start and end events."""
        import dagster as dg

        spans: dict[str, list[float]] = {}
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type in (dg.DagsterEventType.STEP_START,):
                spans[event.step_key] = [record.timestamp, float("inf")]
            elif event.event_type in (
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            ):
                spans[event.step_key][1] = record.timestamp
        samples = list(self.samples)
        return {
            step: round(max((rss for t, rss in samples if start <= t <= end), default=0) / 2**20)
            for step, (start, end) in spans.items()
        }


def range_job() -> Any:
    """A job of the range part's assets in the code location configured by the environment."""
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.settings import Settings

    defs = build_defs(Settings.from_env())
    job = dg.define_asset_job("range_part", selection=range_part(defs))
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("range_part")


def range_part(defs: Any) -> list[Any]:
    """The partitioned assets of the raw, feature and training groups, models left out."""
    graph = defs.resolve_asset_graph()
    return [
        key
        for key in graph.get_all_asset_keys()
        if graph.get(key).group_name in RANGE_PART
        and graph.get(key).is_partitioned
        and not key.to_user_string().startswith("model__")
    ]


def one_range(root: Path, landing: Path, warm: int, days: int) -> dict:
    """Warm-up run, then the measured range run, in this process; the figures as a dict."""
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.execution import FEATURES_JOB, REFERENCE_JOB
    from ml_assets.operations.materialize import RANGE_TAGS, materialize_days, materialize_range
    from ml_assets.settings import Settings

    os.environ.update(
        {
            "ML_ASSETS_ROOT": str(root),
            "ML_ASSETS_LANDING": str(landing),
            "ML_ASSETS_LAKE": str(root / "lake"),
            "ML_ASSETS_EXECUTOR": "in_process",
        }
    )
    settings = Settings.from_env()
    defs = build_defs(settings)
    selection = range_part(defs)
    first, last = _day(warm), _day(warm + days - 1)
    with dg.DagsterInstance.ephemeral() as instance:
        assert materialize_days(defs, instance, REFERENCE_JOB, [None])[0].success
        assert materialize_range(defs, instance, FEATURES_JOB, _day(0), _day(warm - 1)).success
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sampler = RssSampler()
        started = time.perf_counter()
        # execute_job, not execute_in_process: the latter keeps every step's output in memory
        # for its result, which a run worker does not.
        with dg.execute_job(
            dg.reconstructable(range_job),
            instance,
            tags={RANGE_TAGS[0]: first, RANGE_TAGS[1]: last},
            raise_on_error=False,
        ) as result:
            success = result.success
            steps = sampler.by_step(instance, result.run_id)
        seconds = time.perf_counter() - started
    assert success, f"the range run {first}..{last} failed"
    training_sets = sorted((root / "lake" / "training_set").glob("*.parquet"))
    return {
        "days": days,
        "range": f"{first}..{last}",
        "assets": len(selection),
        "training_sets": len(training_sets),
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_before_run_mib": round(before / 1024, 1),
        "peak_rss_by_step_mib": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", default="90,344", help="range lengths, comma-separated")
    parser.add_argument("--warm", type=int, default=21, help="days before the range (unmeasured)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one length
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--landing", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        figures = one_range(Path(args.root), Path(args.landing), args.warm, args.one)
        print(json.dumps(figures))
        return

    from ml_assets.sources.landing_files import land

    lengths = [int(n) for n in args.days.split(",")]
    if args.warm + max(lengths) > 365:
        parser.error(f"--warm {args.warm} + {max(lengths)} days run past 2013")
    tmp = Path(tempfile.mkdtemp(prefix="ml-assets-range-memory-"))
    landing = tmp / "landing"
    land(str(landing), _day(0), _day(args.warm + max(lengths) - 1))
    print(
        f"range part (groups {', '.join(RANGE_PART)}) in one in-process run; warm-up "
        f"{args.warm} days; machine: {os.cpu_count()} cores"
    )
    rows = []
    for days in lengths:
        root = tmp / f"d{days}"
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(days),
                "--warm",
                str(args.warm),
                "--root",
                str(root),
                "--landing",
                str(landing),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode:
            sys.exit(f"{days} days failed:\n{child.stderr[-4000:]}")
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(
            f"{row['days']:4d} days {row['range']}: {row['training_sets']} training sets, "
            f"{row['seconds']:7.1f} s; peak RSS of the run's process {row['peak_rss_mib']:7.1f} "
            f"MiB (before the run {row['peak_rss_before_run_mib']:.1f})"
        )
        steps = sorted(row["peak_rss_by_step_mib"].items(), key=lambda item: -item[1])
        print("      peak by step (MiB): " + ", ".join(f"{k} {v}" for k, v in steps[:6]))
    if len(rows) > 1:
        print(
            f"peak RSS {rows[-1]['days']} vs {rows[0]['days']} days: "
            f"{rows[-1]['peak_rss_mib'] / rows[0]['peak_rss_mib']:.2f}x for "
            f"{rows[-1]['days'] / rows[0]['days']:.1f}x the days"
        )


if __name__ == "__main__":
    main()
