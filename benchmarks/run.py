"""The benchmark driver: a real influxd, growing data sets, every approach at every size.

    python -m benchmarks [--sizes 10000,100000,1000000] [--runs 7] [--output FILE] ...

Each size gets its own database (written, measured, dropped). A size whose writing would
pass `--seed-budget` is skipped, and so is every larger one; naive B is skipped at a size
where its previous refresh time, scaled by volume, would pass `--raw-budget`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiohttp

from tests.support.influxdb_server import running_influxdb

from .approaches import APPROACHES, CHUNK_ROWS, WINDOW, Target
from .measure import Traffic, measure
from .report import SizeResult, duration_text, render
from .seed import BATCH_SIZE, NOW, PERIOD, SEED, SeedBudgetExceededError, seed_database
from .statements import statement_costs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.support.influxdb_server import InfluxDBServer

    from .seed import Seeded

_LOGGER = logging.getLogger("benchmarks")
DEFAULT_SIZES: Final = (10_000, 100_000, 1_000_000)
DEFAULT_OUTPUT: Final = Path(__file__).resolve().parent / "results.md"


async def measure_size(  # noqa: PLR0913
    url: str,
    seeded: Seeded,
    *,
    runs: int,
    budget: float,
    probe: bool = True,
    skip: Sequence[str] = (),
) -> SizeResult:
    """Every approach not in `skip` against the database of `seeded`, on one session.

    Also times each statement of our refresh alone (at most 3 runs each).
    """
    target = Target(url, seeded.database)
    traffic = Traffic()
    result = SizeResult(seeded.events, seeded=seeded)
    async with aiohttp.ClientSession(trace_configs=[traffic.config()]) as session:
        for name in APPROACHES:
            if name in skip:
                continue
            _LOGGER.info("%s events: measuring %s", f"{seeded.events:,}", name)
            measured = await measure(
                session, traffic, name, target, runs=runs, budget=budget, probe=probe
            )
            result.measurements[name] = measured
            _LOGGER.info(
                "%s events: %s median %s",
                f"{seeded.events:,}",
                name,
                duration_text(measured.median),
            )
        result.statements = await statement_costs(session, target, runs=min(runs, 3))
    return result


def influxdb_version(url: str) -> str | None:
    """What influxd says it is (`X-Influxdb-Version` of /ping)."""
    with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:  # noqa: S310
        version = response.headers.get("X-Influxdb-Version")
        return str(version) if version else None


def _raw_projection(previous: SizeResult | None, size: int) -> float | None:
    measured = None if previous is None else previous.measurements.get("raw_points")
    if previous is None or measured is None:
        return None
    return measured.warmup * size / previous.size


def run_sizes(  # noqa: PLR0913
    server: InfluxDBServer,
    sizes: Sequence[int],
    *,
    runs: int,
    budget: float,
    seed_budget: float,
    raw_budget: float,
    batch_size: int = BATCH_SIZE,
    probe: bool = True,
    on_result: SaveResults | None = None,
) -> list[SizeResult]:
    """Write, measure and drop one database per size, smallest first."""
    results: list[SizeResult] = []
    too_big: str | None = None
    for size in sorted(sizes):
        result = SizeResult(size)
        results.append(result)
        if too_big is not None:
            result.skipped = too_big
            continue
        database = f"bench_{size}"
        _LOGGER.info("%s events: writing", f"{size:,}")
        try:
            seeded = seed_database(
                server, database, size, budget=seed_budget, batch_size=batch_size
            )
        except SeedBudgetExceededError as err:
            result.skipped = str(err)
            too_big = f"larger than {size:,} events, which did not fit the write budget"
            server.query(f'DROP DATABASE "{database}"')
            continue
        skip: list[str] = []
        notes: list[str] = []
        projected = _raw_projection(results[-2] if len(results) > 1 else None, size)
        if projected is not None and projected > raw_budget:
            skip.append("raw_points")
            notes.append(
                f"naive B not run: about {projected:.0f} s per refresh projected from the "
                f"previous size (budget {raw_budget:.0f} s)"
            )
        result = asyncio.run(
            measure_size(server.url, seeded, runs=runs, budget=budget, probe=probe, skip=skip)
        )
        result.notes = notes
        results[-1] = result
        server.query(f'DROP DATABASE "{database}"')
        if on_result is not None:
            on_result(results)
    return results


class SaveResults:
    """Called with every result so far after each size (to save partial results)."""

    def __init__(self, output: Path, version: str | None, settings: list[tuple[str, str]]) -> None:
        """Write to `output`."""
        self._output = output
        self._version = version
        self._settings = settings

    def __call__(self, results: list[SizeResult]) -> None:
        """Render and write results.md."""
        self._output.write_text(
            render(results, influxdb_version=self._version, settings=self._settings),
            encoding="utf-8",
        )


def parse_sizes(text: str) -> list[int]:
    """`--sizes`: comma separated positive integers, `_` allowed as in `1_000`."""
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        msg = "sizes must be positive integers, comma separated"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see `--help`)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES))
    parser.add_argument("--runs", type=int, default=7, help="timed refreshes per approach")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds of timed refreshes per approach"
    )
    parser.add_argument(
        "--seed-budget", type=float, default=180.0, help="seconds to write one data set"
    )
    parser.add_argument(
        "--raw-budget", type=float, default=120.0, help="projected seconds of one naive-B refresh"
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="lines per write")
    parser.add_argument("--no-probe", action="store_true", help="skip the fresh-process pass")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write results.md."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = [
        ("Period", f"{PERIOD.value} ending {NOW.isoformat()} (fixed, past `now`)"),
        ("Trend window", WINDOW.value),
        ("Data", f"tests/support/events.py EventGenerator(seed={SEED}), schema A and B alternate"),
        ("Writes", f"{arguments.batch_size} lines per request, precision ns"),
        (
            "Timed refreshes",
            f"{arguments.runs} after one warm-up, at most {arguments.budget:.0f} s",
        ),
        ("Naive B", f"chunked=true, chunk_size={CHUNK_ROWS}, decoded one chunk at a time"),
        ("Client", "one aiohttp session per size (keep-alive), default Accept-Encoding (gzip)"),
    ]
    with running_influxdb() as server:
        version = influxdb_version(server.url)
        save = SaveResults(arguments.output, version, settings)
        results = run_sizes(
            server,
            arguments.sizes,
            runs=arguments.runs,
            budget=arguments.budget,
            seed_budget=arguments.seed_budget,
            raw_budget=arguments.raw_budget,
            batch_size=arguments.batch_size,
            probe=not arguments.no_probe,
            on_result=save,
        )
        save(results)
    _LOGGER.info("wrote %s", arguments.output)
    return 0
