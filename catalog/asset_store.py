"""Where layer versions' assets live: the data directory's ``assets/`` folder (the
default) or S3-compatible object storage (``SHIKONG_ASSETS=s3://bucket/prefix``).

The one seam between the catalog and the bytes of its assets. Writing goes through an
:class:`AssetStore` chosen by configuration (:func:`configured_assets`): the asset
writers always write a version folder on the local disk (its *workspace*); the local
store's workspace is the asset's final place, S3's is a staging folder that
:meth:`AssetStore.publish` uploads before the catalog commits the item, so a committed
item never names an object that is not there.

Reading goes by the item's href alone, whatever the configuration of the process: a
relative href is a file under the data directory (as before), an ``s3://`` href an
object, opened by each reader the way it reads ranges best: GeoParquet through Arrow's
S3 file system (row groups by range requests), COGs through GDAL's ``/vsis3/``
(:func:`gdal_path`), Zarr through zarr's object store, the rest through obstore.
Endpoint and credentials come from the usual environment (``AWS_ENDPOINT_URL`` or
``AWS_S3_ENDPOINT``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``).

Why an item names its object by an absolute ``s3://`` URL rather than a path relative to
a configured base: the item then says where its bytes are to any process and any STAC
tool, versions written before a change of ``SHIKONG_ASSETS`` stay readable where they
are, and one catalog can hold both kinds while it is being moved. Clients never see the
bucket: the STAC API rewrites every href to the server's ``/assets/…``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shikong.spatial.errors import ShikongError

from .storage import DataDir, tree_size_and_checksum

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    import xarray as xr

ASSETS_ENV = "SHIKONG_ASSETS"
S3_SCHEME = "s3://"
_LOCAL = ("", "local")  # what names the data directory's assets/ folder explicitly
_BLOCK = 1 << 20

Location = Path | str  # a local file or folder, or an s3:// URL


class AssetStoreError(ShikongError):
    """Object storage refused or failed (unreachable, bad credentials, no such bucket)."""


# -- settings from the environment --------------------------------------------------
@dataclass(frozen=True)
class S3Settings:
    """How to reach the object storage, from the environment AWS tools read."""

    endpoint: str | None  # scheme://host[:port]; None: AWS itself
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    virtual_hosting: bool

    @classmethod
    def from_env(cls) -> S3Settings:
        env = os.environ
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if not endpoint and env.get("AWS_S3_ENDPOINT"):  # GDAL's spelling: host[:port]
            https = env.get("AWS_HTTPS", "YES").upper() not in ("NO", "FALSE", "OFF", "0")
            raw = env["AWS_S3_ENDPOINT"]
            endpoint = raw if "://" in raw else f"{'https' if https else 'http'}://{raw}"
        hosting = env.get("AWS_VIRTUAL_HOSTING")
        return cls(
            endpoint=endpoint.rstrip("/") if endpoint else None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("AWS_SESSION_TOKEN"),
            # path-style for a named endpoint (SeaweedFS, MinIO), virtual hosts on AWS
            virtual_hosting=(hosting.upper() in ("TRUE", "YES", "1"))
            if hosting
            else endpoint is None,
        )

    @property
    def http(self) -> bool:
        return bool(self.endpoint) and self.endpoint.startswith("http://")

    @property
    def host(self) -> str | None:
        return urlsplit(self.endpoint).netloc if self.endpoint else None

    def gdal_options(self) -> dict[str, str]:
        """GDAL's configuration for ``/vsis3/`` to reach the same endpoint."""
        options = {
            "AWS_REGION": self.region,
            "AWS_VIRTUAL_HOSTING": "TRUE" if self.virtual_hosting else "FALSE",
        }
        if self.host:
            options["AWS_S3_ENDPOINT"] = self.host
            options["AWS_HTTPS"] = "NO" if self.http else "YES"
        return options


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key without slashes at either end)."""
    if not url.startswith(S3_SCHEME):
        raise AssetStoreError(f"{url!r} is not an s3:// URL")
    bucket, _, key = url[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise AssetStoreError(f"{url!r} names no bucket")
    return bucket, key.strip("/")


def is_remote(location: Location) -> bool:
    return isinstance(location, str) and location.startswith(S3_SCHEME)


def _short(exc: BaseException) -> str:
    """One line of an obstore error: its first line without the XML body it quotes,
    then the S3 error code and message from that body (a debug dump follows them)."""
    text = str(exc).split("\n\nDebug source")[0]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first.split(": <?xml")[0]
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    if code:
        first += f": {code.group(1)}" + (f" ({message.group(1)})" if message else "")
    return first or type(exc).__name__


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """obstore's errors as one AssetStoreError line naming what was being done."""
    from obstore.exceptions import BaseError

    try:
        yield
    except FileNotFoundError:  # obstore's "no such object": the caller decides
        raise
    except (BaseError, OSError) as exc:  # obstore raises some as built-in OS errors
        raise AssetStoreError(f"object storage: {what}: {_short(exc)}") from None


