"""The seed's contract on the training set, as a blocking, partitioned asset check."""

import dagster as dg

from ml_assets.partitions import daily
from ml_assets.settings import Settings
from ml_assets.types import Frame


def build_training_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(asset="training_set", blocking=True, partitions_def=daily)
    def check_contract_training_set(
        context: dg.AssetCheckExecutionContext, training_set: Frame
    ) -> dg.AssetCheckResult:
        """More than the minimum training rows, no null label, both classes in train and holdout."""
        from ml_assets.models.training_set import SPLIT, TRAIN, contract_violations

        problems = contract_violations(training_set, settings.min_training_rows)
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems) or "contract holds",
            metadata={
                "train_rows": int((training_set[SPLIT] == TRAIN).sum()),
                "min_training_rows": settings.min_training_rows,
                "violations": len(problems),
            },
        )

    return [check_contract_training_set]
