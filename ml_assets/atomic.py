"""Atomic writes to local paths and object stores through ``UPath``."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")
STALE_TEMP_S = 3600.0  # a writer killed mid-write leaves its temp file; older ones are swept


def write_atomic(path: UPath, data: bytes) -> None:
    """Write ``data`` so readers see the old file or the new one, never a partial one.

    Locally: temp file in the same folder, fsync, ``os.replace``. Object stores (GCS) publish an
    object only once its upload completes, so a direct write is already atomic there; it goes as
    one request (``pipe_file``: gcsfs's single-shot upload below 50 MiB), which the client can
    resend whole after a reset or a 429/5xx, where a resumable upload's session may be gone. Temp
    files of the same target left by a killed writer are removed once older than ``STALE_TEMP_S``.
    """
    if path.protocol not in LOCAL_PROTOCOLS:
        _upload(path, data)
        return
    folder = os.path.dirname(path.path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path.path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path.path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    sweep_stale_temps(path.path)


def _upload(path: UPath, data: bytes) -> None:
    """One-request upload; a refused one (gcsfs: plain ``OSError``, e.g. 403) names the object."""
    try:
        path.fs.pipe_file(path.path, data)
    except OSError as exc:
        if type(exc) is not OSError:  # resets, missing buckets, ...: as they are
            raise
        raise OSError(f"{path}: {exc}") from exc


def sweep_stale_temps(target: str, older_than_s: float = STALE_TEMP_S) -> list[str]:
    """Remove ``target``'s temp files older than ``older_than_s`` (a live writer's are younger)."""
    import time

    folder, prefix = os.path.dirname(target), f".{os.path.basename(target)}."
    cutoff, removed = time.time() - older_than_s, []
    for name in os.listdir(folder):
        candidate = os.path.join(folder, name)
        if name.startswith(prefix) and name.endswith(".tmp"):
            try:
                if os.stat(candidate).st_mtime < cutoff:
                    os.unlink(candidate)
                    removed.append(candidate)
            except FileNotFoundError:
                continue
    return removed
