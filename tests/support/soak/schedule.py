"""The soak's fault plan: one cycle of faults, repeated until the run's time is up.

Each step is a fault held for `hold` seconds, then `settle` seconds of calm before the
checkpoint that follows it (the checkpoint itself waits for a fresh refresh). The long
cycle (about 19 minutes at a 15 s refresh) has every fault of issue 18; the short cycle of
the suite's version (tests/test_soak.py) keeps the faults whose recovery is quick.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class FaultKind(StrEnum):
    """What one step does to the stack."""

    INFLUXD_KILLED = "influxd_killed"  # SIGKILL, restarted on the same port and data
    SERVICES_500 = "services_500"  # every simulated service answers 500
    SERVICES_GARBLED = "services_garbled"  # 200 with a body that is not JSON
    SERVICES_SLOW = "services_slow"  # every answer held back `SLOW_DELAY` seconds
    ADMIN_429 = "admin_429"  # the Admin API's rate limit cut to a trickle
    ADMIN_KEY_REFUSED = "admin_key_refused"  # 401 "Invalid API key" on protected routes
    SIMULATOR_RESTARTED = "simulator_restarted"  # the services restart: counters fall
    HA_RESTARTED = "ha_restarted"  # Home Assistant stopped (SIGTERM) and started again
    BURST = "burst"  # BURST_RATE state changes per second on the bus


# An answer that takes this long is slow but inside the integration's time limits.
SLOW_DELAY: Final = 8.0
# The Admin API's limit during ADMIN_429: one request per 10 s, no burst.
TRICKLE_PER_MINUTE: Final = 6.0
BURST_RATE: Final = 200


@dataclass(frozen=True)
class Step:
    """One fault of the cycle."""

    kind: FaultKind
    hold: float
    settle: float


LONG_CYCLE: Final = (
    Step(FaultKind.INFLUXD_KILLED, 60, 45),
    Step(FaultKind.SERVICES_500, 45, 30),
    Step(FaultKind.SERVICES_GARBLED, 45, 30),
    Step(FaultKind.SERVICES_SLOW, 45, 30),
    Step(FaultKind.ADMIN_429, 60, 40),
    Step(FaultKind.ADMIN_KEY_REFUSED, 60, 40),
    Step(FaultKind.SIMULATOR_RESTARTED, 5, 40),
    Step(FaultKind.BURST, 60, 60),
    Step(FaultKind.HA_RESTARTED, 0, 90),
)

# Each hold outlasts a refresh interval (15 s), so every fault is seen by at least one refresh;
# a checkpoint waits for a refresh after its settle anyway.
SHORT_CYCLE: Final = (
    Step(FaultKind.INFLUXD_KILLED, 20, 15),
    Step(FaultKind.ADMIN_KEY_REFUSED, 16, 15),
    Step(FaultKind.SIMULATOR_RESTARTED, 2, 15),
)

# Below this many minutes a run uses the short cycle.
SHORT_UNTIL_MINUTES: Final = 10.0


def cycle_for(minutes: float) -> tuple[Step, ...]:
    """The cycle a run of `minutes` repeats."""
    return SHORT_CYCLE if minutes < SHORT_UNTIL_MINUTES else LONG_CYCLE


# A checkpoint needs a refresh after the fault's end: a scaled settle is never shorter.
MIN_SETTLE: Final = 20.0


def scaled(cycle: tuple[Step, ...], factor: float) -> tuple[Step, ...]:
    """`cycle` with every hold and settle times `factor` (a quick look at every fault)."""
    return tuple(
        Step(step.kind, step.hold * factor, max(step.settle * factor, MIN_SETTLE)) for step in cycle
    )


def cycle_seconds(cycle: tuple[Step, ...], checkpoint_allowance: float) -> float:
    """How long one cycle takes, each checkpoint counted at `checkpoint_allowance`."""
    return sum(step.hold + step.settle + checkpoint_allowance for step in cycle)
