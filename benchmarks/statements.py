"""Where our refresh spends its time: each statement of the one request, sent alone.

Diagnostic only (the integration always sends them together). The sum of the parts beside
the whole shows what packing them into one request costs or saves.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from custom_components.ha_ingestor.api.influx.influxql import build_fetch_query

from .approaches import query_body

if TYPE_CHECKING:
    import aiohttp

    from .approaches import Target

_RANGE: Final = re.compile(r"time >= '([^']*)' AND time < '([^']*)'")


@dataclass(frozen=True, slots=True)
class StatementCost:
    """One statement of `build_fetch_query`, timed alone."""

    statement: str
    median: float
    body_bytes: int

    @property
    def label(self) -> str:
        """The statement with its time range shortened to its length, e.g. `<1:00:00>`."""

        def length(match: re.Match[str]) -> str:
            start, stop = (datetime.fromisoformat(match.group(i)) for i in (1, 2))
            return f"time in <{stop - start}>"

        return _RANGE.sub(length, self.statement)


async def statement_costs(
    session: aiohttp.ClientSession, target: Target, *, runs: int, query: str | None = None
) -> list[StatementCost]:
    """Median wall time of every statement of `query`, each in its own request.

    By default our full refresh query (`build_fetch_query`) of `target`.
    """
    query = query or build_fetch_query(target.period, target.window, target.now)
    costs: list[StatementCost] = []
    for statement in query.split("; "):
        body = await query_body(session, target, statement)  # warm-up
        times: list[float] = []
        for _ in range(max(runs, 1)):
            started = time.perf_counter()
            await query_body(session, target, statement)
            times.append(time.perf_counter() - started)
        costs.append(StatementCost(statement, statistics.median(times), len(body)))
    return costs
