"""The storage coordinator: size, series and retention of the event store, every 15 minutes.

Separate from the statistics coordinator on purpose: these figures change slowly and some are
expensive (an exact cardinality), so they have their own interval and time limit, and nothing
that happens here can make the statistics unavailable. It never fails: a figure the server
does not give stays None and its entity unknown.

Growth is fitted from the integration's own samples of the last day (the servers keep no
history of these figures unless self-monitoring is stored for long). The samples are saved in
Home Assistant's storage, so a restart does not cost an hour of history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from ..api.core.storage import (
    Growth,
    GrowthHistory,
    StorageAlert,
    StorageFigures,
    StorageSample,
    StorageSource,
    StorageThresholds,
    evaluate_storage_alert,
)
from ..const import (
    DOMAIN,
    LOGGER,
    STORAGE_REFRESH_TIMEOUT,
    STORAGE_UPDATE_INTERVAL,
)
from ..options import storage_thresholds_from

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

_STORE_VERSION: Final = 1
# Samples come every 15 minutes; saving them at most once a minute is plenty.
_SAVE_DELAY: Final = 60

# The figures an entity can depend on; an entity is added once its figure was answered.
FIGURE_SIZE: Final = "size"
FIGURE_SERIES: Final = "series"
FIGURE_RETENTION: Final = "retention"
FIGURE_OLDEST_POINT: Final = "oldest_point"


@dataclass(frozen=True, slots=True)
class StorageState:
    """One storage refresh: the figures, the growth fitted so far and the alert."""

    figures: StorageFigures
    growth: Growth
    alert: StorageAlert
    thresholds: StorageThresholds
    fetched_at: datetime
    # Every figure the server has answered since set-up: their entities exist.
    answered: frozenset[str] = frozenset()


def figure_answered(*figures: str) -> Callable[[StorageState | None], bool]:
    """Whether any of `figures` has been answered (an entity showing them exists from then on).

    A server that never gives a figure (no self-monitoring, an older version, no right to
    read it) never gets its entity; a figure answered once keeps its entity, unknown while the
    server does not answer.
    """
    wanted = frozenset(figures)
    return lambda state: state is not None and bool(wanted & state.answered)


def answered_figures(figures: StorageFigures) -> set[str]:
    """The figures this answer holds."""
    known = {
        FIGURE_SIZE: figures.size_bytes is not None,
        FIGURE_SERIES: figures.series is not None,
        FIGURE_RETENTION: figures.retention_known,
        FIGURE_OLDEST_POINT: figures.oldest_point is not None,
    }
    return {key for key, value in known.items() if value}


def _history_store(hass: HomeAssistant, entry: ConfigEntry) -> Store[list[dict[str, Any]]]:
    return Store(hass, _STORE_VERSION, f"{DOMAIN}.{entry.entry_id}.storage_history")


class StorageCoordinator(DataUpdateCoordinator[StorageState]):
    """Refreshes the storage figures every 15 minutes, bounded, never failing."""

    config_entry: ConfigEntry

    def __init__(
        self, hass: HomeAssistant, config_entry: ConfigEntry, source: StorageSource
    ) -> None:
        """Read the thresholds once: changing the options reloads the entry."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=config_entry,
            name=f"{DOMAIN} storage",
            update_interval=STORAGE_UPDATE_INTERVAL,
        )
        self.source = source
        self.thresholds = storage_thresholds_from(config_entry.options)
        self.history = GrowthHistory()
        # Every figure the server has answered since set-up: their entities exist.
        self.answered: set[str] = set()
        self._store = _history_store(hass, config_entry)

    async def async_start(self) -> None:
        """Restore the samples, then fetch the figures for the first time."""
        self.history = GrowthHistory.from_json(await self._store.async_load())
        await self.async_refresh()

    @staticmethod
    async def async_remove_history_of(hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Forget the saved samples of an entry that is being removed."""
        await _history_store(hass, entry).async_remove()

    @override
    async def _async_update_data(self) -> StorageState:
        now = dt_util.utcnow()
        limit = STORAGE_REFRESH_TIMEOUT.total_seconds()
        try:
            async with asyncio.timeout(limit):
                figures = await self.source.async_fetch()
        except TimeoutError:
            figures = StorageFigures(problems={"request": f"no answer within {limit:g} s"})
        if figures.problems:
            LOGGER.debug("Storage figures left unknown: %s", dict(figures.problems))
        if figures.size_bytes is not None or figures.series is not None:
            self.history.add(StorageSample(now, figures.size_bytes, figures.series))
            self._store.async_delay_save(self.history.to_json, _SAVE_DELAY)
        self.answered |= answered_figures(figures)
        growth = self.history.growth()
        return StorageState(
            figures=figures,
            growth=growth,
            alert=evaluate_storage_alert(figures, growth, self.thresholds),
            thresholds=self.thresholds,
            fetched_at=now,
            answered=frozenset(self.answered),
        )
