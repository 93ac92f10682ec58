"""Is a source whole? Checks made before any reader opens it.

Two failures this guards against:

- a special file (a FIFO, a device, a socket) under a data file's name: opening it
  blocks forever or reads without end, so the file type is checked with ``stat``, which
  never opens it;
- a shapefile whose parts disagree (a ``.shp`` cut short, a ``.dbf`` of another
  delivery). GDAL reads such a file "successfully" and hands back features without
  geometry, or attributes paired with the wrong shapes; that is corruption, not data.
  The rule: a shape record the ``.shp`` declares as null (type 0) is a feature without
  geometry, kept with a warning; a missing or undecodable record is a corrupt file,
  refused before anything is written.
"""

from __future__ import annotations

import glob
import os
import stat
import struct
from pathlib import Path

import numpy as np

from ..errors import FormatError, InputError

SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")
_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
SHP_HEADER = 100
SHP_FILE_CODE = 9994


def file_kind(path: Path) -> str | None:
    """What a special file is ("a named pipe (FIFO)", ...), or None for a regular file
    or folder. Uses stat only: a FIFO is never opened."""
    mode = os.stat(path).st_mode
    return next((name for test, name in _SPECIAL if test(mode)), None)


def regular_file(path: Path, *, allow_empty: bool = False) -> Path:
    """``path`` if it is a readable regular file with content, else a one-line error."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(path, "is a folder, not a file")
    kind = file_kind(path)
    if kind is not None:
        raise FormatError(path, f"is {kind}, not a regular file: pass the data file itself")
    if info.st_size == 0 and not allow_empty:
        raise FormatError(path, "is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise InputError(path, "cannot read: permission denied")
    return path


def shapefile_parts(shp: Path) -> list[Path]:
    """The .shp and every file beside it with the same stem (its sidecars)."""
    return sorted(shp.parent.glob(f"{glob.escape(shp.stem)}.*"))


def _header(path: Path, data: bytes, what: str) -> int:
    """The byte length a .shp/.shx header declares (checked against the real size)."""
    if len(data) < SHP_HEADER:
        raise FormatError(path, f"truncated {what}: shorter than its {SHP_HEADER}-byte header")
    code, words = struct.unpack(">i20xi", data[:28])
    if code != SHP_FILE_CODE:
        raise FormatError(path, f"not a shapefile {what}: its header does not start with 9994")
    return words * 2


def check_shapefile(shp: Path, shx: Path | None, dbf: Path | None) -> int:
    """Refuse a shapefile whose .shp, .shx and .dbf do not fit together; return the
    number of null-shape records (type 0) the .shp declares."""
    for part in shapefile_parts(shp):
        if part != shp and part.suffix.lower() in SHAPEFILE_SIDECARS:
            regular_file(part, allow_empty=part.suffix.lower() in (".cpg", ".prj"))
    shp_size = shp.stat().st_size
    with open(shp, "rb") as fh:
        declared = _header(shp, fh.read(SHP_HEADER), ".shp")
    if shp_size < declared:
        raise FormatError(
            shp, f"truncated .shp: its header says {declared:,} bytes, the file has {shp_size:,}"
        )
    if shx is None:
        raise FormatError(shp, "truncated shapefile: the .shx index file is missing")
    index = shx.read_bytes()
    shx_declared = _header(shx, index, ".shx")
    if len(index) < shx_declared or (len(index) - SHP_HEADER) % 8:
        raise FormatError(shx, f"truncated .shx: {len(index):,} bytes is not a whole index")
    records = np.frombuffer(index, dtype=">i4", offset=SHP_HEADER).reshape(-1, 2)
    offsets, lengths = records[:, 0].astype(np.int64) * 2, records[:, 1].astype(np.int64) * 2
    ends = offsets + 8 + lengths
    beyond = np.flatnonzero((offsets < SHP_HEADER) | (lengths < 4) | (ends > shp_size))
    if beyond.size:
        k = int(beyond[0])
        raise FormatError(
            shp,
            f"truncated or corrupt .shp: shape {k + 1} of {len(records)} lies outside the "
            f"file ({shp_size:,} bytes): features would lose their geometry",
        )
    if dbf is not None:
        _check_dbf(dbf, len(records))
    if not len(records):
        return 0
    shapes = np.memmap(shp, dtype=np.uint8, mode="r")
    at = offsets + 8
    types = shapes[at[:, None] + np.arange(4)].copy().view("<i4").ravel()
    return int((types == 0).sum())


def _check_dbf(dbf: Path, shapes: int) -> None:
    size = dbf.stat().st_size
    with open(dbf, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12:
        raise FormatError(dbf, "truncated .dbf: shorter than its header")
    count, header_len, record_len = struct.unpack("<IHH", head[4:12])
    if size < header_len + count * record_len:
        whole = max(0, (size - header_len) // record_len) if record_len else 0
        raise FormatError(
            dbf, f"truncated .dbf: its header says {count:,} records, the file holds {whole:,}"
        )
    if count != shapes:
        raise FormatError(
            dbf,
            f"holds {count:,} attribute records but the .shx indexes {shapes:,} shapes: the "
            "files are of different deliveries or one is truncated",
        )
