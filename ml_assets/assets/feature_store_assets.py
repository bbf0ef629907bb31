"""The feature store: the day's feature rows in the lake (Feast's offline source) and in the
online store, with a parity check between the two."""

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.assets import OWNERS
from ml_assets.assets.daily_asset import (
    BACKFILL_POLICY,
    day_values,
    output_values,
    partition_days,
    per_day,
    window,
)
from ml_assets.assets.data_errors import persistent_failures
from ml_assets.errors import classified, retry_policy
from ml_assets.partitions import daily
from ml_assets.resources.feature_store import FeatureStoreResource
from ml_assets.settings import Settings
from ml_assets.types import Frame

if TYPE_CHECKING:
    from ml_assets.feature_repo.online_upkeep import UpkeepReport

GROUP = "features"
PARITY_SAMPLE = 50
MATERIALIZE_DAYS = 28  # days per Feast materialization of a range run: bounds its memory


def online_window(day: str, horizon_hours: float) -> tuple[dt.datetime, dt.datetime]:
    """The prediction times of ``day``'s flights:
    [local midnight - horizon, next local midnight)."""
    import pandas as pd

    start = pd.Timestamp(day, tz="America/New_York")
    end = start + pd.Timedelta(days=1)
    return (start - pd.Timedelta(hours=horizon_hours)).tz_convert(
        "UTC"
    ).to_pydatetime(), end.tz_convert("UTC").to_pydatetime()


def materialize_days(
    feature_store: FeatureStoreResource, days: list[str], horizon_hours: float
) -> "UpkeepReport":
    """Materialize ``days`` (consecutive) into the online store, ``MATERIALIZE_DAYS`` per Feast
    call in day order, so memory does not grow with a range; the chunks' counts added up."""
    from ml_assets.feature_repo.online_upkeep import UpkeepReport

    total = UpkeepReport()
    for first in range(0, len(days), MATERIALIZE_DAYS):
        chunk = days[first : first + MATERIALIZE_DAYS]
        start = online_window(chunk[0], horizon_hours)[0]
        end = online_window(chunk[-1], horizon_hours)[1]
        report = feature_store.materialize(start, end, chunk)
        if report is not None:
            total.replaced += report.replaced
            total.kept_newer += report.kept_newer
            total.swept += report.swept
            total.newest_event = report.newest_event
    return total