# -- clients, one per bucket and settings, shared by the process ----------------------
def bucket_store(bucket: str, prefix: str | None = None) -> Any:
    """obstore's S3 client of a bucket, or of the keys under a prefix in it (configured
    from the environment)."""
    settings = S3Settings.from_env()
    configure_gdal(settings)
    return _bucket_store(bucket, settings, prefix)


@functools.lru_cache(maxsize=256)
def _bucket_store(bucket: str, s: S3Settings, prefix: str | None) -> Any:
    from obstore.store import S3Store

    kwargs: dict[str, Any] = {
        "region": s.region,
        "virtual_hosted_style_request": s.virtual_hosting,
        "client_options": {"allow_http": s.http, "connect_timeout": "5s", "timeout": "60s"},
        # an upload that fails is reported, not retried for minutes: ingest then
        # removes what it wrote and the catalog stays as it was
        "retry_config": {
            "max_retries": 2,
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=2),
                "base": 2,
            },
            "retry_timeout": timedelta(seconds=20),
        },
    }
    if s.endpoint:
        kwargs["endpoint"] = s.endpoint
    if s.access_key_id:
        kwargs["access_key_id"] = s.access_key_id
        kwargs["secret_access_key"] = s.secret_access_key or ""
    if s.session_token:
        kwargs["session_token"] = s.session_token
    return S3Store(bucket, prefix=prefix, **kwargs)


def arrow_filesystem() -> pafs.S3FileSystem:
    """Arrow's S3 file system for the configured endpoint (Parquet by range requests)."""
    return _arrow_filesystem(S3Settings.from_env())


@functools.cache
def _arrow_filesystem(s: S3Settings) -> pafs.S3FileSystem:
    import pyarrow.fs as pafs

    kwargs: dict[str, Any] = {
        "region": s.region,
        "force_virtual_addressing": s.virtual_hosting,
        "connect_timeout": 5,
        "request_timeout": 60,
    }
    if s.host:
        kwargs["endpoint_override"] = s.host
        kwargs["scheme"] = "http" if s.http else "https"
    if s.access_key_id:
        kwargs["access_key"] = s.access_key_id
        kwargs["secret_key"] = s.secret_access_key or ""
        if s.session_token:
            kwargs["session_token"] = s.session_token
    return pafs.S3FileSystem(**kwargs)


_gdal_configured: S3Settings | None = None


def configure_gdal(settings: S3Settings | None = None) -> None:
    """Point GDAL's ``/vsis3/`` at the configured endpoint, process-wide (every thread's
    rasterio reads it; credentials GDAL reads from the environment itself), and in the
    environment too, where processes started later find it: the Dask workers of a raster
    job open the COG themselves (GDAL reads its options from the environment)."""
    global _gdal_configured
    settings = settings or S3Settings.from_env()
    if settings == _gdal_configured:
        return
    from rasterio.env import set_gdal_config

    for key, value in settings.gdal_options().items():
        set_gdal_config(key, value)
        os.environ.setdefault(key, value)
    _gdal_configured = settings


