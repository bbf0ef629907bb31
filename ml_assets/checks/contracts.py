"""Data contracts in Dagster: enforced inside each asset's step, confirmed by blocking checks.

Dagster stores an asset's output *before* its asset checks run, so a check alone cannot keep bad
data out of the lake. Two parts therefore share one Pandera contract (``checks/schemas.py``):

1. :class:`ContractGate`, called by the asset before it returns. Rows that break row rules are
   written to ``<lake>/quarantine/<asset>/<partition>.parquet`` (with ``failure_reasons``) and
   dropped. If any table rule fails, or more rows are quarantined than the limit allows
   (``settings.quarantine_max_share`` of the rows, but at least
   ``settings.quarantine_tolerated_rows``), the step raises ``dg.Failure(allow_retries=False)``
   naming the asset, partition, file and rules: nothing is returned, so the IO manager writes
   nothing and the last good materialization stays in place. A raw asset also moves its bad
   landing file aside (``<landing>/rejected/...``).
2. One blocking, partitioned asset check per asset (:func:`build_contract_checks`), which
   re-validates the stored partition and reports the rules, counts, examples and the quarantine
   file of its materialization. A failure with ERROR severity stops that day's downstream assets;
   quarantined rows within the limit make it a WARN (visible, not blocking).

This module stays light at import: pandera and pandas load inside the functions.
"""

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import dagster as dg

from ml_assets.partitions import daily
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings
from ml_assets.types import Frame

if TYPE_CHECKING:
    from ml_assets.checks.schemas import Params, References
    from ml_assets.checks.validation import Verdict

CHECK_NAME = "contract"
UNPARTITIONED = ("planes",)
CHECKED_ASSETS = (
    "planes",
    "raw_flights",
    "raw_weather",
    "flight_features",
    "traffic_features",
    "training_set",
    "model_leaderboard",
)
QUARANTINE_KEYS = ("quarantined_rows", "quarantine_file")


def load_references(landing: LandingZone) -> "References":
    """The airlines and airports reference tables, validated, for referential rules."""
    from ml_assets.checks.schemas import references_from

    return references_from(landing.read_reference("airlines"), landing.read_reference("airports"))


def contract_params(
    settings: Settings, day: str | None, references: "References | None" = None
) -> "Params":
    from ml_assets.checks.schemas import Params

    return Params(
        day=day,
        references=references,
        horizon_hours=settings.prediction_horizon_hours,
        min_training_rows=settings.min_training_rows,
    )


def column_schema(contract_name: str) -> dg.TableSchema:
    """``dagster/column_schema`` built from the contract: dtype, nullability, uniqueness, rules."""
    from ml_assets.checks.schemas import contract

    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=str(doc["type"]),
                constraints=dg.TableColumnConstraints(
                    nullable=bool(doc["nullable"]),
                    unique=bool(doc["unique"]),
                    other=[str(rule) for rule in doc["rules"]],
                ),
            )
            for name, doc in contract(contract_name).column_docs().items()
        ]
    )


def quarantine_limit(settings: Settings, rows: int) -> float:
    """Most rows a partition may quarantine and still pass."""
    return max(float(settings.quarantine_tolerated_rows), settings.quarantine_max_share * rows)


