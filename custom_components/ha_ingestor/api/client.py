"""The source policy: which source answers a refresh, and the one Snapshot it becomes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .alerts import evaluate_alerts
from .errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorError,
    IngestorNotFoundError,
    IngestorResponseError,
    IngestorSSLError,
    Origin,
)
from .models import DataSource, ProcessingMetrics, Snapshot, SourceMode

if TYPE_CHECKING:
    from .backend import InfluxBackend, InfluxResult
    from .models import Period, Thresholds, TrendWindow
    from .services import ServicesClient, ServicesResult

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


class IngestorClient:
    """Builds one `Snapshot` per refresh from InfluxDB and/or the ingestor's services.

    Modes:
    - AUTO: InfluxDB and the services are asked in parallel. With an InfluxDB answer the
      snapshot's source is INFLUXDB (event figures from InfluxDB; error/success/latency from
      InfluxDB's `service_metrics` where it has rows, else from the services; statuses from
      the services). Without one, the services' answer is used: source SERVICES_FALLBACK.
    - INFLUXDB: InfluxDB only. SERVICES: the services only (source SERVICES_FALLBACK).

    After every `async_get_snapshot` (also when it raised), `last_influx_error` and
    `last_services_error` tell how each source ended: None when it answered or was not asked,
    else the `IngestorError`. `last_services_error` is also set when the services answered
    partially because the Admin API failed (e.g. a refused API key while the services
    answered directly). A caller can thus log a switch to/from the fallback and start a
    reauth on an InfluxDB 401 even while the services cover for InfluxDB.
    """

    def __init__(
        self,
        influx: InfluxBackend | None,
        services: ServicesClient | None,
        mode: SourceMode,
    ) -> None:
        """Use the given sources; a None source is never asked."""
        self.influx = influx
        self.services = services
        self.mode = mode
        self.last_influx_error: IngestorError | None = None
        self.last_services_error: IngestorError | None = None

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
    ) -> Snapshot:
        """One refresh, alerts evaluated.

        Raises:
            IngestorError: no asked source answered (the most meaningful of their errors:
                authentication beats not-found beats TLS beats response beats connection).
                `IngestorConnectionError` (origin of the mode) when the mode has no source.

        """
        now = now or datetime.now(UTC)
        started = time.monotonic()
        self.last_influx_error = None
        self.last_services_error = None
        backend, services_client = self._asked_influx, self._asked_services
        influx_task = _none() if backend is None else self._influx(backend, period, window, now)
        services_task = _none() if services_client is None else self._services(services_client)
        influx, services = await asyncio.gather(influx_task, services_task)
        elapsed_ms = (time.monotonic() - started) * 1000

        if influx is None and services is None:
            error = most_meaningful(self.last_influx_error, self.last_services_error)
            if error is None:
                origin = Origin.SERVICES if self.mode is SourceMode.SERVICES else Origin.INFLUXDB
                error = IngestorConnectionError(
                    f"No source is configured for mode {self.mode.value}", origin=origin
                )
            raise error

        snapshot = _build(
            period=period,
            influx=influx,
            services=services,
            fetched_at=datetime.now(UTC),
            elapsed_ms=elapsed_ms,
            influxdb_connected=None if backend is None else influx is not None,
            admin_api_connected=self._admin_api_connected(services),
        )
        return replace(snapshot, alerts=evaluate_alerts(snapshot, thresholds, now))

    def _admin_api_connected(self, services: ServicesResult | None) -> bool | None:
        if services is not None:
            return services.admin_api_connected
        if (client := self._asked_services) is not None and client.admin_api_url:
            return False
        return None

    async def _influx(
        self, backend: InfluxBackend, period: Period, window: TrendWindow, now: datetime
    ) -> InfluxResult | None:
        try:
            return await backend.async_fetch(period, window, now)
        except IngestorError as err:
            self.last_influx_error = err
            return None

    async def _services(self, client: ServicesClient) -> ServicesResult | None:
        try:
            result = await client.async_fetch()
        except IngestorError as err:
            self.last_services_error = err
            return None
        self.last_services_error = result.admin_api_error
        return result

    async def async_close(self) -> None:
        """Close the InfluxDB backend (the services' session belongs to the caller)."""
        if self.influx is not None:
            await self.influx.async_close()


async def _none() -> None:
    return None


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


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
            error_rate=_first(influx.metrics.error_rate, services.metrics.error_rate),
            success_rate=_first(influx.metrics.success_rate, services.metrics.success_rate),
            processing_time_ms=_first(
                influx.metrics.processing_time_ms, services.metrics.processing_time_ms
            ),
        )
    return Snapshot(
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
    )
