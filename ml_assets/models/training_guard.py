"""Checkpointed LightGBM training: a callback that saves the booster every N iterations and stops
on request (preemption) or past a deadline; no IO of its own (``save``/``load`` are injected)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# LightGBM's random forest refuses an init score, so it cannot continue from a checkpoint.
NOT_RESUMABLE = ("rf", "random_forest")


@dataclass(frozen=True)
class Checkpoint:
    """A booster after ``iteration`` boosting rounds, tied to the inputs that produced it."""

    iteration: int
    fingerprint: str
    model_text: str

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        return cls(**json.loads(data))


class Interrupted(Exception):
    """Training stopped before its last iteration;
    ``saved`` is the checkpointed iteration (or None)."""

    def __init__(self, reason: str, iteration: int, total: int, saved: int | None) -> None:
        self.reason, self.iteration, self.total, self.saved = reason, iteration, total, saved
        kept = (
            f"checkpoint saved at iteration {saved}" if saved else "no checkpoint (not resumable)"
        )
        super().__init__(f"{reason} at iteration {iteration} of {total}; {kept}")


class Preempted(Interrupted):
    """A stop was requested (SIGTERM: node drain, spot preemption, termination)."""


class TimedOut(Interrupted):
    """The step's deadline passed."""


def fingerprint(x: pd.DataFrame, y: pd.Series, params: dict[str, Any], rounds: int) -> str:
    """sha256 of the training rows, labels, params and rounds: a checkpoint resumes only these."""
    import pandas as pd

    digest = hashlib.sha256(json.dumps([params, rounds], sort_keys=True, default=str).encode())
    digest.update(pd.util.hash_pandas_object(x, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(y, index=False).to_numpy().tobytes())
    digest.update(",".join(x.columns).encode())
    return digest.hexdigest()


def resumable(params: dict[str, Any]) -> bool:
    return str(params.get("boosting", params.get("boosting_type", "gbdt"))) not in NOT_RESUMABLE


@dataclass(eq=False)  # hashable by identity: LightGBM keeps callbacks in a set
class TrainingGuard:
    """LightGBM after-iteration callback: checkpoint every ``every`` rounds (if set) and every
    ``every_s`` seconds of ``clock`` time (if set); on ``stop_requested()`` (a reason, or None) or
    past ``deadline`` checkpoint and raise.

    ``fit`` calls ``start`` with the run's fingerprint; ``resumed_from`` and ``computed`` record
    where training started and how many rounds this attempt trained.
    """

    save: Callable[[Checkpoint], None]
    load: Callable[[], Checkpoint | None]
    every: int | None = 25
    every_s: float | None = None
    deadline: float | None = None
    timeout_s: float | None = None
    stop_requested: Callable[[], str | None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    fingerprint: str = ""
    enabled: bool = True
    resumed_from: int = 0
    computed: int = 0
    saved: int | None = field(default=None)
    saved_at: float | None = None
    stale: bool = False
    order: int = 100  # LightGBM runs callbacks by this key; after its own
    before_iteration: bool = False

    def start(self, fingerprint: str, enabled: bool = True) -> Checkpoint | None:
        """The checkpoint to resume from: only one made from the same inputs (else ignored)."""
        self.fingerprint, self.enabled = fingerprint, enabled
        found = self.load() if enabled else None
        if found is not None and found.fingerprint != fingerprint:
            self.stale, found = True, None
        self.resumed_from = found.iteration if found else 0
        return found

    def checkpoint(self, booster: Any, iteration: int) -> None:
        if self.enabled and self.saved != iteration:
            self.save(Checkpoint(iteration, self.fingerprint, booster.model_to_string()))
            self.saved, self.saved_at = iteration, self.clock()

    def _due(self, done: int) -> bool:
        if self.every is not None and done % self.every == 0:
            return True
        if self.every_s is None:
            return False
        if self.saved_at is None:
            self.saved_at = self.clock()  # the first round: the interval starts now
            return False
        return self.clock() - self.saved_at >= self.every_s

    def __call__(self, env: Any) -> None:
        done = env.iteration + 1
        self.computed += 1
        if self._due(done):
            self.checkpoint(env.model, done)
        reason = self.stop_requested()
        if reason is not None and done < env.end_iteration:
            self.checkpoint(env.model, done)
            raise Preempted(reason, done, env.end_iteration, self.saved)
        if self.deadline is not None and self.clock() > self.deadline and done < env.end_iteration:
            self.checkpoint(env.model, done)
            limit = f"timed out after {self.timeout_s:g} s" if self.timeout_s else "timed out"
            raise TimedOut(limit, done, env.end_iteration, self.saved)
