"""The daily-asset factory: one spec and one pure ``compute(day, inputs, ctx)`` make an asset.

Every daily asset shares its decorator arguments (daily partitions, owners, the lake, the retry
policy, a backfill policy), its error classification (``errors.classified`` around the step,
``data_errors.persistent_failures`` around each day), its range-run mechanics and, where it has
one, its data contract (``checks.contracts.ContractGate``) and content data version
(``versions.py``). :func:`daily_asset` owns all of them; the asset module only says what differs
(:class:`DailyAssetSpec`) and how one day is computed.

**Range runs.** Raw, feature and training-set assets declare ``backfill="range"``, so a backfill
runs them once for the whole range (models, leaderboard and deployment ``"model"``: with them by
default, one run per day in production, see :func:`model_backfill_policy`). The factory calls
``compute`` for each day of the step and returns one value (daily run) or a ``PartitionFrames``
(range run) that the range-aware lake writes day by day; a ``lazy`` one is computed day by day as
it is written, in day order, so memory stays bounded and each day sees what the previous days
wrote (the registry's champion). Inputs arrive as a daily run loads them: each cut to the day (or
to its trailing window) with ``lake_ranges.window``. Range awareness lives here and in the range
IO manager (``resources/lake_ranges.py``) only; the few bodies that do not fit the factory
(a multi-asset, a step over the whole range at once) use :func:`per_day`, :func:`in_range_run`
and :func:`partition_days` from here.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from ml_assets import k8s
from ml_assets.assets import OWNERS
from ml_assets.assets.data_errors import persistent_failures
from ml_assets.assets.day_context import Compute, DayContext
from ml_assets.errors import classified, retry_policy
from ml_assets.partitions import daily, trailing
from ml_assets.resources.lake_ranges import PartitionFrames, window
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings

if TYPE_CHECKING:
    from ml_assets.assets.day_pool import DayPool
    from ml_assets.checks.contracts import ContractGate

BACKFILL_POLICY = dg.BackfillPolicy.single_run()


def model_backfill_policy(settings: Settings) -> dg.BackfillPolicy | None:
    """Models, leaderboard and deployment: with the range assets in one run over the range
    (``model_runs="range"``: one run per backfill, its steps in parallel on the executor), or
    one run per day (``"daily"``: production, where a step's Kubernetes deadline is per day)."""
    return BACKFILL_POLICY if settings.model_runs == "range" else None


@dataclass(frozen=True)
class DailyAssetSpec:
    """What one daily asset declares; :func:`daily_asset` supplies everything shared.

    ``ins``: upstream asset -> ``None`` (the day's own partition, or an unpartitioned asset
    whole) or ``n`` (the trailing ``n``-day window ending on the day, ``partitions.trailing``).
    ``resources``: resource key -> its class, handed to ``compute`` as ``ctx.resources[key]``.
    ``contract``: the output is checked against it (rows breaking row rules quarantined, a table
    rule failing the step) and its metadata recorded; ``references``: its rules need the
    airlines/airports tables (read once per step from the landing zone); ``landing``: a raw
    asset's landing source: the day's file is read into ``inputs["landed"]``, named in contract
    failures and moved aside when the day is rejected. ``describe``: metadata from the output as
    recorded (after its contract), besides what ``compute`` adds. ``backfill``: ``"range"`` (one
    run over a backfill's range), ``"model"`` (:func:`model_backfill_policy`) or a policy.
    ``lazy``: a range run computes each day as the lake writes it, in day order. ``parallel``:
    ``compute`` needs only its inputs, settings and resources, so a range run computes the days
    side by side on worker processes (``assets/day_pool.py``), handed back in day order.
    ``versioned``: a daily run records the output's content hash as its data version.
    """

    name: str
    group: str
    kinds: frozenset[str]
    code_version: str
    description: str
    ins: Mapping[str, int | None] = field(default_factory=dict)
    deps: Sequence[Any] = ()
    resources: Mapping[str, type] = field(default_factory=dict)
    contract: str | None = None
    references: bool = False
    landing: str | None = None
    describe: Callable[[Any], Mapping[str, Any]] | None = None
    backfill: Literal["range", "model"] | dg.BackfillPolicy = "range"
    lazy: bool = False
    parallel: bool = False
    versioned: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    op_tags: Mapping[str, Any] = field(default_factory=dict)
    pool: str | None = None
    freshness_policy: dg.FreshnessPolicy | None = None


def daily_asset(spec: DailyAssetSpec, settings: Settings, compute: Compute) -> dg.AssetsDefinition:
    """The daily asset ``spec`` declares, computing each day with ``compute(day, inputs, ctx)``."""
    resources = dict(spec.resources)
    if spec.references or spec.landing:
        resources.setdefault("landing", LandingZone)
    if spec.parallel and spec.landing:
        raise ValueError(f"{spec.name}: a parallel asset cannot read a landing file")

    def body(context: dg.AssetExecutionContext, **kwargs: Any) -> Any:
        given = {key: kwargs.pop(key) for key in resources}
        return _run(spec, settings, compute, context, given, kwargs)

    body.__name__ = body.__qualname__ = spec.name
    # Dagster reads the step's resources and inputs off this signature (no **kwargs there).
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("context", _KEYWORD, annotation=dg.AssetExecutionContext),
            *(inspect.Parameter(k, _KEYWORD, annotation=t) for k, t in resources.items()),
            *(inspect.Parameter(name, _KEYWORD, annotation=Any) for name in spec.ins),
        ],
        return_annotation=Any,
    )
    backfill = spec.backfill
    if backfill == "range":
        backfill = BACKFILL_POLICY
    elif backfill == "model":
        backfill = model_backfill_policy(settings)
    return dg.asset(
        name=spec.name,
        description=spec.description,
        partitions_def=daily,
        group_name=spec.group,
        kinds=set(spec.kinds),
        owners=OWNERS,
        code_version=spec.code_version,
        io_manager_key="lake",
        retry_policy=retry_policy(settings),
        backfill_policy=backfill,
        ins={
            name: dg.AssetIn(partition_mapping=None if days is None else trailing(days))
            for name, days in spec.ins.items()
        },
        deps=list(spec.deps) or None,
        metadata=dict(spec.metadata) or None,
        tags=dict(spec.tags) or None,
        op_tags=_op_tags(spec) or None,
        pool=spec.pool,
        freshness_policy=spec.freshness_policy,
    )(classified(body))


