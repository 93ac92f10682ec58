"""The catalog store contract: what a backend must do so that the catalog works on it.

``Catalog`` (the facade analysts use), ingest, layers and the live-readings path reach
the catalog's storage only through :class:`CatalogStore`. The embedded deployment uses
:class:`~shikong.catalog.sqlite_store.SqliteCatalogStore` (one SQLite file beside the
STAC JSON); a second backend (PostgreSQL for a cloud deployment) implements the same
methods and is tested by the same contract tests (``tests/test_store_contract.py``).

What every implementation guarantees:

- **One commit point.** :meth:`commit` adds the batches' items to their layers in one
  transaction, relinks every version of each touched layer (validity ends and
  ``predecessor-version``/``successor-version`` links, see :mod:`.relink`), rewrites the
  layers' collection documents and bumps :meth:`version` exactly once. Readers see all
  of a commit or none of it.
- **One writer at a time** across processes: :meth:`writing` is that lock (re-entrant in
  a process), and :meth:`commit` takes it itself.
- **Versions and as-of.** :meth:`items_of` gives a layer's versions oldest validity
  first; :meth:`item_at` the version valid at an instant (``valid_from <= t <
  valid_to``, the later by validity when two overlap).
- **Search** by a :class:`Query` with the semantics of STAC item search.
- **The STAC JSON mirror** (files under the data directory's ``stac/``) is written by
  :meth:`export` from what was committed since the last export, so a writer that dies
  between commit and export leaves nothing that the next writer does not finish.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry

from .faults import fault
from .storage import DataDir


@dataclass(frozen=True)
class LayerTarget:
    """Where a batch goes and what its collection document says (from an ingest
    request; ``None`` fields keep what the stored collection says)."""

    department: str
    layer: str
    classification: str | None = None
    title: str | None = None
    title_en: str | None = None
    description: str | None = None
    keywords: Sequence[str] = ()
    editable: bool | None = None

    @property
    def collection_id(self) -> str:
        return f"{self.department}-{self.layer}"


@dataclass
class LayerBatch:
    """Items to add to one layer in a commit.

    With ``replace``, stored items of the same ids are replaced (a live readings item);
    otherwise the items are new versions.
    """

    target: LayerTarget
    kind: str
    items: list[dict[str, Any]]
    replace: bool = False


@dataclass
class Query:
    """A search over items; every field narrows the result (None = no constraint)."""

    bbox: Sequence[float] | None = None
    intersects: BaseGeometry | None = None
    start: float | None = None  # epoch seconds of the query interval; None = open
    end: float | None = None
    collections: Sequence[str] | None = None
    ids: Sequence[str] | None = None
    departments: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    classifications: Sequence[str] | None = None
    text: str | None = None
    current_only: bool = False
    filter: Any = None  # a CQL2 filter as a pygeofilter AST (see item_filter)
    sortby: Sequence[tuple[str, bool]] = field(default_factory=list)  # (field, ascending)
    limit: int | None = None
    offset: int = 0


class CatalogStore(ABC):
    """The catalog's storage (see the module docstring for the guarantees)."""

    paths: DataDir  # the data directory: assets, the STAC mirror, locks

    # -- the catalog version -----------------------------------------------------------
    @abstractmethod
    def version(self) -> int:
        """Increases with every commit; servers poll it to publish changes live."""

    @abstractmethod
    def exported_version(self) -> int:
        """The version the STAC mirror was last written at."""

    # -- collections -------------------------------------------------------------------
    @abstractmethod
    def collection(self, collection_id: str) -> dict[str, Any] | None:
        """A layer's STAC collection document, or None."""

    @abstractmethod
    def collections(
        self, department: str | None = None, changed_since: int | None = None
    ) -> list[dict[str, Any]]:
        """Collections by id, optionally of one department or changed after a version."""

    @abstractmethod
    def collections_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored ones among ``ids``."""

    @abstractmethod
    def collection_heads(self, changed_since: int | None = None) -> list[dict[str, Any]]:
        """:meth:`collections` without the parts that grow with every version (``links``,
        one per item, and ``summaries``): what a server publishes of a layer."""

    @abstractmethod
    def departments(self) -> list[str]:
        """Codes of the departments that have at least one layer, sorted."""

    @abstractmethod
    def layer_names(self, department: str) -> list[str]:
        """A department's layer names, sorted."""

    @abstractmethod
    def changed_departments(self, version: int) -> list[str]:
        """Departments with a collection changed after ``version``."""

    # -- items (layer versions) ----------------------------------------------------------
    @abstractmethod
    def item(self, item_id: str) -> dict[str, Any] | None:
        """An item by id, or None."""

    @abstractmethod
    def items_of(self, collection_id: str) -> list[dict[str, Any]]:
        """A layer's versions, oldest validity first (ties by id)."""

    @abstractmethod
    def item_at(self, collection_id: str, when: datetime) -> dict[str, Any] | None:
        """The version valid at ``when`` (aware), or None."""

    @abstractmethod
    def item_during(
        self, collection_id: str, start: float | None, end: float | None
    ) -> dict[str, Any] | None:
        """The last version by validity (ties: the greater id) valid at some moment of
        ``[start, end]`` in epoch seconds (``valid_from <= end`` and ``valid_to > start``,
        None leaving that end open), or None: an as-of question answered with one version
        read. ``start == end`` is an instant (:meth:`item_at`'s answer); both None the
        current version (the last of :meth:`items_of`)."""

    @abstractmethod
    def versions_of(self, collection_id: str) -> list[tuple[str, str, float, float | None]]:
        """(item id, version, valid_from, valid_to) of a layer's versions in the order of
        :meth:`items_of`, from the index without reading any item: a layer's timeline."""

    @abstractmethod
    def find_checksum(self, collection_id: str, checksum: str) -> dict[str, Any] | None:
        """The version ingested from a source with this checksum, if any."""

    @abstractmethod
    def items_changed_since(self, version: int) -> Iterable[tuple[str, str, str, bytes]]:
        """(department, layer, item id, item JSON) of items changed after ``version``."""

    @abstractmethod
    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        """One page of matching items, and how many matched in all."""

    # -- writing -----------------------------------------------------------------------
    # Subclasses set ``self._lock = threading.RLock()`` and ``self._writing = 0`` in
    # ``__init__``; the lock that spans processes is theirs (_take_lock / _let_go).
    _lock: threading.RLock
    _writing: int

    @abstractmethod
    def _take_lock(self) -> None:
        """Wait for the writer lock that spans processes (and machines, where it can)."""

    @abstractmethod
    def _let_go(self) -> None:
        """Release what :meth:`_take_lock` took."""

    @abstractmethod
    def _export_held(self) -> None:
        """:meth:`export`'s work, the writer lock being held."""

    @contextlib.contextmanager
    def writing(self, export: bool = True) -> Iterator[None]:
        """Hold the writer lock (re-entrant in a process); export the STAC mirror on the
        way out of the outermost hold unless ``export=False`` (bulk loads export once at
        the end)."""
        with self._lock:
            outer = self._writing == 0
            if outer:
                self._take_lock()
            self._writing += 1
            try:
                yield
            finally:
                try:
                    if outer:
                        fault("before-export")
                        if export:
                            self._export_held()
                finally:
                    self._writing -= 1
                    if outer:
                        self._let_go()

    @abstractmethod
    def commit(self, batches: Sequence[LayerBatch], export: bool = True) -> int:
        """Add the batches in ONE transaction; the new catalog version."""

    def export(self) -> None:
        """Write the STAC JSON mirror of what was committed since the last export (under
        the writer lock, like any write)."""
        with self.writing(export=False):
            self._export_held()

    @abstractmethod
    def close(self) -> None:
        """Let go of connections (the store may be reopened)."""

    def watch_versions(self, stop: threading.Event) -> Iterator[int] | None:
        """The catalog version each time it may have moved, until ``stop`` is set, for a
        store that can announce commits to other processes (PostgreSQL: LISTEN/NOTIFY);
        None for one that cannot, which servers then poll (:meth:`version` is cheap)."""
        return None

    def finish_interrupted_export(self) -> None:
        """A writer that died between commit and export left the mirror behind: catch up."""
        if self.version() > self.exported_version():
            with self.writing():
                pass


def merge_batches(batches: Iterable[LayerBatch]) -> list[LayerBatch]:
    """One batch per layer, in first-seen order (a commit touches each layer once)."""
    merged: dict[str, LayerBatch] = {}
    for batch in batches:
        cid = batch.target.collection_id
        if cid in merged:
            first = merged[cid]
            merged[cid] = LayerBatch(
                batch.target, batch.kind, first.items + batch.items, batch.replace or first.replace
            )
        else:
            merged[cid] = batch
    return list(merged.values())
