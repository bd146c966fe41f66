"""The storage figures, their growth over time and the storage alert: pure, no I/O.

The queries that fetch the figures are in `api/influx/storage.py`.

Slow-changing figures, fetched on their own schedule and never inside a statistics refresh.
Each figure is asked for on its own terms and a figure the server cannot give (no
self-monitoring, no permission, `/metrics` switched off, an older server) stays None: it is
never guessed. Sources, per server:

- InfluxQL (InfluxDB 1.x): one request of `SHOW RETENTION POLICIES ON`, `FIRST()` of the event
  fields, `SHOW SERIES EXACT CARDINALITY ON` (per measurement, InfluxDB 1.4+) and the newest
  `diskBytes` of every shard of the database in `_internal`'s `shard` measurement (only while
  the server's self-monitoring stores into `_internal`).
- Flux (InfluxDB 2.x): the bucket from `GET /api/v2/buckets` (id, retention rules), one Flux
  program with `influxdb.cardinality()`, `schema.measurements()` and the oldest event, a second
  one with the cardinality per measurement, and `storage_shard_disk_size` of the bucket's
  shards from the Prometheus text of `/metrics`.
"""

# S608: every piece of query text is a constant, a quoted identifier or string of a validated
# name, or a time we formatted; no caller text is ever interpolated.

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from .aggregate import as_utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

_LOGGER = logging.getLogger(__name__)
GROWTH_WINDOW: Final = timedelta(days=1)
GROWTH_MIN_SPAN: Final = timedelta(hours=1)
SECONDS_PER_DAY: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class StorageFigures:
    """What the server told about the bucket/database; None = it could not say.

    `retention` None with `retention_infinite` False means unknown; `retention_infinite` True
    means the data is kept for ever (InfluxDB's `0s` / `everySeconds: 0` / no rule).
    `problems` says, per figure, why it is unknown (for diagnostics).
    """

    size_bytes: int | None = None
    series: int | None = None
    series_by_measurement: Mapping[str, int] = field(default_factory=dict)
    retention: timedelta | None = None
    retention_infinite: bool = False
    oldest_point: datetime | None = None
    problems: Mapping[str, str] = field(default_factory=dict)

    @property
    def top_measurement(self) -> tuple[str, int] | None:
        """The measurement holding the most series, with its count."""
        if not self.series_by_measurement:
            return None
        name = max(self.series_by_measurement, key=lambda m: (self.series_by_measurement[m], m))
        return name, self.series_by_measurement[name]

    @property
    def retention_known(self) -> bool:
        """Whether the retention is known (a duration, or kept for ever)."""
        return self.retention is not None or self.retention_infinite


class StorageSource(Protocol):
    """One server dialect's way to the storage figures. Raises nothing: failures are None."""

    async def async_fetch(self) -> StorageFigures:
        """Every figure this server can give."""


# --------------------------------------------------------------------------------------
# Growth: the integration's own history of the figures
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StorageSample:
    """One storage refresh's size and series count."""

    time: datetime
    size_bytes: int | None
    series: int | None


def _slope_per_day(points: Sequence[tuple[datetime, float]]) -> float | None:
    """Least-squares slope per day; None unless the points span `GROWTH_MIN_SPAN`.

    A fitted line, not last minus first: compactions shrink the files in steps and a single
    pair of samples would read those steps as growth or shrinkage.
    """
    if len(points) < 2 or points[-1][0] - points[0][0] < GROWTH_MIN_SPAN:  # noqa: PLR2004
        return None
    origin = points[0][0]
    xs = [(t - origin).total_seconds() / SECONDS_PER_DAY for t, _ in points]
    ys = [v for _, v in points]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


@dataclass(frozen=True, slots=True)
class Growth:
    """How fast size and series grow, per day and relative to the current figure."""

    size_bytes_per_day: float | None = None
    size_percent_per_day: float | None = None
    series_per_day: float | None = None
    series_percent_per_day: float | None = None


