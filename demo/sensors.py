"""IoT sensors and their reading histories (wat, eco, ema, met, urb).

Sites are placed where the thing measured is (gauges on the river and reservoirs, air
stations in towns, subsidence points over the mines, manholes at city crossroads) and the
readings tell one story: the storm from :mod:`weather` lifts water levels above their
warning levels once, washes out PM2.5 and lifts a manhole cover; subsidence keeps growing.
A couple of water-level readings are sensor glitches outside the valid range, as real
feeds have.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point

from .geography import Geography, river_bed_m, to_lonlat
from .mines import Mine
from .model import Scale, rng_for
from .weather import Weather

SENSOR_COLUMNS = (
    "sensor_id",
    "name",
    "kind",
    "lon",
    "lat",
    "unit",
    "min_valid",
    "max_valid",
    "warning_level",
)
# PM2.5 (24 h) breakpoints of HJ 633-2012: concentration -> IAQI
_PM25_BP = (0, 35, 75, 115, 150, 250, 350, 500)
_IAQI_BP = (0, 50, 100, 150, 200, 300, 400, 500)


@dataclass(frozen=True)
class SensorSet:
    """A sensor table and its readings, ready to write as two CSV files."""

    sites: pd.DataFrame
    readings: pd.DataFrame
    decimals: int  # of the reading values


def _site(
    sid: str,
    name: str,
    kind: str,
    point: Point,
    unit: str,
    lo: float,
    hi: float,
    warn: float,
    **extra: object,
) -> dict:
    """A sensor row: id, name, kind, lon/lat (EPSG:4490), unit, valid range, warning level."""
    lon, lat = to_lonlat(point.x, point.y)
    return {
        "sensor_id": sid,
        "name": name,
        "kind": kind,
        "lon": round(float(lon), 6),
        "lat": round(float(lat), 6),
        "unit": unit,
        "min_valid": lo,
        "max_valid": hi,
        "warning_level": warn,
        **extra,
    }


def _stamp(times: pd.DatetimeIndex) -> np.ndarray:
    """ISO 8601 with the +08:00 offset the city's feeds carry."""
    return (times.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00").to_numpy()


def _long(
    sites: list[dict], times: pd.DatetimeIndex, values: np.ndarray, decimals: int
) -> pd.DataFrame:
    """Readings (T, N) as a long table ordered by time, then sensor."""
    t, n = values.shape
    return pd.DataFrame(
        {
            "sensor_id": np.tile([s["sensor_id"] for s in sites], t),
            "time": np.repeat(_stamp(times), n),
            "value": np.round(values.ravel(), decimals),
        }
    )


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sigma: float) -> np.ndarray:
    """AR(1) noise along axis 0: slow drifts rather than white jitter."""
    noise = rng.normal(0.0, sigma, shape)
    out = np.empty(shape)
    out[0] = noise[0]
    for i in range(1, shape[0]):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def _river_gauges(
    geo: Geography, weather: Weather, scale: Scale, rng: np.random.Generator
) -> tuple[list[dict], list[np.ndarray]]:
    """Gauges along the main river: the basin's rain routed through a lagged unit
    hydrograph; the storm lifts downstream gauges above their warning level (+2.5 m)."""
    times = weather.times(10)
    t_h = weather.hours_of(times)
    upstream = np.linspace(112.95, 113.65, 15)
    rain = weather.totals(times, 10, upstream, np.full(upstream.size, 33.76)) * 6.0  # mm/h
    storm = (t_h >= weather.storm.start_h) & (t_h <= weather.storm.start_h + 48)
    sites: list[dict] = []
    series: list[np.ndarray] = []
    for k, frac in enumerate(np.linspace(0.12, 0.95, 6 * scale.sensors)):
        point = geo.river_line.interpolate(frac, normalized=True)
        lon, _ = to_lonlat(point.x, point.y)
        base = round(float(river_bed_m(lon)) + 1.2, 2)
        basin = rain[:, upstream <= lon + 0.02].mean(axis=1)
        lag_h = 2.0 + 8.0 * frac
        kt = np.arange(0, 6 * lag_h * 4) / 6.0
        kernel = kt**2 * np.exp(-kt / (lag_h / 2))
        response = np.convolve(basin, kernel / kernel.sum())[: t_h.size]
        target = 1.8 + 1.6 * frac  # metres the storm lifts the river here
        rise = response / max(response[storm].max(), 1e-9) * target
        diurnal = 0.03 * np.sin(2 * np.pi * (t_h - 6) / 24.0)
        series.append(base + rise + diurnal + _ar1(rng, (t_h.size, 1), 0.98, 0.004)[:, 0])
        sites.append(
            _site(
                f"WAT-WL-{k + 1:03d}",
                f"{geo.river_name}{geo.place_name(point)}水位站",
                "water_level",
                point,
                "m",
                round(base - 3.0, 2),
                round(base + 10.0, 2),
                round(base + 2.5, 2),
                water_body=geo.river_name,
                datum="1985国家高程基准",
            )
        )
    return sites, series


