"""GCS faults through the real client: gcsfs talks to the emulator through a faulty HTTP proxy.

``STORAGE_EMULATOR_HOST`` points at :class:`FaultyHttpProxy`, which forwards to the emulator and
resets connections (before the server sees a request, or halfway through its answer), answers
503 or 429 on some requests, or 403 on all. Which layer retries what:

- gcsfs retries every HTTP request itself: resets, 408/429/5xx, up to 6 tries with 1, 2, 4, 8,
  16 s (+ up to 1 s jitter) between them; 403 and 404 are never retried.
- when gcsfs gives up (about 33 s of one lasting fault), ``ml_assets/errors.py`` classifies what
  it raises (``HttpError`` 429/5xx, aiohttp's connection and payload errors: transient) and the
  step's ``RetryPolicy`` runs the step again; a 403 (gcsfs's ``OSError("Forbidden")``) is
  persistent: the step fails once, without retries.

Every test appends rows to a fault table, printed and written to
``.test-artifacts/gcs-fault-table.txt`` at the end of the module.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from ml_assets.definitions import build_defs
from ml_assets.errors import PERSISTENT, TRANSIENT, classify, fail_fast
from ml_assets.resources.lake import dump_object, load_object
from ml_assets.resources.registry import ModelRegistry
from ml_assets.settings import Settings
from ml_assets_tests import _samples
from ml_assets_tests.conftest import ARTIFACTS
from ml_assets_tests.faults.flaky import (
    CUT,
    RESET,
    FaultyHttpProxy,
    HttpFault,
    downloads,
    upload_of,
    uploads,
)

DAY = "2013-01-05"
RAW = [dg.AssetKey("raw_flights"), dg.AssetKey("raw_weather")]
TRANSIENT_FAULTS = [RESET, CUT, 503, 429]
GCSFS_TRIES = 6  # gcsfs.GCSFileSystem.retries: fixed when gcsfs is imported
TABLE: list[tuple[str, str, str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def fault_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the module's fault table (fault, client, outcome, bytes lost) and keep a copy."""
    yield
    if not TABLE:
        return
    header = ("fault", "client", "outcome", "bytes lost")
    widths = [max(len(row[i]) for row in [header, *TABLE]) for i in range(4)]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *TABLE]
    ]
    text = "\n".join([lines[0], "-+-".join("-" * w for w in widths), *lines[1:]]) + "\n"
    (ARTIFACTS / "gcs-fault-table.txt").write_text(text)
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\nGCS faults through gcsfs (test_gcs_faults.py):\n{text}")


def _note(fault: object, client: str, outcome: str, lost: int) -> None:
    TABLE.append((str(fault), client, outcome, str(lost)))


@pytest.fixture
def proxy(gcs: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyHttpProxy]:
    """A faulty proxy in front of the session's emulator; gcsfs reaches the emulator through it."""
    emulator = urlsplit(os.environ["STORAGE_EMULATOR_HOST"])
    faulty = FaultyHttpProxy((emulator.hostname, emulator.port))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", faulty.url)
    yield faulty
    faulty.close()


def _prefix(gcs: str) -> str:
    return f"{gcs}/faults-{uuid.uuid4().hex[:8]}"


def _fs() -> Any:
    import gcsfs

    return gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)


def _stored(url: str) -> dict[str, bytes]:
    """Every object under ``url`` (names relative to it) with its bytes, read without faults."""
    fs, root = _fs(), url.removeprefix("gs://")
    return {p.removeprefix(root): fs.cat_file(p) for p in fs.find(root)}


def _generations(url: str) -> dict[str, str]:
    fs, root = _fs(), url.removeprefix("gs://")
    return {p.removeprefix(root): str(fs.info(p)["generation"]) for p in fs.find(root)}


def _lost(expected: dict[str, bytes], found: dict[str, bytes]) -> int:
    """Bytes of ``expected`` objects missing or different in ``found``."""
    return sum(len(data) for name, data in expected.items() if found.get(name) != data)


