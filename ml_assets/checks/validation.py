"""Run a contract on a frame and sort its failures into quarantined rows and table failures.

Pure (no Dagster, no IO). Import it only inside asset and check bodies: it imports pandera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ml_assets.checks.schemas import TABLE_CHECKS, Contract, Params, contract

REASONS = "failure_reasons"
CONTRACT = "contract"
EXAMPLES = 5


@dataclass(frozen=True)
class Verdict:
    """What one contract found in one frame.

    ``frame`` is the validated frame (dtypes coerced where the contract coerces), indexed
    ``0..n-1``. ``failures`` has one row per failed rule: ``rule``, ``level`` (``row`` or
    ``table``), ``rows`` (rows that break it; 0 when the rule concerns the whole table) and
    ``cases`` (a few offending values). ``flagged`` maps every row that a rule points at to the
    rules it broke; ``reasons`` is its part for row-level rules (the rows to quarantine).
    """

    contract: str
    frame: pd.DataFrame
    failures: pd.DataFrame
    flagged: pd.Series
    reasons: pd.Series

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def table_failures(self) -> pd.DataFrame:
        return self.failures.loc[self.failures["level"] == "table"]

    @property
    def passed(self) -> bool:
        return self.failures.empty

    @property
    def quarantined_rows(self) -> int:
        return len(self.reasons)

    def clean(self) -> pd.DataFrame:
        """The frame without quarantined rows."""
        if self.reasons.empty:
            return self.frame
        return self.frame.drop(index=self.reasons.index).reset_index(drop=True)

    def quarantined(self) -> pd.DataFrame:
        """The quarantined rows with the rules they broke and the contract that caught them."""
        rows = self.frame.loc[self.reasons.index].copy()
        rows[REASONS] = self.reasons.to_numpy()
        rows[CONTRACT] = self.contract
        return rows.reset_index(drop=True)

    def examples(self, limit: int = EXAMPLES) -> pd.DataFrame:
        """Up to ``limit`` rows that broke a rule, with the rules they broke."""
        index = self.flagged.index[:limit]
        rows = self.frame.loc[index].copy()
        rows.insert(0, REASONS, self.flagged.loc[index].to_numpy())
        return rows.reset_index(drop=True)


def _rule_label(failure_cases: pd.DataFrame) -> pd.Series:
    """``column: check`` for column rules; the check name for frame-wide and structural rules."""
    check = failure_cases["check"].astype(str)
    frame_wide = (failure_cases["schema_context"] == "DataFrameSchema") | check.isin(TABLE_CHECKS)
    return check.where(frame_wide, failure_cases["column"].astype(str) + ": " + check)


def _is_table_level(failure_cases: pd.DataFrame, spec: Contract) -> pd.Series:
    check = failure_cases["check"].astype(str)
    if not spec.quarantine:
        return pd.Series(True, index=failure_cases.index)
    return (
        failure_cases["index"].isna()
        | check.isin(TABLE_CHECKS | spec.table_rules)
        | check.str.startswith(("dtype(", "coerce_dtype("))
        | failure_cases["column"].astype(str).isin(spec.table_rules)
    )


def _without_consequences(cases: pd.DataFrame) -> pd.DataFrame:
    """Drop checks that could not run because a column has the wrong dtype (already reported)."""
    check = cases["check"].astype(str)
    wrong_dtype = check.str.startswith(("dtype(", "coerce_dtype("))
    crashed = cases["index"].isna() & cases["failure_case"].astype(str).str.startswith("TypeError(")
    return cases.loc[~(crashed & wrong_dtype.any())].copy()


def _summarize(cases: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (rule, level), group in cases.groupby(["rule", "level"], sort=False):
        indexed = group["index"].dropna()
        if (group["schema_context"] == "DataFrameSchema").all() and len(indexed):
            shown = "row " + indexed.drop_duplicates().sort_values().head(EXAMPLES).astype(
                "int64"
            ).astype(str)
        else:
            shown = group["failure_case"].drop_duplicates().head(EXAMPLES)
        rows.append(
            {
                "rule": rule,
                "level": level,
                "rows": int(indexed.nunique()),
                "cases": ", ".join(str(v)[:60] for v in shown),
            }
        )
    frame = pd.DataFrame(rows, columns=["rule", "level", "rows", "cases"])
    order = frame["level"].map({"table": 0, "row": 1})
    return (
        frame.assign(_o=order).sort_values(["_o", "rule"]).drop(columns="_o").reset_index(drop=True)
    )


def validate(name: str, frame: pd.DataFrame, params: Params | None = None) -> Verdict:
    """Run contract ``name`` on ``frame`` (all rules, lazily) and classify what failed."""
    spec = contract(name)
    params = params or Params()
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.reset_index(drop=True)
    schema = spec.schema(params)
    try:
        checked = schema.validate(frame, lazy=True, inplace=True)
        nothing = pd.Series(dtype=object)
        return Verdict(name, checked, _summarize(_empty_cases()), nothing, nothing)
    except pa.errors.SchemaErrors as exc:
        checked = exc.data if isinstance(exc.data, pd.DataFrame) else frame
        cases = _without_consequences(exc.failure_cases)
    cases["rule"] = _rule_label(cases)
    cases["level"] = np.where(_is_table_level(cases, spec), "table", "row")
    failures = _summarize(cases)
    pointed = cases.dropna(subset=["index"]).drop_duplicates(["index", "rule"])
    flagged = _reasons(pointed)
    reasons = _reasons(pointed.loc[pointed["level"] == "row"])
    return Verdict(name, checked.reset_index(drop=True), failures, flagged, reasons)


def _reasons(cases: pd.DataFrame) -> pd.Series:
    if cases.empty:
        return pd.Series(dtype=object)
    return cases.groupby(cases["index"].astype("int64"), sort=True)["rule"].agg("; ".join)


def _empty_cases() -> pd.DataFrame:
    return pd.DataFrame(columns=["schema_context", "rule", "level", "index", "failure_case"])


def failures_markdown(verdict: Verdict) -> str:
    """The failed rules as a Markdown table (rule, level, rows, example values)."""
    if verdict.failures.empty:
        return "no rule failed"
    return verdict.failures.to_markdown(index=False)


def rows_markdown(rows: pd.DataFrame, limit: int = EXAMPLES) -> str:
    """Up to ``limit`` rows as a Markdown table, failure reasons first."""
    if rows.empty:
        return "no rows"
    shown = rows.head(limit)
    first = [c for c in (REASONS, CONTRACT) if c in shown.columns]
    shown = shown.loc[:, [*first, *(c for c in shown.columns if c not in first)]]
    return shown.to_markdown(index=False)
