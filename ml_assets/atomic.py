"""Atomic writes to local paths and object stores through ``UPath``."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")


def write_atomic(path: UPath, data: bytes) -> None:
    """Write ``data`` so readers see the old file or the new one, never a partial one.

    Locally: temp file in the same folder, fsync, ``os.replace``. Object stores (GCS) publish an
    object only once its upload completes, so a direct write is already atomic there.
    """
    if path.protocol not in LOCAL_PROTOCOLS:
        path.write_bytes(data)
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