def _lake_objects() -> dict[str, object]:
    return {
        "frame/2013-01-02": _samples.raw_rows("flights", "2013-01-02"),
        "model__tiny/2013-01-02": _samples.tiny_model(),
        "doc/2013-01-02": {"auc": 0.75, "rows": 12},
    }


def _same(a: object, b: object) -> bool:
    if isinstance(a, pd.DataFrame):
        return a.reset_index(drop=True).equals(b)
    return getattr(a, "sha256", a) == getattr(b, "sha256", b)


@pytest.mark.parametrize("kind", TRANSIENT_FAULTS)
def test_transient_faults_leave_lake_objects_byte_identical(
    proxy: FaultyHttpProxy, gcs: str, kind: str | int
) -> None:
    """Every other request faulted (4 in all) while ``dump_object``/``load_object`` write and read
    a frame, a model and a document: gcsfs retries each, nothing reaches the caller, and the
    objects equal those of a fault-free write byte for byte."""
    base, objects = _prefix(gcs), _lake_objects()
    for name, obj in objects.items():
        dump_object(obj, UPath(f"{base}/clean/{name}"))
    proxy.arm(HttpFault(kind, every=2, limit=4))
    for name, obj in objects.items():
        dump_object(obj, UPath(f"{base}/faulty/{name}"))
    loaded = {name: load_object(UPath(f"{base}/faulty/{name}")) for name in objects}
    proxy.arm()
    assert proxy.injected(kind) == 4
    assert all(_same(objects[name], loaded[name]) for name in objects)
    clean, faulty = _stored(f"{base}/clean"), _stored(f"{base}/faulty")
    assert len(clean) == 4 and faulty == clean
    _note(kind, "gcsfs: dump_object/load_object", "ok (4 faults, gcsfs retried each)", 0)


def test_a_reset_after_the_upload_committed_is_harmless(proxy: FaultyHttpProxy, gcs: str) -> None:
    """The server stored the object but the answer was lost: gcsfs resends the single-request
    upload (``write_atomic`` uses ``pipe_file``); a resumable upload's finished session would
    answer 404 instead."""
    base, frame = _prefix(gcs), _samples.raw_rows("weather", "2013-01-02")
    dump_object(frame, UPath(f"{base}/clean/w"))
    proxy.arm(HttpFault(CUT, limit=1, match=uploads))
    dump_object(frame, UPath(f"{base}/faulty/w"))
    proxy.arm()
    assert proxy.injected(CUT) == 1
    assert _stored(f"{base}/faulty") == _stored(f"{base}/clean")
    _note("cut after commit (upload)", "gcsfs: dump_object", "ok (upload resent)", 0)


def _one_attempt(fs: Any, method: str, url: str) -> BaseException:
    """What one gcsfs request raises (its retry decorator unwrapped): what it raises last."""
    import fsspec.asyn
    import gcsfs

    request = gcsfs.GCSFileSystem._request.__wrapped__
    try:
        fsspec.asyn.sync(fs.loop, request, fs, method, url)
    except Exception as exc:  # the point is which exception
        return exc
    raise AssertionError(f"{method} {url} succeeded under a fault")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(RESET, TRANSIENT), (CUT, TRANSIENT), (503, TRANSIENT), (429, TRANSIENT), (403, PERSISTENT)],
)
def test_what_gcsfs_raises_when_its_retries_run_out_is_classified(
    proxy: FaultyHttpProxy, gcs: str, kind: str | int, expected: str
) -> None:
    """A download under each fault, one attempt: the exception gcsfs raises after its last try
    reaches the step as transient (the step retries) or persistent (403: the step fails once)."""
    base = _prefix(gcs)
    dump_object({"x": 1}, UPath(f"{base}/doc"))
    fs = _fs()
    bucket, key = f"{base}/doc.json".removeprefix("gs://").split("/", 1)
    url = f"{fs._location}/download/storage/v1/b/{bucket}/o/{key.replace('/', '%2F')}?alt=media"
    proxy.arm(HttpFault(kind, match=downloads))
    error = _one_attempt(fs, "GET", url)
    proxy.arm()
    assert classify(error) == expected, repr(error)
    _note(kind, "gcsfs: one request", f"{type(error).__name__}: {expected}", 0)