class ContractGate:
    """Validates one asset partition inside its step; the frame is returned only if it passes.

    Use ``check`` for each contract on the way (a raw asset checks the landed file, then the
    typed frame), then ``finish`` before returning. ``on_reject`` runs before any failure is
    raised (raw assets move their landing file aside) and returns where the file went.
    """

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        settings: Settings,
        file: str | None = None,
        on_reject: Callable[[], str | None] | None = None,
        partition: str | None = None,
    ) -> None:
        from ml_assets.resources.lake import quarantine_path

        self.context = context
        self.settings = settings
        self.asset = context.asset_key.to_user_string()
        # ``partition``: one day of a range run (its metadata goes to that day's materialization)
        self.in_range = partition is not None and not context.has_partition_key
        self.partition = partition or (context.partition_key if context.has_partition_key else None)
        self.file = file
        self.on_reject = on_reject
        self.rows_in: int | None = None
        self.quarantine_file = str(quarantine_path(settings.lake_base, self.asset, self.partition))
        self._quarantined: list[Frame] = []
        self._verdicts: list[Verdict] = []

    @property
    def where(self) -> str:
        return f"{self.asset}[{self.partition}]" if self.partition else self.asset

    def params(self, references: "References | None" = None) -> "Params":
        return contract_params(self.settings, self.partition, references)

    def read(self, reader: Callable[[], Frame]) -> Frame:
        """Call ``reader``; a bad landing file fails the step (naming file and rule)."""
        from ml_assets.sources.landing_files import LandingError

        try:
            return reader()
        except LandingError as exc:
            self.file = exc.path or self.file
            rule = exc.rule or "landing_file"
            self._fail(rules=f"| rule | detail |\n|---|---|\n| {rule} | {exc} |", summary=str(exc))

    def check(self, contract_name: str, frame: Frame, params: "Params") -> Frame:
        """Validate ``frame``; quarantine rows breaking row rules; fail on any table rule."""
        from ml_assets.checks.validation import failures_markdown, validate

        verdict = validate(contract_name, frame, params)
        self._verdicts.append(verdict)
        if self.rows_in is None:
            self.rows_in = verdict.rows
        if not verdict.table_failures.empty:
            rules = ", ".join(verdict.table_failures["rule"])
            self._fail(
                rules=failures_markdown(verdict),
                summary=f"{rules} (contract {contract_name}, table-level)",
                verdict=verdict,
            )
        if verdict.quarantined_rows:
            self._quarantined.append(verdict.quarantined())
            self._enforce_limit()
        return verdict.clean()

    def refuse(self, rule: str, detail: str) -> NoReturn:
        """Fail on a table rule checked outside the Pandera contracts (e.g. ``volume_drop``)."""
        self._fail(
            rules=f"| rule | detail |\n|---|---|\n| {rule} | {detail} |",
            summary=f"{rule}: {detail}",
        )

    @property
    def quarantined_count(self) -> int:
        return sum(len(rows) for rows in self._quarantined)

    def _rules_markdown(self) -> str:
        from ml_assets.checks.validation import failures_markdown

        failed = [v for v in self._verdicts if not v.passed]
        return "\n\n".join(f"**{v.contract}**\n\n{failures_markdown(v)}" for v in failed)

    def _write_quarantine(self) -> Frame:
        import pandas as pd

        from ml_assets.resources.lake import write_quarantine

        rows = pd.concat(self._quarantined, ignore_index=True)
        write_quarantine(self.settings.lake_base, self.asset, self.partition, rows)
        return rows

    def _enforce_limit(self) -> None:
        from ml_assets.checks.validation import rows_markdown

        count, rows_in = self.quarantined_count, self.rows_in or 0
        if count <= quarantine_limit(self.settings, rows_in):
            return
        rows = self._write_quarantine()
        self._fail(
            rules=self._rules_markdown(),
            summary=(
                f"quarantine_share: {count} of {rows_in} rows ({count / rows_in:.2%}) broke row "
                "rules, more than "
                f"the limit ({self.settings.quarantine_max_share:.2%}, at least "
                f"{self.settings.quarantine_tolerated_rows} rows)"
            ),
            examples=rows_markdown(rows),
            quarantined=count,
        )

    def finish(
        self, frame: Frame, contract_name: str, extra: Mapping[str, Any] | None = None
    ) -> Frame:
        """Write the quarantine (if any), record the contract's and ``extra`` metadata once."""
        count, rows_in = self.quarantined_count, self.rows_in or 0
        metadata: dict[str, Any] = {
            **(extra or {}),
            "contract": " -> ".join(v.contract for v in self._verdicts),
            "contract_rows_checked": rows_in,
            "quarantined_rows": count,
            "quarantined_share": round(count / rows_in, 6) if rows_in else 0.0,
            "dagster/column_schema": column_schema(contract_name),
        }
        if count:
            self._write_quarantine()
            metadata["quarantine_file"] = dg.MetadataValue.path(self.quarantine_file)
            metadata["quarantine_rules"] = dg.MetadataValue.md(self._rules_markdown())
            self.context.log.warning(
                f"{self.where}: quarantined {count} of {rows_in} rows in {self.quarantine_file}"
            )
        if self.in_range:
            self.context.add_asset_metadata(metadata, partition_key=self.partition)
        else:
            self.context.add_output_metadata(metadata)
        return frame

    def _fail(
        self,
        rules: str,
        summary: str,
        verdict: "Verdict | None" = None,
        examples: str | None = None,
        quarantined: int = 0,
    ) -> NoReturn:
        from ml_assets.checks.validation import rows_markdown

        rejected = self.on_reject() if self.on_reject else None
        if examples is None and verdict is not None:
            examples = rows_markdown(verdict.examples())
        lines = [
            f"{self.where} breaks its data contract: the asset was not written, its last good "
            "materialization stays in place.",
            f"file: {self.file or '-'}",
            f"partition: {self.partition or '-'}",
            f"rule: {summary}",
        ]
        if quarantined:
            lines.append(f"quarantined rows: {quarantined} in {self.quarantine_file}")
        if rejected:
            lines.append(f"landing file moved aside to {rejected} (kept, not deleted)")
        metadata: dict[str, Any] = {
            "asset": self.asset,
            "partition": self.partition or "-",
            "file": self.file or "-",
            "severity": "ERROR",
            "failed_rules": dg.MetadataValue.md(rules or summary),
        }
        if examples:
            metadata["examples"] = dg.MetadataValue.md(examples)
        if quarantined:
            metadata["quarantined_rows"] = quarantined
            metadata["quarantine_file"] = dg.MetadataValue.path(self.quarantine_file)
        if rejected:
            metadata["rejected_file"] = dg.MetadataValue.path(rejected)
        # Recorded on the asset too, so the failed partition's rules, quarantine and rejected file
        # show in its UI page (its check does not run when the step fails).
        self.context.log_event(
            dg.AssetObservation(
                asset_key=self.context.asset_key,
                partition=self.partition,
                description=lines[0],
                metadata={**metadata, "contract_failed": True},
            )
        )
        raise dg.Failure(description="\n".join(lines), metadata=metadata, allow_retries=False)


