"""Model steps in real runs: stopped by their time limit (error + alert email), preempted by
SIGTERM (checkpoint, step retry), and resumed from the checkpoint afterwards."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import dagster as dg

from ml_assets.definitions import build_defs
from ml_assets.resources.checkpoint_store import CheckpointStore
from ml_assets_tests import _samples
from ml_assets_tests.automation.test_notifications import run_sensor, subject_of
from ml_assets_tests.conftest import small_settings

FIRST, DAY = "2013-02-05", "2013-02-14"
MODEL = "model__gbdt"
PARAMS = {"boosting": "gbdt", "learning_rate": 0.05, "num_leaves": 15, "feature_fraction": 0.8}


def catalog(rounds: int, **entry) -> dict:
    return {"models": [{"name": "gbdt", "params": PARAMS, "num_boost_round": rounds, **entry}]}


def train_only(settings):
    """The code location's definitions plus a job that runs only the model step (its
    training_set partition is read from the lake)."""
    lake = Path(settings.lake_base) / "training_set"
    lake.mkdir(parents=True, exist_ok=True)
    if not (lake / f"{DAY}.parquet").exists():
        _samples.training_set(FIRST, DAY).to_parquet(lake / f"{DAY}.parquet")
    job = dg.define_asset_job("train_only", selection=[MODEL])
    defs = dg.Definitions.merge(build_defs(settings), dg.Definitions(jobs=[job]))
    return defs, defs.resolve_job_def("train_only")


def metadata(instance: dg.DagsterInstance) -> dict:
    [record] = instance.fetch_materializations(dg.AssetKey(MODEL), limit=1).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_model_step_past_its_time_limit_fails_alerts_and_later_resumes(
    tmp_path: Path, landing_dir: Path, inbox
) -> None:
    inbox, port = inbox
    settings = small_settings(
        tmp_path,
        landing_dir,
        catalog(40, timeout_s=0.001),
        checkpoint_every=5,
        smtp_port=port,
        smtp_recipients=("oncall@example.com",),
    )
    instance = dg.DagsterInstance.ephemeral()
    defs, job = train_only(settings)
    result = job.execute_in_process(instance=instance, partition_key=DAY, raise_on_error=False)

    assert not result.success
    [failure] = result.get_step_failure_events()
    description = failure.step_failure_data.user_failure_data.description
    assert description == (
        f"{MODEL}[{DAY}]: timed out after 0.001 s at iteration 1 of 40; "
        "checkpoint saved at iteration 1 (step time limit 0.001 s)"
    )
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    run_sensor(defs, "email_on_failure", instance, result, result.get_run_failure_event(), settings)
    [message] = inbox.wait_for(1, timeout_s=10)
    assert subject_of(message) == f"[ml_assets] FAILED train_only[{DAY}]: {MODEL}"
    assert "timed out after 0.001 s at iteration 1 of 40" in message.get_content()
    store = CheckpointStore(settings.lake_base, MODEL, DAY)
    assert store.load().iteration == 1

    # The limit raised (catalog without timeout_s): the re-execution resumes from iteration 1.
    settings = settings.model_copy(
        update={"catalog_path": small_settings(tmp_path, landing_dir, catalog(40)).catalog_path}
    )
    _, job = train_only(settings)
    assert job.execute_in_process(instance=instance, partition_key=DAY).success
    facts = metadata(instance)
    assert (facts["resumed_from_iteration"], facts["iterations_trained"]) == (1, 39)
    assert not store.path.exists()  # removed once the model is trained
    assert (Path(settings.lake_base) / MODEL / f"{DAY}.model.txt").exists()
    print(f"\ntimeout: {description}\nalert: {subject_of(message)}")


def test_sigterm_during_training_checkpoints_and_the_step_retry_resumes(
    tmp_path: Path, landing_dir: Path
) -> None:
    """What a spot preemption or node drain does to a step process: SIGTERM part way."""
    rounds = 400
    settings = small_settings(tmp_path, landing_dir, catalog(rounds), checkpoint_every=5)
    instance = dg.DagsterInstance.ephemeral()
    _, job = train_only(settings)
    store = CheckpointStore(settings.lake_base, MODEL, DAY)
    sent: list[int] = []

    def preempt_once_checkpointed() -> None:
        for _ in range(6000):
            if store.path.exists():
                saved = json.loads(store.path.read_bytes())["iteration"]
                if saved < rounds // 2:  # well before the end: training is still running
                    os.kill(os.getpid(), signal.SIGTERM)
                    sent.append(saved)
                return
            time.sleep(0.005)

    threading.Thread(target=preempt_once_checkpointed, daemon=True).start()
    result = job.execute_in_process(instance=instance, partition_key=DAY, raise_on_error=False)

    assert sent, "the checkpoint was not seen while training"
    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1
    facts = metadata(instance)
    assert 0 < facts["resumed_from_iteration"] < rounds
    assert facts["iterations_trained"] == rounds - facts["resumed_from_iteration"]
    assert not store.path.exists()
    print(
        f"\npreempted after checkpoint {sent[0]}: resumed from {facts['resumed_from_iteration']}, "
        f"trained {facts['iterations_trained']} of {rounds} rounds in the retry"
    )
