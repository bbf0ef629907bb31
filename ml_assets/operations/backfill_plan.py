"""A backfill's cost before it runs: runs, steps, CPU/GPU-hours, wall-clock and money.

:func:`plan_backfill` is pure: it takes the steps of the job (asset or check, its backfill
policy, resource profile, spot, whether its range computes days in parallel), the days, each
step's seconds per day and fixed seconds per run (observed or default), the concurrency limits
and a price table, and returns a :class:`Plan`. The ``collect_*`` functions and :func:`observe`
read those inputs from the definitions and the instance's event log (:func:`fit_step_costs`);
:func:`actual_backfill` reads what a finished backfill really cost, for
``ml-assets plan-backfill --compare``.

The model: steps of single-run assets (and their checks) run once for the whole range (or in
chunks of ``max_partitions_per_run`` days); every other step runs once per day, in one run per
day. A step doing ``n`` days takes its fixed seconds plus ``n`` times its seconds per day (over
``day_workers`` processes for a parallel step's range). Inside a run, steps go depth after depth
of the graph, those of one depth side by side on the executor's slots, each paying a step's
start. Range runs go first (the per-day runs read their output), each stage on a tick of the
backfill daemon, then the per-day runs, at most ``max_concurrent_runs`` at a time and with GPU
steps limited by the GPU pool. CPU-hours bill each step's duration times its profile's CPU
request, as Kubernetes does.
"""

from __future__ import annotations

import heapq
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ml_assets import k8s

if TYPE_CHECKING:
    import dagster as dg

    from ml_assets.settings import Settings

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
PARTITION, BACKFILL = "dagster/partition", "dagster/backfill"
DAEMON_TICK_S = 30.0  # dagster-daemon's backfill loop (DEFAULT_DAEMON_INTERVAL_SECONDS)


@dataclass(frozen=True)
class Step:
    """One node of the job: an asset or an asset check, where it runs and on what."""

    name: str
    asset: str
    single_run: bool = False
    max_days_per_run: int | None = None
    profile: str = k8s.DEFAULT_PROFILE
    spot: bool = False
    depth: int = 0  # longest chain of steps before it in the graph
    parallel: bool = False  # a range run computes its days on Limits.day_workers processes
    check: bool = False  # an asset check's step

    @property
    def cpus(self) -> float:
        return k8s.quantity(k8s.PROFILES[self.profile]["requests"]["cpu"])

    @property
    def gpus(self) -> float:
        return k8s.quantity(k8s.PROFILES[self.profile]["requests"].get("nvidia.com/gpu", "0"))


@dataclass(frozen=True)
class Limits:
    max_concurrent_runs: int = 5
    gpu_slots: int = 1
    run_overhead_s: float = 5.0
    step_slots: int = 1
    step_overhead_s: float = 0.0
    # the backfill daemon's cycle: a stage's runs wait for its next tick, half a cycle on average
    daemon_tick_s: float = 0.0
    day_workers: int = 1  # processes of a parallel step's range run (k8s.day_workers)


@dataclass(frozen=True)
class Prices:
    """Dollars per hour of one CPU core / one GPU, on demand and on spot nodes."""

    cpu_on_demand: float
    cpu_spot: float
    gpu_on_demand: float
    gpu_spot: float


@dataclass(frozen=True)
class PlannedRun:
    days: tuple[str, ...]
    steps: tuple[str, ...]
    seconds: float
    gpu_seconds: float
    ranged: bool
    stage: int = 0


@dataclass
class Plan:
    days: list[str]
    runs: list[PlannedRun]
    cpu_hours: float
    gpu_hours: float
    wall_clock_s: float
    cost_on_demand: float
    cost_spot: float
    seconds_per_step_day: dict[str, float] = field(default_factory=dict)
    fixed_seconds_per_step: dict[str, float] = field(default_factory=dict)
    skipped_step_days: int = 0
    observed: set[str] = field(default_factory=set)

    @property
    def steps(self) -> int:
        return sum(len(r.steps) for r in self.runs)