def build_feature_store_assets(settings: Settings) -> list:
    from ml_assets.feature_repo.feast_objects import ENTITY_ASSETS, SOURCE_ASSET

    outs = {
        SOURCE_ASSET: dg.AssetOut(
            kinds={"feast", "parquet"},
            owners=OWNERS,
            code_version="2",
            io_manager_key="lake",
            description="The day's flight rows (flight views), stamped with prediction times, "
            "with their entity join keys.",
        ),
        **{
            asset: dg.AssetOut(
                kinds={"feast", "parquet"},
                owners=OWNERS,
                code_version="1",
                io_manager_key="lake",
                description=f"The day's rows of the Feast view {view}: one per key, stamped "
                "before the day's first prediction.",
            )
            for view, asset in ENTITY_ASSETS.items()
        },
    }

    @dg.multi_asset(
        partitions_def=daily,
        group_name=GROUP,
        outs=outs,
        name=SOURCE_ASSET,
        retry_policy=retry_policy(settings),
        backfill_policy=BACKFILL_POLICY,
    )
    @classified
    def feast_features(
        context: dg.AssetExecutionContext, flight_features: Frame, traffic_features: Frame
    ) -> Iterator[dg.Output]:
        """Both feature branches of the day as the Parquet files Feast's offline store (duckdb)
        reads: flight rows, and one frame per entity view (carrier, origin, route, origin-hour,
        plane)."""
        from ml_assets.feature_repo.feast_objects import feast_frames

        def one_day(day: str) -> dict[str, Frame]:
            with persistent_failures(f"feast_features[{day}]"):
                return feast_frames(
                    window(flight_features, day, 1),
                    window(traffic_features, day, 1),
                    day,
                    settings.prediction_horizon_hours,
                )

        frames = per_day(context, one_day)
        for name in outs:
            value = output_values(context, frames, name)
            rows = sum(len(frame) for frame in day_values(value))
            yield dg.Output(value, output_name=name, metadata={"rows": rows})

    @dg.asset(
        partitions_def=daily,
        group_name=GROUP,
        kinds={"feast"},
        owners=OWNERS,
        code_version="1",
        deps=[feast_features],
        retry_policy=retry_policy(settings),
        backfill_policy=BACKFILL_POLICY,
    )
    @classified
    def online_features(
        context: dg.AssetExecutionContext, feature_store: FeatureStoreResource
    ) -> dg.MaterializeResult:
        """The day's feature rows materialized into the online store (SQLite locally, Redis in
        production). Re-running a day replaces what it wrote (a correction reaches serving; a
        newer day's values stay), and rows past the views' TTL are swept, so the store holds
        what serving can use. A range run materializes its days ``MATERIALIZE_DAYS`` at a
        time, in day order (Feast holds a call's rows in memory); the row counts add up."""
        days = partition_days(context)
        horizon = settings.prediction_horizon_hours
        feature_store.apply()
        report = materialize_days(feature_store, days, horizon)
        newest = report.newest_event
        return dg.MaterializeResult(
            metadata={
                "online_store": feature_store.config["online_store"]["type"],
                "window_start": online_window(days[0], horizon)[0].isoformat(),
                "window_end": online_window(days[-1], horizon)[1].isoformat(),
                "feature_service": feature_store.service().name,
                "rows_replaced": report.replaced,
                "rows_kept_newer": report.kept_newer,
                "rows_swept": report.swept,
                "newest_event_online": newest.isoformat() if newest else "none",
            }
        )

    @dg.asset_check(
        asset=online_features,
        partitions_def=daily,
        additional_ins={"feast_features": dg.AssetIn()},
        description="Sampled flights that online serving answers read the same features online "
        "and offline (point in time), each view compared where its online row is the one the "
        "flight's prediction time sees.",
    )
    def check_parity_online_offline(
        context: dg.AssetCheckExecutionContext,
        feature_store: FeatureStoreResource,
        feast_features: Frame,
    ) -> dg.AssetCheckResult:
        from ml_assets.resources.lake import concat_partitions

        cutoff = feature_store.upkeep().cutoff()
        if isinstance(feast_features, Mapping) and cutoff is not None:
            # a range run: only its days with flights still served (the rest were swept)
            horizon = settings.prediction_horizon_hours
            served = [d for d in feast_features if online_window(d, horizon)[1] > cutoff]
            feast_features = {d: feast_features[d] for d in served or list(feast_features)[-1:]}
        rows = concat_partitions(feast_features)
        result, served_days = _parity(feature_store, rows)
        if not context.has_partition_key:  # a range run: every day gets its own evaluation
            from ml_assets.checks.range_checks import record_days

            swept = dg.AssetCheckResult(
                passed=True, description="none of the day's flights is served online any more"
            )
            record_days(
                context,
                {day: result if day in served_days else swept for day in context.partition_keys},
            )
        return result

    def _parity(
        feature_store: FeatureStoreResource, rows: Frame
    ) -> tuple[dg.AssetCheckResult, set[str]]:
        """The verdict on ``rows``' flights that online serving answers, and their days."""
        from ml_assets.models.features import JOIN_KEYS, KEY, parity

        upkeep = feature_store.upkeep()
        cutoff = upkeep.cutoff()
        served = rows if cutoff is None else rows.loc[rows["prediction_ts"] >= cutoff]
        if served.empty:
            return dg.AssetCheckResult(
                passed=True,
                description="none of these flights is served online any more: rows before "
                f"{cutoff:%Y-%m-%d %H:%M} UTC (the newest flight online minus the views' TTL) "
                "were swept",
                metadata={"flights_compared": 0, "served_from": str(cutoff)},
            ), set()
        sample = served.sample(n=min(PARITY_SAMPLE, len(served)), random_state=settings.seed)
        online = feature_store.online(sample[KEY].tolist())
        offline = feature_store.historical(
            sample.loc[:, [KEY, *JOIN_KEYS, "prediction_ts"]].rename(
                columns={"prediction_ts": "event_timestamp"}
            )
        )
        agree = parity(online, offline)
        current = feature_store.comparable(sample, agree.columns)
        compared = agree.where(current, True)
        rate = (
            float(agree.to_numpy()[current.to_numpy()].mean()) if current.to_numpy().any() else 1.0
        )
        bad = compared.loc[~compared.all(axis=1)]
        superseded = int((~current).any(axis=1).sum())
        return dg.AssetCheckResult(
            passed=bool(compared.to_numpy().all()),
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"online/offline parity {rate:.4%} over {len(agree)} flights x "
            f"{agree.shape[1]} features"
            + (
                f" ({superseded} flights' entity views superseded by a newer day)"
                if superseded
                else ""
            ),
            metadata={
                "parity_rate": rate,
                "flights_compared": len(agree),
                "values_compared": int(current.to_numpy().sum()),
                "flights_with_superseded_views": superseded,
                "mismatched_flights": len(bad),
                "examples": dg.MetadataValue.md(
                    "\n".join(
                        f"- {k}: {', '.join(c for c in bad.columns if not bad.loc[k, c])}"
                        for k in bad.index[:5]
                    )
                    or "none"
                ),
            },
        ), set(served[KEY].str[:10])

    return [feast_features, online_features, check_parity_online_offline]
