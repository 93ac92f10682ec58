"""Helpers the benchmarks share."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def lift_rate_limit(data_dir: Path) -> None:
    """Give a benchmark's data directory its own policy without the per-key rate limit
    (a benchmark is one key sending thousands of requests; the limiter still runs)."""
    shipped = resources.files("shikong.config").joinpath("access_policy.yaml")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    (Path(data_dir) / "access_policy.yaml").write_text(
        shipped.read_text(encoding="utf-8")
        .replace("rate_per_second: 50 ", "rate_per_second: 1000000 ")
        .replace("rate_burst: 200", "rate_burst: 1000000"),
        encoding="utf-8",
    )