def _reservoir_gauges(
    geo: Geography, weather: Weather, rng: np.random.Generator
) -> tuple[list[dict], list[np.ndarray]]:
    """Dam gauges: inflow from rain on the lake, spill above the normal level; the storm
    fills each reservoir past its flood-limit level (the warning level)."""
    times = weather.times(10)
    t_h = weather.hours_of(times)
    lake_rain = weather.totals(times, 10, [113.05], [33.70])[:, 0]
    storm = weather.storm
    in_storm = (t_h >= storm.start_h) & (t_h <= storm.start_h + storm.duration_h)
    storm_total = max(lake_rain[in_storm].sum(), 1e-9)
    sites: list[dict] = []
    series: list[np.ndarray] = []
    for r_i, reservoir in enumerate(geo.reservoirs):
        normal = reservoir.normal_level_m
        gain = (reservoir.flood_limit_m - normal + 0.8) / storm_total
        level = np.empty(t_h.size)
        current = normal + 0.55
        for i, r in enumerate(lake_rain):
            current += gain * r - 0.004 * max(current - normal, 0.0)
            level[i] = current
        series.append(level + _ar1(rng, (t_h.size, 1), 0.9, 0.003)[:, 0])
        sites.append(
            _site(
                f"WAT-WL-R{r_i + 1:02d}",
                f"{reservoir.name}坝前水位站",
                "water_level",
                reservoir.shape.exterior.interpolate(0.25, normalized=True),
                "m",
                round(normal - 15.0, 2),
                round(normal + 8.0, 2),
                reservoir.flood_limit_m,
                water_body=reservoir.name,
                datum="1985国家高程基准",
            )
        )
    return sites, series


def water_levels(geo: Geography, weather: Weather, scale: Scale, seed: int) -> SensorSet:
    """River and reservoir gauges every 10 minutes, with two glitches (zero readings,
    below min_valid) as real feeds have."""
    rng = rng_for(seed, "water_level")
    river_sites, river_series = _river_gauges(geo, weather, scale, rng)
    lake_sites, lake_series = _reservoir_gauges(geo, weather, rng)
    sites = river_sites + lake_sites
    values = np.column_stack(river_series + lake_series)
    for _ in range(2):
        values[int(rng.integers(values.shape[0])), int(rng.integers(len(sites)))] = 0.0
    return SensorSet(pd.DataFrame(sites), _long(sites, weather.times(10), values, 3), 3)


def _iaqi_pm25(pm25: np.ndarray) -> np.ndarray:
    return np.interp(pm25, _PM25_BP, _IAQI_BP)


