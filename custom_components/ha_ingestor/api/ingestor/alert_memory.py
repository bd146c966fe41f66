"""The R3 Admin API's firing AlertManager alerts, held across the gaps in its listing.

Apart from the merging of one refresh because it is the one piece that remembers across
refreshes: whether a vanished alert was resolved or only aged out of the Admin API depends on
when AlertManager last notified it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .admin_payloads import normalize_alerts_active

if TYPE_CHECKING:
    from datetime import datetime

    from ..core.models import FiringAlert
    from .replies import Reply

# R3's Admin API forgets a firing alert 900 s after AlertManager's last notification, and
# AlertManager repeats one only every 30 min (critical) or 4 h: hold it across that gap.
_ALERT_TTL = 900.0
_ALERT_REPEAT = {"critical": 1800.0}
_ALERT_REPEAT_DEFAULT = 4 * 3600.0
_ALERT_GRACE = 300.0


class AlertMemory:
    """The firing AlertManager alerts, without the R3 Admin API's 15-minute gaps.

    The Admin API drops a resolved alert at once and a firing one 900 s after its last
    notification (`received_at`). So an alert that vanishes before that was resolved; one that
    vanishes after it is held as firing until AlertManager's next repeat could have renewed it.
    """

    def __init__(self) -> None:
        """Hold nothing, and tell nothing, until the Admin API first lists alerts."""
        self._held: dict[str, tuple[FiringAlert, datetime]] = {}
        self._seen = False

    def update(self, reply: Reply | None, now: datetime) -> tuple[FiringAlert, ...] | None:
        """The alerts firing now; None while the Admin API never listed alerts."""
        listed = normalize_alerts_active(reply.body) if reply and reply.ok else None
        if listed is None:
            return tuple(a for a, _ in self._held.values()) if self._seen else None
        self._seen = True
        held = {a.fingerprint: (a, a.received_at or now) for a in listed}
        for key, (alert, notified) in self._held.items():
            age = (now - notified).total_seconds()
            repeat = _ALERT_REPEAT.get(alert.severity or "", _ALERT_REPEAT_DEFAULT)
            if key not in held and _ALERT_TTL <= age < repeat + _ALERT_GRACE:
                held[key] = (alert, notified)
        self._held = held
        return tuple(a for a, _ in held.values())
