"""Errors the engine raises; each dialect maps them onto its vendor's codes.

An error carries a kind (what went wrong in general) and a subject (what it is about, e.g.
``"app"``, ``"task"``), so an adapter can pick precise vendor codes such as TRTC's
``InvalidParameter.TaskId`` without the engine knowing vendor names.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    INVALID_ARGUMENT = "invalid_argument"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHENTICATED = "unauthenticated"
    FAILED_PRECONDITION = "failed_precondition"
    LIMIT_EXCEEDED = "limit_exceeded"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class RoomcastError(Exception):
    """Base class of every expected, reportable failure."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str, *, subject: str = "", kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.subject = subject
        if kind is not None:
            self.kind = kind


class NotFound(RoomcastError):
    kind = ErrorKind.NOT_FOUND


class AlreadyExists(RoomcastError):
    kind = ErrorKind.ALREADY_EXISTS


class InvalidArgument(RoomcastError):
    kind = ErrorKind.INVALID_ARGUMENT


class PermissionDenied(RoomcastError):
    kind = ErrorKind.PERMISSION_DENIED


class Unauthenticated(RoomcastError):
    kind = ErrorKind.UNAUTHENTICATED


class FailedPrecondition(RoomcastError):
    kind = ErrorKind.FAILED_PRECONDITION


class LimitExceeded(RoomcastError):
    kind = ErrorKind.LIMIT_EXCEEDED


class Unavailable(RoomcastError):
    kind = ErrorKind.UNAVAILABLE
