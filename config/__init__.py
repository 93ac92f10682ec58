"""Data tables that are facts of the domain, not code: load them with :func:`load`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load(name: str) -> dict[str, Any]:
    """A YAML table shipped in shikong.config, e.g. ``load("land_classes")``."""
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
