"""How closely backends must agree: the tolerances of xpnet's equivalence checks.

The test suite and ``backends/equivalence.py`` hold every backend, device and
training path to these, against the NumPy float64 reference.
"""

from __future__ import annotations

import numpy as np

from xpnet._typing import ArrayLike
from xpnet.backend import to_numpy

__all__ = ["TOLERANCES", "relative_difference"]

#: Largest relative difference allowed, per dtype. float64 agrees to rounding;
#: float32 carries ~1e-7 relative error per operation, grown over a few hundred SGD steps.
TOLERANCES = {"float64": 1e-9, "float32": 1e-4}


def relative_difference(actual: ArrayLike, reference: ArrayLike) -> float:
    """``max|actual - reference| / max|reference|``: the error on the reference's scale.

    Arrays of any backend; both are compared in float64 on the host.
    """
    actual = np.asarray(to_numpy(actual), np.float64)
    reference = np.asarray(to_numpy(reference), np.float64)
    return float(np.max(np.abs(actual - reference)) / max(np.max(np.abs(reference)), 1e-300))
