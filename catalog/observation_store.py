"""The observation store's contract: what any backend of the readings must do.

Two backends keep sensor readings: SQLite files in the data directory (the embedded
default, :class:`~.observations.ObservationStore`) and PostgreSQL (the cloud deployment,
:class:`~.observations_pg.PostgresObservationStore`). Both validate a batch the same way
(``observation_writes.validate``), keep the same duplicate rule (a reading whose layer,
sensor, parameter and time are already stored is a duplicate: the first value stays,
the later one is counted, within a batch as across batches and processes), evaluate the
alert rules in the transaction that stores the readings (``alerts``), and answer the
same queries with the same frames. ``tests/test_observation_contract.py`` runs every case
on each. Which one a data directory uses is decided in ``stores.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import pandas as pd

from .observation_writes import AppendResult, SensorSpec


class ReadingStore(ABC):
    """Readings of every sensor layer: appended in validated batches, read back as frames
    (times as UTC timestamps, ends of windows inclusive)."""

    # whether appends of several threads gain by running at once (each waits on its own
    # database connection), rather than queueing on one writer as SQLite's do
    parallel_appends: bool = False

    @abstractmethod
    def append(
        self,
        layer: str,
        frame: pd.DataFrame,
        sensors: dict[str, SensorSpec],
        now: pd.Timestamp | None = None,
        attributes: dict[str, dict] | None = None,
    ) -> AppendResult:
        """Validate readings (sensor_id, time, value[, parameter]) and commit the good
        ones; refusals counted by reason, readings already stored counted as duplicates.
        With ``attributes`` (per sensor) the layer's alert rules are evaluated in the same
        commit."""

    @abstractmethod
    def add_counts(self, channel: str, counts: dict[str, int]) -> None:
        """Add to an ingest channel's counters (shared by every process on the store)."""

    @abstractmethod
    def counts(self, channel: str) -> dict[str, int]:
        """An ingest channel's counters, summed over every process that added to them."""

    @abstractmethod
    def window(
        self,
        layer: str,
        sensors: list[str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        parameters: list[str] | None = None,
    ) -> pd.DataFrame:
        """Readings in a time window (inclusive), as sensor_id, parameter, time, value,
        ordered by sensor, parameter (code point order) and time."""

    @abstractmethod
    def resample(
        self,
        layer: str,
        sensors: list[str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        freq: str = "1h",
        how: str = "mean",
        parameters: list[str] | None = None,
    ) -> pd.DataFrame:
        """Aggregates (``how``: mean, max, min, sum, count) per sensor, parameter and time
        bucket of ``freq`` counted from 1970-01-01 UTC: sensor_id, parameter, time, how, n."""

    @abstractmethod
    def latest(self, layer: str, sensors: list[str] | None = None) -> pd.DataFrame:
        """The newest reading of each sensor and parameter."""

    @abstractmethod
    def alerts(
        self, layer: str | None = None, since: pd.Timestamp | None = None, limit: int = 1000
    ) -> pd.DataFrame:
        """Fired alerts, newest first."""

    @abstractmethod
    def layers(self) -> list[str]:
        """The layers whose sensors have sent readings, in code point order."""

    @abstractmethod
    def parameters(self, layer: str) -> list[str]:
        """The parameters a layer's sensors have reported."""

    @abstractmethod
    def last_time(self, layer: str) -> pd.Timestamp | None:
        """Time of the newest reading of a layer."""

    @abstractmethod
    def extent(self, layer: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None, int]:
        """First and last reading time of a layer, and the number of readings."""

    def compact(self) -> int:
        """Reorganise what ingest wrote for reading (the SQLite store moves its runs into
        ``points``); returns how many readings moved. Nothing to do by default."""
        return 0

    def wait_for_compaction(self) -> None:  # noqa: B027  (nothing to wait for by default)
        """Return once a background reorganisation of this process (if any) is done."""

    @abstractmethod
    def close(self) -> None:
        """Let go of connections (the store may be used again: they reopen)."""

    def data_assets(self, item_dir: Path, layer: str) -> dict[str, dict]:
        """STAC assets saying where the readings of sensors layer ``layer`` are kept, for
        a readings layer's item whose JSON lies in ``item_dir`` (none by default)."""
        return {}
