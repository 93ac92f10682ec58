"""A deterministic demo city: the source files 13 departments would deliver.

``generate(out_dir, scale="small", seed=20261125)`` writes vector layers, rasters, a
rainfall data cube, sensor tables and reading histories, plus ``manifest.json`` listing
them as :class:`SourceFile` records for the ingest.
"""

from .generator import MANIFEST, generate
from .model import SCALES, Scale, SourceFile

__all__ = ["MANIFEST", "SCALES", "Scale", "SourceFile", "generate"]
