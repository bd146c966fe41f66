"""The source policy: which source answers a refresh, and the one Snapshot it becomes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .core.aggregate import first_known
from .core.alerts import evaluate_alerts
from .core.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorError,
    IngestorNotFoundError,
    IngestorResponseError,
    IngestorSSLError,
    IngestorTimeoutError,
    Origin,
)
from .core.models import DataSource, IngestionFigures, ProcessingMetrics, Snapshot, SourceMode

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from .core.models import Period, Thresholds, TrendWindow
    from .influx.backend import InfluxBackend, InfluxResult
    from .ingestor.assembly import ServicesResult
    from .ingestor.services import ServicesClient

# Which failure tells the user most when every source failed: a refused credential needs
# them (reauth), a missing bucket is theirs to fix, a plain outage is not.
_MEANING = (
    IngestorAuthenticationError,
    IngestorNotFoundError,
    IngestorSSLError,
    IngestorResponseError,
    IngestorConnectionError,
)


def most_meaningful(*errors: IngestorError | None) -> IngestorError | None:
    """The error to raise when every source failed; ties go to the first given."""
    present = [e for e in errors if e is not None]
    for kind in _MEANING:
        found = next((e for e in present if isinstance(e, kind)), None)
        if found is not None:
            return found
    return present[0] if present else None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One refresh: the snapshot (None when no asked source answered) and how each source ended.

    `influx_error` / `services_error` are None when the source answered or was not asked.
    `services_error` is also set when the services answered partially because the Admin API
    failed (e.g. a refused API key while the services answered directly). Returned, never
    stored, so concurrent refreshes (the coordinator's and an action's) cannot mix them up.
    """

    snapshot: Snapshot | None
    influx_error: IngestorError | None = None
    services_error: IngestorError | None = None

    @property
    def error(self) -> IngestorError | None:
        """Why there is no snapshot: the most meaningful of the two errors."""
        if self.snapshot is not None:
            return None
        return most_meaningful(self.influx_error, self.services_error)


