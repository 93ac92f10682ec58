"""``/assets/…`` of an asset in object storage: its bytes streamed through the server.

Proxied rather than redirected to a presigned URL, after the same access check as a
local file: the bucket need not be reachable by clients (on a government cloud it sits
on an internal network), no URL that anyone holding it could use for minutes ever
leaves the server, every download is in the audit log with its caller, and a caller who
may not see a layer learns nothing of the bucket. The cost is the server's bandwidth;
reads are streamed (never held whole in memory) and a single byte range is passed on, so
GDAL's ``/vsicurl/`` and QGIS read a COG over ``/assets`` by ranges as from a file.
"""

from __future__ import annotations

import mimetypes
import re

from shikong.catalog.asset_store import AssetStoreError, head, stream
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .problems import problem

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TYPES = {".parquet": "application/vnd.apache.parquet", ".tif": "image/tiff"}


def _media_type(location: str) -> str:
    leaf = location.rsplit("/", 1)[-1]
    suffix = "." + leaf.rsplit(".", 1)[-1] if "." in leaf else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(leaf)[0] or "application/octet-stream"


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """[start, end) of one ``Range: bytes=…`` (None: the whole object; "unsatisfiable")."""
    if not header:
        return None
    found = _RANGE.match(header.strip())
    if found is None:  # several ranges, or another unit: answered whole, as allowed
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        return (max(size - n, 0), size) if n else "unsatisfiable"
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, end


async def object_response(request: Request, location: str) -> Response:
    """The object at ``location`` (``s3://…``), whole or one byte range, streamed."""
    try:
        size = head(location)
    except AssetStoreError as exc:
        return problem(502, "Bad Gateway", f"the asset cannot be read now: {exc}")
    if size is None:
        return problem(404, "Not Found", "no such asset")
    headers = {"Accept-Ranges": "bytes"}
    wanted = _byte_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if wanted is None:
        start, end, status = 0, size, 200
    else:
        start, end = wanted  # type: ignore[misc]
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=_media_type(location))
    body = stream(location, start, end if status == 206 else None)
    return StreamingResponse(
        body, status_code=status, headers=headers, media_type=_media_type(location)
    )
