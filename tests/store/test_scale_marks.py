"""Scale marks: the users and calls present per app and hour that the statistics recorder keeps,
read by the scale APIs instead of sessions. Counted from the marks, every figure must be the one
counted from the sessions themselves, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from roomcast.rtc import events as ev
from roomcast.rtc.events import LeaveReason
from roomcast.services.activity import ActivityRecorder
from roomcast.stats.ledger import UsageLedger
from roomcast.stats.queries import StatsQueries
from roomcast.stats.recorder import StatsRecorder
from roomcast.store.db import Database
from roomcast.store.tables import RoomSessionRow, ScaleMarkRow, UserSessionRow

APP = "1400000002"


async def test_marks_give_the_session_counts(db: Database) -> None:
    bus = ev.EventBus()
    activity = ActivityRecorder(db.sessions, bus)
    stats = StatsRecorder(db.sessions, bus, UsageLedger(db.sessions))
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)

    def at(hours: int, minutes: int = 0) -> float:
        return (base + timedelta(hours=hours, minutes=minutes)).timestamp()

    def joined(room: str, user: str, session: str, t: float) -> ev.RoomEvent:
        return ev.ParticipantJoined(app_key=APP, room_id=room, user_id=user, session_id=session, at=t)

    def left(room: str, user: str, session: str, t: float) -> ev.RoomEvent:
        return ev.ParticipantLeft(
            app_key=APP, room_id=room, user_id=user, session_id=session, reason=LeaveReason.LEFT, at=t
        )

    story: list[ev.RoomEvent] = [
        ev.RoomOpened(app_key=APP, room_id="42", at=at(0, 10)),
        joined("42", "alice", "s1", at(0, 10)),
        ev.ParticipantJoined(
            app_key=APP, room_id="42", user_id="rec", session_id="s0", hidden=True, at=at(0, 11)
        ),
        joined("42", "bob", "s2", at(1, 30)),
        ev.RoomOpened(app_key=APP, room_id="43", at=at(2, 5)),
        joined("43", "alice", "s3", at(2, 5)),  # alice in two rooms at once
        joined("43", "carol", "s4", at(2, 6)),
        left("43", "alice", "s3", at(2, 50)),
        left("43", "carol", "s4", at(2, 50)),
        ev.RoomClosed(app_key=APP, room_id="43", reason="empty", at=at(2, 50)),
        ev.RoomOpened(app_key=APP, room_id="43", at=at(2, 55)),  # the same room, a second call
        joined("43", "carol", "s5", at(2, 55)),
        left("42", "bob", "s2", at(3)),  # on the hour: present in hour 3 too
        left("42", "alice", "s1", at(3, 20)),
        left("42", "rec", "s0", at(3, 20)),
        ev.RoomClosed(app_key=APP, room_id="42", reason="empty", at=at(3, 20)),
        left("43", "carol", "s5", at(4, 1)),
        ev.RoomClosed(app_key=APP, room_id="43", reason="empty", at=at(4, 1)),
    ]
    q = StatsQueries(db.sessions)
    hourly = [base + timedelta(hours=h) for h in range(7)]
    for e in story:
        stats.apply(e)
    await activity._write(story)
    # before the recorder marks anything (sessions from before an upgrade) the sessions are counted
    before = [(p.users, p.rooms, p.entries) for p in await q.counts(APP, hourly)]
    assert before == [(1, 1, 1), (2, 1, 1), (3, 3, 3), (3, 2, 0), (1, 1, 0), (0, 0, 0)]
    async with db.sessions.begin() as s:  # the recorder began marking earlier (another app)
        s.add(
            ScaleMarkRow(app_key="other", start=base - timedelta(hours=2), kind="u", room_id="r", subject="x")
        )
    await stats.flush()
    await stats.flush()  # nothing is written twice

    async with db.sessions() as s:
        marks = (
            await s.execute(select(func.count()).select_from(ScaleMarkRow).where(ScaleMarkRow.app_key == APP))
        ).scalar()
    # users: alice h0-3 (4) + bob h1-3 (3) + alice@43 h2 + carol@43 h2-4 (3)
    # calls: 42 h0-3 (4), 43 h2, 43 again h2-4 (3)
    assert marks == 4 + 3 + 1 + 3 + 4 + 1 + 3

    three = [base, base + timedelta(hours=3), base + timedelta(hours=6)]  # two long buckets (CASE)
    for per_room in (False, True):
        for edges in (hourly, three):
            marked = await q.counts(APP, edges, distinct_per_room=per_room)
            exact = await q.scale(APP, edges, distinct_per_room=per_room)
            assert [(p.users, p.rooms, p.entries) for p in marked] == [
                (p.users, p.rooms, p.entries) for p in exact
            ], (per_room, edges)
    got = [(p.users, p.rooms, p.entries) for p in await q.counts(APP, hourly)]
    assert got == [(1, 1, 1), (2, 1, 1), (3, 3, 3), (3, 2, 0), (1, 1, 0), (0, 0, 0)]
    per_room = [(p.users, p.entries) for p in await q.counts(APP, three, distinct_per_room=True)]
    assert per_room == [(4, 5), (3, 0)]

    async with db.sessions.begin() as s:  # the past is read from the marks alone
        await s.execute(delete(UserSessionRow).where(UserSessionRow.app_key == APP))
        await s.execute(delete(RoomSessionRow).where(RoomSessionRow.app_key == APP))
    assert [(p.users, p.rooms, p.entries) for p in await q.counts(APP, hourly)] == got
