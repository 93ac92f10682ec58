"""Text encodings of department files: declared (.cpg, LDID) or detected (UTF-8, GBK/GB18030).

Chinese shapefiles are usually GBK without a .cpg; GDAL then falls back to ISO-8859-1
and field names like 地类名称 turn into mojibake. We decide the encoding ourselves and
check it against the bytes, so a wrong declaration is an error, not silent garbage.
"""

from __future__ import annotations

import codecs
import struct
from pathlib import Path

from ..errors import EncodingError, FormatError

# .cpg contents and DBF language driver ids seen in the wild, mapped to Python codecs.
_CPG_ALIASES = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "65001": "utf-8",
    "936": "gbk",
    "cp936": "gbk",
    "gbk": "gbk",
    "gb2312": "gbk",
    "ansi 936": "gbk",
    "gb18030": "gb18030",
    "54936": "gb18030",
    "big5": "big5",
    "950": "big5",
    "iso-8859-1": "latin-1",
    "latin1": "latin-1",
    "1252": "cp1252",
    "ansi 1252": "cp1252",
}
_LDID = {0x4D: "gbk", 0x7A: "gbk", 0x78: "big5", 0x57: None}  # 0x57: "ANSI", undeclared
CANDIDATES = ("utf-8", "gbk", "gb18030")  # GBK named when it suffices; GB18030 covers the rest


def codec_name(label: str) -> str | None:
    """Python codec for an encoding label from a .cpg file, or None if unknown."""
    return _CPG_ALIASES.get(label.strip().lower())


def decode_text(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """Decode text with a given encoding or the first candidate that fits; (text, codec).

    A UTF-8 byte-order mark is dropped whatever the encoding, so it never sticks to the
    first CSV column name.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data, candidates = data[3:], (encoding or "utf-8",)
    else:
        candidates = (encoding,) if encoding else CANDIDATES
    for codec in candidates:
        try:
            return data.decode(codec), codec
        except LookupError as exc:
            raise EncodingError(source, f"unknown encoding {codec!r}") from exc
        except UnicodeDecodeError as exc:
            if len(candidates) == 1:
                raise EncodingError(
                    source, f"not valid {codec}: {exc.reason} at byte {exc.start}"
                ) from exc
    raise EncodingError(source, "text is neither UTF-8 nor GBK/GB18030: declare its encoding")


def find_sidecar(path: Path, suffix: str) -> Path | None:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def dbf_text_samples(dbf: Path, max_records: int = 2000) -> tuple[int, list[bytes]]:
    """Language driver id and the raw bytes of field names and character values."""
    data = dbf.read_bytes()
    if len(data) < 32:
        raise FormatError(dbf, "truncated .dbf: shorter than its 32-byte header")
    n_records, header_len, record_len = struct.unpack("<IHH", data[4:12])
    ldid = data[29]
    fields: list[tuple[bytes, int, int, int]] = []  # name, type, offset, width
    pos, offset = 32, 1  # each record starts with a deletion flag byte
    while pos + 32 <= min(header_len, len(data)) and data[pos] != 0x0D:
        desc = data[pos : pos + 32]
        fields.append((desc[:11].split(b"\x00")[0], desc[11], offset, desc[16]))
        offset += desc[16]
        pos += 32
    samples = [name for name, *_ in fields]
    text_fields = [(off, width) for _, ftype, off, width in fields if ftype in b"CM"]
    for i in range(min(n_records, max_records)):
        start = header_len + i * record_len
        record = data[start : start + record_len]
        if len(record) < record_len:
            break
        samples.extend(record[off : off + width].rstrip(b" \x00") for off, width in text_fields)
    return ldid, samples


def _fits(samples: list[bytes], codec: str) -> bool:
    """True if every sample decodes; a multi-byte character cut at the end is tolerated,
    because DBF names (10 bytes) and fixed-width values truncate byte-wise."""
    decoder = codecs.getincrementaldecoder(codec)
    try:
        for s in samples:
            decoder().decode(s, final=False)
    except UnicodeDecodeError:
        return False
    return True


def shapefile_encoding(shp: Path, declared: str | None = None) -> tuple[str, str]:
    """The encoding of a shapefile's .dbf and where it came from.

    Order: the caller's declaration, the .cpg, the DBF language driver id, then detection
    (UTF-8 if every value decodes as UTF-8, else GB18030, a superset of GBK). A declared
    encoding that the bytes contradict is an EncodingError.
    """
    dbf = find_sidecar(shp, ".dbf")
    if dbf is None:
        raise FormatError(shp, "truncated shapefile: the .dbf attribute file is missing")
    ldid, samples = dbf_text_samples(dbf)
    cpg = find_sidecar(shp, ".cpg")
    origin = None
    if declared:
        codec, origin = declared, "declared"
    elif cpg is not None:
        label = cpg.read_text(errors="replace").strip()
        codec = codec_name(label)
        if codec is None:
            raise EncodingError(cpg, f"unknown code page {label!r} in .cpg")
        origin = ".cpg"
    elif _LDID.get(ldid):
        codec, origin = _LDID[ldid], f"DBF language driver 0x{ldid:02X}"
    else:
        codec = None
    if codec is not None:
        if not _fits(samples, codec):
            other = next((c for c in CANDIDATES if c != codec and _fits(samples, c)), None)
            hint = f"; the bytes decode as {other}" if other else ""
            raise EncodingError(
                dbf, f"attributes are not valid {codec} as the {origin} declares{hint}"
            )
        return codec, origin
    for candidate in CANDIDATES:
        if _fits(samples, candidate):
            return candidate, "detected"
    raise EncodingError(dbf, "attributes are neither UTF-8 nor GBK/GB18030: add a .cpg")
