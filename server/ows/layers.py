"""The layers WMS and WMTS serve to one caller: the published snapshot, filtered by access.

Built from the same snapshot and :class:`~shikong.catalog.policy.Access` as every other
API, so a layer the caller may not see is simply absent (its name answers
``LayerNotDefined``, like a name that never existed), and its masks are those the
Features API applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError
from shikong.catalog.opened import OpenedLayer, open_layer
from starlette.requests import Request

from ..providers.features import pick_version
from ..providers.versions import PublishedVersions
from .errors import OwsError

if TYPE_CHECKING:
    from ..app import Server

DRAWN_KINDS = ("vector", "sensors", "raster")


@dataclass(frozen=True)
class ServedLayer:
    """One layer as the OGC map services show it."""

    id: str
    title: str
    abstract: str
    kind: str  # vector, sensors (stations as points) or raster
    bbox: tuple[float, float, float, float]  # CGCS2000 lon/lat
    resource: dict[str, Any] = field(repr=False)
    mask: dict[str, str] = field(default_factory=dict)

    @property
    def vector(self) -> bool:
        return self.kind != "raster"

    def _provider(self, kind: str) -> dict[str, Any]:
        return next(p for p in self.resource["providers"] if p["type"] == kind)

    @property
    def id_field(self) -> str:
        return self._provider("feature")["id_field"]

    def opened(self, datetime_: str | None = None) -> OpenedLayer:
        """The vector version valid at ``datetime_`` (TIME=), the newest without it."""
        versions = PublishedVersions.of(self._provider("feature"))
        try:
            version = pick_version(versions, datetime_)
        except (ProviderInvalidQueryError, ProviderItemNotFoundError) as exc:
            raise OwsError("InvalidDimensionValue", exc.user_msg or str(exc), "time") from None
        return open_layer(version["path"], self.id_field)

    def version_times(self) -> list[str]:
        """Start of each vector version's validity, ISO 8601 (the TIME dimension)."""
        from datetime import UTC, datetime

        versions = PublishedVersions.of(self._provider("feature")).timeline()
        return [
            datetime.fromtimestamp(v["valid_from"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for v in versions
        ]

    @property
    def raster_path(self) -> str:
        return str(self._provider("coverage")["data"])


def _title(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("zh") or value.get("en") or ""
    return str(value or "")


def served_layers(server: Server, request: Request) -> dict[str, ServedLayer]:
    """Every layer the request's caller may see and a map service can draw, in order."""
    from ..app import context

    snapshot = server.publisher.snapshot
    access = server.access(context(request).caller)
    out: dict[str, ServedLayer] = {}
    for cid, resource in snapshot.resources.items():
        info = resource.get("shikong") or {}
        if resource.get("type") != "collection" or info.get("kind") not in DRAWN_KINDS:
            continue
        if cid not in access.visible:
            continue
        title = resource.get("title") or {}
        bbox = tuple(float(v) for v in resource["extents"]["spatial"]["bbox"][:4])
        out[cid] = ServedLayer(
            id=cid,
            title=_title(title),
            abstract=title.get("en", "") if isinstance(title, dict) else "",
            kind=info["kind"],
            bbox=bbox,  # type: ignore[arg-type]
            resource=resource,
            mask=access.masked_fields(cid),
        )
    return out


def pick(
    server: Server, request: Request, layers: dict[str, ServedLayer], names: list[str], locator: str
) -> list[ServedLayer]:
    """The named layers, noted for the audit; an unknown or hidden one is LayerNotDefined
    (a hidden one is audited as a refusal, as a hidden collection's 404 is)."""
    from ..app import context

    ctx = context(request)
    ctx.touch(*names)
    found = []
    for name in names:
        layer = layers.get(name)
        if layer is None:
            if server.hidden(ctx.caller, name):
                ctx.denied = True
            raise OwsError("LayerNotDefined", f"no layer {name!r}", locator)
        found.append(layer)
    return found