def air_quality(geo: Geography, weather: Weather, scale: Scale, seed: int) -> SensorSet:
    """Hourly PM2.5 and AQI at city and town stations and one background station."""
    rng = rng_for(seed, "air_quality")
    times = weather.times(60)
    hour = times.hour.to_numpy()
    sites: list[dict] = []
    bases: list[float] = []
    cx, cy = geo.centre.x, geo.centre.y
    for k in range(4 * scale.sensors):
        angle = 2 * np.pi * k / (4 * scale.sensors) + 0.4
        p = Point(cx + 2200 * np.cos(angle), cy + 2200 * np.sin(angle))
        sites.append(
            _site(
                f"ECO-AQ-{k + 1:03d}",
                f"{geo.place_name(p)}空气自动监测站",
                "air_quality",
                p,
                "µg/m³",
                0,
                1000,
                75,
                parameters="pm25,aqi",
            )
        )
        bases.append(72.0)
    towns = [p for p in geo.places if p.kind == "town"][: 2 * scale.sensors]
    for town in towns:
        sites.append(
            _site(
                f"ECO-AQ-{len(sites) + 1:03d}",
                f"{town.name}空气自动监测站",
                "air_quality",
                town.point,
                "µg/m³",
                0,
                1000,
                75,
                parameters="pm25,aqi",
            )
        )
        bases.append(55.0)
    hill = geo.reservoirs[0].shape.centroid
    sites.append(
        _site(
            f"ECO-AQ-{len(sites) + 1:03d}",
            "西部山区背景空气监测站",
            "air_quality",
            Point(hill.x, hill.y + 3000),
            "µg/m³",
            0,
            1000,
            75,
            parameters="pm25,aqi",
        )
    )
    bases.append(30.0)
    lon = np.array([s["lon"] for s in sites])
    lat = np.array([s["lat"] for s in sites])
    rain = weather.totals(times, 60, lon, lat)
    washout = np.zeros_like(rain)
    for i in range(1, rain.shape[0]):  # rain scrubs particles; air recovers over ~12 h
        washout[i] = washout[i - 1] * np.exp(-1 / 12) + rain[i] / 10.0
    diurnal = (
        1 + 0.22 * np.cos(2 * np.pi * (hour - 8) / 24) + 0.18 * np.cos(2 * np.pi * (hour - 21) / 12)
    )
    drift = np.exp(_ar1(rng, rain.shape, 0.93, 0.09))
    pm25 = np.array(bases)[None, :] * diurnal[:, None] * drift / (1 + washout)
    pm25 = np.clip(np.round(pm25), 2, None)
    aqi = np.round(_iaqi_pm25(pm25))
    pm = _long(sites, times, pm25, 0)
    pm.insert(2, "parameter", "pm25")
    aq = _long(sites, times, aqi, 0)
    aq.insert(2, "parameter", "aqi")
    both = pd.concat([pm, aq], ignore_index=True)
    both["order"] = np.concatenate([np.arange(len(pm)) * 2, np.arange(len(aq)) * 2 + 1])
    both = both.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    return SensorSet(pd.DataFrame(sites), both, 0)


def subsidence(
    geo: Geography, mines: list[Mine], weather: Weather, scale: Scale, seed: int
) -> SensorSet:
    """GNSS points over the mines: cumulative subsidence (mm), hourly; one point is fast
    (above the 10 mm/day alert rate) and passes its cumulative warning level."""
    rng = rng_for(seed, "subsidence")
    times = weather.times(60)
    days = weather.hours_of(times) / 24.0
    sites: list[dict] = []
    series: list[np.ndarray] = []
    fast_done = False
    for m_i, mine in enumerate(mines):
        n = 1 if mine.remediated else 2 * scale.sensors
        ring = (mine.expansion or mine.works).buffer(150.0).exterior
        for k in range(n):
            p = ring.interpolate((k + 0.5) / n, normalized=True)
            if mine.remediated:
                rate, start = float(rng.uniform(0.0, 0.05)), float(rng.uniform(600, 900))
            elif not fast_done:
                rate = 12.0
                start = 1000.0 - rate * days[-1] * 0.5
                fast_done = True
            else:
                rate, start = float(rng.uniform(0.5, 6.0)), float(rng.uniform(100, 800))
            value = start + rate * days + rng.normal(0.0, 1.2, days.size)
            sites.append(
                _site(
                    f"EMA-SD-{m_i + 1:02d}{k + 1:02d}",
                    f"{mine.name}沉降监测点{k + 1}",
                    "subsidence",
                    p,
                    "mm",
                    -50,
                    5000,
                    1000,
                    warning_rate_mm_per_day=10,
                    mine_licence=mine.licence,
                )
            )
            series.append(value)
    return SensorSet(pd.DataFrame(sites), _long(sites, times, np.column_stack(series), 1), 1)