class IngestorClient:
    """Builds one `Snapshot` per refresh from InfluxDB and/or the ingestor's services.

    Modes:
    - AUTO: InfluxDB and the services are asked in parallel. With an InfluxDB answer the
      snapshot's source is INFLUXDB (event figures from InfluxDB; error/success/latency from
      InfluxDB's `service_metrics` where it has rows, else from the services; statuses from
      the services). Without one, the services' answer is used: source SERVICES_FALLBACK.
    - INFLUXDB: InfluxDB only. SERVICES: the services only (source SERVICES_FALLBACK).

    `timeout` bounds a whole refresh: both sources share one deadline, and a source still
    running at it ends as `IngestorTimeoutError` while the other's answer is kept.
    """

    def __init__(
        self,
        influx: InfluxBackend | None,
        services: ServicesClient | None,
        mode: SourceMode,
        timeout: float | None = None,
    ) -> None:
        """Use the given sources; a None source is never asked."""
        self.influx = influx
        self.services = services
        self.mode = mode
        self.timeout = timeout

    @property
    def _asked_influx(self) -> InfluxBackend | None:
        return self.influx if self.mode is not SourceMode.SERVICES else None

    @property
    def _asked_services(self) -> ServicesClient | None:
        return self.services if self.mode is not SourceMode.INFLUXDB else None

    async def async_get_snapshot(
        self,
        period: Period,
        window: TrendWindow,
        thresholds: Thresholds,
        now: datetime | None = None,
    ) -> FetchResult:
        """One refresh, alerts evaluated; never raises `IngestorError`.

        Without any answer the result's snapshot is None and `error` is the most meaningful
        failure (authentication beats not-found beats TLS beats response beats connection),
        an `IngestorConnectionError` (origin of the mode) when the mode has no source.
        """
        now = now or datetime.now(UTC)
        started = time.monotonic()
        backend, services_client = self._asked_influx, self._asked_services
        deadline = (
            None if self.timeout is None else asyncio.get_running_loop().time() + self.timeout
        )
        influx_task = (
            _none()
            if backend is None
            else self._bounded(backend.async_fetch(period, window, now), Origin.INFLUXDB, deadline)
        )
        services_task = (
            _none()
            if services_client is None
            else self._bounded(services_client.async_fetch(period), Origin.SERVICES, deadline)
        )
        (influx, influx_error), (services, services_error) = await asyncio.gather(
            influx_task, services_task
        )
        elapsed_ms = (time.monotonic() - started) * 1000
        if services is not None:
            services_error = services.admin_api_error

        if influx is None and services is None:
            if influx_error is None and services_error is None:
                origin = Origin.SERVICES if self.mode is SourceMode.SERVICES else Origin.INFLUXDB
                missing = IngestorConnectionError(
                    f"No source is configured for mode {self.mode.value}", origin=origin
                )
                if origin is Origin.SERVICES:
                    services_error = missing
                else:
                    influx_error = missing
            return FetchResult(None, influx_error, services_error)

        snapshot = _build(
            period=period,
            influx=influx,
            services=services,
            fetched_at=datetime.now(UTC),
            elapsed_ms=elapsed_ms,
            # An InfluxDB that refused the token or lacks the bucket still answered.
            influxdb_connected=None
            if backend is None
            else influx is not None or not isinstance(influx_error, IngestorConnectionError),
            admin_api_connected=self._admin_api_connected(services),
        )
        snapshot = replace(snapshot, alerts=evaluate_alerts(snapshot, thresholds, now))
        return FetchResult(snapshot, influx_error, services_error)

    def _admin_api_connected(self, services: ServicesResult | None) -> bool | None:
        if services is not None:
            return services.admin_api_connected
        if (client := self._asked_services) is not None and client.admin_api_url:
            return False
        return None

    async def _bounded[T](
        self, fetch: Awaitable[T], origin: Origin, deadline: float | None
    ) -> tuple[T | None, IngestorError | None]:
        try:
            async with asyncio.timeout_at(deadline):
                return await fetch, None
        except IngestorError as err:
            return None, err
        except TimeoutError:
            what = "InfluxDB" if origin is Origin.INFLUXDB else "The ingestor's services"
            return None, IngestorTimeoutError(
                f"{what} did not answer within the refresh budget of {self.timeout:g} s",
                origin=origin,
            )


async def _none() -> tuple[None, None]:
    return None, None


def _build(  # noqa: PLR0913 - one keyword per snapshot part
    *,
    period: Period,
    influx: InfluxResult | None,
    services: ServicesResult | None,
    fetched_at: datetime,
    elapsed_ms: float,
    influxdb_connected: bool | None,
    admin_api_connected: bool | None,
) -> Snapshot:
    """Merge what answered; InfluxDB's event figures win, the services fill the rest."""
    if influx is None:
        assert services is not None  # noqa: S101 - one source answered
        events, metrics = services.events, services.metrics
    elif services is None:
        events, metrics = influx.events, influx.metrics
    else:
        events = influx.events
        metrics = ProcessingMetrics(
            error_rate=first_known(influx.metrics.error_rate, services.metrics.error_rate),
            success_rate=first_known(influx.metrics.success_rate, services.metrics.success_rate),
            processing_time_ms=first_known(
                influx.metrics.processing_time_ms, services.metrics.processing_time_ms
            ),
        )
    return Snapshot(
        services_complete=services is not None and services.services_complete,
        source=DataSource.INFLUXDB if influx is not None else DataSource.SERVICES_FALLBACK,
        period=period,
        fetched_at=fetched_at,
        query_duration_ms=elapsed_ms,
        events=events,
        metrics=metrics,
        services=services.services if services is not None else (),
        influxdb_connected=influxdb_connected,
        admin_api_connected=admin_api_connected,
        influxdb_version=influx.version if influx is not None else None,
        ingestor_version=services.ingestor_version if services is not None else None,
        revision=services.revision if services is not None else None,
        ingestion=services.ingestion if services is not None else IngestionFigures(),
        firing_alerts=services.firing_alerts if services is not None else None,
    )
