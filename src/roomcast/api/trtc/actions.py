"""The TRTC and TIW actions roomcast serves. Each feature module registers its own here."""

from __future__ import annotations

from roomcast.api.tiw import online_record
from roomcast.api.trtc import ai, ingest, monitoring, recording, relay, rooms, usage
from roomcast.api.trtc.gateway import ActionRegistry


def register(registry: ActionRegistry) -> None:
    """Add every served action to ``registry``; unregistered actions answer ``InvalidAction``."""
    rooms.register(registry)
    recording.register(registry)
    ingest.register(registry)
    relay.register(registry)
    online_record.register(registry)
    ai.register(registry)
    monitoring.register(registry)
    usage.register(registry)