# -- reading by href --------------------------------------------------------------------
def locate(paths: DataDir, item: dict[str, Any], name: str = "data") -> Location:
    """Where an item's asset is: a local path (a relative href, resolved from the item's
    place in the STAC mirror as the catalog always has) or its ``s3://`` URL."""
    from .extension import ShikongExtension

    href = str(item["assets"][name].get("href", ""))
    if href.startswith(S3_SCHEME):
        return href
    shikong = ShikongExtension.ext(item)
    folder = paths.item_json(shikong.department, shikong.layer, item["id"]).parent
    return (folder / href).resolve()


def join(location: Location, inner: str) -> Location:
    """A file inside an asset folder (a Zarr store) at ``inner`` (``a/b``)."""
    if not inner:
        return location
    if is_remote(location):
        return f"{str(location).rstrip('/')}/{inner}"
    return Path(location) / inner


def served_path(paths: DataDir, item: dict[str, Any], name: str = "data") -> str | None:
    """The asset's path under the server's ``/assets/``: ``{department}/{layer}/
    {version}/{file}`` wherever it is stored (its place under the data directory's
    ``assets/``, or the last name of its object); None for a file outside ``assets/``
    (the observation store a readings item names)."""
    from .extension import ShikongExtension

    where = locate(paths, item, name)
    if is_remote(where):
        shikong = ShikongExtension.ext(item)
        leaf = str(where).rstrip("/").rsplit("/", 1)[-1]
        return f"{shikong.department}/{shikong.layer}/{item['properties']['version']}/{leaf}"
    root = paths.assets.resolve()
    return Path(where).relative_to(root).as_posix() if Path(where).is_relative_to(root) else None


def gdal_path(location: Location) -> str:
    """A path GDAL (rasterio) opens: the file itself, or ``/vsis3/bucket/key`` with
    GDAL pointed at the configured endpoint."""
    if not is_remote(location):
        return str(location)
    bucket, key = split_url(str(location))
    configure_gdal()
    return f"/vsis3/{bucket}/{key}"


def parquet_source(location: Location) -> tuple[str, pafs.FileSystem | None]:
    """(path, filesystem) for pyarrow and geopandas: a local path, or the object's key
    on Arrow's S3 file system (the reader fetches footers and row groups by range)."""
    if not is_remote(location):
        return str(location), None
    bucket, key = split_url(str(location))
    return f"{bucket}/{key}", arrow_filesystem()


def read_table(location: Location, **kwargs: Any) -> pa.Table:
    """A Parquet asset as an Arrow table."""
    import pyarrow.parquet as pq

    path, fs = parquet_source(location)
    if fs is None:
        return pq.read_table(path, **kwargs)
    try:
        return pq.read_table(path, filesystem=fs, **kwargs)
    except OSError as exc:
        raise AssetStoreError(f"object storage: reading {location}: {_short(exc)}") from None


def open_zarr(location: Location) -> xr.Dataset:
    """A Zarr asset, lazily (zarr reads chunks from the object store as they are used)."""
    import xarray as xr

    if not is_remote(location):
        return xr.open_zarr(location, consolidated=False)
    from zarr.storage import ObjectStore

    bucket, key = split_url(str(location))
    store = ObjectStore(bucket_store(bucket, key), read_only=True)
    return xr.open_zarr(store, consolidated=False)


def _objects(bucket: str, prefix: str) -> list[dict[str, Any]]:
    import obstore

    with _s3_errors(f"listing s3://{bucket}/{prefix}"):
        return [m for batch in obstore.list(bucket_store(bucket), prefix) for m in batch]


def head(location: Location) -> int | None:
    """The size of a file or object, None if there is none."""
    if not is_remote(location):
        path = Path(location)
        return path.stat().st_size if path.is_file() else None
    import obstore
    from obstore.exceptions import NotFoundError

    bucket, key = split_url(str(location))
    try:
        with _s3_errors(f"looking up {location}"):
            return int(obstore.head(bucket_store(bucket), key)["size"])
    except (NotFoundError, FileNotFoundError):  # obstore raises the built-in one
        return None


