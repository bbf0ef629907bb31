"""Model steps: checkpointed training that resumes, stops at its time limit and survives SIGTERM."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

from ml_assets.models.catalog import CatalogEntry
from ml_assets.models.training_guard import Preempted, TimedOut, TrainingGuard
from ml_assets.preemption import sigterm_requests_stop
from ml_assets.resources.checkpoint_store import CheckpointStore
from ml_assets.settings import Settings
from ml_assets.timeouts import model_timeout_s


def _canceling(context: dg.AssetExecutionContext) -> bool:
    run = context.instance.get_run_by_id(context.run_id)
    return run is not None and run.status == dg.DagsterRunStatus.CANCELING


def lake_guard(
    settings: Settings,
    entry: CatalogEntry,
    asset: str,
    day: str,
    stop_requested: Callable[[], str | None] = lambda: None,
) -> tuple[TrainingGuard, CheckpointStore, float]:
    """The guard of ``asset[day]``'s training: its checkpoint in the lake, saved as settings say,
    and the entry's time limit from now; with the store and the limit in seconds."""
    store = CheckpointStore(settings.lake_base, asset, day)
    limit = model_timeout_s(settings, entry)
    guard = TrainingGuard(
        save=store.save,
        load=store.load,
        every=settings.checkpoint_every,
        every_s=settings.checkpoint_interval_s,
        deadline=time.monotonic() + limit,
        timeout_s=limit,
        stop_requested=stop_requested,
    )
    return guard, store, limit


@contextmanager
def checkpointed_training(
    context: dg.AssetExecutionContext,
    asset: str,
    entry: CatalogEntry,
    settings: Settings,
    day: str | None = None,
) -> Iterator[TrainingGuard]:
    """A ``TrainingGuard`` over the partition's checkpoint in the lake (``day``: one day of a
    range run; its time limit is that day's).

    Past the entry's time limit: ``Failure`` "timed out after N s" (no retry; the checkpoint
    stays, so a re-execution resumes). On SIGTERM: final checkpoint, then ``RetryRequested``
    (a termination the user asked for fails without retry). After success the checkpoint is
    removed.
    """
    day = day or context.partition_key
    what = f"{asset}[{day}]"
    with sigterm_requests_stop() as stop:
        guard, store, limit = lake_guard(settings, entry, asset, day, stop)
        try:
            yield guard
        except TimedOut as exc:
            raise dg.Failure(
                description=f"{what}: {exc} (step time limit {limit:g} s)",
                metadata={"timeout_s": limit, "checkpoint": str(store.path)},
                allow_retries=False,
            ) from exc
        except Preempted as exc:
            if _canceling(context):
                raise dg.Failure(
                    description=f"{what}: terminated on request; {exc}", allow_retries=False
                ) from exc
            context.log.warning(f"{what}: {exc}; {store.path}; a retry resumes from it")
            raise dg.RetryRequested(
                max_retries=settings.preemption_max_retries, seconds_to_wait=1
            ) from exc
    if store.unreadable:
        context.log.warning(f"{what}: unreadable checkpoint ignored ({store.unreadable})")
    if guard.stale:
        context.log.info(f"{what}: checkpoint of other inputs ignored; trained from scratch")
    if guard.resumed_from:
        context.log.info(
            f"{what}: resumed from the checkpoint at iteration {guard.resumed_from}; "
            f"trained {guard.computed} more"
        )
    store.clear()
