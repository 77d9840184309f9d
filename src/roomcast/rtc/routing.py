"""Where a room is served: the SFU asks a join gate before it opens or enters a room.

One node: no gate, every room is here. Several nodes (``cluster.placement``): the gate places the
room on a node; a join that reached another node is answered with :class:`RoomElsewhere`, which
the WebSocket answer (a ``redirect`` message) and WHIP/WHEP (``307``) turn into the room's node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .errors import RtcError

JoinGate = Callable[[str, str], Awaitable[None]]
"""``gate(app_key, room_id)``: returns if the room is served here, raises otherwise."""


class RoomElsewhere(RtcError):
    """The room is served by another node; ``base_url`` is that node's public URL."""

    code = "redirect"

    def __init__(self, base_url: str, node_id: str) -> None:
        super().__init__(f"the room is served by node {node_id} at {base_url}")
        self.base_url = base_url.rstrip("/")
        self.node_id = node_id


class RoutingUnavailable(RtcError):
    """The room cannot be placed now (the routing store is unreachable): retry later."""

    code = "routing_unavailable"


def redirect_message(request: dict[str, Any], exc: RoomElsewhere, ws_path: str) -> dict[str, Any]:
    """The signalling answer to a join that must go to another node (docs/signalling.md)."""
    base = exc.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return {
        "type": "redirect",
        "id": request.get("id"),
        "url": base + ws_path,
        "node_id": exc.node_id,
    }
