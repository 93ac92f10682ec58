"""Fixes to pygeoapi 0.24 applied when the server starts, each for a measured reason.

- ``transform_bbox`` builds a pyproj Transformer and calls ``CRS.to_epsg()`` (a database
  search, ~17 ms) on every request with a bbox, even when bbox-crs equals the storage
  CRS. We skip identical CRSs and cache transformers and EPSG codes.
- pygeofilter's CQL2-text grammar refuses property names that are not ASCII (``类别``)
  or are one character long; Features filters use :mod:`cql_text` instead.
- ``API.get_exception`` logs every answer it builds at ERROR with the traceback of the
  exception being handled, so a refused bbox printed a screenful. A 4xx is the caller's
  mistake, answered with a body that names it: one INFO line. 5xx keep their traceback.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from http import HTTPStatus

import pyproj
from pygeoapi import api as pygeoapi_api
from pygeoapi import crs as pygeoapi_crs
from pygeoapi.api import itemtypes

from . import cql_text

LOGGER = logging.getLogger("shikong.server.refused")
_original_transform_bbox = pygeoapi_crs.transform_bbox
_original_get_exception = pygeoapi_api.API.get_exception


@lru_cache(maxsize=256)
def _transformer(src: str, dst: str, always_xy: bool) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(
        pygeoapi_crs.get_crs(src), pygeoapi_crs.get_crs(dst), always_xy=always_xy
    )


@lru_cache(maxsize=256)
def _epsg(uri: str) -> int | None:
    return pygeoapi_crs.get_crs(uri).to_epsg()


def transform_bbox(bbox: list, from_crs, to_crs, always_xy: bool = False) -> list:
    """pygeoapi's transform_bbox, without repeated CRS work."""
    if not (isinstance(from_crs, str) and isinstance(to_crs, str)):
        return _original_transform_bbox(bbox, from_crs, to_crs, always_xy)
    if from_crs == to_crs:
        return list(bbox)
    if _epsg(to_crs) == 3857:
        bbox = [bbox[0], max(-85.0511, bbox[1]), bbox[2], min(85.0511, bbox[3])]
    transform = _transformer(from_crs, to_crs, always_xy).transform
    n = len(bbox) // 2
    lower = transform(*bbox[:n])
    upper = transform(*bbox[n:])
    return [*lower, *upper]


_refusing = threading.local()


def get_exception(self, status, headers, format_, code, description):
    """pygeoapi's error answer, logged as one line for a 4xx (see the module docstring)."""
    if int(status) >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return _original_get_exception(self, status, headers, format_, code, description)
    LOGGER.info("%d %s: %s", int(status), code, description)
    _refusing.active = True  # its own ERROR line, with the traceback, is filtered out
    try:
        return _original_get_exception(self, status, headers, format_, code, description)
    finally:
        _refusing.active = False


class _QuietRefusals(logging.Filter):
    """Drops pygeoapi's own log record of a 4xx answer (this thread's, while refusing)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (getattr(_refusing, "active", False) and record.funcName == "get_exception")


def apply() -> None:
    pygeoapi_api.API.get_exception = get_exception
    if not any(isinstance(f, _QuietRefusals) for f in pygeoapi_api.LOGGER.filters):
        pygeoapi_api.LOGGER.addFilter(_QuietRefusals())
    itemtypes.parse_cql2_text = cql_text.parse
    itemtypes.transform_bbox = transform_bbox
    pygeoapi_crs.transform_bbox = transform_bbox
