"""The alert rules: strict thresholds, unknown inputs, clear messages."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.ha_ingestor.api.core import alerts
from custom_components.ha_ingestor.api.core.models import (
    AlertKey,
    DataSource,
    EventStatistics,
    Period,
    ProcessingMetrics,
    ServiceState,
    ServiceStatus,
    Severity,
    Snapshot,
    Thresholds,
)

NOW = datetime(2025, 11, 1, 23, 6, 12, tzinfo=UTC)
DEFAULTS = Thresholds()


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        (0.0, None),
        (2.0, None),  # strict: equal does not fire
        (2.01, Severity.WARNING),
        (5.0, Severity.WARNING),
        (5.01, Severity.ERROR),
        (100.0, Severity.ERROR),
    ],
)
def test_high_error_rate(value: float, severity: Severity | None) -> None:
    alert = alerts.high_error_rate(ProcessingMetrics(error_rate=value), DEFAULTS)
    assert alert.key is AlertKey.HIGH_ERROR_RATE
    assert alert.severity is severity
    assert alert.active is (severity is not None)
    # Only a firing alert carries its reading.
    assert alert.value == (value if severity is not None else None)
    assert alert.warning_threshold == 2.0
    assert alert.error_threshold == 5.0


def test_high_error_rate_message() -> None:
    alert = alerts.high_error_rate(ProcessingMetrics(error_rate=3.1), DEFAULTS)
    assert alert.message == "Error rate 3.1 % is above the warning threshold of 2 %."
    quiet = alerts.high_error_rate(ProcessingMetrics(error_rate=0.5), DEFAULTS)
    assert quiet.message == "Error rate is within the thresholds."
    assert quiet.value is None


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        (100.0, None),
        (95.0, None),
        (94.99, Severity.WARNING),
        (90.0, Severity.WARNING),
        (89.99, Severity.ERROR),
        (0.0, Severity.ERROR),
    ],
)
def test_low_success_rate(value: float, severity: Severity | None) -> None:
    alert = alerts.low_success_rate(ProcessingMetrics(success_rate=value), DEFAULTS)
    assert alert.severity is severity
    assert alert.active is (severity is not None)
    assert alert.warning_threshold == 95.0
    assert alert.error_threshold == 90.0


def test_low_success_rate_message() -> None:
    alert = alerts.low_success_rate(ProcessingMetrics(success_rate=89.5), DEFAULTS)
    assert alert.message == "Success rate 89.5 % is below the error threshold of 90 %."


@pytest.mark.parametrize(
    ("value", "error_threshold", "severity"),
    [
        (1000.0, None, None),
        (1000.5, None, Severity.WARNING),
        (99999.0, None, Severity.WARNING),  # no error threshold by default
        (2000.0, 2000.0, Severity.WARNING),
        (2000.1, 2000.0, Severity.ERROR),
    ],
)
def test_slow_processing(
    value: float, error_threshold: float | None, severity: Severity | None
) -> None:
    thresholds = Thresholds(processing_time_error=error_threshold)
    alert = alerts.slow_processing(ProcessingMetrics(processing_time_ms=value), thresholds)
    assert alert.severity is severity
    assert alert.error_threshold == error_threshold
    assert alert.warning_threshold == 1000.0


@pytest.mark.parametrize(
    ("age", "severity"),
    [
        (timedelta(minutes=5), None),
        (timedelta(minutes=5, seconds=1), Severity.WARNING),
        (timedelta(minutes=15), Severity.WARNING),
        (timedelta(minutes=15, seconds=1), Severity.ERROR),
        (timedelta(minutes=-3), None),  # event "in the future": clock skew
    ],
)
def test_ingestion_stalled(age: timedelta, severity: Severity | None) -> None:
    events = EventStatistics(last_event=NOW - age)
    alert = alerts.ingestion_stalled(events, DEFAULTS, NOW)
    assert alert.severity is severity
    # Whole minutes begun: the exact age decides, the value changes once a minute; a quiet
    # alert carries none.
    minutes = max(math.ceil(age.total_seconds() / 60), 0)
    assert alert.value == (minutes if severity is not None else None)


@pytest.mark.parametrize(
    ("age", "minutes"),
    [
        (timedelta(minutes=5, seconds=1), 6),
        (timedelta(minutes=6), 6),
        (timedelta(minutes=6, seconds=1), 7),
        (timedelta(minutes=15, seconds=1), 16),
    ],
)
def test_ingestion_stalled_counts_whole_minutes(age: timedelta, minutes: int) -> None:
    alert = alerts.ingestion_stalled(EventStatistics(last_event=NOW - age), DEFAULTS, NOW)
    assert alert.value == minutes
    assert alert.message.startswith(f"No new event for {minutes} min ")


def test_ingestion_stalled_reads_the_same_on_every_poll_within_a_minute() -> None:
    events = EventStatistics(last_event=NOW - timedelta(minutes=7, seconds=10))
    polls = [
        alerts.ingestion_stalled(events, DEFAULTS, NOW + timedelta(seconds=s)) for s in (0, 20, 40)
    ]
    assert len({(a.value, a.message) for a in polls}) == 1
    quiet = alerts.ingestion_stalled(
        EventStatistics(last_event=NOW - timedelta(minutes=2)), DEFAULTS, NOW
    )
    assert quiet.message == "The time since the last event is within the thresholds."


def test_ingestion_stalled_message_and_custom_thresholds() -> None:
    thresholds = Thresholds(stalled_warning_minutes=1, stalled_error_minutes=2)
    alert = alerts.ingestion_stalled(
        EventStatistics(last_event=NOW - timedelta(minutes=3)), thresholds, NOW
    )
    assert alert.severity is Severity.ERROR
    assert alert.message == "No new event for 3 min is above the error threshold of 2 min."


@pytest.mark.parametrize(
    "rule",
    [
        lambda: alerts.high_error_rate(ProcessingMetrics(), DEFAULTS),
        lambda: alerts.low_success_rate(ProcessingMetrics(), DEFAULTS),
        lambda: alerts.slow_processing(ProcessingMetrics(), DEFAULTS),
        lambda: alerts.ingestion_stalled(EventStatistics(), DEFAULTS, NOW),
        lambda: alerts.service_unhealthy(()),
        lambda: alerts.influxdb_unreachable(DataSource.SERVICES_FALLBACK, influxdb_connected=None),
    ],
)
def test_unknown_input_is_off_with_unknown_severity(rule: object) -> None:
    assert callable(rule)
    alert = rule()
    assert alert.active is False
    assert alert.severity is Severity.UNKNOWN
    assert alert.value is None
    assert alert.message.endswith("is unknown.")


def _svc(
    name: str, status: ServiceStatus, *, reachable: bool = True, message: str | None = None
) -> ServiceState:
    return ServiceState(name=name, status=status, reachable=reachable, message=message)


def test_service_unhealthy_levels() -> None:
    healthy = _svc("websocket-ingestion", ServiceStatus.HEALTHY)
    degraded = _svc("data-retention", ServiceStatus.DEGRADED, message="Service status: warning")
    unhealthy = _svc("enrichment-pipeline", ServiceStatus.UNHEALTHY)
    unreachable = _svc("data-api", ServiceStatus.UNKNOWN, reachable=False, message="refused")
    unknown = _svc("weather-api", ServiceStatus.UNKNOWN)

    quiet = alerts.service_unhealthy([healthy, unknown])
    assert quiet.active is False
    assert quiet.severity is None
    assert quiet.message == "All monitored services are healthy."

    warn = alerts.service_unhealthy([healthy, degraded])
    assert warn.severity is Severity.WARNING
    assert warn.value == "data-retention"
    assert warn.message == "data-retention is degraded (Service status: warning)."

    err = alerts.service_unhealthy([healthy, degraded, unhealthy])
    assert err.severity is Severity.ERROR
    assert err.value == "enrichment-pipeline, data-retention"

    gone = alerts.service_unhealthy([unreachable])
    assert gone.severity is Severity.ERROR
    assert gone.message == "data-api is unreachable (refused)."
    assert gone.warning_threshold == "degraded"
    assert gone.error_threshold == "unhealthy"

    assert alerts.service_unhealthy([unknown]).severity is Severity.UNKNOWN


def test_influxdb_unreachable() -> None:
    on = alerts.influxdb_unreachable(DataSource.SERVICES_FALLBACK, influxdb_connected=False)
    assert on.active is True
    assert on.severity is Severity.WARNING
    assert on.value == "services_fallback"
    assert "fallback" not in on.message
    assert "services" in on.message
    off = alerts.influxdb_unreachable(DataSource.INFLUXDB, influxdb_connected=True)
    assert off.active is False
    assert off.severity is None
    down_no_fallback = alerts.influxdb_unreachable(DataSource.INFLUXDB, influxdb_connected=False)
    assert down_no_fallback.message == "InfluxDB is unreachable."


def test_evaluate_alerts_covers_every_rule_in_order() -> None:
    snapshot = Snapshot(
        source=DataSource.SERVICES_FALLBACK,
        period=Period.HOUR_1,
        fetched_at=NOW,
        query_duration_ms=12.0,
        events=EventStatistics(last_event=NOW - timedelta(minutes=20)),
        metrics=ProcessingMetrics(error_rate=6.0, success_rate=99.0, processing_time_ms=None),
        services=(_svc("websocket-ingestion", ServiceStatus.DEGRADED),),
        influxdb_connected=False,
    )
    result = alerts.evaluate_alerts(snapshot, DEFAULTS, NOW)
    assert [a.key for a in result] == list(AlertKey)
    by_key = {a.key: a for a in result}
    assert by_key[AlertKey.HIGH_ERROR_RATE].severity is Severity.ERROR
    assert by_key[AlertKey.LOW_SUCCESS_RATE].active is False
    assert by_key[AlertKey.SLOW_PROCESSING].severity is Severity.UNKNOWN
    assert by_key[AlertKey.INGESTION_STALLED].severity is Severity.ERROR
    assert by_key[AlertKey.SERVICE_UNHEALTHY].severity is Severity.WARNING
    assert by_key[AlertKey.INFLUXDB_UNREACHABLE].severity is Severity.WARNING
