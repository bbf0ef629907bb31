"""Low-latency scoring of single rows: the booster is parsed once, rows become a float matrix.

``train.predict`` builds a pandas frame per call (right for batches); serving scores one flight
at a time, so this maps feature dicts straight to the codes LightGBM learned from pandas.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ml_assets.models.train import TrainedModel


class RowScorer:
    """Delay probabilities for feature dicts, equal to ``train.predict`` on the same rows."""

    def __init__(self, model: TrainedModel) -> None:
        import lightgbm as lgb

        from ml_assets.models.features import CATEGORICAL_FEATURES

        self.model = model
        self._booster = lgb.Booster(model_str=model.model_text)
        learned = list(self._booster.pandas_categorical or [])
        categorical = [name for name in model.features if name in CATEGORICAL_FEATURES]
        if len(learned) != len(categorical):
            raise ValueError(
                f"model {model.name} ({model.sha256[:12]}) learned {len(learned)} category lists "
                f"for {len(categorical)} categorical features {categorical}"
            )
        codes = {
            name: {value: float(i) for i, value in enumerate(values)}
            for name, values in zip(categorical, learned, strict=True)
        }
        self._columns = [(name, codes.get(name)) for name in model.features]

    def matrix(self, rows: list[dict[str, Any]]) -> np.ndarray:
        import numpy as np

        out = np.empty((len(rows), len(self._columns)), dtype=np.float64)
        for r, row in enumerate(rows):
            for c, (name, codes) in enumerate(self._columns):
                value = row.get(name)
                if codes is not None:
                    out[r, c] = codes.get(value, math.nan)
                else:
                    out[r, c] = math.nan if value is None else float(value)
        return out

    def score(self, rows: list[dict[str, Any]]) -> np.ndarray:
        return self._booster.predict(self.matrix(rows), num_threads=1)