def _percent(rate: float | None, current: float | None) -> float | None:
    if rate is None or not current:
        return None
    return rate / current * 100.0


class GrowthHistory:
    """The samples of the last `GROWTH_WINDOW`, in time order; serialisable for restarts."""

    def __init__(self, samples: Iterable[StorageSample] = ()) -> None:
        """Start from earlier samples (restored), in any order."""
        self._samples = sorted(samples, key=lambda s: s.time)

    @property
    def samples(self) -> tuple[StorageSample, ...]:
        """The samples kept."""
        return tuple(self._samples)

    def add(self, sample: StorageSample) -> None:
        """Keep a sample; drop those older than the window."""
        self._samples.append(sample)
        self._samples.sort(key=lambda s: s.time)
        cutoff = sample.time - GROWTH_WINDOW
        self._samples = [s for s in self._samples if s.time >= cutoff]

    def growth(self) -> Growth:
        """The fitted growth of both figures (None where there is not enough history)."""
        size = [(s.time, float(s.size_bytes)) for s in self._samples if s.size_bytes is not None]
        series = [(s.time, float(s.series)) for s in self._samples if s.series is not None]
        size_rate = _slope_per_day(size)
        series_rate = _slope_per_day(series)
        return Growth(
            size_bytes_per_day=size_rate,
            size_percent_per_day=_percent(size_rate, size[-1][1] if size else None),
            series_per_day=series_rate,
            series_percent_per_day=_percent(series_rate, series[-1][1] if series else None),
        )

    def to_json(self) -> list[dict[str, Any]]:
        """Plain data for Home Assistant's storage."""
        return [
            {"time": s.time.isoformat(), "size_bytes": s.size_bytes, "series": s.series}
            for s in self._samples
        ]

    @classmethod
    def from_json(cls, data: object) -> GrowthHistory:
        """Samples written by `to_json`; anything unreadable is left out."""
        samples: list[StorageSample] = []
        for item in data if isinstance(data, list) else []:
            try:
                time = as_utc(datetime.fromisoformat(item["time"]))
                size, series = item.get("size_bytes"), item.get("series")
                samples.append(
                    StorageSample(
                        time,
                        None if size is None else int(size),
                        None if series is None else int(series),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return cls(samples)


# --------------------------------------------------------------------------------------
# The storage growth alert
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StorageThresholds:
    """When the storage growth alert turns on (the options)."""

    growth_percent_per_day: float = 5.0
    budget_bytes: int | None = None
    budget_days: float = 30.0


@dataclass(frozen=True, slots=True)
class StorageAlert:
    """The storage growth alert; `active` None when nothing it needs is known."""

    active: bool | None
    reasons: tuple[str, ...] = ()
    days_until_budget: float | None = None


def days_until(size: int | None, rate: float | None, budget: int | None) -> float | None:
    """Days until `size` growing at `rate` per day reaches `budget` (0 when already there)."""
    if size is None or budget is None:
        return None
    if size >= budget:
        return 0.0
    if rate is None or rate <= 0:
        return None
    return (budget - size) / rate


def evaluate_storage_alert(
    figures: StorageFigures, growth: Growth, thresholds: StorageThresholds
) -> StorageAlert:
    """On when size or series grow faster than the threshold, or the budget is near."""
    limit = thresholds.growth_percent_per_day
    checks = {
        "size_growth": growth.size_percent_per_day,
        "series_growth": growth.series_percent_per_day,
    }
    reasons = [key for key, value in checks.items() if value is not None and value > limit]
    days = days_until(figures.size_bytes, growth.size_bytes_per_day, thresholds.budget_bytes)
    if days is not None and days <= thresholds.budget_days:
        reasons.append("budget")
    budget_known = thresholds.budget_bytes is not None and figures.size_bytes is not None
    if not reasons and not budget_known and all(v is None for v in checks.values()):
        return StorageAlert(active=None)
    return StorageAlert(active=bool(reasons), reasons=tuple(reasons), days_until_budget=days)
