"""The lake: a partition-aware IO manager on ``UPath`` writing Parquet, LightGBM text and JSON.

Layout: ``<base>/<asset>/<partition>.parquet`` for frames, ``<partition>.model.txt`` +
``<partition>.model.json`` for models, ``<partition>.json`` for small documents; unpartitioned
assets drop the partition folder level (``<base>/planes.parquet``). Every file is written
atomically, so a crashed step leaves the previous materialization in place.

Rows refused by a data contract go to ``<base>/quarantine/<asset>/<partition>.parquet`` with a
``failure_reasons`` column. A stored file that is not readable Parquet fails the reading step
at once (no retries), naming the file, the asset partition and the rule.

Faults while reading or writing are classified (``ml_assets/errors.py``): transient ones (timeouts,
resets, GCS 429/5xx) reach the step's ``RetryPolicy``; persistent ones fail the step once. Nothing
is ever unpickled: the lake stores only the three types above and refuses any other.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import TYPE_CHECKING, Any

import dagster as dg

from ml_assets.atomic import write_atomic
from ml_assets.errors import fail_fast
from ml_assets.security import UnsafeNameError, safe_name

if TYPE_CHECKING:
    from upath import UPath

PARQUET, MODEL_TEXT, MODEL_META, DOCUMENT = ".parquet", ".model.txt", ".model.json", ".json"
QUARANTINE = "quarantine"


class CorruptLakeFile(ValueError):
    """A lake file exists but cannot be read; the message names the file and the rule."""

    rule = "readable_parquet"


def quarantine_path(base: str, asset: str, partition: str | None) -> UPath:
    """``<base>/quarantine/<asset>/<partition>.parquet`` (``<asset>.parquet`` if unpartitioned)."""
    from upath import UPath

    root = UPath(base) / QUARANTINE
    return root / asset / f"{partition}{PARQUET}" if partition else root / f"{asset}{PARQUET}"


def write_quarantine(base: str, asset: str, partition: str | None, rows: Any) -> UPath:
    """Write the quarantined rows of one asset partition atomically; return the path."""
    path = quarantine_path(base, asset, partition)
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    write_atomic(path, buffer.getvalue())
    return path


def read_quarantine(path: str) -> Any:
    """The quarantined rows at ``path``, or ``None`` when the file is gone."""
    import pandas as pd
    from upath import UPath

    target = UPath(path)
    if not target.exists():
        return None
    with target.open("rb") as handle:
        return pd.read_parquet(handle)


def _read_parquet(path: UPath) -> Any:
    """Fetch, then parse: a store fault (reset, 403) is raised as is, only bad bytes are corrupt."""
    import pandas as pd
    import pyarrow as pa

    data = path.read_bytes()
    try:
        return pd.read_parquet(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CorruptLakeFile(
            f"lake file {path} is not readable Parquet (rule {CorruptLakeFile.rule}): {exc}"
        ) from exc


def _with(path: UPath, suffix: str) -> UPath:
    return path.with_name(path.name + suffix)


def dump_object(obj: Any, path: UPath) -> dict[str, Any]:
    """Write ``obj`` at ``path`` (suffix chosen by type); return facts for asset metadata."""
    import pandas as pd

    from ml_assets.models.train import TrainedModel

    if isinstance(obj, pd.DataFrame):
        buffer = io.BytesIO()
        obj.to_parquet(buffer, index=False)
        data = buffer.getvalue()
        target = _with(path, PARQUET)
        write_atomic(target, data)
        return {
            "lake_file": dg.MetadataValue.path(str(target)),
            "dagster/row_count": len(obj),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    if isinstance(obj, TrainedModel):
        write_atomic(_with(path, MODEL_TEXT), obj.model_text.encode())
        write_atomic(
            _with(path, MODEL_META), json.dumps(obj.meta(), sort_keys=True, indent=1).encode()
        )
        return {
            "lake_file": dg.MetadataValue.path(str(_with(path, MODEL_TEXT))),
            "sha256": obj.sha256,
        }
    if isinstance(obj, dict):
        target = _with(path, DOCUMENT)
        write_atomic(target, json.dumps(obj, sort_keys=True, indent=1, default=str).encode())
        return {"lake_file": dg.MetadataValue.path(str(target))}
    raise TypeError(
        f"the lake stores DataFrames, TrainedModels and dicts, not {type(obj).__name__}"
    )


def load_object(path: UPath) -> Any:
    """Read what ``dump_object`` wrote at ``path``; ``FileNotFoundError`` if nothing is there."""
    from ml_assets.models.train import TrainedModel

    if _with(path, PARQUET).exists():
        return _read_parquet(_with(path, PARQUET))
    if _with(path, MODEL_META).exists():
        meta = json.loads(_with(path, MODEL_META).read_text())
        text = _with(path, MODEL_TEXT).read_text()
        meta["features"] = tuple(meta["features"])
        return TrainedModel(model_text=text, **meta)
    if _with(path, DOCUMENT).exists():
        return json.loads(_with(path, DOCUMENT).read_text())
    raise FileNotFoundError(f"nothing in the lake at {path} (.parquet, .model.txt or .json)")


def _where(context: dg.InputContext | dg.OutputContext, what: str) -> str:
    asset = context.asset_key.to_user_string() if context.has_asset_key else "?"
    keys = context.asset_partition_keys if context.has_asset_partitions else []
    window = f"[{keys[0]}..{keys[-1]}]" if len(keys) > 1 else f"[{keys[0]}]" if keys else ""
    return f"{asset}{window}: lake {what}"


class LakeIOManager(dg.UPathIOManager):
    """Stores each (asset, partition) as one file set under the lake's base path."""

    extension = None

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        """Partition keys become one path segment; anything else is refused, never escaped."""
        try:
            return base_path / safe_name(partition, "partition key")
        except UnsafeNameError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with fail_fast(_where(context, "write")):
            super().handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> Any:
        with fail_fast(_where(context, "read")):
            return super().load_input(context)

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        context.add_output_metadata(dump_object(obj, path))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        try:
            return load_object(path)
        except CorruptLakeFile as exc:
            asset = context.asset_key.to_user_string() if context.has_asset_key else "?"
            raise dg.Failure(
                description=f"{asset}[{path.name}]: {exc}. Re-materialize that partition.",
                metadata={
                    "asset": asset,
                    "partition": path.name,
                    "file": dg.MetadataValue.path(str(_with(path, PARQUET))),
                    "rule": exc.rule,
                    "severity": "ERROR",
                },
                allow_retries=False,
            ) from exc

    def load_partitions(self, context: dg.InputContext) -> Any:
        """A window of daily frames arrives as one frame, in partition order."""
        return concat_partitions(super().load_partitions(context))


class LakeIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """The lake, configured by its base path: a local folder or ``gs://bucket/prefix``."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> LakeIOManager:
        from upath import UPath

        return LakeIOManager(base_path=UPath(self.base_path))


def concat_partitions(loaded: Any) -> Any:
    """Join ``{partition: frame}`` in partition order; anything else passes through."""
    from collections.abc import Mapping

    import pandas as pd

    if not isinstance(loaded, Mapping) or not loaded:
        return loaded
    values = [loaded[key] for key in sorted(loaded)]
    if all(isinstance(v, pd.DataFrame) for v in values):
        return pd.concat(values, ignore_index=True)
    return loaded
