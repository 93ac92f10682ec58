"""OGC API Tiles: tile matrix sets, vector (MVT) and raster tiles, the tile cache (issue 19)."""
