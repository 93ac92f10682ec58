"""What the demo generator hands over: the SourceFile record, the scales and seeded RNGs."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

CLASSIFICATIONS = ("public", "shared", "restricted")
KINDS = ("vector", "raster", "sensors", "readings", "datacube")


@dataclass
class SourceFile:
    """One file a department delivers, as the ingest needs to know it."""

    path: str  # relative to out_dir, POSIX
    department: str  # one of the 13 codes in config departments.yaml
    layer: str  # ascii snake_case; the collection is f"{department}-{layer}"
    title: str  # Chinese title
    title_en: str
    classification: str  # "public" | "shared" | "restricted"
    kind: str  # "vector" | "raster" | "sensors" | "readings" | "datacube"
    version: str  # e.g. "2020", "2023", "1"
    valid_from: str  # ISO date
    options: dict = field(default_factory=dict)  # reader options for readers.read
    keywords: list[str] = field(default_factory=list)
    description: str = ""
    sensor_layer: str | None = None  # for kind "readings": the layer of their sensors

    @property
    def collection(self) -> str:
        return f"{self.department}-{self.layer}"


@dataclass(frozen=True)
class Scale:
    """Sizes that grow with the scale; everything else is the same city."""

    name: str
    landuse_seeds: int  # Voronoi seeds of land-use patches
    block_grid: tuple[int, int]  # city blocks (columns, rows) of the cadastre
    history_changes: int  # splits, merges and re-bounds each
    forest_seeds: int
    population_cell_m: float
    dem_shape: tuple[int, int]  # (width, height) pixels over the whole extent
    rs_shape: tuple[int, int]  # (width, height) pixels over the mining area
    days: int  # IoT history length
    sensors: int  # multiplier of sensor counts
    mining_rights: int


SCALES: dict[str, Scale] = {
    "small": Scale("small", 900, (6, 4), 1, 120, 2000.0, (1200, 800), (800, 600), 3, 1, 8),
    "medium": Scale("medium", 3000, (12, 8), 3, 400, 1000.0, (2160, 1440), (1600, 1200), 30, 2, 10),
    "large": Scale(
        "large", 12000, (22, 14), 8, 1500, 500.0, (4320, 2880), (3200, 2400), 180, 4, 12
    ),
}


def rng_for(seed: int, name: str) -> np.random.Generator:
    """An RNG per layer, so adding or changing one layer never reshuffles the others."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
