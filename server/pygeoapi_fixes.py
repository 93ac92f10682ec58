"""Every workaround of pygeoapi (0.24.0) behaviour, in one place, each with the upstream
code it works around. Patches are applied when the server starts (:func:`apply`);
document fixes and request rules are functions the server calls.

Patched at start (:func:`apply`):

- ``pygeoapi/crs.py`` ``transform_bbox`` (line 373) builds a pyproj Transformer and calls
  ``CRS.to_epsg()`` (a database search, ~17 ms) on every request with a bbox, even when
  bbox-crs equals the storage CRS. We skip identical CRSs and cache transformers and
  EPSG codes.
- ``pygeoapi/api/__init__.py`` ``API.get_exception`` (line 562) logs every answer it
  builds at ERROR with the traceback of the exception being handled, so a refused bbox
  printed a screenful. A 4xx is the caller's mistake, answered with a body that names
  it: one INFO line. 5xx keep their traceback.
- ``pygeoapi/api/itemtypes.py`` parses CQL2 text with pygeofilter's grammar, which
  refuses property names that are not ASCII (``类别``) or are one character long;
  Features filters use :mod:`cql_text` instead.
- ``pygeoapi/util.py`` ``render_j2_template`` (line 488) loads pages with a
  ``FileSystemLoader`` over [templates path, its own templates, ``.``], whose pages name
  CDNs and a public tile server. Its ``FileSystemLoader`` name is replaced by
  :func:`page_templates.page_loader`: our own templates, then pygeoapi's edited as they load.
- ``pygeoapi/l10n.py`` ``translate_struct`` (line 338) caches the translated config of
  an HTML page per locale, for the whole process, whichever config it was given: a
  page of one access view could be rendered with another view's config (a collection
  page answered 500 when the cached config lacked it, and the page of a caller could
  carry another's resource entries). Ours caches per config object and locale.

Called by the server:

- :func:`unique_operation_ids`: ``pygeoapi/api/maps.py`` (line 372) gives every
  collection's map the same ``operationId: getMap``; OpenAPI wants them unique.
- :func:`anchored_refs`: ``pygeoapi/api/itemtypes.py`` (line 1133) and others write
  remote ``$ref`` without a fragment (``…/sortby.yaml``); clients that split a
  reference at its ``#`` (ogctests 0.1.15) misread it.
- :func:`wants_geojson`: content negotiation of items requests (see its docstring).

- ``server/jobs.py`` ``ShikongJobManager.processor``: ``pygeoapi/process/manager/base.py``
  ``execute_process`` (line 404) keeps the running processor on the shared manager, so
  concurrent executions swapped processors; ours is per thread.

Subclassed providers (our plugins, each module names what it guards):

- ``providers/datacube.py``: ``pygeoapi/provider/xarray_edr.py`` ``position``/``cube``
  (lines 60, 172) answer a place outside the grid with an IndexError (500) or an empty
  selection; ``pygeoapi/provider/xarray_.py`` ``query`` (line 143) reads a Zarr folder as
  a file for formats it does not serve (500). Ours answer 404/400 saying why.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import pyproj
from pygeoapi import api as pygeoapi_api
from pygeoapi import crs as pygeoapi_crs
from pygeoapi import l10n
from pygeoapi import util as pygeoapi_util
from pygeoapi.api import itemtypes
from starlette.requests import Request

from . import cql_text, page_templates

LOGGER = logging.getLogger("shikong.server.refused")
_original_translate_struct = l10n.translate_struct
_TRANSLATED: dict[tuple[int, str], tuple[Any, Any]] = {}  # (id, locale) → (config, copy)
_TRANSLATING = threading.Lock()
_MAX_TRANSLATED = 64  # configs kept (views of recent snapshots, per locale)
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


def translate_struct(struct: Any, locale_: Any, is_config: bool = False) -> Any:
    """pygeoapi's ``translate_struct``, with a translated config cached for that config
    only (the entry holds the config, so its id cannot be another's while cached)."""
    if not is_config or not struct or not locale_:
        return _original_translate_struct(struct, locale_, is_config)
    key = (id(struct), str(locale_))
    with _TRANSLATING:
        found = _TRANSLATED.get(key)
        if found is not None and found[0] is struct:
            return found[1]
        l10n._cfg_cache.pop(locale_, None)  # pygeoapi's own, per locale: never read
        result = _original_translate_struct(struct, locale_, True)
        l10n._cfg_cache.pop(locale_, None)
        if len(_TRANSLATED) >= _MAX_TRANSLATED:
            _TRANSLATED.clear()
        _TRANSLATED[key] = (struct, result)
        return result


def apply() -> None:
    l10n.translate_struct = translate_struct
    pygeoapi_api.API.get_exception = get_exception
    if not any(isinstance(f, _QuietRefusals) for f in pygeoapi_api.LOGGER.filters):
        pygeoapi_api.LOGGER.addFilter(_QuietRefusals())
    itemtypes.parse_cql2_text = cql_text.parse
    itemtypes.transform_bbox = transform_bbox
    pygeoapi_crs.transform_bbox = transform_bbox
    pygeoapi_util.FileSystemLoader = page_templates.page_loader


def unique_operation_ids(document: dict[str, Any]) -> dict[str, Any]:
    """pygeoapi gives every collection's map the same operationId; OAS wants them unique."""
    seen: set[str] = set()
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            op_id = operation["operationId"]
            if op_id in seen:
                suffix = "".join(ch if ch.isalnum() else "_" for ch in path.strip("/"))
                op_id = f"{op_id}_{suffix}"
                operation["operationId"] = op_id
            seen.add(op_id)
    return document


def anchored_refs(node: Any) -> Any:
    """Give every remote ``$ref`` without a fragment an empty one (``…/sortby.yaml#``).

    Both forms name the whole document (RFC 3986, JSON Reference); clients that split
    a reference at its ``#`` (ogctests 0.1.15 among them) misread the bare form.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(("http://", "https://")) and "#" not in ref:
            node["$ref"] = f"{ref}#"
        for value in node.values():
            anchored_refs(value)
    elif isinstance(node, list):
        for value in node:
            anchored_refs(value)
    return node


def wants_geojson(request: Request) -> bool:
    """An items request that accepts GeoJSON (and not HTML) without ``f``: answered with
    ``f=json``. Our EDR formatter registers ``application/geo+json`` for sensor
    collections, so pygeoapi's content negotiation would pick it for items too; items are
    pygeoapi's own GeoJSON (with its self link), as for every other collection."""
    accept = request.headers.get("accept", "")
    return "application/geo+json" in accept and "text/html" not in accept
