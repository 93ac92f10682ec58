"""Raster tiles and maps from the COGs (server/maps/raster.py), against independent truth.

Truth is the COG read with rasterio at full resolution, sampled at each output pixel's
centre (pyproj for Web Mercator), coloured with the ramp as the style file documents it
(numpy interpolation here, not the module's code).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer
from shikong.server.maps import raster
from shikong.server.maps.styles import STYLES_DIR

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def dem(demo_data) -> Path:
    from shikong.catalog import Catalog

    return Path(Catalog.open(demo_data)["nrp-dem"].current.asset_path)


@pytest.fixture(scope="module")
def elevation(dem):
    with rasterio.open(dem) as src:
        return src.read(1, masked=True), src.transform, src.bounds


def decode(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)).convert("RGBA")).astype(int)


def documented_ramp(t: np.ndarray, colormap: list) -> np.ndarray:
    """RGB of t in 0-1 through [[t, '#rrggbb'], ...], linear per channel."""
    stops = [s for s, _ in colormap]
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for _, c in colormap])
    return np.stack([np.interp(t, stops, rgb[:, k]) for k in range(3)], axis=-1)


def sample_tile(elevation, tms, tile, size=256) -> np.ndarray:
    """Full-resolution COG values at the tile's pixel centres (nearest); NaN outside."""
    data, transform, _ = elevation
    left, bottom, right, top = tms.xy_bounds(tile)
    xs = left + (np.arange(size) + 0.5) * (right - left) / size
    ys = top - (np.arange(size) + 0.5) * (top - bottom) / size
    gx, gy = np.meshgrid(xs, ys)
    lon, lat = Transformer.from_crs(3857, 4490, always_xy=True).transform(gx, gy)
    cols, rows = ~transform * (lon, lat)
    cols, rows = np.floor(cols).astype(int), np.floor(rows).astype(int)
    inside = (rows >= 0) & (rows < data.shape[0]) & (cols >= 0) & (cols < data.shape[1])
    out = np.full(gx.shape, np.nan)
    values = data.filled(np.nan)
    out[inside] = values[rows[inside], cols[inside]]
    return out


GREY = {"colormap": [[0, "#000000"], [1, "#ffffff"]], "resampling": "nearest"}


@pytest.mark.parametrize("z", [13, 14, 15])
def test_a_tile_is_the_cog_at_that_window(dem, elevation, z):
    lo, hi = 50.0, 850.0
    style = {"bands": ["elevation"], "rescale": [lo, hi], **GREY}
    rng = np.random.default_rng(z)
    for _ in range(3):
        tile = WEB_MERCATOR.tile(rng.uniform(113.05, 113.55), rng.uniform(33.65, 33.95), z)
        image = decode(raster.render_tile(dem, WEB_MERCATOR, tile.x, tile.y, tile.z, style=style))
        truth = np.clip((sample_tile(elevation, WEB_MERCATOR, tile) - lo) / (hi - lo), 0, 1) * 255
        diff = np.abs(image[..., 0] - truth)
        # nearest neighbour: only pixels whose centre sits on a source pixel edge may differ
        assert (diff <= 1).mean() > 0.98, (tile, diff.mean())
        assert (image[..., 3] == 255).all()


def test_a_low_zoom_tile_reads_an_overview_within_the_resampling_tolerance(dem, elevation):
    lo, hi = 50.0, 850.0
    style = {"bands": ["elevation"], "rescale": [lo, hi], **GREY}
    tile = WEB_MERCATOR.tile(113.3, 33.8, 10)
    with rasterio.open(dem) as src:
        assert src.overviews(1), "the demo DEM has overviews to read"
    image = decode(raster.render_tile(dem, WEB_MERCATOR, tile.x, tile.y, tile.z, style=style))
    truth = np.clip((sample_tile(elevation, WEB_MERCATOR, tile) - lo) / (hi - lo), 0, 1) * 255
    inside = ~np.isnan(truth)
    diff = np.abs(image[..., 0][inside] - truth[inside])
    assert diff.mean() < 4 and np.percentile(diff, 95) < 16
    # outside the raster the tile is transparent (nodata is never painted)
    assert (image[..., 3][~inside] == 0).all()


def test_a_tile_without_data_is_none_and_formats_decode(dem):
    assert raster.render_tile(dem, WEB_MERCATOR, 0, 0, 14, style="nrp-dem") is None
    tile = WEB_MERCATOR.tile(113.3, 33.8, 12)
    for fmt, name in (("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")):
        data = raster.render_tile(
            dem, WEB_MERCATOR, tile.x, tile.y, tile.z, style="nrp-dem", fmt=fmt
        )
        opened = Image.open(io.BytesIO(data))
        assert opened.format == name and opened.size == (256, 256)


def test_the_dem_has_a_terrain_ramp_at_known_elevations(dem, elevation):
    """The style file's ramp over the COG's own min/max; low ground is green, not water."""
    spec = json.loads((STYLES_DIR / "nrp-dem.json").read_text())["raster"]
    data, _, bounds = elevation
    lo, hi = float(data.min()), float(data.max())
    image = decode(
        raster.render_bbox(
            dem, tuple(bounds), "EPSG:4490", data.shape[1], data.shape[0], style="nrp-dem"
        )
    )
    for which in (data.argmin(), data.argmax(), np.argmin(np.abs(data - 300.0))):
        row, col = np.unravel_index(which, data.shape)
        expected = documented_ramp(
            np.array((float(data[row, col]) - lo) / (hi - lo)), spec["colormap"]
        )
        assert np.abs(image[row, col, :3] - expected).max() <= 1, (data[row, col], image[row, col])
    lowest = image[np.unravel_index(data.argmin(), data.shape)]
    assert lowest[1] > lowest[2] + 40, "the lowest ground reads as vegetation, not as water"
    # a hilltop is browner than the plain: more red than blue, less green than the lowland
    top = image[np.unravel_index(np.argmin(np.abs(data - (lo + 0.7 * (hi - lo)))), data.shape)]
    assert top[0] > top[2] and top[1] < lowest[1] + 60