def test_persistent_403_fails_at_once_and_keeps_the_previous_object(
    proxy: FaultyHttpProxy, gcs: str
) -> None:
    """403 on every request: the write fails at its first request (no retries) with gcsfs's
    ``Forbidden`` and the object's name, classified persistent; the good object is untouched."""
    base, rows = _prefix(gcs), _samples.raw_rows("flights", "2013-01-02")
    path = UPath(f"{base}/frame/2013-01-02")
    dump_object(rows.head(500), path)
    before, generations = _stored(base), _generations(base)
    proxy.arm(HttpFault(403))
    started = time.monotonic()
    with pytest.raises(OSError, match=r"frame/2013-01-02\.parquet: Forbidden: ") as write:
        dump_object(rows, path)
    assert proxy.injected(403) == 1 and time.monotonic() - started < 1.0  # gcsfs's first wait: 1 s
    with pytest.raises(OSError, match="Forbidden"):
        load_object(path)
    proxy.arm(HttpFault(403, match=downloads))  # the object is listed, its bytes are refused
    with pytest.raises(OSError, match="Forbidden"):  # a store fault, not a corrupt file
        load_object(path)
    proxy.arm(HttpFault(403))
    with pytest.raises(dg.Failure) as failure, fail_fast("frame[2013-01-02]: lake write"):
        dump_object(rows, path)
    proxy.arm()
    assert classify(write.value) == PERSISTENT and not failure.value.allow_retries
    assert failure.value.description.startswith(
        f"frame[2013-01-02]: lake write: {path}.parquet: Forbidden: "
    )
    assert _stored(base) == before and _generations(base) == generations
    assert load_object(path).equals(rows.head(500))
    _note(403, "gcsfs: dump_object/load_object", "failed at once (1 request), old object kept", 0)


def test_registry_promote_under_faults(proxy: FaultyHttpProxy, gcs: str) -> None:
    """Transient faults: promotion completes with the exact model bytes. 403 on uploads: the
    challenger is refused at its first write; 403 on ``current.json`` only: the pointer is the
    last write, so it stays on the champion."""
    registry = ModelRegistry(base_path=f"{_prefix(gcs)}/registry")
    champion, challenger = _samples.tiny_model(), _samples.tiny_model(rounds=4)
    proxy.arm(HttpFault(tuple(TRANSIENT_FAULTS), every=3, limit=4))
    registry.promote(champion, {"metrics": {"auc": 0.8}}, "2013-01-02")
    proxy.arm()
    assert proxy.injected() == 4
    assert registry.current()["sha256"] == champion.sha256
    stored = _stored(registry.base_path)
    assert stored[f"/models/{champion.sha256}/model.txt"] == champion.model_text.encode()
    _note("reset+cut+503+429", "gcsfs: ModelRegistry.promote", "ok (4 faults)", 0)
    for match, where in ((uploads, "all uploads"), (upload_of("current.json"), "current.json")):
        proxy.arm(HttpFault(403, match=match))
        with pytest.raises(OSError, match="Forbidden") as refused:
            registry.promote(challenger, {"metrics": {"auc": 0.9}}, "2013-01-03")
        proxy.arm()
        assert classify(refused.value) == PERSISTENT and proxy.injected(403) == 1
        assert registry.current()["sha256"] == champion.sha256
        assert registry.load(champion.sha256)[0].model_text == champion.model_text
        lost = _lost(stored, _stored(registry.base_path))
        assert lost == 0
        _note(f"403 ({where})", "gcsfs: ModelRegistry.promote", "failed at once, champion kept", 0)
        proxy.log.clear()