_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _op_tags(spec: DailyAssetSpec) -> dict[str, Any]:
    return {**spec.op_tags, **({k8s.PARALLEL_DAYS_TAG: "true"} if spec.parallel else {})}


def _run(
    spec: DailyAssetSpec,
    settings: Settings,
    compute: Compute,
    context: dg.AssetExecutionContext,
    resources: dict[str, Any],
    inputs: dict[str, Any],
) -> Any:
    references = None
    if spec.references:
        from ml_assets.checks.contracts import load_references

        with persistent_failures(label(context, spec.name)):
            references = load_references(resources["landing"])
    shared: dict[str, Any] = {}
    pool = _day_pool(spec, settings, compute, context, inputs)

    def computed(day: str, ctx: DayContext) -> Any:
        if pool is None:
            return compute(day, _cut(spec, inputs, day), ctx)
        out, metadata = pool.take(day)
        ctx.add_metadata(metadata)
        return out

    def one_day(day: str) -> Any:
        with persistent_failures(f"{spec.name}[{day}]"), _closing_on_error(pool):
            ctx = DayContext(day, settings, resources, shared, context)
            if spec.contract is None:
                out = computed(day, ctx)
                if ctx.metadata:
                    add_day_metadata(context, day, ctx.metadata)
                return out
            gate = ctx._gate = _gate(spec, settings, context, resources, day)
            params = ctx._params = gate.params(references)
            if spec.landing:
                landing, source = resources["landing"], spec.landing
                landed = gate.read(lambda: landing.read_daily(source, day))
                out = compute(day, {**_cut(spec, inputs, day), "landed": landed}, ctx)
            else:
                out = computed(day, ctx)
            out = gate.check(spec.contract, out, params)
            extra = {**(spec.describe(out) if spec.describe else {}), **ctx.metadata}
            return gate.finish(out, spec.contract, extra)

    return per_day(context, one_day, version=spec.versioned, lazy=spec.lazy)