def test_full_extent_and_its_halves_agree_pixel_for_pixel(server, elevation):
    """The Maps API (pygeoapi → our provider): one colour scale per layer, not per request."""
    import httpx

    spec = json.loads((STYLES_DIR / "nrp-dem.json").read_text())["raster"]
    data, _, _ = elevation
    lo, hi = float(data.min()), float(data.max())
    url = f"{server.url}/collections/nrp-dem/map"
    for width, height in ((1200, 800), (600, 400), (400, 300)):
        full = decode(
            httpx.get(
                url, params={"bbox": "113.0,33.6,113.6,34.0", "width": width, "height": height}
            ).content
        )
        halves = [
            decode(
                httpx.get(url, params={"bbox": box, "width": width // 2, "height": height}).content
            )
            for box in ("113.0,33.6,113.3,34.0", "113.3,33.6,113.6,34.0")
        ]
        joined = np.concatenate(halves, axis=1)
        diff = np.abs(full - joined).max(axis=2)
        assert diff.mean() < 0.5 and (diff <= 2).mean() > 0.99, (width, diff.mean())
    # and the native-size map is the documented ramp over the COG itself
    t = (data.filled(np.nan) - lo) / (hi - lo)
    expected = documented_ramp(t, spec["colormap"])
    full = decode(
        httpx.get(
            url, params={"bbox": "113.0,33.6,113.6,34.0", "width": 1200, "height": 800}
        ).content
    )
    assert np.abs(full[..., :3] - expected).max() <= 1


def test_tile_and_map_paint_the_same_place_alike(dem):
    """A z14 tile and a map of the same lon/lat box share the scale: colours agree closely."""
    tile = WEB_MERCATOR.tile(113.31, 33.81, 14)
    tile_image = decode(
        raster.render_tile(dem, WEB_MERCATOR, tile.x, tile.y, tile.z, style="nrp-dem")
    )
    bounds = WEB_MERCATOR.xy_bounds(tile)
    map_image = decode(
        raster.render_bbox(dem, tuple(bounds), "EPSG:3857", 256, 256, style="nrp-dem")
    )
    assert np.abs(tile_image - map_image).mean() < 1.0


@pytest.fixture(scope="module")
def imagery(demo_data) -> Path:
    from shikong.catalog import Catalog

    return Path(Catalog.open(demo_data)["nrp-rs_mining"].current.asset_path)


def test_ndvi_style_is_the_documented_ramp_of_the_band_arithmetic(imagery):
    """nrp-rs_mining's default style: (nir-red)/(nir+red) over a fixed [-0.2, 0.9]."""
    spec = json.loads((STYLES_DIR / "nrp-rs_mining.json").read_text())["raster"]
    with rasterio.open(imagery) as src:
        names = list(src.descriptions)
        bands = src.read(masked=True).astype("float64")
        bounds, shape = src.bounds, (src.height, src.width)
    red, nir = bands[names.index("red")], bands[names.index("nir")]
    ndvi = (nir - red) / (nir + red)
    lo, hi = spec["rescale"]
    expected = documented_ramp(
        np.clip((ndvi.filled(np.nan) - lo) / (hi - lo), 0, 1), spec["colormap"]
    )
    image = decode(
        raster.render_bbox(
            imagery, tuple(bounds), "EPSG:4490", shape[1], shape[0], style="nrp-rs_mining"
        )
    )
    valid = ~np.ma.getmaskarray(ndvi)
    assert valid.mean() > 0.5
    assert np.abs(image[..., :3][valid] - expected[valid]).max() <= 1
    assert (image[..., 3][~valid] == 0).all()  # nodata transparent


def test_false_colour_alternate_composes_bands_as_rgb(imagery):
    from shikong.server.maps.styles import raster_spec

    style = raster_spec("nrp-rs_mining", "false-colour")
    assert style["bands"] == ["nir", "red", "red"]
    with rasterio.open(imagery) as src:
        names = list(src.descriptions)
        data = src.read(masked=True).astype("float64")
        bounds, shape = src.bounds, (src.height, src.width)
    image = decode(
        raster.render_bbox(imagery, tuple(bounds), "EPSG:4490", shape[1], shape[0], style=style)
    )
    for channel, name in enumerate(style["bands"]):
        values = data[names.index(name)]
        lo, hi = np.percentile(values.compressed(), [2, 98])  # "statistics": 2nd-98th
        truth = np.clip((values - lo) / (hi - lo), 0, 1) * 255
        valid = ~np.ma.getmaskarray(values)
        assert np.abs(image[..., channel][valid] - truth.filled(0)[valid]).max() <= 1, name


def test_a_raster_without_its_own_style_gets_the_default_grey_stretch(dem, elevation):
    """default-raster: the first band, grey from its 2nd to its 98th percentile."""
    from shikong.server.maps.styles import LayerFacts, raster_spec

    style = raster_spec(LayerFacts("some-new-raster", "raster"))
    data, _, bounds = elevation
    lo, hi = np.percentile(data.compressed(), [2, 98])
    image = decode(
        raster.render_bbox(
            dem, tuple(bounds), "EPSG:4490", data.shape[1], data.shape[0], style=style
        )
    )
    truth = np.clip((data.filled(np.nan) - lo) / (hi - lo), 0, 1) * 255
    assert np.abs(image[..., 0] - truth).max() <= 1
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 3] == 255).all()
