"""Child process for the interruption tests: trains with checkpoints and, once the checkpoint at
``pause_at`` is written, waits (up to 60 s) so the parent can SIGTERM or SIGKILL it there.

``python -m ml_assets_tests.models.train_child TRAINING_SET LAKE PAUSE_AT RESULT``; exit 75 when
preempted (the result file says where).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from ml_assets.models.catalog import CatalogEntry
from ml_assets.models.train import fit
from ml_assets.models.training_guard import Checkpoint, Preempted, TrainingGuard
from ml_assets.preemption import sigterm_requests_stop
from ml_assets.resources.checkpoint_store import CheckpointStore

ENTRY = CatalogEntry(
    name="interrupted",
    params={
        "learning_rate": 0.1,
        "num_leaves": 15,
        "feature_fraction": 0.8,
        "min_data_in_leaf": 30,
    },
    num_boost_round=40,
)
EVERY, ASSET, PARTITION = 5, "model__interrupted", "2013-02-14"


def store(lake: str) -> CheckpointStore:
    return CheckpointStore(lake, ASSET, PARTITION)


def main(training_set: str, lake: str, pause_at: int, result: str) -> int:
    frame = pd.read_parquet(training_set)
    checkpoints = store(lake)
    with sigterm_requests_stop() as stop:

        def save(checkpoint: Checkpoint) -> None:
            checkpoints.save(checkpoint)
            if checkpoint.iteration == pause_at:
                Path(f"{result}.ready").touch()
                waited = time.monotonic()
                while stop() is None and time.monotonic() - waited < 60:
                    time.sleep(0.01)

        guard = TrainingGuard(save=save, load=checkpoints.load, every=EVERY, stop_requested=stop)
        try:
            model = fit(frame, ENTRY, seed=42, num_threads=1, guard=guard)
        except Preempted as exc:
            Path(result).write_text(json.dumps({"iteration": exc.iteration, "saved": exc.saved}))
            return 75
    Path(result).write_text(json.dumps({"finished": True, "sha256": model.sha256}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