def _run(settings: Settings) -> dg.ExecuteInProcessResult:
    job = build_defs(settings).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(
            instance=instance, partition_key=DAY, asset_selection=RAW, raise_on_error=False
        )


def _events(result: dg.ExecuteInProcessResult, kind: dg.DagsterEventType) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type == kind]


def _lake(settings: Settings, gcs: str) -> Settings:
    return settings.model_copy(update={"lake_base": f"{_prefix(gcs)}/lake"})


def test_materialization_under_transient_faults_writes_the_fault_free_bytes(
    proxy: FaultyHttpProxy, gcs: str, settings: Settings
) -> None:
    """raw_flights and raw_weather on a gs:// lake through the real lake IO manager, with a reset,
    a cut answer, a 503 and a 429 among their requests: the run succeeds without step retries
    (gcsfs absorbed them) and the partition files equal a fault-free run's."""
    clean, faulty = _lake(settings, gcs), _lake(settings, gcs)
    assert _run(clean).success
    proxy.arm(HttpFault(tuple(TRANSIENT_FAULTS), every=2, limit=4))
    result = _run(faulty)
    proxy.arm()
    assert result.success and proxy.injected() == 4
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    expected, found = _stored(clean.lake_base), _stored(faulty.lake_base)
    assert {f"/{a.path[0]}/{DAY}.parquet" for a in RAW} <= set(expected)
    assert found == expected
    lost = _lost(expected, found)
    _note("reset+cut+503+429", "gcsfs: LakeIOManager (raw assets)", "run ok, 0 step retries", lost)


def test_materialization_under_403_fails_once_and_keeps_the_partition(
    proxy: FaultyHttpProxy, gcs: str, settings: Settings
) -> None:
    """403 on every upload: both steps fail at their first attempt (no retries) naming the asset,
    partition and ``Forbidden``; the previously materialized partition files are untouched."""
    lake = _lake(settings, gcs)
    assert _run(lake).success
    before, generations = _stored(lake.lake_base), _generations(lake.lake_base)
    proxy.arm(HttpFault(403, match=uploads))
    result = _run(lake)
    proxy.arm()
    assert not result.success
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    failures = _events(result, dg.DagsterEventType.STEP_FAILURE)
    assert sorted(e.step_key for e in failures) == ["raw_flights", "raw_weather"]
    assert proxy.injected(403) == 2
    for event in failures:
        message = event.step_failure_data.user_failure_data.description
        object_ = f"{lake.lake_base}/{event.step_key}/{DAY}.parquet"
        assert f"{event.step_key}[{DAY}]: lake write: {object_}: Forbidden: " in message
    assert _stored(lake.lake_base) == before and _generations(lake.lake_base) == generations
    _note(403, "gcsfs: LakeIOManager (raw assets)", "steps failed once, 0 retries, old kept", 0)


@pytest.mark.slow
def test_a_fault_outlasting_gcsfs_retries_is_retried_by_the_step(
    proxy: FaultyHttpProxy, gcs: str, settings: Settings
) -> None:
    """Six 503s in a row on the first upload: gcsfs gives up (about 33 s), the step's RetryPolicy
    runs it again and the run succeeds with the fault-free bytes."""
    clean, faulty = _lake(settings, gcs), _lake(settings, gcs)
    assert _run(clean).success
    proxy.arm(HttpFault(503, limit=GCSFS_TRIES, match=uploads))
    result = _run(faulty)
    proxy.arm()
    assert result.success and proxy.injected(503) == GCSFS_TRIES
    assert len(_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 1
    assert _stored(faulty.lake_base) == _stored(clean.lake_base)
    _note("503 x6 (outlasts gcsfs)", "gcsfs + step RetryPolicy", "run ok, 1 step retry", 0)