def _materialization_metadata(
    context: dg.AssetCheckExecutionContext, asset: str, partition: str | None
) -> tuple[dict[str, Any], str | None]:
    """The metadata of the partition's latest materialization and the run that wrote it."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        return {}, None
    metadata = {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    return metadata, records[0].run_id


def _quarantine_metadata(stored: dict[str, Any], quarantined: int) -> dict[str, Any]:
    """Where the materialization's quarantined rows went, with a few of them."""
    from ml_assets.checks.validation import rows_markdown
    from ml_assets.resources.lake import read_quarantine

    if not quarantined:
        return {}
    path = str(stored.get("quarantine_file"))
    metadata: dict[str, Any] = {"quarantine_file": dg.MetadataValue.path(path)}
    rows = read_quarantine(path)
    if rows is not None:
        metadata["quarantine_examples"] = dg.MetadataValue.md(rows_markdown(rows))
    return metadata


def evaluate_written(settings: Settings, stored: dict[str, Any]) -> dg.AssetCheckResult:
    """The verdict of the contract gate that wrote the partition, earlier in this run: what it
    stored are the rows that passed (the rest went to quarantine), so the contract holds."""
    quarantined = int(stored.get("quarantined_rows") or 0)
    rows_in = int(stored["contract_rows_checked"])
    metadata: dict[str, Any] = {
        "rows": rows_in - quarantined,
        "failed_rules": dg.MetadataValue.md("none"),
        "failing_rows": 0,
        "quarantined_rows": quarantined,
        "quarantine_limit_rows": round(quarantine_limit(settings, rows_in), 2),
        "validated": f"as written, by the contract gate of this run ({stored['contract']})",
        **_quarantine_metadata(stored, quarantined),
        "severity": "WARN" if quarantined else "OK",
    }
    described = f"{quarantined} rows were quarantined when this partition was materialized"
    return dg.AssetCheckResult(
        passed=not quarantined,
        severity=dg.AssetCheckSeverity.WARN if quarantined else dg.AssetCheckSeverity.ERROR,
        description=described if quarantined else "contract holds",
        metadata=metadata,
    )


