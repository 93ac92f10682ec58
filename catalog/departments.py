"""The city's departments: who may own layers, by code (config/departments.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from shikong.config import load as load_config


@cache
def departments() -> dict[str, dict[str, str]]:
    """The departments of config/departments.yaml by code."""
    return {d["code"]: d for d in load_config("departments")["departments"]}


def department_name(code: str) -> str:
    """A department's Chinese name (its code must be known)."""
    return departments()[code]["name"]


@dataclass(frozen=True)
class Department:
    """A department as the catalog shows it: its names and how many layers it has."""

    code: str
    name: str
    name_en: str
    layers: int

    def __repr__(self) -> str:
        return f"Department({self.code} {self.name}, {self.layers} layers)"
