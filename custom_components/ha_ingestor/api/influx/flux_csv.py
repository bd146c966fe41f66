"""InfluxDB's annotated CSV (the answer to a Flux query), read into records per result.

Separate from the backend because it is a format, not a conversation: the reader knows
nothing of queries or HTTP, and the storage and delivery queries read their answers with it
too. It is strict: an unknown annotation or datatype, a row of the wrong width or a Flux
error table is an `IngestorResponseError`, never a guess.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Final

from ..core.errors import IngestorResponseError, Origin

# What the reader expects: every annotation (types, defaults) and a header row per table.
CSV_DIALECT: Final = {
    "header": True,
    "delimiter": ",",
    "annotations": ["datatype", "group", "default"],
    "commentPrefix": "#",
    "dateTimeFormat": "RFC3339",
}
# Server text quoted in an error is cut to this length.
MAX_SERVER_MESSAGE: Final = 300
_RFC3339: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})"
)

type CsvValue = str | int | float | bool | datetime | None
type Record = dict[str, CsvValue]


def unreadable_csv(message: str) -> IngestorResponseError:
    """The error of an answer that is not the annotated CSV we asked for."""
    return IngestorResponseError(
        f"InfluxDB answered unreadable CSV: {message}", origin=Origin.INFLUXDB
    )


def parse_rfc3339(text: str) -> datetime:
    """RFC3339 with up to nanoseconds (cut to microseconds), as an aware UTC datetime."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        msg = f"invalid time {text[:40]!r}"
        raise ValueError(msg)
    base, fraction, zone = match.groups()
    micro = int((fraction or "").ljust(6, "0")[:6])
    parsed = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return parsed.replace(microsecond=micro).astimezone(UTC)


def _convert(datatype: str, raw: str) -> CsvValue:
    match datatype:
        case "string":
            return raw
        case "long" | "unsignedLong":
            return int(raw)
        case "double":
            return float(raw)
        case "boolean":
            if raw not in {"true", "false"}:
                msg = f"invalid boolean {raw[:20]!r}"
                raise ValueError(msg)
            return raw == "true"
        case "dateTime:RFC3339" | "dateTime:RFC3339Nano":
            return parse_rfc3339(raw)
        case _:
            msg = f"unsupported datatype {datatype[:40]!r}"
            raise ValueError(msg)


class _CsvReader:
    """Reads InfluxDB's annotated CSV into records grouped by result name."""

    def __init__(self) -> None:
        self.results: dict[str, list[Record]] = {}
        self.datatypes: list[str] | None = None
        self.defaults: list[str] | None = None
        self.header: list[str] | None = None

    def _end_block(self) -> None:
        self.datatypes = self.defaults = self.header = None

    def _annotation(self, row: list[str]) -> None:
        if self.header is not None:
            self._end_block()
        match row[0]:
            case "#datatype":
                self.datatypes = row[1:]
            case "#default":
                self.defaults = row[1:]
            case "#group":
                pass
            case _:
                msg = f"unknown annotation {row[0][:40]!r}"
                raise unreadable_csv(msg)

    def _header(self, row: list[str]) -> None:
        header = row[1:]
        if "error" in header and "result" not in header:
            self.header = header
            return
        if self.datatypes is None or len(self.datatypes) != len(header):
            msg = "header without matching #datatype annotation"
            raise unreadable_csv(msg)
        if header[:2] != ["result", "table"]:
            msg = "header does not start with result,table"
            raise unreadable_csv(msg)
        if self.defaults is not None and len(self.defaults) != len(header):
            msg = "#default annotation of the wrong width"
            raise unreadable_csv(msg)
        self.header = header

    def _record(self, row: list[str]) -> None:
        header = self.header or []
        if "error" in header and "result" not in header:
            message = dict(zip(header, row[1:], strict=False)).get("error", "")
            msg = f"InfluxDB query failed: {message[:MAX_SERVER_MESSAGE]}"
            raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
        if len(row) != len(header) + 1:
            msg = f"row has {len(row) - 1} cells, header has {len(header)}"
            raise unreadable_csv(msg)
        datatypes = self.datatypes or []
        defaults = self.defaults or [""] * len(header)
        values: list[CsvValue] = []
        for name, datatype, default, cell in zip(header, datatypes, defaults, row[1:], strict=True):
            raw = cell if cell != "" else default
            try:
                values.append(None if raw == "" else _convert(datatype, raw))
            except ValueError as err:
                msg = f"column {name[:40]!r}: {err}"
                raise unreadable_csv(msg) from err
        # The first two columns are the CSV's own `result` and `table`; the table's columns
        # follow and may use those names too (a tag called `result`) without renaming a result.
        result = values[0]
        record: Record = dict(zip(header[2:], values[2:], strict=True))
        self.results.setdefault(str(result) if result else "_result", []).append(record)

    def feed(self, text: str) -> dict[str, list[Record]]:
        try:
            for row in csv.reader(io.StringIO(text, newline=""), strict=True):
                if not row or row == [""]:
                    self._end_block()
                elif row[0].startswith("#"):
                    self._annotation(row)
                elif self.header is None:
                    self._header(row)
                else:
                    self._record(row)
        except csv.Error as err:
            raise unreadable_csv(str(err)) from err
        return self.results


def parse_annotated_csv(text: str) -> dict[str, list[Record]]:
    """Records of every result of a Flux answer, keyed by result name.

    Raises:
        IngestorResponseError: malformed CSV, an unknown datatype, or a Flux error table.

    """
    return _CsvReader().feed(text)