def exists(location: Location) -> bool:
    """A file or folder, an object or a prefix with objects under it."""
    if not is_remote(location):
        return Path(location).exists()
    if head(location) is not None:
        return True
    bucket, key = split_url(str(location))
    return bool(_objects(bucket, key + "/"))


def size_and_checksum(location: Location) -> tuple[int, str]:
    """Size and multihash of an asset as ingest recorded them (``file:size``,
    ``file:checksum``): a file's bytes, or a folder's files in sorted order with their
    relative names; an object's or a prefix's read back from the object store."""
    if not is_remote(location):
        return tree_size_and_checksum(Path(location))
    bucket, key = split_url(str(location))
    store = bucket_store(bucket)
    if head(location) is not None:
        h = hashlib.sha256()
        with _s3_errors(f"reading {location}"):
            size = _hash_object(store, key, h)
        return size, "1220" + h.hexdigest()
    objects = _objects(bucket, key + "/")
    if not objects:
        raise AssetStoreError(f"object storage: {location}: no such object")
    # the local tree's order: sorted by path components, not by the plain string
    named = sorted((m["path"][len(key) + 1 :], m["path"]) for m in objects)
    named.sort(key=lambda pair: tuple(pair[0].split("/")))
    h, size = hashlib.sha256(), 0
    for relative, path in named:
        h.update(relative.encode())
        with _s3_errors(f"reading s3://{bucket}/{path}"):
            size += _hash_object(store, path, h)
    return size, "1220" + h.hexdigest()


def _hash_object(store: Any, key: str, h: Any) -> int:
    import obstore

    size = 0
    for chunk in obstore.get(store, key).stream(min_chunk_size=_BLOCK):
        h.update(chunk)
        size += len(chunk)
    return size


