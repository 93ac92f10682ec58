"""The workbench's mine-remediation view: NDVI change tiles and the per-mine table.

- ``/workbench/mines/ndvi-change/tiles/WebMercatorQuad/{z}/{y}/{x}``: the NDVI change
  between two versions of a red/NIR imagery layer (``imagery=``, default
  ``nrp-rs_mining``; ``before=``/``after=`` version names, default its first and last)
  as PNG tiles, brown where vegetation was lost, green where it came back (-0.5 … +0.5);
- ``/workbench/mines/ndvi-change``: the same pair summarised per mining right
  (``mines=``, default ``nrp-mining_rights``): NDVI before, after, change, disturbed and
  recovered 公顷, as the ``mine-remediation-assessment`` process reports them (the same
  library function, :func:`shikong.catalog.remediation.mine_remediation_assessment`,
  without writing the change back), with the versions compared.

Access: the caller's view decides, as for every layer: a caller who may not see the
imagery (or, for the table, the mining rights) gets 404, as if it did not exist. The
change raster is computed once per pair of versions (NDVI with
:mod:`shikong.spatial.rasterjobs`, written as a COG) and kept under the data directory's
cache folder (``cache/ndvi-change/``), named by the two assets (which never change); the
tiles are then drawn by the maps package's :func:`render_tile`, like any raster layer's.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from shikong.spatial.errors import ShikongError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..maps.raster import render_tile
from ..problems import problem
from ..tiles import matrix_sets

if TYPE_CHECKING:
    from shikong.catalog.layer import Layer, LayerVersion

    from ..app import Server

IMAGERY, MINES = "nrp-rs_mining", "nrp-mining_rights"
TMS_ID = "WebMercatorQuad"
# the change's colours: loss brown, none near white, recovery green
CHANGE_STYLE = {
    "bands": "auto",
    "rescale": [-0.5, 0.5],
    "colormap": [
        [0.0, "#8c510a"],
        [0.3, "#d8b365"],
        [0.5, "#f5f5f5"],
        [0.7, "#5ab4ac"],
        [1.0, "#01665e"],
    ],
    "resampling": "nearest",
}


class NotVisible(Exception):
    """A layer or version the caller may not see, or that is not there (404 alike)."""


def _bands(stack: Any) -> dict[str, Any]:
    """The red and NIR bands of an imagery version, by band name (else the first two)."""
    names = stack.attrs.get("long_name")
    if isinstance(names, (list, tuple)) and len(names) == stack.sizes["band"]:
        by_name = {str(n).lower(): stack.isel(band=i) for i, n in enumerate(names)}
        if "red" in by_name and "nir" in by_name:
            return by_name
    return {"red": stack.isel(band=0), "nir": stack.isel(band=1)}


def write_change(first: LayerVersion, last: LayerVersion, path: Path) -> None:
    """NDVI(after) - NDVI(before) on the first version's grid, as a one-band COG."""
    from shikong.spatial.raster import write_cog
    from shikong.spatial.rasterjobs import change, ndvi

    b1, b2 = _bands(first.to_xarray(masked=False)), _bands(last.to_xarray(masked=False))
    n1, n2 = ndvi(b1["red"], b1["nir"]), ndvi(b2["red"], b2["nir"])
    n2 = n2.rio.reproject_match(n1) if n2.shape != n1.shape else n2
    delta = change(n1, n2).rio.write_crs(n1.rio.crs).rio.write_transform(n1.rio.transform())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_cog(delta.astype("float32").compute(), path)


class MinesApi:
    """The view's routes over one server; change rasters and tables kept per pair."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._tables: dict[tuple[str, ...], dict[str, Any]] = {}

    @property
    def folder(self) -> Path:
        return Path(self.server.catalog.paths.tile_cache).parent / "ndvi-change"

    def pair(self, request: Request) -> tuple[Layer, LayerVersion, LayerVersion]:
        """The imagery layer and its two versions, if the caller may see the layer."""
        q = request.query_params
        imagery = q.get("imagery", IMAGERY)
        resource = self.server.view(request).resources.get(imagery)
        if resource is None or resource.get("shikong", {}).get("kind") != "raster":
            raise NotVisible(f"no raster collection {imagery}")
        layer = self.server.catalog.layer(imagery)
        versions = layer.versions
        if len(versions) < 2:
            raise NotVisible(f"{imagery} has one version: nothing to compare")
        try:
            first = layer.version(q["before"]) if q.get("before") else versions[0]
            last = layer.version(q["after"]) if q.get("after") else versions[-1]
        except (KeyError, ValueError, ShikongError) as exc:
            raise NotVisible(f"{imagery}: {exc}") from None
        return layer, first, last

    def change_path(self, first: LayerVersion, last: LayerVersion) -> Path:
        """The change COG of this pair, computed on first use (one at a time)."""
        key = hashlib.sha256(f"{first.asset_path}\n{last.asset_path}".encode()).hexdigest()
        path = self.folder / f"{key[:32]}.tif"
        if path.exists():
            return path
        with self._lock:
            if not path.exists():
                partial = path.with_suffix(".partial.tif")
                write_change(first, last, partial)
                partial.replace(path)
        return path

    def table(self, request: Request) -> dict[str, Any]:
        from shikong.catalog.remediation import mine_remediation_assessment

        layer, first, last = self.pair(request)
        mines = request.query_params.get("mines", MINES)
        if mines not in self.server.view(request).resources:
            raise NotVisible(f"no collection {mines}")
        key = (str(first.asset_path), str(last.asset_path), mines)
        with self._lock:
            found = self._tables.get(key)
            if found is None:
                report = mine_remediation_assessment(
                    self.server.catalog,
                    imagery=layer.id,
                    mines=mines,
                    before=first.version,
                    after=last.version,
                    write_derived=False,
                )
                found = self._tables[key] = {
                    **report,
                    "before_version": first.version,
                    "after_version": last.version,
                    "mines_layer": mines,
                }
        return found

    async def tile(self, request: Request) -> Response:
        p = request.path_params
        try:
            _, first, last = self.pair(request)
            tms = matrix_sets.get(TMS_ID)
            z, y, x = int(p["z"]), int(p["y"]), int(p["x"])
            path = await run_in_threadpool(self.change_path, first, last)
        except NotVisible as exc:
            return problem(404, "NotFound", str(exc))
        except ValueError as exc:
            return problem(400, "InvalidParameterValue", str(exc))
        png = await run_in_threadpool(render_tile, str(path), tms, x, y, z, style=CHANGE_STYLE)
        headers = {"cache-control": "private, max-age=3600"}
        if png is None:
            return Response(status_code=204, headers=headers)
        return Response(png, media_type="image/png", headers=headers)

    async def summary(self, request: Request) -> Response:
        try:
            body = await run_in_threadpool(self.table, request)
        except NotVisible as exc:
            return problem(404, "NotFound", str(exc))
        data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(data, media_type="application/json")

    def routes(self) -> list[Route]:
        base = "/workbench/mines/ndvi-change"
        return [
            Route(base, self.summary),
            Route(f"{base}/tiles/{TMS_ID}/{{z:int}}/{{y:int}}/{{x:int}}", self.tile),
        ]
