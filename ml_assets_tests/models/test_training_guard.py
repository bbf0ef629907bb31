"""Checkpointed training: interrupted by SIGTERM or SIGKILL half way, the retry resumes from the
checkpoint (fewer rounds computed) and the model scores like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ml_assets.models.evaluate import auc
from ml_assets.models.features import LABEL
from ml_assets.models.train import fit, holdout, predict
from ml_assets.models.training_guard import Checkpoint, TrainingGuard, fingerprint, resumable
from ml_assets.settings import PROJECT_ROOT
from ml_assets_tests import _samples
from ml_assets_tests.models.train_child import ENTRY, EVERY, store

FIRST, LAST, HOLDOUT_DAYS = "2013-02-05", "2013-02-14", 3
HALF = ENTRY.num_boost_round // 2
AUC_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def training_set() -> pd.DataFrame:
    return _samples.training_set(FIRST, LAST, HOLDOUT_DAYS)


@pytest.fixture(scope="module")
def uninterrupted(training_set):
    model = fit(training_set, ENTRY, seed=42, num_threads=1)
    rows = holdout(training_set)
    return model, auc(rows[LABEL].to_numpy(), predict(model, rows))


def interrupt(training_set, tmp_path: Path, sig: signal.Signals) -> tuple[int, dict | None]:
    """Train in a child process, send ``sig`` once it has checkpointed HALF rounds."""
    data, result = tmp_path / "training_set.parquet", tmp_path / "result.json"
    training_set.to_parquet(data)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ml_assets_tests.models.train_child",
            str(data),
            str(tmp_path / "lake"),
            str(HALF),
            str(result),
        ],
        cwd=PROJECT_ROOT,
    )
    try:
        ready = Path(f"{result}.ready")
        for _ in range(1200):
            if ready.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), f"child never reached iteration {HALF} (exit {child.poll()})"
        os.kill(child.pid, sig)
        code = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return code, json.loads(result.read_text()) if result.exists() else None


def resume(training_set, lake: Path) -> tuple[TrainingGuard, object]:
    checkpoints = store(str(lake))
    guard = TrainingGuard(save=checkpoints.save, load=checkpoints.load, every=EVERY)
    return guard, fit(training_set, ENTRY, seed=42, num_threads=1, guard=guard)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_interrupted_training_resumes_from_its_checkpoint(
    training_set, uninterrupted, tmp_path: Path, sig: signal.Signals
) -> None:
    code, outcome = interrupt(training_set, tmp_path, sig)
    if sig == signal.SIGTERM:  # a final checkpoint, then a clean, retryable stop
        assert code == 75 and outcome == {"iteration": HALF, "saved": HALF}
    else:  # killed: no chance to react; the last periodic checkpoint is what survives
        assert code == -signal.SIGKILL and outcome is None
    saved = store(str(tmp_path / "lake")).load()
    assert saved is not None and saved.iteration == HALF

    guard, model = resume(training_set, tmp_path / "lake")
    assert guard.resumed_from == HALF and model.resumed_from_iteration == HALF
    assert guard.computed == ENTRY.num_boost_round - HALF  # only the remaining rounds
    full_model, full_auc = uninterrupted
    rows = holdout(training_set)
    resumed_auc = auc(rows[LABEL].to_numpy(), predict(model, rows))
    assert model.num_boost_round == full_model.num_boost_round
    assert "Tree=39" in model.model_text and "Tree=40" not in model.model_text
    assert abs(resumed_auc - full_auc) <= AUC_TOLERANCE
    print(
        f"\n{sig.name}: stopped at {HALF}/{ENTRY.num_boost_round}, resumed with "
        f"{guard.computed} rounds; AUC resumed {resumed_auc:.4f} vs uninterrupted {full_auc:.4f}"
    )


def test_a_checkpoint_of_other_inputs_is_ignored(training_set, tmp_path: Path) -> None:
    checkpoints = store(str(tmp_path))
    checkpoints.save(Checkpoint(HALF, "another-fingerprint", "not a model"))
    guard, model = resume(training_set, tmp_path)
    assert guard.stale and guard.resumed_from == 0 and model.resumed_from_iteration == 0
    assert guard.computed == ENTRY.num_boost_round
    assert checkpoints.load().iteration == ENTRY.num_boost_round  # the final one replaced it


def test_an_unreadable_checkpoint_means_training_from_scratch(training_set, tmp_path) -> None:
    checkpoints = store(str(tmp_path))
    checkpoints.path.parent.mkdir(parents=True)
    checkpoints.path.write_text("{truncated")
    assert checkpoints.load() is None and "checkpoints/model__interrupted" in checkpoints.unreadable


def test_fingerprint_follows_rows_and_params(training_set) -> None:
    from ml_assets.models.train import lightgbm_params, model_matrix

    x, y = model_matrix(training_set), training_set[LABEL]
    params = lightgbm_params(ENTRY, 42, 1)
    base = fingerprint(x, y, params, 40)
    assert base == fingerprint(x.copy(), y.copy(), dict(params), 40)
    assert base != fingerprint(x.iloc[1:], y.iloc[1:], params, 40)
    assert base != fingerprint(x, y, params | {"learning_rate": 0.2}, 40)
    assert base != fingerprint(x, y, params, 41)


def test_random_forest_trains_without_resuming(training_set, tmp_path) -> None:
    """LightGBM's rf refuses an init model: it never checkpoints and always starts over."""
    assert not resumable({"boosting": "rf"}) and resumable({"boosting": "dart"})
    rf = ENTRY.model_copy(
        update={"params": {"boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1}}
    )
    checkpoints = store(str(tmp_path))
    guard = TrainingGuard(save=checkpoints.save, load=checkpoints.load, every=EVERY)
    fit(training_set, rf, seed=42, num_threads=1, guard=guard)
    assert checkpoints.load() is None and guard.computed == rf.num_boost_round


class _Env:
    """What LightGBM hands an after-iteration callback."""

    def __init__(self, iteration: int, end: int) -> None:
        self.iteration, self.end_iteration, self.model = iteration, end, self

    def model_to_string(self) -> str:
        return f"booster after {self.iteration + 1} rounds"


def test_checkpoints_by_time_skip_fast_training_and_save_slow_training() -> None:
    now = [0.0]
    saved: list[int] = []
    guard = TrainingGuard(
        save=lambda c: saved.append(c.iteration),
        load=lambda: None,
        every=None,
        every_s=60.0,
        clock=lambda: now[0],
    )
    for i in range(10):  # ten rounds in a second: nothing written, not even at the end
        now[0] += 0.1
        guard(_Env(i, 300))
    assert saved == [] and guard.computed == 10
    for i in range(10, 20):  # then 10 s a round: one checkpoint per 60 s
        now[0] += 10.0
        guard(_Env(i, 300))
    assert saved == [16] and guard.saved == 16
    guard(_Env(299, 300))
    assert saved == [16], "a finished model is stored by the step, not checkpointed"


def test_rounds_and_time_both_count_when_both_are_set() -> None:
    saved: list[int] = []
    guard = TrainingGuard(
        save=lambda c: saved.append(c.iteration),
        load=lambda: None,
        every=5,
        every_s=3600.0,
        clock=lambda: 0.0,
    )
    for i in range(12):
        guard(_Env(i, 300))
    assert saved == [5, 10]
