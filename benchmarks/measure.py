"""Measuring one approach: wall time (median of bounded runs), traffic and memory.

Per approach and size: one warm-up refresh (its answer is the one checked), then timed
refreshes until `runs` are done or `budget` seconds have passed (at least one), one refresh
under tracemalloc (Python allocations, peak), and one refresh in a fresh process through a
byte-counting relay (bytes on the wire, peak RSS). Requests and decoded body bytes come from
aiohttp's trace hooks.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiohttp
from yarl import URL

from .approaches import APPROACHES, Target
from .relay import ByteCountingRelay

if TYPE_CHECKING:
    from .approaches import Refresh

REPO: Final = Path(__file__).resolve().parent.parent
# A probe may take this many times the warm-up refresh (plus start-up) before it is stopped.
_PROBE_SLACK: Final = 10.0
_PROBE_START: Final = 60.0


class Traffic:
    """Requests and decoded response-body bytes, counted by aiohttp's trace hooks."""

    def __init__(self) -> None:
        """Start from zero."""
        self.requests = 0
        self._responses: list[aiohttp.ClientResponse] = []

    @property
    def body_bytes(self) -> int:
        """Decoded answer bytes of the requests since the last reset.

        From each response's stream, not from `on_response_chunk_received`: that hook fires
        only for `ClientResponse.read()`, and the backends read through `read_bounded`.
        """
        return sum(response.content.total_bytes for response in self._responses)

    def reset(self) -> None:
        """Forget what was counted."""
        self.requests = 0
        self._responses = []

    def config(self) -> aiohttp.TraceConfig:
        """Trace hooks feeding this counter (for a `ClientSession`)."""

        async def on_request_start(*_args: object) -> None:
            self.requests += 1

        async def on_request_end(
            _session: object, _context: object, params: aiohttp.TraceRequestEndParams
        ) -> None:
            self._responses.append(params.response)

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(on_request_start)
        trace.on_request_end.append(on_request_end)
        return trace


@dataclass(frozen=True, slots=True)
class Probe:
    """What the fresh-process refresh saw."""

    wire_bytes: int
    rss_before: int | None
    rss_peak: int | None
    peak_reset: bool

    @property
    def rss_growth(self) -> int | None:
        """Peak RSS minus RSS just before the refresh."""
        if self.rss_before is None or self.rss_peak is None:
            return None
        return self.rss_peak - self.rss_before


@dataclass(frozen=True, slots=True)
class Measurement:
    """One approach at one size."""

    approach: str
    answer: object
    warmup: float
    times: tuple[float, ...]
    # CPU seconds this process spent per timed refresh: what would run in Home Assistant.
    cpu_times: tuple[float, ...]
    requests: int
    body_bytes: int
    traced_peak: int
    probe: Probe | None

    @property
    def median(self) -> float:
        """Median wall time of the timed refreshes, seconds."""
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        """Median client CPU time of the timed refreshes, seconds."""
        return statistics.median(self.cpu_times)

    @property
    def spread(self) -> tuple[float, float]:
        """Fastest and slowest timed refresh, seconds."""
        return min(self.times), max(self.times)


async def run_probe(name: str, target: Target, limit: float) -> Probe:
    """One refresh of `name` in a fresh Python process, through a byte-counting relay.

    The process is killed after `limit` seconds.
    """
    upstream = URL(target.url)
    async with ByteCountingRelay(upstream.host or "127.0.0.1", upstream.port or 8086) as relay:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.probe",
            name,
            relay.url,
            target.database,
            target.now.isoformat(),
            target.period.value,
            target.window.value,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            msg = f"probe of {name} failed ({process.returncode}): {err.decode()[-2000:]}"
            raise RuntimeError(msg)
        report = json.loads(out)
        received = relay.received
    return Probe(
        wire_bytes=received,
        rss_before=report["rss_before"],
        rss_peak=report["rss_peak"],
        peak_reset=bool(report["peak_reset"]),
    )


async def _traced_peak(refresh: Refresh, session: aiohttp.ClientSession, target: Target) -> int:
    """Peak of Python allocations during one refresh, above what was allocated before it."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before, _peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        await refresh(session, target)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        if started:
            tracemalloc.stop()
    return peak - before


async def measure(  # noqa: PLR0913
    session: aiohttp.ClientSession,
    traffic: Traffic,
    name: str,
    target: Target,
    *,
    runs: int,
    budget: float,
    probe: bool = True,
) -> Measurement:
    """Every figure of approach `name` against `target` (see the module docstring)."""
    refresh: Refresh = APPROACHES[name]
    traffic.reset()
    started = time.perf_counter()
    answer = await refresh(session, target)
    warmup = time.perf_counter() - started
    requests, body_bytes = traffic.requests, traffic.body_bytes

    times: list[float] = []
    cpu_times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < max(runs, 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        await refresh(session, target)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
        if time.perf_counter() >= deadline:
            break

    traced_peak = await _traced_peak(refresh, session, target)

    seen = await run_probe(name, target, _PROBE_START + _PROBE_SLACK * warmup) if probe else None
    return Measurement(
        approach=name,
        answer=answer,
        warmup=warmup,
        times=tuple(times),
        cpu_times=tuple(cpu_times),
        requests=requests,
        body_bytes=body_bytes,
        traced_peak=traced_peak,
        probe=seen,
    )