def evaluate_stored(
    asset: str,
    frame: Frame,
    params: "Params",
    settings: Settings,
    stored: dict[str, Any],
) -> dg.AssetCheckResult:
    """The check's verdict on a stored partition plus the quarantine of its materialization."""
    from ml_assets.checks.validation import failures_markdown, rows_markdown, validate

    verdict = validate(asset, frame, params)
    quarantined = int(stored.get("quarantined_rows") or 0)
    rows_in = int(stored.get("contract_rows_checked") or verdict.rows)
    metadata: dict[str, Any] = {
        "rows": verdict.rows,
        "failed_rules": dg.MetadataValue.md(failures_markdown(verdict)),
        "failing_rows": len(verdict.flagged),
        "quarantined_rows": quarantined,
        "quarantine_limit_rows": round(quarantine_limit(settings, rows_in), 2),
    }
    if not verdict.passed:
        metadata["examples"] = dg.MetadataValue.md(rows_markdown(verdict.examples()))
    metadata.update(_quarantine_metadata(stored, quarantined))
    if not verdict.passed:
        severity, description = dg.AssetCheckSeverity.ERROR, "stored partition breaks its contract"
    elif quarantined:
        severity = dg.AssetCheckSeverity.WARN
        description = f"{quarantined} rows were quarantined when this partition was materialized"
    else:
        severity, description = None, "contract holds"
    metadata["severity"] = severity.value if severity else "OK"
    return dg.AssetCheckResult(
        passed=severity is None,
        severity=severity or dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def build_contract_check(asset: str, settings: Settings) -> dg.AssetChecksDefinition:
    """One blocking asset check re-validating the stored partition of ``asset`` (its contract).

    In a range run, a day this same run wrote keeps the verdict of the contract gate that wrote
    it (:func:`evaluate_written`) instead of reading and validating it again.
    """

    @dg.asset_check(
        asset=asset,
        name=CHECK_NAME,
        blocking=True,
        partitions_def=None if asset in UNPARTITIONED else daily,
        description=f"The {asset} data contract (checks/schemas.py) on the stored partition; "
        "WARN when rows were quarantined, ERROR (blocking) when the contract is broken.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, frame: Frame, landing: LandingZone
    ) -> dg.AssetCheckResult:
        from ml_assets.checks.range_checks import join_results
        from ml_assets.checks.schemas import contract
        from ml_assets.resources.lake_ranges import PartitionFrames

        references = load_references(landing) if contract(asset).needs_references else None

        def one_day(partition: str | None, load: Callable[[], Frame]) -> dg.AssetCheckResult:
            stored, run_id = _materialization_metadata(context, asset, partition)
            written_here = run_id == context.op_execution_context.run_id
            if range_run and written_here and "contract_rows_checked" in stored:
                return evaluate_written(settings, stored)
            params = contract_params(settings, partition, references)
            return evaluate_stored(asset, load(), params, settings, stored)

        range_run = isinstance(frame, PartitionFrames)
        if not range_run:
            return one_day(
                context.partition_key if context.has_partition_key else None, lambda: frame
            )
        days = {day: one_day(day, lambda day=day: frame[day]) for day in frame}
        return join_results(days, context)

    return _check


def build_contract_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    return [build_contract_check(asset, settings) for asset in CHECKED_ASSETS]
