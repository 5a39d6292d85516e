"""Summary statistics shared by the sweep table and the report cards."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_and_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof = 1) of ``values``, e.g. one score over seeds:
    the mean is None without values, the deviation None below two."""
    if not values:
        return None, None
    mean = float(np.mean(values))
    return mean, float(np.std(values, ddof=1)) if len(values) >= 2 else None