def _day_pool(
    spec: DailyAssetSpec,
    settings: Settings,
    compute: Compute,
    context: dg.AssetExecutionContext,
    inputs: dict[str, Any],
) -> DayPool | None:
    """Worker processes for a parallel asset's range run of several days, else None."""
    if not (spec.parallel and in_range_run(context) and len(context.partition_keys) > 1):
        return None
    workers = k8s.day_workers(settings)
    if workers < 2:
        return None
    from ml_assets.assets.day_pool import DayPool

    days = list(context.partition_keys)
    return DayPool(
        compute,
        settings,
        sorted(spec.resources),
        days,
        lambda day: _cut(spec, inputs, day),
        workers,
    )


def _cut(spec: DailyAssetSpec, inputs: dict[str, Any], day: str) -> dict[str, Any]:
    """The day's inputs as a daily run loads them: each cut to the day or its trailing window."""
    return {name: window(inputs[name], day, days or 1) for name, days in spec.ins.items()}


@contextlib.contextmanager
def _closing_on_error(pool: DayPool | None) -> Iterator[None]:
    """A failing day fails the step: stop the workers computing the next days."""
    try:
        yield
    except BaseException:
        if pool is not None:
            pool.close()
        raise


def _gate(
    spec: DailyAssetSpec,
    settings: Settings,
    context: dg.AssetExecutionContext,
    resources: dict[str, Any],
    day: str,
) -> ContractGate:
    from ml_assets.checks.contracts import ContractGate

    if not spec.landing:
        return ContractGate(context, settings, partition=day)
    from ml_assets.sources.landing_files import daily_path

    landing, source = resources["landing"], spec.landing
    return ContractGate(
        context,
        settings,
        file=str(daily_path(landing.base_path, source, day)),
        on_reject=lambda: landing.reject(source, day),
        partition=day,
    )


def in_range_run(context: dg.AssetExecutionContext) -> bool:
    """A run over a partition range (as ``lake_ranges.is_range_run`` decides from its tags)."""
    return not context.has_partition_key and context.has_partition_key_range


def partition_days(context: dg.AssetExecutionContext) -> list[str]:
    """The days this step materializes (one, or the backfill's range)."""
    return list(context.partition_keys) if in_range_run(context) else [context.partition_key]


def per_day(
    context: dg.AssetExecutionContext,
    compute: Callable[[str], Any],
    version: bool = False,
    lazy: bool = False,
) -> Any:
    """``compute(day)`` for every day of the step; a range run returns them keyed by day.

    ``version``: a daily run records the content hash as the data version (``versions.py``);
    a range run has one data version per asset, so its days keep Dagster's derived ones.
    ``lazy``: a range run's days are computed when the lake writes them, one at a time, each
    day's errors classified as in the step's body (``errors.fail_fast``).
    """
    if not in_range_run(context):
        out = compute(context.partition_key)
        if version:
            from ml_assets.assets.versions import versioned

            return versioned(context, out)
        return out
    if not lazy:
        return PartitionFrames({day: compute(day) for day in context.partition_keys})
    from ml_assets.errors import fail_fast

    name = context.op_def.name

    def produce(day: str) -> Any:
        with fail_fast(f"{name}[{day}]"):
            return compute(day)

    return PartitionFrames(produce=produce, keys=context.partition_keys)


def output_values(context: dg.AssetExecutionContext, days: Any, name: str) -> Any:
    """One output of a step with several: ``per_day``'s ``{name: value}`` (daily run) or
    ``{day: {name: value}}`` (range run) as that output's value, a ``PartitionFrames`` in a
    range run."""
    if in_range_run(context):
        return PartitionFrames({day: by_name[name] for day, by_name in days.items()})
    return days[name]


def day_values(value: Any) -> list[Any]:
    """The values of each day in ``value`` (one, or a range run's ``PartitionFrames``)."""
    return list(value.values()) if isinstance(value, PartitionFrames) else [value]


def add_day_metadata(
    context: dg.AssetExecutionContext, day: str, metadata: Mapping[str, Any]
) -> None:
    """``metadata`` on ``day``'s materialization: the step's output in a daily run, that
    partition's in a range run."""
    if in_range_run(context):
        context.add_asset_metadata(dict(metadata), partition_key=day)
    else:
        context.add_output_metadata(dict(metadata))


def label(context: dg.AssetExecutionContext, asset: str) -> str:
    """``asset[day]`` or ``asset[first..last]`` for messages."""
    days = partition_days(context)
    return f"{asset}[{days[0]}]" if len(days) == 1 else f"{asset}[{days[0]}..{days[-1]}]"