async def stream(location: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
    """An object's bytes [start, end) as they arrive (``/assets`` proxies them)."""
    import obstore

    bucket, key = split_url(location)
    options: dict[str, Any] = {}
    if start or end is not None:
        options["range"] = (start, end) if end is not None else {"offset": start}
    try:
        result = await obstore.get_async(bucket_store(bucket), key, options=options or None)
        async for chunk in result.stream(min_chunk_size=256 * 1024):
            yield bytes(chunk)
    except Exception as exc:  # obstore's errors, mid-stream: nothing else to tell the client
        raise AssetStoreError(f"object storage: reading {location}: {_short(exc)}") from None


# -- where new assets are written -------------------------------------------------------
class AssetStore:
    """Where an ingest writes a version's asset folder ``{department}/{layer}/{version}``
    (its *key*) and how it is published, found again and removed."""

    url: str  # what the configuration names: "local" or s3://bucket/prefix

    def __init__(self, paths: DataDir) -> None:
        self.paths = paths

    def workspace(self, key: str) -> Path:
        """The local folder the asset writers write the version folder into."""
        raise NotImplementedError

    def publish(self, key: str) -> None:
        """Make the written folder readable where hrefs will name it (before the commit)."""

    def href(self, key: str, written: Path, item_dir: Path) -> str:
        """What the item's asset names for a file written in the workspace."""
        raise NotImplementedError

    def release(self, key: str) -> None:
        """After the commit: whatever the workspace held locally that is not needed."""

    def discard(self, key: str) -> None:
        """Remove a version folder nothing committed names (a failed or killed ingest)."""
        raise NotImplementedError

    def sweep(self, department: str, layer: str, items: Iterable[dict[str, Any]]) -> None:
        """Remove whatever a layer's folder holds that none of ``items`` (its committed
        versions) names: residues of ingests that predate the journal."""
        raise NotImplementedError

    def claim(self, key: str) -> None:
        """Refuse a version folder that already holds something (before the journal names
        it: what a failed ingest removes must be its own)."""


def version_key(department: str, layer: str, version: str) -> str:
    return f"{department}/{layer}/{version}"


class LocalAssets(AssetStore):
    """``assets/{department}/{layer}/{version}/`` in the data directory; items name
    their files by hrefs relative to their place in the STAC mirror."""

    url = "local"

    def workspace(self, key: str) -> Path:
        return self.paths.assets / key

    def href(self, key: str, written: Path, item_dir: Path) -> str:
        from .stac import rel

        return rel(written, item_dir)

    def discard(self, key: str) -> None:
        folder = self.workspace(key)
        shutil.rmtree(folder, ignore_errors=True)
        assets = self.paths.assets
        for parent in (folder.parent, folder.parent.parent):
            if parent == assets or not parent.is_relative_to(assets):
                break
            with contextlib.suppress(OSError):  # not empty: other versions live there
                parent.rmdir()

    def sweep(self, department: str, layer: str, items: Iterable[dict[str, Any]]) -> None:
        layer_dir = self.paths.assets / department / layer
        if not layer_dir.is_dir():
            return
        keep = _local_folders(self.paths, items)
        for child in layer_dir.iterdir():
            if child.resolve() not in keep:
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


def _local_folders(paths: DataDir, items: Iterable[dict[str, Any]]) -> set[Path]:
    """The local version folders that items' assets live in."""
    folders = set()
    for item in items:
        for name in item.get("assets", {}):
            where = locate(paths, item, name)
            if not is_remote(where):
                folders.add(Path(where).parent)
    return folders


class S3Assets(AssetStore):
    """Objects ``{prefix}/{department}/{layer}/{version}/…`` in a bucket; the writers
    write into a staging folder in the data directory, uploaded before the commit."""

    def __init__(self, paths: DataDir, url: str) -> None:
        super().__init__(paths)
        self.bucket, self.prefix = split_url(url)
        self.url = f"{S3_SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    def key_of(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @property
    def client(self) -> Any:
        return bucket_store(self.bucket)

    def workspace(self, key: str) -> Path:
        return self.paths.asset_staging / key

    def publish(self, key: str) -> None:
        """Upload what the workspace holds (the asset file, or its Zarr folder)."""
        for child in sorted(self.workspace(key).iterdir()):
            self.upload(child, f"{key}/{child.name}")

    def copy_in(self, local: Path, key: str) -> bool:
        """:meth:`upload` unless the object (or folder of objects) is there already with
        the same bytes (a copy resumed); False if it was. Other bytes there are refused,
        never overwritten."""
        url = f"{S3_SCHEME}{self.bucket}/{self.key_of(key)}"
        if exists(url):
            if size_and_checksum(url) != tree_size_and_checksum(local):
                raise AssetStoreError(
                    f"object storage: {url} already holds other bytes than {local} "
                    "(is another catalog using this prefix?)"
                )
            return False
        self.upload(local, key)
        return True

    def upload(self, local: Path, key: str) -> str:
        """A file as the object ``key`` (under the prefix), or a folder's files under it;
        each object's size checked after. Returns its ``s3://`` URL."""
        import obstore

        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for f in files:
            name = self.key_of(key if f == local else f"{key}/{f.relative_to(local).as_posix()}")
            with _s3_errors(f"uploading {f.name} to s3://{self.bucket}/{name}"):
                obstore.put(self.client, name, f)
            size = head(f"{S3_SCHEME}{self.bucket}/{name}")
            if size != f.stat().st_size:
                raise AssetStoreError(
                    f"object storage: s3://{self.bucket}/{name} holds {size} bytes after "
                    f"its upload, the file {f.stat().st_size}"
                )
        return f"{S3_SCHEME}{self.bucket}/{self.key_of(key)}"

    def href(self, key: str, written: Path, item_dir: Path) -> str:
        inner = written.relative_to(self.workspace(key)).as_posix()
        return f"{S3_SCHEME}{self.bucket}/{self.key_of(f'{key}/{inner}')}"

    def release(self, key: str) -> None:
        _remove_local(self.paths.asset_staging, self.workspace(key))

    def discard(self, key: str) -> None:
        self.release(key)
        self._delete_prefix(self.key_of(key) + "/")

    def _delete_prefix(self, prefix: str) -> None:
        import obstore

        paths = [m["path"] for m in _objects(self.bucket, prefix)]
        for start in range(0, len(paths), 1000):
            with _s3_errors(f"removing s3://{self.bucket}/{prefix}"):
                obstore.delete(self.client, paths[start : start + 1000])

    def sweep(self, department: str, layer: str, items: Iterable[dict[str, Any]]) -> None:
        """The layer's staging folder only: objects are removed by the journal alone,
        never because this catalog does not name them (the bucket may be shared)."""
        staging = self.paths.asset_staging / department / layer
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)

    def claim(self, key: str) -> None:
        """Versions never change: objects already at the version's place (another catalog
        on the same prefix, or a residue whose journal was lost) are refused, never
        overwritten or removed."""
        found = _objects(self.bucket, self.key_of(key) + "/")
        if found:
            raise AssetStoreError(
                f"object storage: s3://{self.bucket}/{self.key_of(key)}/ already holds "
                f"{len(found)} objects no version of this catalog names (is another catalog "
                "using this prefix?); give another --version, or remove them"
            )


