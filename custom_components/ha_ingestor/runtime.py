"""What a loaded entry holds: its client and coordinators, typed for every layer above.

Built by `async_setup_entry` from the coordinators, so it sits above them: coordinators never
import it (they are handed what they need), entities and entry points read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

if TYPE_CHECKING:
    from .api.client import IngestorClient
    from .coordinators.delivery import DeliveryCoordinator
    from .coordinators.statistics import StatisticsCoordinator
    from .coordinators.storage import StorageCoordinator


@dataclass(kw_only=True, slots=True)
class HaIngestorRuntimeData:
    """The entry's client and coordinators."""

    coordinator: StatisticsCoordinator
    client: IngestorClient
    # None when InfluxDB is not asked (no address, or the services-only mode), or, for the
    # delivery check, when it is off.
    storage: StorageCoordinator | None = None
    delivery: DeliveryCoordinator | None = None


type HaIngestorConfigEntry = ConfigEntry[HaIngestorRuntimeData]
