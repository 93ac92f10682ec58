"""Crash points for the tests: a write can be killed at a named point, as an OOM kill or a
power cut would, to prove the catalog survives it (``SHIKONG_FAULT=<point>``)."""

from __future__ import annotations

import os
import signal


def fault(point: str) -> None:
    """Die here with SIGKILL when ``SHIKONG_FAULT`` names this point."""
    if os.environ.get("SHIKONG_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
