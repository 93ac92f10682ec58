"""Deliveries as departments send them: a folder or a .zip that holds one dataset.

GDAL opens a folder of shapefiles as one data source and reads inside zips through
/vsizip/. We make the same choice ourselves and hand the chosen file to the ordinary
reader, so encoding detection (which reads the .dbf bytes), CRS checks and repairs run
unchanged; a zip member is unpacked with its sidecars into a temporary folder first.
The report says which dataset was chosen; several candidates are an error listing them,
and ``layer=`` (a name, stem or path inside the delivery) or a path such as
``delivery.zip/地类图斑/DLTB.shp`` chooses one.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import FormatError, InputError
from .encoding import CANDIDATES

# Formats that are datasets wherever they appear; then text formats, taken only when a
# delivery holds no dataset of the first kind (a 说明.txt beside a shapefile is a note).
DATASETS = (".shp", ".gpkg", ".geojson", ".fgb", ".kml", ".gml", ".parquet", ".geoparquet")
TEXT_DATASETS = (".json", ".csv", ".tsv", ".txt")
OTHER_ARCHIVES = (".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz")
MAX_FILES = 10_000  # a folder bigger than this is not a delivery: name the dataset


@dataclass(frozen=True)
class Chosen:
    """The dataset taken from a delivery and how to name it."""

    path: Path  # the file to read (inside the folder, or unpacked from the zip)
    layer: str | int | None  # what is left of the caller's layer= for that file
    display: str  # e.g. delivery.zip/地类图斑/DLTB.shp
    container: Path  # the folder or .zip
    note: str  # the report line saying what was chosen


def _junk(name: str) -> bool:
    """Files that archivers and desktops add: never datasets, never candidates."""
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" or p.startswith((".", "~$")) for p in parts)


def _candidates(names: list[str]) -> tuple[list[str], list[str]]:
    """(datasets, text files not taken) among relative names, in a stable order."""
    names = sorted(n for n in names if not _junk(n))
    first = [n for n in names if PurePosixPath(n).suffix.lower() in DATASETS]
    text = [n for n in names if PurePosixPath(n).suffix.lower() in TEXT_DATASETS]
    return (first, text) if first else (text, [])


def _listing(names: list[str], limit: int = 12) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _choose(
    container: Path, names: list[str], layer: str | int | None
) -> tuple[str, str | int | None, str]:
    """The chosen relative name, the layer left for it, and the note for the report."""
    datasets, skipped = _candidates(names)
    kind = "folder" if container.is_dir() else "zip"
    if not datasets:
        found = f" (it holds: {_listing(sorted(names))})" if names else " (it is empty)"
        raise FormatError(container, f"this {kind} holds no dataset shikong reads{found}")
    if isinstance(layer, str):
        wanted = layer.strip("/").lower()
        match = [
            n
            for n in datasets + skipped
            if wanted in (n.lower(), PurePosixPath(n).name.lower(), PurePosixPath(n).stem.lower())
        ]
        if len(match) == 1:
            return match[0], None, f"opened {match[0]} in {container.name} (chosen by layer)"
        if len(match) > 1:
            raise InputError(
                container, f"layer {layer!r} names {len(match)} datasets: {', '.join(match)}"
            )
        if len(datasets) > 1:
            listing = _listing(datasets)
            raise InputError(container, f"no dataset {layer!r} in this {kind}: {listing}")
    if len(datasets) > 1:
        raise InputError(
            container,
            f"this {kind} holds {len(datasets)} datasets, choose one by name or path inside it "
            f"(layer=..., --layer; shikong ingest: --source-layer): {_listing(datasets)}",
        )
    (name,) = datasets
    note = f"opened {name}, the one dataset in {container.name}"
    if skipped:
        note += f" (not read: {_listing(skipped, 5)})"
    return name, layer, note


def split_zip_path(path: Path) -> tuple[Path, str] | None:
    """``a.zip/sub/x.shp`` -> (a.zip, "sub/x.shp") when a.zip is a file and the whole is not."""
    for parent in path.parents:
        if parent.suffix.lower() == ".zip" and parent.is_file():
            return parent, path.relative_to(parent).as_posix()
    return None


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its maker wrote it: Chinese Windows tools write GBK names
    without the UTF-8 flag, which Python then decodes as cp437."""
    name = info.filename
    if not info.flag_bits & 0x800:
        raw = name.encode("cp437")
        for codec in CANDIDATES:
            try:
                name = raw.decode(codec)
                break
            except UnicodeDecodeError:
                continue
    return name.replace("\\", "/")


