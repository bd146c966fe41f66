"""InfluxQL's JSON answers: chunked documents merged into one, series and cells read strictly.

Separate from the backend because it is the answer's format, not the conversation: the
storage and delivery queries read theirs with it too. Whatever is not the shape InfluxQL
answers for a statement is a `ShapeError`, which the backend turns into a typed error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core.aggregate import EPOCH, as_utc
from ..core.bounded import JSON_ERRORS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class ShapeError(Exception):
    """A statement's result is not what InfluxQL answers for that statement."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a statement's result: its tags, columns and rows."""

    tags: Mapping[str, str]
    columns: tuple[str, ...]
    values: tuple[Sequence[Any], ...]

    def rows(self) -> list[dict[str, Any]]:
        """The rows as column -> cell."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


def series_of(result: Mapping[str, Any]) -> list[Series]:
    """Every series of one statement's result, read strictly (`ShapeError` otherwise)."""
    raw = result.get("series", [])
    if not isinstance(raw, list):
        raise ShapeError
    series: list[Series] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ShapeError
        tags = item.get("tags") or {}
        columns = item.get("columns")
        values = item.get("values") or []
        if (
            not isinstance(tags, dict)
            or not isinstance(columns, list)
            or not isinstance(values, list)
            or not all(isinstance(row, list) for row in values)
        ):
            raise ShapeError
        series.append(
            Series(
                tags={str(k): "" if v is None else str(v) for k, v in tags.items()},
                columns=tuple(str(c) for c in columns),
                values=tuple(values),
            )
        )
    return series


def count_cell(value: object) -> int:
    """A COUNT cell: null (no value of that field in the group) is 0 events."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ShapeError
    return value


def number_cell(value: object) -> float | None:
    """A numeric cell, None for anything else (null, a string, a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def time_cell(value: object) -> datetime:
    """A `time` cell: integer nanoseconds (epoch=ns) or an RFC 3339 string."""
    if isinstance(value, int) and not isinstance(value, bool):
        # Python keeps microseconds: nanoseconds are cut (floored) the same for both backends.
        return EPOCH + timedelta(microseconds=value // 1000)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError as err:
            raise ShapeError from err
    raise ShapeError


def decode_documents(body: bytes) -> object:
    """One InfluxQL answer from a body of one or more concatenated JSON documents (chunks).

    Chunks of the same statement are merged: series with the same name and tags are joined,
    and the FIRST error reported for a statement is kept. None when the body is not JSON.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    decoder = json.JSONDecoder()
    documents: list[object] = []
    position = _skip_space(text, 0)
    while position < len(text):
        try:
            document, position = decoder.raw_decode(text, position)
        except JSON_ERRORS:
            return None
        documents.append(document)
        position = _skip_space(text, position)
    if len(documents) == 1:
        return documents[0]
    chunks = [d for d in documents if isinstance(d, dict)]
    if not chunks or len(chunks) != len(documents):
        return None
    for chunk in chunks:
        if "error" in chunk:
            return chunk
    return _merge_chunks(chunks)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _merge_chunks(documents: list[dict[str, Any]]) -> object:
    merged: dict[object, dict[str, Any]] = {}
    joined: dict[tuple[object, str], list[Any]] = {}
    for document in documents:
        results = document.get("results")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            return None
        for result in results:
            statement_id = result.get("statement_id")
            target = merged.setdefault(statement_id, {"statement_id": statement_id})
            if "error" in result and "error" not in target:
                target["error"] = result["error"]
            _merge_series(target, result.get("series"), joined)
    return {"results": list(merged.values())}


def _merge_series(
    target: dict[str, Any], raw_series: object, joined: dict[tuple[object, str], list[Any]]
) -> None:
    """Append one chunk's series to its statement; a continued series gets its values joined."""
    if not isinstance(raw_series, list):
        if raw_series is not None:
            target["series"] = raw_series  # the statement parser refuses it
        return
    for item in raw_series:
        if not isinstance(item, dict) or not isinstance(item.get("values", []), list):
            target.setdefault("series", []).append(item)
            continue
        key = (target["statement_id"], _series_key(item))
        if key in joined:
            joined[key].extend(item.get("values", []))
            continue
        copy = {**item, "values": list(item.get("values", []))}
        joined[key] = copy["values"]
        target.setdefault("series", []).append(copy)


def _series_key(item: Mapping[str, Any]) -> str:
    identity = [item.get("name"), item.get("tags"), item.get("columns")]
    return json.dumps(identity, sort_keys=True, default=str)
