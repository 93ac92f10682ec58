"""The weather of the IoT history: a timeline and a rainfall field both stations and grid use.

One storm crosses the city west to east about 55% into the history (it is what lifts the
rivers above their warning levels and a manhole cover off its seat); light showers come
and go before and after. The field is analytic, so a gauge's 10-minute totals and the
hourly grid agree wherever they meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .model import Scale, rng_for

CST = timezone(timedelta(hours=8))
END = datetime(2026, 11, 25, 0, 0, tzinfo=CST)  # the history ends here (exclusive)


@dataclass(frozen=True)
class RainEvent:
    start_h: float  # hours from the history's start
    duration_h: float
    peak_mm_h: float
    lon_from: float  # the cell moves from lon_from to lon_to at lat
    lon_to: float
    lat: float
    radius_deg: float


@dataclass(frozen=True)
class Weather:
    start: datetime
    hours: float
    storm: RainEvent
    events: tuple[RainEvent, ...]  # the storm included

    def times(self, minutes: int) -> pd.DatetimeIndex:
        """Reading times every ``minutes`` over the history, in China Standard Time."""
        return pd.date_range(self.start, END, freq=f"{minutes}min", inclusive="left")

    def hours_of(self, times: pd.DatetimeIndex) -> np.ndarray:
        return (times - self.start).total_seconds().to_numpy() / 3600.0

    def rain_rate(self, t_h: ArrayLike, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
        """Rain rate in mm/h at times (T,) and places (N,): an array (T, N)."""
        t_h = np.asarray(t_h, dtype=float)
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        out = np.zeros((t_h.size, lon.size))
        for e in self.events:
            active = (t_h >= e.start_h) & (t_h <= e.start_h + e.duration_h)
            if not active.any():
                continue
            phase = (t_h[active] - e.start_h) / e.duration_h
            envelope = np.sin(np.pi * phase) ** 2
            centre = e.lon_from + (e.lon_to - e.lon_from) * phase
            d2 = (lon[None, :] - centre[:, None]) ** 2 + (lat[None, :] - e.lat) ** 2
            out[active] += e.peak_mm_h * envelope[:, None] * np.exp(-d2 / (2 * e.radius_deg**2))
        return out

    def totals(
        self, times: pd.DatetimeIndex, minutes: int, lon: ArrayLike, lat: ArrayLike, sub: int = 6
    ) -> np.ndarray:
        """Rain (mm) that fell in each interval [t, t+minutes): the rate averaged over it."""
        t0 = self.hours_of(times)
        steps = (np.arange(sub) + 0.5) / sub * minutes / 60.0
        total = sum(self.rain_rate(t0 + s, lon, lat) for s in steps)
        return total / sub * minutes / 60.0


def build_weather(scale: Scale, seed: int) -> Weather:
    rng = rng_for(seed, "weather")
    hours = scale.days * 24.0
    storm = RainEvent(
        start_h=round(hours * 0.55),
        duration_h=10.0,
        peak_mm_h=42.0,
        lon_from=112.9,
        lon_to=113.7,
        lat=33.76,
        radius_deg=0.13,
    )
    events = [storm]
    for _ in range(max(1, scale.days // 4)):
        start = float(rng.uniform(0, hours - 6))
        if abs(start - storm.start_h) < 24:
            continue
        events.append(
            RainEvent(
                start_h=start,
                duration_h=float(rng.uniform(2, 6)),
                peak_mm_h=float(rng.uniform(1.0, 4.0)),
                lon_from=float(rng.uniform(112.9, 113.3)),
                lon_to=float(rng.uniform(113.3, 113.7)),
                lat=float(rng.uniform(33.6, 34.0)),
                radius_deg=float(rng.uniform(0.05, 0.12)),
            )
        )
    return Weather(END - timedelta(days=scale.days), hours, storm, tuple(events))