def _folder_names(folder: Path) -> list[str]:
    names = []
    for path in folder.rglob("*"):
        if path.is_file():
            names.append(path.relative_to(folder).as_posix())
            if len(names) > MAX_FILES:
                raise InputError(
                    folder, f"holds more than {MAX_FILES:,} files: pass the dataset's own path"
                )
    return names


def _unpack(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str, to: Path):
    """Unpack a member and its sidecars (same folder, same stem) under their own names."""
    chosen = PurePosixPath(name)
    wanted = [
        (n, info)
        for n, info in members.items()
        if PurePosixPath(n).parent == chosen.parent and PurePosixPath(n).stem == chosen.stem
    ]
    size = sum(info.file_size for _, info in wanted)
    if size > shutil.disk_usage(to).free * 0.9:
        raise InputError(zf.filename, f"{name} unpacks to {size:,} bytes: not enough disk space")
    for n, info in wanted:
        with zf.open(info) as src, open(to / PurePosixPath(n).name, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    return to / chosen.name


def _zip_error(path: Path, exc: Exception) -> InputError:
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return InputError(path, "the zip is password-protected: send it without a password")
    if isinstance(exc, NotImplementedError):
        return FormatError(path, f"{exc}: re-pack it as an ordinary (deflate) zip")
    return FormatError(path, f"not a readable zip: {exc}")


@contextlib.contextmanager
def _temporary(container: Path, display_root: str) -> Iterator[Path]:
    """A temporary folder whose path, in errors raised inside, reads as the delivery's."""
    with tempfile.TemporaryDirectory(prefix="shikong-zip-") as tmp:
        try:
            yield Path(tmp)
        except InputError as exc:
            if tmp not in exc.source and tmp not in exc.problem:
                raise
            source = exc.source.replace(tmp, display_root)
            problem = exc.problem.replace(tmp, display_root)
            raise type(exc)(source, problem, exc.where) from exc


@contextlib.contextmanager
def opened_delivery(path: Path, layer: str | int | None = None) -> Iterator[Chosen | None]:
    """The dataset to read from a folder or zip, or None when ``path`` is a plain file."""
    suffix = path.suffix.lower()
    if suffix in OTHER_ARCHIVES and path.is_file():
        raise FormatError(path, f"{suffix} archives are not read: unpack it, or send a .zip")
    inner = None
    if not path.exists():
        split = split_zip_path(path)
        if split is None:
            yield None  # the reader says "no such file"
            return
        path, inner = split
    if path.is_dir():
        name, left, note = _choose(path, _folder_names(path), layer)
        yield Chosen(path / name, left, str(path / name), path, note)
        return
    if path.suffix.lower() != ".zip":
        yield None
        return
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _zip_error(path, exc) from exc
    with zf:
        members = {_member_name(i): i for i in zf.infolist() if not i.is_dir()}
        if inner is not None:
            inner = inner.strip("/")
            if inner not in members:
                datasets, _ = _candidates(list(members))
                raise InputError(
                    path, f"has no {inner!r}; its datasets: {_listing(datasets) or 'none'}"
                )
            name, left, note = inner, layer, f"opened {inner} in {path.name}"
        else:
            name, left, note = _choose(path, list(members), layer)
        display = f"{path}/{name}"
        with _temporary(path, str(path / PurePosixPath(name).parent)) as tmp:
            try:
                file = _unpack(zf, members, name, tmp)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:
                raise _zip_error(path, exc) from exc
            yield Chosen(file, left, display, path, note)
