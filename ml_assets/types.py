"""Annotations that Dagster resolves at load time without importing pandas.

Dagster evaluates asset signatures when the code location loads, in every step process; a
real ``pd.DataFrame`` annotation would import pandas there. Type checkers see the real type.
"""

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import pandas as pd

    from ml_assets.models.train import TrainedModel

    Frame: TypeAlias = pd.DataFrame
    Model: TypeAlias = TrainedModel
    Document: TypeAlias = dict[str, Any]
else:  # a range run returns them as ``PartitionFrames``, one per day
    Frame = Model = Document = Any
