"""WMTS 1.0.0 and WMS 1.3.0 over the same tiles and styles (issue 19)."""
