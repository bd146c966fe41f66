"""One refresh in a fresh process, to see its peak resident memory without the benchmark's own.

    python -m benchmarks.probe APPROACH URL DATABASE NOW PERIOD WINDOW

Prints one JSON object: `rss_before` (after imports and session set-up), `rss_peak` (the
high-water mark from just before the refresh to its end) and `requests`, in bytes/counts.
The peak is reset through /proc/self/clear_refs (Linux >= 4.0); `peak_reset` says whether
that worked (if not, the peak also covers start-up).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

import aiohttp

from custom_components.ha_ingestor.api.core.models import Period, TrendWindow

from .approaches import APPROACHES, Target

_KIB = 1024
_ARGUMENTS = 6


def memory_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in bytes (empty where /proc is missing)."""
    values: dict[str, int] = {}
    try:
        text = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) * _KIB
    return values


def reset_peak() -> bool:
    """Make VmHWM start again from the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


async def probe(name: str, target: Target) -> dict[str, object]:
    """Run `name` once against `target` and report its memory and requests."""
    refresh = APPROACHES[name]
    requests = 0

    async def on_request_start(*_args: object) -> None:
        nonlocal requests
        requests += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        before = memory_status().get("VmRSS")
        peak_reset = reset_peak()
        await refresh(session, target)
        peak = memory_status().get("VmHWM")
    return {"rss_before": before, "rss_peak": peak, "peak_reset": peak_reset, "requests": requests}


def main(argv: list[str]) -> int:
    """Command-line entry (used by `benchmarks.measure`)."""
    if len(argv) != _ARGUMENTS or argv[0] not in APPROACHES:
        sys.stderr.write(__doc__ or "")
        return 2
    name, url, database, now, period, window = argv
    target = Target(
        url,
        database,
        now=datetime.fromisoformat(now),
        period=Period(period),
        window=TrendWindow(window),
    )
    report = asyncio.run(probe(name, target))
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
