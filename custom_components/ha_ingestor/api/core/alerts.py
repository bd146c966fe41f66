"""The alert rules, evaluated on every snapshot.

Pure functions, one per rule. Comparisons are strict, as the ingestor's own `_calculate_alerts`
(docs/ingestor-contracts.md#quirk-ingestor-alerts-never-fire): a value equal to a threshold does
not fire. A rule whose input is unknown is off with severity UNKNOWN; a rule that is known and
quiet is off with severity None and no value: only a firing alert carries the reading that
makes it fire, so a quiet alert's attributes do not move with every refresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models import (
    Alert,
    AlertKey,
    DataSource,
    ProcessingMetrics,
    ServiceState,
    ServiceStatus,
    Severity,
    Thresholds,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from .models import EventStatistics, Snapshot


def _fmt(value: float) -> str:
    """A figure for a message: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _unknown(
    key: AlertKey, warning: float | str | None, error: float | str | None, what: str
) -> Alert:
    return Alert(
        key=key,
        active=False,
        severity=Severity.UNKNOWN,
        value=None,
        warning_threshold=warning,
        error_threshold=error,
        message=f"{what} is unknown.",
    )


@dataclass(frozen=True, slots=True)
class _Rule:
    """What a threshold rule needs besides its value."""

    key: AlertKey
    warning: float
    error: float | None
    what: str
    unit: str
    # A lower limit (success rate) fires below its thresholds, the others above.
    below: bool = False
    # Shown in whole units begun (rounded up), so value and message stay the same from one
    # refresh to the next and a value beyond a whole threshold also reads beyond it.
    whole: bool = False
    # What the message calls the reading while the rule is quiet (default: `what`).
    quiet_what: str | None = None


def _threshold_alert(rule: _Rule, value: float | None) -> Alert:
    """Fires when `value` is strictly beyond a threshold, as the ingestor compares."""
    key, warning, error, what, unit = rule.key, rule.warning, rule.error, rule.what, rule.unit
    if value is None:
        return _unknown(key, warning, error, what)

    def beyond(threshold: float) -> bool:
        return value < threshold if rule.below else value > threshold

    side = "below" if rule.below else "above"
    presented: float = math.ceil(value) if rule.whole else value
    shown = f"{what} {_fmt(presented)}{unit}"
    if error is not None and beyond(error):
        severity: Severity | None = Severity.ERROR
        message = f"{shown} is {side} the error threshold of {_fmt(error)}{unit}."
    elif beyond(warning):
        severity = Severity.WARNING
        message = f"{shown} is {side} the warning threshold of {_fmt(warning)}{unit}."
    else:
        # Quiet: no reading, so the alert's state and attributes stay as they are from one
        # refresh to the next and write no recorder row (the reading is its own sensor's).
        return Alert(
            key=key,
            active=False,
            severity=None,
            value=None,
            warning_threshold=warning,
            error_threshold=error,
            message=f"{rule.quiet_what or what} is within the thresholds.",
        )
    return Alert(
        key=key,
        active=True,
        severity=severity,
        value=presented,
        warning_threshold=warning,
        error_threshold=error,
        message=message,
    )


def high_error_rate(metrics: ProcessingMetrics, thresholds: Thresholds) -> Alert:
    """Error rate above the warning/error threshold (percent)."""
    rule = _Rule(
        AlertKey.HIGH_ERROR_RATE,
        thresholds.error_rate_warning,
        thresholds.error_rate_error,
        "Error rate",
        " %",
    )
    return _threshold_alert(rule, metrics.error_rate)


def low_success_rate(metrics: ProcessingMetrics, thresholds: Thresholds) -> Alert:
    """Success rate below the warning/error threshold (percent)."""
    rule = _Rule(
        AlertKey.LOW_SUCCESS_RATE,
        thresholds.success_rate_warning,
        thresholds.success_rate_error,
        "Success rate",
        " %",
        below=True,
    )
    return _threshold_alert(rule, metrics.success_rate)


def slow_processing(metrics: ProcessingMetrics, thresholds: Thresholds) -> Alert:
    """Processing time above the warning threshold (error threshold is optional)."""
    rule = _Rule(
        AlertKey.SLOW_PROCESSING,
        thresholds.processing_time_warning,
        thresholds.processing_time_error,
        "Processing time",
        " ms",
    )
    return _threshold_alert(rule, metrics.processing_time_ms)


