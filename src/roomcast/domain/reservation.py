"""Recording reservations: a short-lived resource id a client obtains before starting a recording."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

RESERVATION_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    sdk_app_id: int
    room_id: str | None
    created_at: datetime
    expires_at: datetime
    task_id: str | None = None

    def usable(self, now: datetime) -> bool:
        return self.task_id is None and now < self.expires_at
