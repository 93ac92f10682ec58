import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
from shikong.spatial.errors import FormatError
from shikong.spatial.raster import is_cog, open_raster, write_cog


def grid(height=1500, width=2100) -> xr.DataArray:
    data = da.arange(height * width, dtype="float32", chunks=500_000).reshape(1, height, width)
    return xr.DataArray(
        data.rechunk((1, 512, 512)),
        dims=("band", "y", "x"),
        coords={
            "band": [1],
            "y": 33.9 - (np.arange(height) + 0.5) * 1e-4,
            "x": 113.0 + (np.arange(width) + 0.5) * 1e-4,
        },
    ).rio.write_crs(4490)


def test_cog_roundtrip_is_lazy_and_exact(tmp_path):
    path = write_cog(grid(), tmp_path / "dem.tif")
    assert is_cog(path)
    with rasterio.open(path) as src:
        assert src.overviews(1), "a COG carries overviews"
        assert src.block_shapes[0] == (512, 512)
        assert src.crs.to_epsg() == 4490
        assert src.transform.c == pytest.approx(113.0) and src.transform.f == pytest.approx(33.9)
    lazy = open_raster(path, chunks=1024)
    assert isinstance(lazy.data, da.Array) and lazy.chunks[1][0] == 1024
    # the sum of 0..n-1 computed independently
    n = 1500 * 2100
    assert float(lazy.sum(dtype="float64")) == pytest.approx(n * (n - 1) / 2, rel=1e-6)
    assert float(lazy[0, 1, 2]) == 1 * 2100 + 2


def test_nodata_is_masked(tmp_path):
    arr = grid(64, 64).compute()
    arr[0, :10, :10] = -9999
    path = write_cog(arr, tmp_path / "nd.tif", nodata=-9999)
    lazy = open_raster(path)
    assert int(lazy.isnull().sum()) == 100


def test_not_a_raster(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(FormatError, match="bad.tif.*not a readable raster"):
        open_raster(bad)


@pytest.mark.parametrize("interleave, together", [("pixel", 2), ("band", 1)])
def test_bands_of_a_pixel_interleaved_file_are_read_together(tmp_path, interleave, together):
    """Each tile of a pixel-interleaved file holds every band, so one task reads them all
    (decoding the tile once); a band-interleaved file is read band by band. The values
    are those rasterio reads either way."""
    values = np.random.default_rng(3).integers(0, 5000, (2, 300, 260)).astype("uint16")
    path = tmp_path / f"{interleave}.tif"
    profile = {
        "driver": "GTiff", "width": 260, "height": 300, "count": 2, "dtype": "uint16",
        "crs": "EPSG:4490", "transform": rasterio.Affine(0.001, 0, 113, 0, -0.001, 34),
        "tiled": True, "blockxsize": 128, "blockysize": 128, "compress": "deflate",
        "interleave": interleave,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
    opened = open_raster(path, chunks=128, masked=False)
    assert opened.data.chunks[0] == (together,) * (2 // together)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(opened.values, src.read())
