"""The delivery funnel: where the events this bus fired went missing, stage by stage.

Pure and synchronous, like `delivery.py` beside it. The delivery coordinator counts every
`state_changed` on the bus here too, and hands in the ingestor's running totals each time the
statistics coordinator read them (`observe`). Two readings delimit a *step*: what this bus
fired in it, and by how much each of the ingestor's totals grew. Once InfluxDB has answered
for the whole of a step (the delivery check settled past its end), the steps are merged into
one settled *span* and compared with InfluxDB's points of that span, entity by entity.

For one span (all running totals, see docs/architecture.md#the-delivery-funnel):

- fired: `state_changed` events with a new state on this bus; `removed`: the removals, which
  the ingestor counts as received, then drops on purpose while validating;
- received: the ingestor's `events_by_type.state_changed`;
- filtered: dropped on purpose by its entity filter (`/api/v1/filter/stats`);
- processed: handled by its event processor (`processing_stats.processed_events`);
- stored: points of the span's events found in InfluxDB (more than fired are `extra`).

lost_before_ingestor = fired + removed - received, lost_in_ingestor = received - removed -
filtered - processed (the processor's failures and its uncounted queue drops),
lost_writing = processed - stored. The four add up to fired - stored. A total that falls is a
restart: that stage is unknown (None) for the span, never guessed; so is a stage without a
counter (R1 has no processor totals). An event in flight at a reading (the ingestor batches up
to 5 s before it processes) counts one span late, so a single span's stages can be off by those
events; the total loss of a span comes from InfluxDB and is exact.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from .delivery import TOP_ENTITIES
from .models import Revision

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from .delivery import DeliveryReport
    from .models import Snapshot

# The ingestor's running totals, in the order `StageTotals` names them.
STAGES: Final = ("received", "filtered", "processed", "failed")
# Where a span's loss happened (`FunnelSpan.stage`); "unknown" when no stage can say.
LOST_BEFORE_INGESTOR: Final = "lost_before_ingestor"
LOST_IN_INGESTOR: Final = "lost_in_ingestor"
LOST_WRITING: Final = "lost_writing"
STAGE_UNKNOWN: Final = "unknown"
FILTERED: Final = "filtered"
# The `events_lost` attributes and the window event's, in this order.
FUNNEL_STAGES: Final = (LOST_BEFORE_INGESTOR, LOST_IN_INGESTOR, LOST_WRITING, FILTERED)
# Steps waiting for InfluxDB (during an outage: one per statistics refresh) beyond this many
# are merged, oldest first: a span after a day's outage costs this many steps at most.
MAX_STEPS: Final = 64


@dataclass(frozen=True, slots=True)
class StageTotals:
    """The ingestor's running totals at one reading; None where it has no such counter."""

    received: int | None = None
    filtered: int | None = None
    processed: int | None = None
    failed: int | None = None


def stage_totals(snapshot: Snapshot) -> StageTotals:
    """The running totals a statistics snapshot read from the ingestor's services.

    R1 and R2 have no entity filter: they filter nothing. Without a revision (the services
    did not answer) nothing is known.
    """
    ingestion = snapshot.ingestion
    filtered = ingestion.filtered_events
    if snapshot.revision in {Revision.R1, Revision.R2}:
        filtered = 0
    return StageTotals(
        received=ingestion.events_received,
        filtered=filtered if snapshot.revision is not None else None,
        processed=ingestion.events_processed,
        failed=ingestion.events_failed,
    )


def without_filtered(report: DeliveryReport) -> DeliveryReport:
    """The delivery report with the events the ingestor's filter dropped taken out.

    The filter's counter gives a total, not entities: its events are in `lost` (they have no
    points), so `lost` drops by that total and completeness is of the events meant to be
    stored. Unknown (None: the ingestor restarted) keeps the report's unknown completeness.
    """
    filtered = report.filtered
    if not filtered or report.not_source:
        return report
    meant = report.fired - filtered
    lost = max(0, report.lost - filtered)
    return replace(
        report,
        lost=lost,
        completeness=round(100.0 * (meant - lost) / meant, 3) if meant > 0 else None,
    )


