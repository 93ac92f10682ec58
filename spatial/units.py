"""Chinese land-area units. 公顷 and 亩 are definitions, not conventions, so they live in code."""

from __future__ import annotations

M2_PER_HECTARE = 10_000.0
M2_PER_MU = 10_000.0 / 15.0  # 1 亩 = 666.67 m²; 1 km² = 1,500 亩


def m2_to_hectares(m2: float) -> float:
    """Square metres to 公顷 (hectares)."""
    return m2 / M2_PER_HECTARE


def m2_to_mu(m2: float) -> float:
    """Square metres to 亩."""
    return m2 / M2_PER_MU


def hectares_to_m2(ha: float) -> float:
    """公顷 to square metres (坐标报盘 headers declare areas in 公顷)."""
    return ha * M2_PER_HECTARE
