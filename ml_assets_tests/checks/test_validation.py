"""Sorting failures: row rules quarantine rows with their reasons, table rules fail the frame."""

from __future__ import annotations

import pandas as pd

from ml_assets.checks.validation import (
    CONTRACT,
    REASONS,
    failures_markdown,
    rows_markdown,
    validate,
)


def test_rows_breaking_row_rules_are_quarantined_with_every_reason(frames) -> None:
    frame, params = frames["landed_flights"]
    frame.loc[[1, 4], "carrier"] = "ZZ"
    frame.loc[4, "dep_delay"] = 9_999.0
    verdict = validate("landed_flights", frame, params)
    assert verdict.table_failures.empty and verdict.quarantined_rows == 2
    clean, quarantined = verdict.clean(), verdict.quarantined()
    assert len(clean) == len(frame) - 2 and "ZZ" not in set(clean["carrier"])
    assert list(quarantined.columns[-2:]) == [REASONS, CONTRACT]
    assert set(quarantined[CONTRACT]) == {"landed_flights"}
    reasons = dict(zip(quarantined["flight"], quarantined[REASONS], strict=True))
    assert reasons[frame.loc[1, "flight"]] == "carrier: carrier_in_airlines"
    assert set(reasons[frame.loc[4, "flight"]].split("; ")) == {
        "carrier: carrier_in_airlines",
        "dep_delay: less_than_or_equal_to(2880.0)",
        "departure_is_schedule_plus_delay",
    }
    counts = verdict.failures.set_index("rule")["rows"].to_dict()
    assert (
        counts["carrier: carrier_in_airlines"] == 2
        and counts["departure_is_schedule_plus_delay"] == 1
    )


def test_table_rules_fail_the_frame_and_show_the_rows_they_point_at(frames) -> None:
    frame, params = frames["raw_flights"]
    frame.loc[5, "flight_id"] = frame.loc[0, "flight_id"]
    verdict = validate("raw_flights", frame, params)
    assert list(verdict.table_failures["rule"]) == ["field_uniqueness"]
    assert verdict.quarantined_rows == 0 and len(verdict.flagged) == 2
    examples = verdict.examples()
    assert len(examples) == 2 and set(examples[REASONS]) == {"field_uniqueness"}
    assert examples["flight_id"].nunique() == 1


def test_contract_without_quarantine_makes_every_failure_table_level(frames) -> None:
    frame, params = frames["training_set"]
    frame.loc[[3, 8], "wx_temp"] = 400.0
    verdict = validate("training_set", frame, params)
    assert set(verdict.failures["level"]) == {"table"}
    assert verdict.quarantined_rows == 0 and len(verdict.flagged) == 2


def test_a_wrong_dtype_is_reported_once_not_with_the_checks_it_broke(frames) -> None:
    frame, params = frames["landed_weather"]
    frame["temp"] = frame["temp"].astype(object)
    frame.loc[0, "temp"] = "warm"
    verdict = validate("landed_weather", frame, params)
    assert sorted(verdict.failures["rule"]) == [
        "temp: coerce_dtype('float64')",
        "temp: dtype('float64')",
    ]
    assert set(verdict.failures["level"]) == {"table"}


def test_reports_are_markdown_with_at_most_five_example_rows(frames, clean_frames) -> None:
    frame, params = frames["landed_flights"]
    frame.loc[range(8), "dep_delay"] = 9_999.0
    verdict = validate("landed_flights", frame, params)
    table = failures_markdown(verdict)
    assert table.startswith("| rule") and "dep_delay: less_than_or_equal_to(2880.0)" in table
    examples = rows_markdown(verdict.quarantined())
    assert examples.splitlines()[0].startswith(f"| {REASONS}")
    assert len(examples.splitlines()) == 2 + 5
    assert rows_markdown(pd.DataFrame()) == "no rows"
    clean = clean_frames["landed_flights"][0].copy()
    assert failures_markdown(validate("landed_flights", clean, params)) == "no rule failed"


def test_frame_with_a_foreign_index_is_validated_by_position(frames) -> None:
    frame, params = frames["raw_weather"]
    frame.index = frame.index + 1000
    frame.loc[1003, "visib"] = 50.0
    verdict = validate("raw_weather", frame, params)
    assert verdict.quarantined_rows == 1
    assert verdict.quarantined()["visib"].tolist() == [50.0]
    assert len(verdict.clean()) == len(frame) - 1
