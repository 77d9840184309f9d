"""The native API under ``/api/v1``: every router, mounted together."""

from __future__ import annotations

from fastapi import FastAPI

from roomcast.api.native import account, callbacks, rooms, tasks


def mount(app: FastAPI) -> None:
    for module in (account, rooms, tasks, callbacks):
        app.include_router(module.build_router())