@dataclass(slots=True)
class _Step:
    """What happened between two readings: [start, end) in Unix seconds."""

    start: float
    end: float
    fired: int = 0
    removed: int = 0
    # Growth of each of the ingestor's totals; None: no counter, or it restarted (fell).
    grown: dict[str, int | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def merge(self, later: _Step) -> None:
        """Take in the step right after this one."""
        self.end = later.end
        self.fired += later.fired
        self.removed += later.removed
        for stage in STAGES:
            a, b = self.grown.get(stage), later.grown.get(stage)
            self.grown[stage] = None if a is None or b is None else a + b
        for entity_id, n in later.counts.items():
            self.counts[entity_id] = self.counts.get(entity_id, 0) + n


@dataclass(frozen=True, slots=True)
class FunnelSpan:
    """One settled span, compared whole: its figures and where its lost events went."""

    start: float
    end: float
    fired: int
    stored: int
    # fired - stored over the entities, not counting points of entities beyond what fired.
    lost: int
    extra: int
    received: int | None
    filtered: int | None
    processed: int | None
    failed: int | None
    lost_before_ingestor: int | None
    lost_in_ingestor: int | None
    lost_writing: int | None
    top_lost: tuple[tuple[str, int], ...]

    def stages(self) -> dict[str, int | None]:
        """Where the span's events went (a negative stage shows as 0, see `_clamp`)."""
        return {
            LOST_BEFORE_INGESTOR: _clamp(self.lost_before_ingestor),
            LOST_IN_INGESTOR: _clamp(self.lost_in_ingestor),
            LOST_WRITING: _clamp(self.lost_writing),
            FILTERED: self.filtered,
        }

    @property
    def lost_unfiltered(self) -> int | None:
        """Lost and not filtered on purpose (None while the filter's share is unknown)."""
        return None if self.filtered is None else max(0, self.lost - self.filtered)

    @property
    def stage(self) -> str:
        """The stage that lost most of the span's events (`unknown` when none can say)."""
        stages = {
            LOST_BEFORE_INGESTOR: self.lost_before_ingestor,
            LOST_IN_INGESTOR: self.lost_in_ingestor,
            LOST_WRITING: self.lost_writing,
        }
        known = {name: n for name, n in stages.items() if n is not None and n > 0}
        if not known:
            return STAGE_UNKNOWN
        return max(known, key=lambda name: known[name])


def _grown(before: int | None, after: int | None) -> int | None:
    if before is None or after is None or after < before:
        return None  # no counter, or a restart: what it counted since is not known
    return after - before


def _sum(values: Iterable[int | None]) -> int | None:
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _minus(a: int | None, *others: int | None) -> int | None:
    if a is None or any(o is None for o in others):
        return None
    return a - sum(o or 0 for o in others)


class Funnel:
    """This bus's counts per step between readings of the ingestor, compared per span.

    `count` and `count_removal` are what the bus listener calls: O(1), one dictionary update.
    """

    def __init__(self) -> None:
        """Nothing is counted before the first reading: a step needs one at each end."""
        self._open: _Step | None = None
        self._totals: StageTotals | None = None
        self._steps: deque[_Step] = deque()
        self.spans: deque[FunnelSpan] = deque()

    def count(self, entity_id: str) -> None:
        """One event with a new state fired on this bus now."""
        if (step := self._open) is not None:
            step.fired += 1
            step.counts[entity_id] = step.counts.get(entity_id, 0) + 1

    def count_removal(self) -> None:
        """One removal (`new_state` None): the ingestor counts it received, then drops it."""
        if (step := self._open) is not None:
            step.removed += 1

    def observe(self, read_at: float, totals: StageTotals) -> None:
        """The ingestor's totals as read at `read_at` (Unix s): closes a step, opens the next."""
        step, before = self._open, self._totals
        if step is not None and before is not None and read_at > step.start:
            step.end = read_at
            step.grown = {
                stage: _grown(getattr(before, stage), getattr(totals, stage)) for stage in STAGES
            }
            self._steps.append(step)
            while len(self._steps) > MAX_STEPS:
                oldest = self._steps.popleft()
                oldest.merge(self._steps.popleft())
                self._steps.appendleft(oldest)
        elif step is not None and read_at <= step.start:
            return  # the same (or an older) reading again
        self._totals = totals
        self._open = _Step(read_at, read_at)

    def settled(self, until: float) -> tuple[float, float] | None:
        """The span [start, end) InfluxDB can be asked about now: steps ending by `until`."""
        done = [s for s in self._steps if s.end <= until]
        return (done[0].start, done[-1].end) if done else None

    def compare(
        self, until: float, stored: Mapping[str, int], now: float, period: float
    ) -> FunnelSpan:
        """Compare the steps ending by `until` with InfluxDB's points per entity in them.

        Returns the span, also kept in `spans` (those ending within `period` of `now`).
        """
        merged = self._steps.popleft()
        while self._steps and self._steps[0].end <= until:
            merged.merge(self._steps.popleft())
        span = _judge(merged, stored)
        self.spans.append(span)
        while self.spans and self.spans[0].end < now - period:
            self.spans.popleft()
        return span

    def totals(self) -> dict[str, int | None]:
        """The stages summed over the spans kept (the period): the sensor's attributes.

        All None until a span was compared: nothing is known yet.
        """
        spans = list(self.spans)
        if not spans:
            return dict.fromkeys(FUNNEL_STAGES)
        return {
            LOST_BEFORE_INGESTOR: _clamp(_sum(s.lost_before_ingestor for s in spans)),
            LOST_IN_INGESTOR: _clamp(_sum(s.lost_in_ingestor for s in spans)),
            LOST_WRITING: _clamp(_sum(s.lost_writing for s in spans)),
            FILTERED: _sum(s.filtered for s in spans),
        }


def _clamp(value: int | None) -> int | None:
    """A negative stage is an event in flight at a reading, counted a span late: not a gain."""
    return None if value is None else max(0, value)


def _judge(step: _Step, stored: Mapping[str, int]) -> FunnelSpan:
    lost_per_entity: dict[str, int] = {}
    matched = extra = 0
    for entity_id in step.counts.keys() | stored.keys():
        fired, found = step.counts.get(entity_id, 0), stored.get(entity_id, 0)
        matched += min(fired, found)
        extra += max(0, found - fired)
        if fired > found:
            lost_per_entity[entity_id] = fired - found
    received, filtered, processed, failed = (step.grown.get(s) for s in STAGES)
    top = sorted(lost_per_entity.items(), key=lambda pair: (-pair[1], pair[0]))
    return FunnelSpan(
        start=step.start,
        end=step.end,
        fired=step.fired,
        stored=matched,
        lost=step.fired - matched,
        extra=extra,
        received=received,
        filtered=filtered,
        processed=processed,
        failed=failed,
        lost_before_ingestor=_minus(step.fired + step.removed, received),
        lost_in_ingestor=_minus(received, step.removed, filtered, processed),
        lost_writing=_minus(processed, matched),
        top_lost=tuple(top[:TOP_ENTITIES]),
    )