def _chunks(days: Sequence[str], size: int | None) -> list[tuple[str, ...]]:
    size = size or len(days)
    return [tuple(days[i : i + size]) for i in range(0, len(days), size)]


def plan_backfill(
    days: Sequence[str],
    steps: Sequence[Step],
    seconds_per_step_day: Mapping[str, float],
    default_step_s: float,
    limits: Limits,
    prices: Prices,
    job_backfill: bool = False,
    todo: Mapping[str, Collection[str]] | None = None,
    fixed_seconds_per_step: Mapping[str, float] | None = None,
) -> Plan:
    """The runs and steps a backfill of ``steps`` over ``days`` launches, and what they cost.

    A step doing ``n`` days takes its fixed seconds plus its seconds per day times ``n``
    (divided by ``limits.day_workers`` for a parallel step's range). ``job_backfill``: launched
    as a backfill of the job (``dagster job backfill``, the job's page), which runs every day on
    its own unless every asset of the job is single-run. ``todo``: only these days of each asset
    (the stale ones); a step of an asset runs with it.
    """
    fixed_seen = fixed_seconds_per_step or {}
    seconds: dict[str, float] = {}
    fixed: dict[str, float] = {}
    for s in steps:
        if s.name in seconds_per_step_day or s.name in fixed_seen:
            seconds[s.name] = float(seconds_per_step_day.get(s.name, 0.0))
            fixed[s.name] = float(fixed_seen.get(s.name, 0.0))
        elif s.check:  # never seen: a check's range step judges its days from their records
            seconds[s.name], fixed[s.name] = 0.0, float(default_step_s)
        else:
            seconds[s.name], fixed[s.name] = float(default_step_s), 0.0
    if job_backfill and not all(s.single_run for s in steps):
        steps = [replace(s, single_run=False, max_days_per_run=None) for s in steps]

    def does(step: Step, day: str) -> bool:
        return todo is None or day in todo.get(step.asset, ())

    def took(step: Step, n: int, ranged: bool) -> tuple[Step, int, float]:
        workers = limits.day_workers if step.parallel and ranged and n > 1 else 1
        return step, n, (fixed[step.name] + seconds[step.name] * n / workers if n else 0.0)

    runs: list[PlannedRun] = []
    ranged: dict[int | None, list[Step]] = defaultdict(list)
    for step in steps:
        if step.single_run:
            ranged[step.max_days_per_run].append(step)
    bill = Bill()
    done = 0
    for stage, (size, group) in enumerate(ranged.items()):
        wanted = [d for d in days if any(does(s, d) for s in group)]
        for chunk in _chunks(wanted, size):
            work = [took(s, sum(does(s, d) for d in chunk), True) for s in group]
            runs.append(_run(chunk, work, limits, ranged=True, stage=stage))
            for s, n, step_s in work:
                bill.add(s, step_s, prices)
                done += n
    daily = [s for s in steps if not s.single_run]
    per_day = []
    for day in days:
        work = [took(s, 1, False) for s in daily if does(s, day)]
        if work:
            per_day.append(_run((day,), work, limits, ranged=False))
        for s, n, step_s in work:
            bill.add(s, step_s, prices)
            done += n
    return Plan(
        days=list(days),
        runs=runs + per_day,
        cpu_hours=bill.cpu_s / 3600,
        gpu_hours=bill.gpu_s / 3600,
        wall_clock_s=_wall_clock(runs, per_day, limits),
        cost_on_demand=bill.on_demand,
        cost_spot=bill.spot,
        seconds_per_step_day=seconds,
        fixed_seconds_per_step=fixed,
        skipped_step_days=len(steps) * len(days) - done,
    )