def rehomed(paths: DataDir, item: dict[str, Any], to: S3Assets) -> tuple[dict, list]:
    """An item whose assets in the data directory's ``assets/`` are named by their
    objects in ``to`` instead (same ``{department}/{layer}/{version}/{file}`` layout),
    and the (local file or folder, key) pairs to upload for it. Other hrefs (the
    observation store a readings item names, objects already elsewhere) stay."""
    import copy

    root = paths.assets.resolve()
    item = copy.deepcopy(item)
    moves = []
    for name, asset in item.get("assets", {}).items():
        where = locate(paths, item, name)
        if is_remote(where) or not Path(where).is_relative_to(root):
            continue
        key = Path(where).relative_to(root).as_posix()
        asset["href"] = f"{S3_SCHEME}{to.bucket}/{to.key_of(key)}"
        moves.append((Path(where), key))
    return item, moves


def _remove_local(root: Path, folder: Path) -> None:
    """A staging folder and its emptied parents up to ``root``."""
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        if parent == root or not parent.is_relative_to(root):
            break
        with contextlib.suppress(OSError):
            parent.rmdir()


def configured_url(value: str | None = None) -> str:
    """``value`` if given, else ``$SHIKONG_ASSETS``: "local" or an ``s3://`` URL."""
    raw = (os.environ.get(ASSETS_ENV, "") if value is None else value).strip()
    if raw.lower() in _LOCAL:
        return "local"
    if not raw.startswith(S3_SCHEME):
        raise AssetStoreError(
            f"assets {raw!r}: give s3://bucket/prefix for object storage, or leave it "
            "unset for the data directory's assets/ folder"
        )
    split_url(raw)
    return raw.rstrip("/")


def configured_assets(paths: DataDir, value: str | None = None) -> AssetStore:
    """The store new assets go to: ``value``, else ``$SHIKONG_ASSETS``, else local."""
    url = configured_url(value)
    return LocalAssets(paths) if url == "local" else S3Assets(paths, url)


def store_of(paths: DataDir, url: str) -> AssetStore:
    """The store a journal entry or an href names (whatever is configured now)."""
    return LocalAssets(paths) if url == "local" else S3Assets(paths, url)


def check_bucket(url: str) -> None:
    """List the bucket once, so a bad endpoint, credentials or bucket is one clear line
    before a command starts (AssetStoreError)."""
    import obstore

    bucket, key = split_url(url)
    with _s3_errors(f"cannot use {url}"):
        obstore.list_with_delimiter(bucket_store(bucket), (key + "/") if key else None)


def s3_configured() -> bool:
    """Whether this process may read objects: ``SHIKONG_ASSETS`` names a bucket, or an
    S3 endpoint is in the environment (items may name objects an earlier migrate made)."""
    return (
        os.environ.get(ASSETS_ENV, "").strip().startswith(S3_SCHEME)
        or S3Settings.from_env().endpoint is not None
    )
