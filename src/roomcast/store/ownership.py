"""Which rows are free to take over: those whose owner node is not alive (see services/nodes.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from roomcast.store.tables import NodeRow

ALIVE = "alive"


def orphaned(column: Any, me: str) -> ColumnElement[bool]:
    """Rows whose owner node (``column``) is neither an alive node nor ``me``."""
    alive = select(NodeRow.node_id).where(NodeRow.state == ALIVE).scalar_subquery()
    return and_(or_(column.is_(None), column.not_in(alive)), or_(column.is_(None), column != me))