@dataclass
class Bill:
    """CPU/GPU-seconds and dollars, on demand and with spot where the step allows it."""

    cpu_s: float = 0.0
    gpu_s: float = 0.0
    on_demand: float = 0.0
    spot: float = 0.0

    def add(self, step: Step, seconds: float, prices: Prices) -> None:
        cpu_h, gpu_h = seconds * step.cpus / 3600, seconds * step.gpus / 3600
        self.cpu_s += seconds * step.cpus
        self.gpu_s += seconds * step.gpus
        full = cpu_h * prices.cpu_on_demand + gpu_h * prices.gpu_on_demand
        self.on_demand += full
        self.spot += cpu_h * prices.cpu_spot + gpu_h * prices.gpu_spot if step.spot else full


def _run(
    days: tuple[str, ...],
    work: Sequence[tuple[Step, int, float]],
    limits: Limits,
    ranged: bool,
    stage: int = 0,
) -> PlannedRun:
    """A run over ``days`` doing each step (for its days, in its seconds): depth after depth,
    the steps of one depth on the executor's slots, longest first (as step priorities order
    them)."""
    done = [(s, t) for s, n, t in work if n]
    wall = sum(
        _list_schedule(
            sorted((t + limits.step_overhead_s for s, t in done if s.depth == depth), reverse=True),
            limits.step_slots,
        )
        for depth in sorted({s.depth for s, _ in done})
    )
    gpu = sum(t for s, t in done if s.gpus)
    names = tuple(s.name for s, _ in done)
    return PlannedRun(days, names, limits.run_overhead_s + wall, gpu, ranged, stage)


def _wall_clock(ranged: list[PlannedRun], daily: list[PlannedRun], limits: Limits) -> float:
    """Range runs stage after stage (a stage's runs in parallel, up to the queue limit), then
    the day runs through the queue; never less than the GPU work divided by the GPU slots. Each
    stage starts on a tick of the backfill daemon: half its cycle later, on average."""
    stages = sorted({r.stage for r in ranged})
    ticks = limits.daemon_tick_s / 2 * (len(stages) + bool(daily))
    first = ticks + sum(
        _list_schedule([r.seconds for r in ranged if r.stage == s], limits.max_concurrent_runs)
        for s in stages
    )
    then = _list_schedule([r.seconds for r in daily], limits.max_concurrent_runs)
    gpu_bound = sum(r.gpu_seconds for r in daily) / max(limits.gpu_slots, 1)
    return first + max(then, gpu_bound)


def _list_schedule(durations: Iterable[float], slots: int) -> float:
    """Makespan of jobs started in order on ``slots`` parallel slots."""
    finish = [0.0] * max(slots, 1)
    heapq.heapify(finish)
    end = 0.0
    for duration in durations:
        start = heapq.heappop(finish)
        end = max(end, start + duration)
        heapq.heappush(finish, start + duration)
    return end


