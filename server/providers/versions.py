"""A published layer's versions without holding them all.

A layer may have tens of thousands of versions; the published snapshot keeps only the
current one (its path, id and validity) in a feature provider's definition, with the
collection and data directory to find the others. A request for another time asks the
catalog store for the one version valid then (:meth:`CatalogStore.item_during`), and its
asset is resolved by :class:`~shikong.catalog.layer.LayerVersion`, as everywhere else.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError
from shikong.catalog.layer import LayerVersion
from shikong.catalog.store import CatalogStore
from shikong.spatial.errors import InputError
from shikong.spatial.temporal import parse_datetime

_guard = threading.Lock()
# the stores of the catalogs published in this process, by data directory: a provider
# (built by pygeoapi per request from its definition) asks the publisher's own store
_published: weakref.WeakValueDictionary[Path, CatalogStore] = weakref.WeakValueDictionary()
_opened: dict[Path, CatalogStore] = {}  # data directories no publisher here serves


def publish_store(store: CatalogStore) -> None:
    """Let providers over this data directory read older versions from ``store``."""
    with _guard:
        _published[store.paths.root.resolve()] = store


def store_at(data_root: str | Path) -> CatalogStore:
    """The catalog store of a data directory: the publisher's, else one opened once."""
    root = Path(data_root).resolve()
    with _guard:
        found = _published.get(root) or _opened.get(root)
    if found is not None:
        return found
    from shikong.catalog.catalog import open_store

    store = open_store(root)
    with _guard:
        return _opened.setdefault(root, store)


def version_entry(version: LayerVersion) -> dict[str, Any]:
    """What a provider needs of one version: its asset's path, id and validity."""
    return {
        "id": version.id,
        "version": version.version,
        "path": str(version.asset_path),
        "valid_from": version.valid_from.timestamp(),
        "valid_to": version.valid_to.timestamp() if version.valid_to else None,
    }


@dataclass(frozen=True)
class PublishedVersions:
    """A published layer's versions: the current one, the others on request."""

    collection: str
    data_root: str
    current: dict[str, Any]  # a version_entry
    published: int = 0  # the catalog version the layer was published at

    @classmethod
    def of(cls, provider: dict[str, Any]) -> PublishedVersions:
        """From a feature provider's definition (see ``publish.resource_for``)."""
        options = provider["options"]
        return cls(
            options["collection"],
            options["data_root"],
            provider["current"],
            provider.get("published", 0),
        )

    def pick(self, datetime_: str | None) -> dict[str, Any]:
        """The version valid at an instant, or the latest valid in an interval (a bare
        date is its whole UTC day: :mod:`shikong.spatial.temporal`); the current one
        without ``datetime``."""
        if not datetime_:
            return self.current
        try:
            start, end = parse_datetime(datetime_).timestamps()
        except InputError as exc:
            raise ProviderInvalidQueryError(user_msg=str(exc)) from None
        store = store_at(self.data_root)
        found = store.item_during(self.collection, start, end)
        if found is None:
            raise ProviderItemNotFoundError(
                user_msg=f"no version of this layer was valid at {datetime_}"
            )
        return version_entry(LayerVersion(store, found))

    def timeline(self) -> list[dict[str, Any]]:
        """Every version's label and validity, oldest first (time sliders, WMS TIME)."""
        return [dict(v) for v in _timeline(self.data_root, self.collection, self.published)]


@functools.lru_cache(maxsize=64)
def _timeline(data_root: str, collection: str, published: int) -> tuple[dict[str, Any], ...]:
    """Read once per published state of a layer (a republished layer has a new key)."""
    return tuple(
        {"id": item_id, "version": version, "valid_from": start, "valid_to": end}
        for item_id, version, start, end in store_at(data_root).versions_of(collection)
    )
