"""`python -m tests.support.soak`: what scripts/soak runs inside the current root."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

from custom_components.ha_ingestor.api.core.models import Revision
from tests.support.soak import report
from tests.support.soak.driver import Soak
from tests.support.soak.schedule import LONG_CYCLE, SHORT_CYCLE, cycle_for, scaled


def main(argv: list[str] | None = None) -> int:
    """Run the soak, write the results; 0 when every goal of the run was met."""
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the schedule")
    parser.add_argument("--revision", choices=("r1", "r2", "r3"), default="r3")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/soak.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-plot", action="store_true", help="skip soak.png")
    parser.add_argument(
        "--cycle", choices=("short", "long"), help="the fault cycle (default: by --minutes)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="times every hold and settle (0 < x <= 1)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes wants 0 < N <= 1440")
    if not 0 < args.scale <= 1:
        parser.error("--scale wants 0 < x <= 1")
    cycle = None
    if args.cycle or args.scale != 1:
        chosen = {"short": SHORT_CYCLE, "long": LONG_CYCLE}.get(args.cycle or "")
        cycle = scaled(chosen or cycle_for(args.minutes), args.scale)
    work = Path(tempfile.mkdtemp(prefix="ha-ingestor-soak-"))
    soak = Soak(work, args.minutes, Revision(args.revision), cycle=cycle)
    try:
        results = asyncio.run(soak.run())
    finally:
        if args.keep:
            sys.stdout.write(f"work directory kept: {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary = report.write(results, args.out, with_plot=not args.no_plot)
    shown = {k: v for k, v in summary.items() if k != "recorder_changed_attributes"}
    sys.stdout.write(json.dumps(shown, indent=1) + "\n")
    sys.stdout.write(f"written: {args.out}, {args.out.with_suffix('.md')}\n")
    return 0 if not results["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