def format_plan(plan: Plan, job: str) -> str:
    """The plan as the CLI prints it."""
    ranged = [r for r in plan.runs if r.ranged]
    lines = [
        f"Backfill plan: {job}, {plan.days[0]}..{plan.days[-1]} ({len(plan.days)} days)",
        f"  runs  : {len(plan.runs)} ({len(ranged)} over ranges, "
        f"{len(plan.runs) - len(ranged)} one per day)",
        f"  steps : {plan.steps}"
        + (
            f" ({plan.skipped_step_days} step-days up to date, skipped)"
            if plan.skipped_step_days
            else ""
        ),
    ]
    for run in ranged:
        lines.append(
            f"    range run {run.days[0]}..{run.days[-1]}: {len(run.steps)} steps "
            f"({', '.join(run.steps)}), ~{run.seconds:.0f} s"
        )
    day_runs = [r for r in plan.runs if not r.ranged]
    if day_runs:
        widest = max(day_runs, key=lambda r: len(r.steps))
        lines.append(
            f"    per-day runs: {len(day_runs)} x up to {len(widest.steps)} steps "
            f"({', '.join(widest.steps)}), ~{widest.seconds:.0f} s each"
        )
    lines += [
        f"  CPU-hours  : {plan.cpu_hours:.3f}",
        f"  GPU-hours  : {plan.gpu_hours:.3f}",
        f"  wall-clock : {_duration(plan.wall_clock_s)} (queue and GPU limits)",
        f"  cost       : ${plan.cost_on_demand:.4f} on demand, ${plan.cost_spot:.4f} with spot "
        "where allowed",
        f"  durations  : observed for {len(plan.observed)} of {len(plan.seconds_per_step_day)} "
        "steps, defaults for the rest",
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


# -- reading the definitions and the instance ------------------------------------------------


def collect_steps(defs: dg.Definitions, job: str, job_backfill: bool = False) -> list[Step]:
    """The steps a backfill of ``job``'s assets runs, with each asset's backfill policy,
    profile and spot flag: the job's nodes (``job_backfill``), else its assets with every check
    on them (an asset backfill runs them all, the sensor-evaluated ones included)."""
    job_def = defs.resolve_job_def(job)
    graph = defs.resolve_asset_graph()
    by_op = {a.op.name: a for a in graph.assets_defs if a.is_executable}
    assets = job_def.asset_layer.executable_asset_keys
    nodes = job_def if job_backfill else defs.resolve_implicit_global_asset_job_def()
    steps = []
    depths: dict[dg.AssetKey, int] = {}
    for node in nodes.nodes_in_topological_order:
        assets_def = by_op.get(node.name)
        if assets_def is None:
            continue
        key = _step_asset(node.name, assets_def)
        if key not in assets:
            continue
        policy = graph.get(key).backfill_policy
        tags = assets_def.op.tags
        if assets_def.keys:
            depth = 1 + max(
                (depths.get(p, -1) for k in assets_def.keys for p in graph.get(k).parent_keys),
                default=-1,
            )
            depths.update(dict.fromkeys(assets_def.keys, depth))
        else:  # a check step runs after its asset
            depth = depths.get(key, 0) + 1
        steps.append(
            Step(
                name=node.name,
                asset=key.to_user_string(),
                single_run=policy is not None and policy.max_partitions_per_run != 1,
                max_days_per_run=policy.max_partitions_per_run if policy else None,
                profile=str(tags.get("ml_assets/profile", k8s.DEFAULT_PROFILE)),
                spot=tags.get("ml_assets/spot") == "true",
                depth=depth,
                parallel=tags.get(k8s.PARALLEL_DAYS_TAG) == "true",
                check=not assets_def.keys,
            )
        )
    return steps


def _step_asset(step: str, assets_def: dg.AssetsDefinition) -> dg.AssetKey:
    """The asset a step stands for: its own, the one named like the step of a multi-asset
    (``feast_features`` writes five entity-view files too), or the asset of a check step."""
    keys = sorted(assets_def.keys, key=lambda k: k.to_user_string())
    if not keys:
        return next(iter(assets_def.check_keys)).asset_key
    return next((k for k in keys if k.to_user_string() == step), keys[0])


def run_days(tags: Mapping[str, str], partitions: Sequence[str]) -> list[str]:
    """The days a run materialized, from its partition or range tags."""
    if PARTITION in tags:
        return [tags[PARTITION]]
    if RANGE_START in tags and RANGE_END in tags:
        return [d for d in partitions if tags[RANGE_START] <= d <= tags[RANGE_END]]
    return []


@dataclass
class Observed:
    """Per step: seconds per day and fixed seconds per run, fitted to the step durations of the
    event log's runs (see :func:`fit_step_costs`); and the per-run overhead seen."""

    seconds_per_step_day: dict[str, float]
    run_overhead_s: float | None
    runs: int
    fixed_seconds_per_step: dict[str, float] = field(default_factory=dict)


def fit_step_costs(samples: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(fixed, per_day)`` with ``seconds = fixed + per_day * days`` over ``(days, seconds)``
    samples: least squares (both at least 0) when the samples' days differ; from runs of one
    length only, all of it per day (the fixed part cannot be told apart)."""
    xs = [x for x, _ in samples]
    if len(set(xs)) < 2:
        return 0.0, statistics.median(seconds / x for x, seconds in samples)
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(y for _, y in samples)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in samples) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    if slope <= 0:
        return mean_y, 0.0
    fixed = mean_y - slope * mean_x
    if fixed < 0:
        return 0.0, sum(y for _, y in samples) / sum(xs)
    return fixed, slope


def observe(
    instance: dg.DagsterInstance,
    partitions: Sequence[str],
    before: float | None = None,
    limit: int = 200,
    backfill_id: str | None = None,
    parallel: Collection[str] = (),
    day_workers: int = 1,
) -> Observed:
    """Step costs from the latest successful runs (ended before ``before``, or of one
    backfill). A ``parallel`` step's range of ``n`` days counts as ``n / day_workers`` days."""
    import dagster as dg

    tags = {BACKFILL: backfill_id} if backfill_id else None
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], tags=tags), limit=limit
    )
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    overheads = []
    used = 0
    for record in records:
        if before is not None and (record.end_time or 0) > before:
            continue
        days = run_days(record.dagster_run.tags, partitions)
        if not days:
            continue
        stats = [s for s in instance.get_run_step_stats(record.dagster_run.run_id) if s.end_time]
        if not stats:
            continue
        used += 1
        busy = 0.0
        for stat in stats:
            seconds = stat.end_time - stat.start_time
            busy += seconds
            pooled = stat.step_key in parallel and len(days) > 1
            samples[stat.step_key].append((len(days) / (day_workers if pooled else 1), seconds))
        if record.start_time and record.end_time:
            overheads.append(max(record.end_time - record.start_time - busy, 0.0))
    costs = {key: fit_step_costs(v) for key, v in samples.items()}
    return Observed(
        {key: per_day for key, (_, per_day) in costs.items()},
        statistics.median(overheads) if overheads else None,
        used,
        {key: fixed for key, (fixed, _) in costs.items()},
    )


