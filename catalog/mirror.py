"""The STAC JSON mirror: the catalog as static STAC files under the data directory's
``stac/``, written after commits from what any store says changed.

Items are written compact (they are many); catalogs and collections indented. New item
files are not referenced until their collection.json is renamed into place, so only
replaced files need the temporary-name dance.
"""

from __future__ import annotations

from .departments import departments
from .extension import ShikongExtension
from .stac import department_catalog, root_catalog
from .storage import fsync_dir, write_bytes_atomic, write_json_atomic, write_new_file
from .store import CatalogStore


def write_mirror(store: CatalogStore, since: int, current: int) -> None:
    """Write the files of everything committed after version ``since`` (the caller holds
    the writer lock and records ``current`` as exported afterwards)."""
    paths = store.paths
    for dept, layer, item_id, text in store.items_changed_since(since):
        path = paths.item_json(dept, layer, item_id)
        if path.exists():
            write_bytes_atomic(path, bytes(text), fsync=False)
        else:
            write_new_file(path, bytes(text))
    known = departments()
    for code in store.changed_departments(since):
        for collection in store.collections(code, changed_since=since):
            write_json_atomic(
                paths.collection_json(code, ShikongExtension.ext(collection).layer),
                collection,
                fsync=False,
            )
        d = known[code]
        write_json_atomic(
            paths.department_catalog(code),
            department_catalog(code, d["name"], d["name_en"], store.layer_names(code)),
        )
    depts = [(code, known[code]["name"]) for code in store.departments()]
    write_json_atomic(paths.root_catalog, root_catalog(depts, current))
    fsync_dir(paths.stac)
