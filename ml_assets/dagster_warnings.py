"""Dagster's Beta and Preview warnings for the APIs this code location uses on purpose, silenced.

Dagster warns each time a definition uses a Beta or Preview API, so every command that loads the
definitions (``ml-assets``, ``dagster``, ``dg``, each step process) printed screens of them. The
filters below silence one chosen API each, matched by its category and the start of Dagster's
message; any other Beta or Preview API still warns, so a new one is noticed and chosen here (or
not used). The APIs and why we use them:

- ``@dg.asset(backfill_policy=...)`` (Beta): raw, feature, Feast and training-set assets run once
  over a backfill's whole range (``BackfillPolicy.single_run()``), the models, leaderboard and
  deployment one run per day (DESIGN.md, Execution).
- ``dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)`` (Beta): trailing
  training windows (``partitions.trailing``) start before 2013-01-01 for the first days of the
  year; those days are skipped rather than failing the run.
- ``partitions_def`` on ``dg.AssetCheckSpec`` / ``@dg.asset_check`` (Preview, Dagster 1.13):
  contract, monitor and freshness checks judge one partition; an unpartitioned check on a
  partitioned asset would load every partition (STYLE.md 1.3, dagster issue #27747).

``install()`` runs when ``ml_assets.definitions`` is imported, before any definitions are built:
that module is where ``dagster``/``dg`` commands, step processes, the ``ml-assets`` commands that
load the graph, benchmarks and tests all start.
"""

from __future__ import annotations

import re
import warnings

import dagster as dg

CHOSEN: tuple[tuple[type[Warning], str], ...] = (
    (dg.BetaWarning, "Parameter `backfill_policy` of function `asset` is currently in beta"),
    (
        dg.BetaWarning,
        "Parameter `allow_nonexistent_upstream_partitions` of initializer "
        "`TimeWindowPartitionMapping.__init__` is currently in beta",
    ),
    (dg.PreviewWarning, "Specifying a partitions_def on an AssetCheckSpec is currently in preview"),
)


def install() -> None:
    """Ignore the warnings of the ``CHOSEN`` APIs (idempotent: a filter is added once)."""
    for category, message in CHOSEN:
        warnings.filterwarnings("ignore", message=re.escape(message), category=category)
