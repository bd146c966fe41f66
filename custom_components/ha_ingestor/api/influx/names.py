"""Validation and escaping of every name or duration that goes into a query text.

The ingestor pastes its `period` into Flux unchecked
(docs/ingestor-contracts.md#quirk-period-injection). Here, user-supplied
names (bucket, database, org, measurement, retention policy) are validated once and then only
ever reach a query through the dialect's own quoting; durations reach a query only as members
of the `Period` / `TrendWindow` whitelists.
"""

from __future__ import annotations

import re
import unicodedata

from ..core.errors import InvalidNameError
from ..core.models import Period, TrendWindow

MAX_NAME_LENGTH = 255

# Line and paragraph separators end a line for some parsers and log readers.
_LINE_BREAKING = frozenset("\u2028\u2029\u0085")
# Cc: C0/C1 controls (NUL, newline, escape, ...); Cs: lone surrogates (not encodable as UTF-8).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs"})
_DURATION = re.compile(r"[1-9][0-9]*[mhd]")


def validate_name(value: object, kind: str = "name") -> str:
    """Return `value` when it is safe as a bucket/database/org/measurement name.

    Raises:
        InvalidNameError: empty or blank, longer than `MAX_NAME_LENGTH` characters, or holding
            a control character (NUL, newline, ...). The message never repeats the value.

    """
    if not isinstance(value, str):
        msg = f"{kind} must be text"
        raise InvalidNameError(msg)
    if not value.strip():
        msg = f"{kind} must not be empty"
        raise InvalidNameError(msg)
    if len(value) > MAX_NAME_LENGTH:
        msg = f"{kind} is longer than {MAX_NAME_LENGTH} characters"
        raise InvalidNameError(msg)
    for char in value:
        if char in _LINE_BREAKING or unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            msg = f"{kind} contains a control character (U+{ord(char):04X})"
            raise InvalidNameError(msg)
    return value


def flux_string(value: str, kind: str = "name") -> str:
    r"""A Flux double-quoted string literal that evaluates to exactly `value`.

    Escapes `\` and `"` (so the literal cannot end early) and writes every `$` as the byte
    escape `\x24`: in Flux's scanner a bare `$` takes the next character with it (so `$\`
    would swallow the backslash of an escape) and `${` starts an interpolation, while `\x24`
    means nothing but `$`. Validation has already excluded newlines and other control
    characters.
    """
    validate_name(value, kind)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\x24")
    return f'"{escaped}"'


def influxql_identifier(value: str, kind: str = "name") -> str:
    r"""An InfluxQL double-quoted identifier that names exactly `value`.

    InfluxQL's scanner knows only `\\`, `\"` and `\n` inside a quoted identifier and refuses a
    raw newline, so escaping `\` and `"` of a validated name is complete.
    """
    validate_name(value, kind)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def influxql_string(value: str, kind: str = "name") -> str:
    r"""An InfluxQL single-quoted string literal that is exactly `value` (validated first).

    `\` and `'` are escaped; the name rule keeps out everything else that could end it.
    """
    validate_name(value, kind)
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _whitelisted_duration(value: object) -> str:
    # Typed `object`: a plain string from a caller that skipped the enum must fail at run time.
    if not isinstance(value, (Period, TrendWindow)):
        msg = "only Period and TrendWindow members are accepted as durations"
        raise TypeError(msg)
    text = str(value.value)
    # Both enums hold only `<n>m|h|d`; a changed enum must not slip past silently.
    if not _DURATION.fullmatch(text):  # pragma: no cover
        msg = "duration is not of the form <n>m, <n>h or <n>d"
        raise InvalidNameError(msg)
    return text


def flux_duration(value: Period | TrendWindow) -> str:
    """The Flux duration literal of a whitelisted period or window (`Period.DAYS_7` -> `7d`)."""
    return _whitelisted_duration(value)


def influxql_duration(value: Period | TrendWindow) -> str:
    """The InfluxQL duration literal of a whitelisted period or window (`7d`, `5m`, ...)."""
    return _whitelisted_duration(value)
