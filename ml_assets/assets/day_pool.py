"""A range run's days computed side by side on worker processes, handed back in day order.

A ``parallel`` daily asset (``DailyAssetSpec.parallel``) computes each day from its inputs,
settings and resources only, so the days of a range run need not wait for each other: the step
cuts each day's inputs as a daily run would see them, sends them to a pool of
``k8s.day_workers`` processes a few days ahead, and takes the results back in day order, where
the contract gate and the lake handle them as before. The workers are forked from the step's
process (or, once it has opened Feast's DuckDB, from a forkserver that imported the pipeline),
and build the step's resources from the same settings (``resources.build_resources``). A
worker's day has no Dagster context: it may add metadata, which travels back with its value,
but not log or read the instance.
"""

from __future__ import annotations

import multiprocessing
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_assets.assets.day_context import Compute
    from ml_assets.settings import Settings

_WORKER: dict[str, Any] = {}


class DayPool:
    """``compute(day, inputs(day), ctx)`` for ``days`` on ``workers`` processes.

    :meth:`take` returns one day's value and metadata; days are taken in order, and at most
    ``workers + 1`` are computed or waiting beyond the one taken, so memory stays bounded.
    """

    def __init__(
        self,
        compute: Compute,
        settings: Settings,
        resource_keys: list[str],
        days: list[str],
        inputs: Callable[[str], dict[str, Any]],
        workers: int,
        start_method: str | None = None,
    ) -> None:
        from ml_assets.execution import FORKSERVER_PRELOAD
        from ml_assets.resources.feature_store import feast_store_opened

        # fork: the workers start at once with all the step's process has loaded. Unless this
        # process has opened a Feast store (an in-process run worker that ran other steps):
        # DuckDB's threads, inherited stopped and holding their locks, can hang a forked child,
        # so the workers then come from a forkserver that imports the pipeline first.
        if start_method is None:
            start_method = "forkserver" if feast_store_opened() else "fork"
        context = multiprocessing.get_context(start_method)
        if context.get_start_method() == "forkserver":
            context.set_forkserver_preload(FORKSERVER_PRELOAD)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(settings.model_dump_json(), resource_keys),
        )
        self._finalizer = weakref.finalize(self, _shutdown, self._pool)
        self._compute, self._inputs = compute, inputs
        self._ahead = workers + 1
        self._pending: Iterator[str] = iter(days)
        self._futures: dict[str, Future] = {}
        self._closed = False
        self._pool.submit(int)  # start the workers now, before the step reads anything

    def take(self, day: str) -> tuple[Any, dict[str, Any]]:
        """``day``'s value and the metadata its compute added (raising what it raised)."""
        if self._closed:
            raise RuntimeError(
                f"{day}: the pool is closed (its last day was taken, or a day failed)"
            )
        while day not in self._futures:
            if not self._submit_next():
                raise KeyError(f"{day} is not a day of this pool, or was taken already")
        future = self._futures.pop(day)
        while len(self._futures) < self._ahead and self._submit_next():
            pass
        try:
            value = future.result()
        except BaseException:
            self.close()
            raise
        if not self._futures:  # the last day
            self.close()
        return value

    def close(self) -> None:
        """Stop the workers; days not taken are dropped."""
        self._closed = True
        self._futures.clear()
        self._finalizer()

    def _submit_next(self) -> bool:
        day = next(self._pending, None)
        if day is None:
            return False
        self._futures[day] = self._pool.submit(_compute_day, self._compute, day, self._inputs(day))
        return True


def _shutdown(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(settings_json: str, resource_keys: list[str]) -> None:
    from ml_assets.resources import build_resources
    from ml_assets.settings import Settings

    settings = Settings.model_validate_json(settings_json)
    resources = build_resources(settings)
    _WORKER.update(
        settings=settings, resources={key: resources[key] for key in resource_keys}, shared={}
    )


def _compute_day(compute: Compute, day: str, inputs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from ml_assets.assets.day_context import DayContext

    ctx = DayContext(day, _WORKER["settings"], _WORKER["resources"], _WORKER["shared"], _NO_RUN)
    return compute(day, inputs, ctx), ctx.metadata


class _NoRun:
    """The Dagster context of a worker's day: there is none."""

    def __getattr__(self, name: str) -> Any:
        raise TypeError(
            f"a parallel asset's day computes on a worker process without a Dagster context "
            f"(asked for .{name}); compute it from its inputs, settings and resources only, or "
            "declare the asset parallel=False"
        )


_NO_RUN: Any = _NoRun()
