"""EDR over a gridded time series (Zarr): pygeoapi's xarray provider, kept inside the grid.

pygeoapi's ``XarrayEDRProvider`` answers a position or cube outside the grid with an
IndexError (a 500) or an empty selection. A query that falls outside the grid is the
caller's question about a place the data does not cover: 404 saying where the grid is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeoapi.provider.xarray_ import XarrayProvider
from pygeoapi.provider.xarray_edr import XarrayEDRProvider

from .nothing import NothingMatched


class ShikongDatacubeEDRProvider(XarrayEDRProvider):
    """Position and cube queries over a Zarr grid, with clear answers outside it."""

    def _grid_bounds(self) -> tuple[float, float, float, float]:
        xs = np.asarray(self._data[self.x_field].values, dtype=float)
        ys = np.asarray(self._data[self.y_field].values, dtype=float)
        half_x = abs(xs[1] - xs[0]) / 2 if xs.size > 1 else 0.0
        half_y = abs(ys[1] - ys[0]) / 2 if ys.size > 1 else 0.0
        return xs.min() - half_x, ys.min() - half_y, xs.max() + half_x, ys.max() + half_y

    def _outside(self) -> str:
        minx, miny, maxx, maxy = self._grid_bounds()
        return f"the grid covers {minx:g},{miny:g},{maxx:g},{maxy:g} (lon/lat)"

    def position(self, **kwargs: Any) -> dict[str, Any]:
        point = kwargs.get("wkt")
        if point is None or point.geom_type != "Point":
            raise ProviderInvalidQueryError(user_msg="position needs coords=POINT(lon lat)")
        minx, miny, maxx, maxy = self._grid_bounds()
        if not (minx <= point.x <= maxx and miny <= point.y <= maxy):
            raise NothingMatched(
                user_msg=f"POINT({point.x:g} {point.y:g}) is outside the grid; {self._outside()}"
            )
        return super().position(**kwargs)

    def cube(self, **kwargs: Any) -> dict[str, Any]:
        bbox = list(kwargs.get("bbox") or [])
        if len(bbox) == 6:
            raise ProviderInvalidQueryError(user_msg="this grid has no vertical axis: 4 numbers")
        if len(bbox) != 4:
            raise ProviderInvalidQueryError(user_msg="cube needs bbox=minx,miny,maxx,maxy")
        xs = np.asarray(self._data[self.x_field].values, dtype=float)
        ys = np.asarray(self._data[self.y_field].values, dtype=float)
        hit_x = (xs >= bbox[0]) & (xs <= bbox[2])
        hit_y = (ys >= bbox[1]) & (ys <= bbox[3])
        if not hit_x.any() or not hit_y.any():
            raise NothingMatched(
                user_msg=f"bbox {','.join(f'{v:g}' for v in bbox)} holds no cell centre; "
                f"{self._outside()}"
            )
        return super().cube(**kwargs)


class ShikongDatacubeCoverageProvider(XarrayProvider):
    """Coverages of a Zarr grid: CoverageJSON or the Zarr itself, nothing else.

    pygeoapi's xarray provider answers any other format by reading ``data`` as one file,
    which a Zarr store (a folder) is not: a 500. Other formats are a 400 saying which work.
    """

    def query(self, *args: Any, format_: str = "json", **kwargs: Any) -> Any:
        if format_ not in ("json", "zarr"):
            raise ProviderInvalidQueryError(
                user_msg=f"f={format_} is not served for a grid: use f=json (CoverageJSON) "
                "or f=zarr"
            )
        return super().query(*args, format_=format_, **kwargs)
