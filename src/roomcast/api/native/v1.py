"""The native API under ``/api/v1``: every router, mounted together."""

from __future__ import annotations

from fastapi import FastAPI

from roomcast.api.native import account, callbacks, rooms, tasks, usage


def mount(app: FastAPI) -> None:
    for module in (account, rooms, tasks, callbacks, usage):
        app.include_router(module.build_router())
