"""Shared fixtures: small hand-built geometries with known truth."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

GK38 = 4547  # CGCS2000 3° GK CM 114E, no prefix
GK38_PREFIXED = 4526


@pytest.fixture
def gk38_to_4490():
    """An independent transformer from zone-38 GK to CGCS2000 lon/lat."""
    t = Transformer.from_crs(GK38, 4490, always_xy=True)
    return lambda geom: shapely.transform(geom, lambda xy: np.column_stack(t.transform(*xy.T)))
