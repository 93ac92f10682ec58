"""``shikong migrate --to postgresql://…``, the readings: an embedded data directory's
observation store copied into the PostgreSQL readings beside the migrated catalog.

Every reading is read layer by layer from one snapshot of the SQLite files and stored in
PostgreSQL through the store's ``load`` (binary COPY, ``ON CONFLICT DO NOTHING``): a copy
that stopped half-way resumes without storing anything twice. Then the numbers of
readings per layer are compared; only when they agree are the fired alerts, the alert
states and the channel counters copied, in the transaction that marks the copy finished.
Running it again after that is a no-op ("already migrated").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .stores import DatabaseError, mask_dsn, observation_store

if TYPE_CHECKING:
    from .observations_pg import PostgresObservationStore
    from .store import CatalogStore

SHOWN_PROBLEMS = 10


def migrate_readings(catalog_target: CatalogStore, console: Any = None) -> str:
    """Copy the readings of ``catalog_target``'s data directory into its database (a
    PostgreSQL catalog store), check the counts and mark the copy finished; returns the
    line to print. ``console``: a rich console to show a progress bar on.
    DatabaseError when the copy does not match its source (nothing is marked)."""
    from .observations import ObservationStore

    archive = catalog_target.paths.observations_archive
    target: PostgresObservationStore = observation_store(catalog_target)  # type: ignore[assignment]
    where = f"{mask_dsn(target.dsn)} (schema {target.schema})"
    if not archive.exists():
        return f"no readings to migrate (no {archive.name} in {archive.parent})"
    source = ObservationStore(archive)
    try:
        origin = str(archive.resolve())
        copied_from = target.meta("copied_from")
        if copied_from is not None and copied_from != origin:
            raise DatabaseError(
                f"the readings in {where} were copied from {copied_from}, not {origin}: "
                "use another --schema"
            )
        want = {layer: source.extent(layer)[2] for layer in source.layers()}
        total = sum(want.values())
        if copied_from == origin and _counts(target, want) == want:
            return f"readings already migrated: {total:,} readings of {len(want)} sensor layers"
        with _bar(console, f"copying {total:,} readings", total) as advance:
            for layer, frame in source.dump():
                target.load(layer, frame)
                advance(len(frame))
        problems = [
            f"{layer}: {got:,} readings in the database, {want[layer]:,} in {archive.name}"
            for layer, got in _counts(target, want).items()
            if got != want[layer]
        ]
        if problems:
            shown = "; ".join(problems[:SHOWN_PROBLEMS])
            more = len(problems) - SHOWN_PROBLEMS
            raise DatabaseError(
                f"the readings in {where} do not match the data directory: "
                f"{shown}{f' and {more} more' if more > 0 else ''}"
            )
        fired, states = source.alert_tables()
        target.finish_copy(origin, fired, states, source.all_counts())
    finally:
        source.close()
    return (
        f"migrated {total:,} readings of {len(want)} sensor layers and {len(fired)} fired "
        f"alerts into {where}; counts checked"
    )


def _counts(target: PostgresObservationStore, layers: dict[str, int]) -> dict[str, int]:
    """Readings per layer in the target, for the layers of the source."""
    return {layer: target.extent(layer)[2] for layer in layers}


@contextmanager
def _bar(console: Any, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on ``console`` (rich), or nothing."""
    if console is None:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
