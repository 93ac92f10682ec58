"""OGC key-value-pair requests: names are case-insensitive, values are not."""

from __future__ import annotations

import math

from starlette.requests import Request

from .errors import OwsError


class Kvp:
    """A request's query parameters by lower-cased name (the first of repeats)."""

    def __init__(self, request: Request) -> None:
        self.values: dict[str, str] = {}
        for name, value in request.query_params.multi_items():
            self.values.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name.lower(), default)

    def required(self, name: str) -> str:
        value = self.values.get(name.lower())
        if value is None or value.strip() == "":
            raise OwsError("MissingParameterValue", f"{name} is required", name)
        return value

    def names(self, name: str) -> list[str]:
        """A comma-separated list (LAYERS=a,b)."""
        return [v.strip() for v in self.required(name).split(",")]

    def positive_int(self, name: str, maximum: int) -> int:
        text = self.required(name)
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= maximum:
            raise OwsError(
                "InvalidParameterValue", f"{name} must be a whole number from 1 to {maximum}", name
            )
        return int(text)

    def bbox(self, name: str = "BBOX") -> tuple[float, float, float, float]:
        text = self.required(name)
        try:
            numbers = [float(v) for v in text.split(",")]
        except ValueError:
            raise OwsError(
                "InvalidParameterValue", f"{name} {text!r} is not 4 numbers", name
            ) from None
        if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
            raise OwsError("InvalidParameterValue", f"{name} must be 4 finite numbers", name)
        if numbers[0] >= numbers[2] or numbers[1] >= numbers[3]:
            raise OwsError(
                "InvalidParameterValue", f"{name} minimum is not less than its maximum", name
            )
        return numbers[0], numbers[1], numbers[2], numbers[3]