def ingestion_stalled(events: EventStatistics, thresholds: Thresholds, now: datetime) -> Alert:
    """No new event for more than the warning/error number of minutes.

    The value is the minutes since the newest event, rounded up to whole minutes so that it
    changes once a minute rather than on every refresh (0 when the event lies in the
    future, which a clock skew between hosts can cause). The thresholds are compared with
    the exact age.
    """
    if events.last_event is None:
        return _unknown(
            AlertKey.INGESTION_STALLED,
            thresholds.stalled_warning_minutes,
            thresholds.stalled_error_minutes,
            "Time since the last event",
        )
    minutes = max((now - events.last_event).total_seconds() / 60, 0.0)
    rule = _Rule(
        AlertKey.INGESTION_STALLED,
        thresholds.stalled_warning_minutes,
        thresholds.stalled_error_minutes,
        "No new event for",
        " min",
        whole=True,
        quiet_what="The time since the last event",
    )
    return _threshold_alert(rule, minutes)


def service_unhealthy(services: Sequence[ServiceState]) -> Alert:
    """A monitored service is degraded (warning) or unhealthy/unreachable (error).

    The value lists the services that are not healthy. Unknown when no service has a known
    status.
    """
    key = AlertKey.SERVICE_UNHEALTHY
    warning = ServiceStatus.DEGRADED.value
    error = ServiceStatus.UNHEALTHY.value
    failing = [s for s in services if not s.reachable or s.status is ServiceStatus.UNHEALTHY]
    degraded = [s for s in services if s.reachable and s.status is ServiceStatus.DEGRADED]
    known = [s for s in services if not s.reachable or s.status is not ServiceStatus.UNKNOWN]
    if not known:
        return _unknown(key, warning, error, "The health of the services")
    if failing:
        severity: Severity | None = Severity.ERROR
    elif degraded:
        severity = Severity.WARNING
    else:
        return Alert(
            key=key,
            active=False,
            severity=None,
            value=None,
            warning_threshold=warning,
            error_threshold=error,
            message="All monitored services are healthy.",
        )
    parts = [
        f"{s.name} is {'unreachable' if not s.reachable else s.status.value}"
        + (f" ({s.message})" if s.message else "")
        for s in (*failing, *degraded)
    ]
    return Alert(
        key=key,
        active=True,
        severity=severity,
        value=", ".join(s.name for s in (*failing, *degraded)),
        warning_threshold=warning,
        error_threshold=error,
        message="; ".join(parts) + ".",
    )


def influxdb_unreachable(source: DataSource, *, influxdb_connected: bool | None) -> Alert:
    """InfluxDB could not be reached, so statistics come from the services (warning).

    Unknown when InfluxDB was not asked (services-only mode or no InfluxDB configured).
    """
    key = AlertKey.INFLUXDB_UNREACHABLE
    if influxdb_connected is None:
        return _unknown(key, None, None, "InfluxDB reachability")
    if influxdb_connected:
        return Alert(
            key=key,
            active=False,
            severity=None,
            value=source.value,
            warning_threshold=None,
            error_threshold=None,
            message="InfluxDB is reachable.",
        )
    fallback = (
        " Statistics come from the ingestor's services."
        if source is DataSource.SERVICES_FALLBACK
        else ""
    )
    return Alert(
        key=key,
        active=True,
        severity=Severity.WARNING,
        value=source.value,
        warning_threshold=None,
        error_threshold=None,
        message=f"InfluxDB is unreachable.{fallback}",
    )


def evaluate_alerts(snapshot: Snapshot, thresholds: Thresholds, now: datetime) -> tuple[Alert, ...]:
    """Every rule on a snapshot's figures, in `AlertKey` order.

    `snapshot.alerts` is ignored: the caller stores the result with
    `dataclasses.replace(snapshot, alerts=evaluate_alerts(snapshot, thresholds, now))`.
    """
    return (
        high_error_rate(snapshot.metrics, thresholds),
        low_success_rate(snapshot.metrics, thresholds),
        slow_processing(snapshot.metrics, thresholds),
        ingestion_stalled(snapshot.events, thresholds, now),
        service_unhealthy(snapshot.services),
        influxdb_unreachable(snapshot.source, influxdb_connected=snapshot.influxdb_connected),
    )