def limits_from(instance: dg.DagsterInstance, settings: Settings, overhead: float | None) -> Limits:
    """The run queue's limit and the GPU pool's slots from the instance (settings if unset);
    the executor's step slots and per-step start-up from settings."""
    config = instance.get_concurrency_config()
    runs = (
        config.run_queue_config.max_concurrent_runs
        if config.run_queue_config
        else settings.backfill_max_concurrent_runs
    )
    gpu = settings.backfill_gpu_slots
    try:
        info = instance.event_log_storage.get_concurrency_info(k8s.GPU_POOL)
        gpu = info.slot_count or config.pool_config.default_pool_limit or gpu
    except NotImplementedError:  # storages without pools keep the settings' slot count
        pass
    slots = {
        "multiprocess": settings.max_concurrent_steps,
        "k8s": settings.k8s_max_concurrent_steps,
    }
    in_process = settings.executor == "in_process"
    return Limits(
        max_concurrent_runs=runs if runs and runs > 0 else settings.backfill_max_concurrent_runs,
        gpu_slots=gpu,
        run_overhead_s=overhead if overhead is not None else settings.backfill_run_overhead_s,
        step_slots=slots.get(settings.executor, 1),
        step_overhead_s=0.0 if in_process else settings.backfill_step_overhead_s,
        daemon_tick_s=DAEMON_TICK_S,
        day_workers=k8s.day_workers(settings),
    )


def prices_from(settings: Settings) -> Prices:
    return Prices(
        cpu_on_demand=settings.price_cpu_hour_on_demand,
        cpu_spot=settings.price_cpu_hour_spot,
        gpu_on_demand=settings.price_gpu_hour_on_demand,
        gpu_spot=settings.price_gpu_hour_spot,
    )