def weather_stations(geo: Geography, weather: Weather, scale: Scale, seed: int) -> SensorSet:
    """Rain gauges: 10-minute totals (mm) of the same rainfall field the grid shows."""
    rng = rng_for(seed, "weather_stations")
    times = weather.times(10)
    spots = [("市气象观测站", geo.centre), ("水库气象站", geo.reservoirs[0].shape.centroid)]
    spots += [(f"{t.name}区域自动站", t.point) for t in geo.places if t.kind == "town"]
    spots = spots[: 3 + 2 * scale.sensors]
    sites = [
        _site(f"MET-RG-{k + 1:03d}", name, "rainfall", p, "mm", 0, 60, 10)
        for k, (name, p) in enumerate(spots)
    ]
    lon = np.array([s["lon"] for s in sites])
    lat = np.array([s["lat"] for s in sites])
    rain = weather.totals(times, 10, lon, lat) * rng.lognormal(0.0, 0.2, (len(times), len(sites)))
    rain = np.where(rain < 0.05, 0.0, np.round(rain / 0.1) * 0.1)  # 0.1 mm tipping bucket
    return SensorSet(pd.DataFrame(sites), _long(sites, times, rain, 1), 1)


def manholes(
    geo: Geography, roads: gpd.GeoDataFrame, weather: Weather, scale: Scale, seed: int
) -> SensorSet:
    """Manhole-cover tilt (degrees) at city crossroads; the storm lifts one cover."""
    rng = rng_for(seed, "manholes")
    times = weather.times(10)
    t_h = weather.hours_of(times)
    city = roads[roads["grade"] == "城市主干道"].geometry.values
    pairs = [(a, b) for i, a in enumerate(city) for b in city[i + 1 :]]
    points = [
        p
        for p in shapely.get_parts(
            shapely.union_all([shapely.intersection(a, b) for a, b in pairs])
        )
        if p.geom_type == "Point"
    ]
    points.sort(key=lambda p: (round(p.y, 1), round(p.x, 1)))
    offsets = [(12.0, 0.0), (0.0, 12.0), (-12.0, 0.0), (0.0, -12.0)]
    sites = []
    for i in range(min(15 * scale.sensors, 4 * len(points))):
        base = points[i % len(points)]
        dx, dy = offsets[i // len(points) % 4]
        p = Point(base.x + dx, base.y + dy)
        sites.append(
            _site(
                f"URB-MH-{i + 1:04d}",
                f"{geo.place_name(p, ('community',))}井盖{i + 1}",
                "manhole_tilt",
                p,
                "°",
                0,
                90,
                5,
                cover_type="雨水井",
            )
        )
    tilt = rng.uniform(0.3, 1.5, len(sites))[None, :] + rng.normal(
        0.0, 0.05, (t_h.size, len(sites))
    )
    lifted = int(rng.integers(len(sites)))
    hit = weather.storm.start_h + weather.storm.duration_h * 0.5
    out = (t_h >= hit) & (t_h < hit + 8)  # lifted by the storm, set back 8 h later
    tilt[out, lifted] = 6.0 + rng.normal(0.0, 0.3, int(out.sum()))
    tilt[(t_h >= hit) & (t_h < hit + 1.5), lifted] += 7.0
    return SensorSet(pd.DataFrame(sites), _long(sites, times, np.abs(tilt), 2), 2)
