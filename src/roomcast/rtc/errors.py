"""Typed errors raised by the SFU; signalling maps them to protocol error codes."""

from __future__ import annotations


class RtcError(Exception):
    """Base class. ``code`` is a stable, vendor-neutral identifier."""

    code = "rtc_error"


class RoomFullError(RtcError):
    code = "room_full"


class TooManyRoomsError(RtcError):
    code = "too_many_rooms"


class RoomClosedError(RtcError):
    code = "room_closed"


class NotFoundError(RtcError):
    code = "not_found"


class PermissionDeniedError(RtcError):
    code = "permission_denied"


class NegotiationError(RtcError):
    code = "negotiation_failed"


class AuthError(RtcError):
    code = "unauthorized"


class BadRequestError(RtcError):
    code = "bad_request"
