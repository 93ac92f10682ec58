"""Helpers the benchmarks share."""

from __future__ import annotations

import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx


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


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, printed beside every figure of a run."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def timed_get(client: httpx.Client, url: str) -> tuple[float, dict[str, Any]]:
    """Milliseconds for one GET and its JSON; anything but 200 stops the run."""
    t0 = time.perf_counter()
    reply = client.get(url)
    ms = (time.perf_counter() - t0) * 1000
    if reply.status_code != 200:
        raise RuntimeError(f"{url}: {reply.status_code} {reply.text[:300]}")
    return ms, reply.json()
