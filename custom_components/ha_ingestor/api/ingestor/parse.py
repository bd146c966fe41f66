"""Parsing primitives every ingestor normaliser is built from: one JSON value to one figure.

Apart from the normalisers because both the Admin API's payloads (`admin_payloads.py`) and
the services' own (`service_payloads.py`) read their fields with the same rules: a value of
the wrong type, out of range or not finite becomes None (or `ServiceStatus.UNKNOWN`), never a
made-up 0, and nothing here raises. The quirks are described in docs/ingestor-contracts.md.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from ..core.models import ServiceStatus

# The seven status vocabularies in one table; words not listed are UNKNOWN.
# docs/ingestor-contracts.md#status-vocabularies
_STATUS_WORDS: dict[str, ServiceStatus] = {
    **dict.fromkeys(
        (
            "healthy",
            "pass",
            "ok",
            "up",
            "running",
            "active",
            "connected",
            "operational",
            "ready",
        ),
        ServiceStatus.HEALTHY,
    ),
    **dict.fromkeys(("degraded", "warning", "warn", "starting"), ServiceStatus.DEGRADED),
    **dict.fromkeys(
        (
            "unhealthy",
            "critical",
            "fail",
            "failed",
            "error",
            "stopped",
            "down",
            "disconnected",
            "inactive",
            "timeout",
        ),
        ServiceStatus.UNHEALTHY,
    ),
}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# str(timedelta): "1:25:24.575842", "1 day, 1:25:24.57", "3 days, 0:00:01".
_TIMEDELTA = re.compile(r"(?:(\d+) days?, )?(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)", re.ASCII)
_OFFSET = re.compile(r"T.*[+-]\d{2}:?\d{2}$", re.ASCII)
_FRACTION = re.compile(r"(\.\d+)", re.ASCII)
_PERCENT_MAX = 100.0


def parse_status(value: object) -> ServiceStatus:
    """Map any status word (or a `healthy`-style bool) to the one vocabulary."""
    if isinstance(value, bool):
        return ServiceStatus.HEALTHY if value else ServiceStatus.UNHEALTHY
    if isinstance(value, str):
        return _STATUS_WORDS.get(value.strip().lower(), ServiceStatus.UNKNOWN)
    return ServiceStatus.UNKNOWN


def parse_number(value: object) -> float | None:
    """A finite int or float (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_non_negative(value: object) -> float | None:
    """A finite number from 0 up (a rate, a duration, a latency)."""
    number = parse_number(value)
    return number if number is not None and number >= 0 else None


def parse_count(value: object) -> int | None:
    """A non-negative whole number; an integral float (JSON `2297.0`) counts too."""
    number = parse_number(value)
    if number is None or number < 0 or not number.is_integer():
        return None
    return int(number)


def parse_percent(value: object) -> float | None:
    """A percentage already on the 0-100 scale; anything outside is not a percentage."""
    number = parse_number(value)
    if number is None or not 0 <= number <= _PERCENT_MAX:
        return None
    return number


def parse_fraction_percent(value: object) -> float | None:
    """A 0-1 fraction (aux `/health` `success_rate`, validator `error_rate`) as a percentage."""
    number = parse_number(value)
    if number is None or not 0 <= number <= 1:
        return None
    return number * _PERCENT_MAX


def parse_timestamp(value: object) -> datetime | None:
    """A wall-clock time in UTC.

    Accepts ISO strings with an offset, with `Z`, or naive (taken as UTC:
    docs/ingestor-contracts.md#quirk-naive-timestamps).
    Floats are event-loop seconds (R1 enrichment), not wall times, so they give None.
    """
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
        return None
    text = value.strip()
    # R3's alert routes append "Z" to an offset already there ("...+00:00Z").
    if text.endswith(("Z", "z")) and _OFFSET.search(text[:-1]):
        text = text[:-1]
    # AlertManager sends nanoseconds; Python reads at most microseconds.
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_uptime(value: object) -> float | None:
    """Seconds of uptime from float/int seconds or a `str(timedelta)`.

    docs/ingestor-contracts.md#quirk-uptime-formats
    """
    number = parse_number(value)
    if number is not None:
        return number if number >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _TIMEDELTA.fullmatch(text)
    if match is None:
        try:
            return parse_non_negative(float(text))
        except ValueError:
            return None
    days, hours, minutes, seconds = match.groups()
    try:
        delta = timedelta(
            days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=float(seconds)
        )
    except (OverflowError, ValueError):
        # ValueError: Python refuses int() of more than 4300 digits.
        return None
    return delta.total_seconds()


def parse_text(value: object) -> str | None:
    """A non-empty string, stripped."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def parse_known_text(value: object) -> str | None:
    """A non-empty string other than the placeholder `unknown`."""
    text = parse_text(value)
    return None if text is None or text.lower() == "unknown" else text


def parse_dict(value: object) -> dict[str, object]:
    """The payload as a dict, or an empty one when it is anything else."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return {}


def parse_error_rate(errors: object, successes: object) -> float | None:
    """`errors / (errors + successes)` in percent; None without traffic."""
    bad = parse_count(errors)
    good = parse_count(successes)
    if bad is None or good is None or bad + good == 0:
        return None
    return bad / (bad + good) * _PERCENT_MAX


def parse_error_message(payload: dict[str, object]) -> str | None:
    """The text of an `{"error": ...}` entry (the text may be any JSON)."""
    if "error" not in payload:
        return None
    error = payload["error"]
    if error is None or error is False or error == "":
        return None
    return error if isinstance(error, str) else repr(error)