def plan_from_instance(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    settings: Settings,
    job: str,
    days: Sequence[str],
    before: float | None = None,
    job_backfill: bool = False,
    todo: Mapping[str, Collection[str]] | None = None,
) -> Plan:
    """The plan with durations observed in ``instance`` (runs ended before ``before``)."""
    from ml_assets.partitions import daily

    steps = collect_steps(defs, job, job_backfill)
    parallel = {s.name for s in steps if s.parallel}
    observed = observe(
        instance,
        daily.get_partition_keys(),
        before=before,
        parallel=parallel,
        day_workers=k8s.day_workers(settings),
    )
    seen = observed.seconds_per_step_day
    known = {s.name: seen[s.name] for s in steps if s.name in seen}
    plan = plan_backfill(
        days,
        steps,
        known,
        settings.backfill_default_step_s,
        limits_from(instance, settings, observed.run_overhead_s),
        prices_from(settings),
        job_backfill=job_backfill,
        todo=todo,
        fixed_seconds_per_step=observed.fixed_seconds_per_step,
    )
    plan.observed = set(known)
    return plan


@dataclass
class Actual:
    """What a finished backfill cost, from its runs' step statistics."""

    backfill_id: str
    runs: int
    steps: int
    cpu_hours: float
    gpu_hours: float
    wall_clock_s: float
    cost_on_demand: float
    cost_spot: float
    requested_at: float


def actual_backfill(
    instance: dg.DagsterInstance, backfill_id: str, steps: Sequence[Step], prices: Prices
) -> Actual:
    """Runs, steps, CPU/GPU-hours, cost and wall-clock (requested -> last run ended)."""
    import dagster as dg

    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise ValueError(f"no backfill {backfill_id} in this instance")
    records = instance.get_run_records(dg.RunsFilter(tags={BACKFILL: backfill_id}))
    by_name = {s.name: s for s in steps}
    bill = Bill()
    n_steps = 0
    for record in records:
        for stat in instance.get_run_step_stats(record.dagster_run.run_id):
            if not stat.end_time or not stat.start_time:
                continue
            n_steps += 1
            step = by_name.get(stat.step_key, Step(stat.step_key, stat.step_key))
            bill.add(step, stat.end_time - stat.start_time, prices)
    ends = [r.end_time for r in records if r.end_time]
    return Actual(
        backfill_id=backfill_id,
        runs=len(records),
        steps=n_steps,
        cpu_hours=bill.cpu_s / 3600,
        gpu_hours=bill.gpu_s / 3600,
        wall_clock_s=(max(ends) - backfill.backfill_timestamp) if ends else 0.0,
        cost_on_demand=bill.on_demand,
        cost_spot=bill.spot,
        requested_at=backfill.backfill_timestamp,
    )


def format_compare(plan: Plan, actual: Actual) -> str:
    """Estimate vs actual, one line per figure."""
    rows = [
        ("runs", len(plan.runs), actual.runs, "{:.0f}"),
        ("steps", plan.steps, actual.steps, "{:.0f}"),
        ("CPU-hours", plan.cpu_hours, actual.cpu_hours, "{:.4f}"),
        ("GPU-hours", plan.gpu_hours, actual.gpu_hours, "{:.4f}"),
        ("wall-clock s", plan.wall_clock_s, actual.wall_clock_s, "{:.0f}"),
        ("cost on demand $", plan.cost_on_demand, actual.cost_on_demand, "{:.5f}"),
        ("cost with spot $", plan.cost_spot, actual.cost_spot, "{:.5f}"),
    ]
    lines = [
        f"Backfill {actual.backfill_id}: estimate (from runs before it) vs actual",
        f"  {'':18s} {'estimate':>12s} {'actual':>12s} {'actual/est':>10s}",
    ]
    for name, estimate, real, fmt in rows:
        ratio = f"{real / estimate:.2f}" if estimate else "-"
        lines.append(
            f"  {name:18s} {fmt.format(estimate):>12s} {fmt.format(real):>12s} {ratio:>10s}"
        )
    return "\n".join(lines)
