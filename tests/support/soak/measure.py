"""What the soak reads without touching Home Assistant: /proc, the log file, the recorder.

Everything here is a plain function of files, so the suite's short soak and scripts/soak
read the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

MIB: Final = 1024 * 1024
DOMAIN: Final = "ha_ingestor"
OUR_LOGGER: Final = f"custom_components.{DOMAIN}"

# --- the process ----------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """Resident set size of `pid` (VmRSS), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def open_fds(pid: int) -> int | None:
    """Open file descriptors of `pid`, None once it is gone."""
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None


# --- the log --------------------------------------------------------------------------------

# Home Assistant's log format: "2026-12-07 23:10:00.123 WARNING (MainThread) [name] text".
_LINE: Final = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\(([^)]*)\) \[([^\]]+)\] (.*)$"
)
TRACEBACK: Final = "Traceback (most recent call last):"
# Lines of our logger kept for the outage analysis (the rest are only counted).
KEPT_LINES: Final = 5000


@dataclass(frozen=True)
class LogLine:
    """One record of the integration's logger, stamped when the soak read it."""

    read_at: float  # monotonic
    level: str
    logger: str
    message: str


@dataclass
class LogCounter:
    """Reads Home Assistant's log as it grows, across restarts (which rotate the file)."""

    path: Path
    offset: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    our_levels: Counter[str] = field(default_factory=Counter)
    tracebacks: int = 0
    our_tracebacks: int = 0
    ours: list[LogLine] = field(default_factory=list)
    tracebacks_seen: list[str] = field(default_factory=list)
    _pending: str = ""
    _last_logger: str = ""
    _inode: int | None = None

    def poll(self) -> list[LogLine]:
        """Read what was appended since the last poll; the integration's new lines.

        A new file (another inode, or shorter than what was read) is read from its start:
        Home Assistant may rotate its log when it starts, or append to it.
        """
        try:
            with self.path.open("rb") as handle:
                status = os.fstat(handle.fileno())
                if status.st_ino != self._inode or status.st_size < self.offset:
                    self._inode = status.st_ino
                    self.offset = 0
                    self._pending = ""
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        self.offset += len(data)
        text = self._pending + data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self._pending = lines.pop()
        return self._take(lines)

    def rotated(self) -> None:
        """Home Assistant stopped: read the old file to its end (a new one is noticed)."""
        self.poll()

    def _take(self, lines: Iterable[str]) -> list[LogLine]:
        now = time.monotonic()
        new: list[LogLine] = []
        for line in lines:
            match = _LINE.match(line)
            if match is None:
                if line.startswith(TRACEBACK):
                    self.tracebacks += 1
                    if self._last_logger.startswith(OUR_LOGGER):
                        self.our_tracebacks += 1
                    if len(self.tracebacks_seen) < 20:
                        self.tracebacks_seen.append(self._last_logger)
                continue
            level, _thread, logger, message = match.groups()
            self._last_logger = logger
            self.levels[level] += 1
            if logger.startswith(OUR_LOGGER):
                self.our_levels[level] += 1
                record = LogLine(now, level, logger, message)
                new.append(record)
                if len(self.ours) < KEPT_LINES:
                    self.ours.append(record)
        return new


# --- the recorder ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecorderRows:
    """The recorder's rows of the integration's entities, and what caused each."""

    total: int
    first: int  # an entity's first row
    state_changes: int  # the state differs from the entity's row before
    attribute_only: int  # same state, other attributes
    # attribute name -> rows whose only difference from the row before included it
    changed_attributes: dict[str, int]
    by_entity: dict[str, int]
    attribute_only_by_entity: dict[str, int]
    # rows per minute of the run (minute 0 starts at `since`): the calm minutes show what a
    # user's recorder gets between faults
    per_minute: list[int] = field(default_factory=list)


def _attributes(shared: str | None) -> dict[str, Any]:
    if not shared:
        return {}
    with contextlib.suppress(ValueError):
        loaded = json.loads(shared)
        if isinstance(loaded, dict):
            return loaded
    return {}


def recorder_rows(database: Path, entity_ids: Sequence[str], since: float = 0.0) -> RecorderRows:
    """Rows of `entity_ids` in the recorder's `states` table written after `since` (Unix s).

    Read-only: the recorder keeps writing while this reads (sqlite in WAL mode).
    """
    by_entity: Counter[str] = Counter()
    attribute_only_by_entity: Counter[str] = Counter()
    changed: Counter[str] = Counter()
    first = state_changes = attribute_only = 0
    per_minute: list[int] = []
    if entity_ids and database.is_file():
        marks = ",".join("?" for _ in entity_ids)
        # Only the placeholders are formatted in; the entity ids are parameters.
        query = (
            "SELECT m.entity_id, s.state, s.last_updated_ts, a.shared_attrs FROM states s"  # noqa: S608
            " JOIN states_meta m ON s.metadata_id = m.metadata_id"
            " LEFT JOIN state_attributes a ON s.attributes_id = a.attributes_id"
            f" WHERE m.entity_id IN ({marks}) ORDER BY m.entity_id, s.state_id"
        )
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            rows = connection.execute(query, list(entity_ids)).fetchall()
        finally:
            connection.close()
        previous: dict[str, tuple[str, dict[str, Any]]] = {}
        for entity_id, state, updated, shared in rows:
            attributes = _attributes(shared)
            before = previous.get(entity_id)
            previous[entity_id] = (state, attributes)
            if (updated or 0.0) < since:
                continue
            by_entity[entity_id] += 1
            minute = int(((updated or since) - since) // 60)
            per_minute.extend([0] * (minute + 1 - len(per_minute)))
            per_minute[minute] += 1
            if before is None:
                first += 1
            elif before[0] != state:
                state_changes += 1
            else:
                attribute_only += 1
                attribute_only_by_entity[entity_id] += 1
                old = before[1]
                for key in set(old) | set(attributes):
                    if old.get(key) != attributes.get(key):
                        changed[key] += 1
    return RecorderRows(
        total=sum(by_entity.values()),
        first=first,
        state_changes=state_changes,
        attribute_only=attribute_only,
        changed_attributes=dict(changed.most_common()),
        by_entity=dict(by_entity.most_common()),
        attribute_only_by_entity=dict(attribute_only_by_entity.most_common()),
        per_minute=per_minute,
    )


# --- arithmetic -----------------------------------------------------------------------------


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour; None below three points."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


def pooled_slope_per_hour(groups: Sequence[Sequence[tuple[float, float]]]) -> float | None:
    """One slope over several runs, each with its own level (a restart resets the RSS).

    Each group is centred on its own means, then one least-squares line through all.
    """
    numerator = spread = 0.0
    for points in groups:
        if len(points) < 3:
            continue
        mean_t = sum(t for t, _ in points) / len(points)
        mean_v = sum(v for _, v in points) / len(points)
        numerator += sum((t - mean_t) * (v - mean_v) for t, v in points)
        spread += sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return numerator / spread * 3600
