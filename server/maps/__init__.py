"""Styles as data and raster rendering with a fixed colour scale per layer (issue 19)."""
