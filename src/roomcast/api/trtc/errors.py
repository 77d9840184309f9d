"""TencentCloud API 3.0 errors: ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``."""

from __future__ import annotations

from roomcast.domain.errors import ErrorKind, RoomcastError


class TrtcError(Exception):
    """An error answered in the API 3.0 envelope (always with HTTP 200, as the vendor does)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# Specific codes the docs list (part A section 1.9 and part B); a generic code is used otherwise.
KNOWN_CODES: frozenset[str] = frozenset(
    {
        "InvalidParameter.RoomId",
        "InvalidParameter.SdkAppId",
        "InvalidParameter.StrRoomId",
        "InvalidParameter.StreamUrl",
        "InvalidParameter.TaskId",
        "InvalidParameter.UserId",
        "InvalidParameter.UserIds",
        "InvalidParameter.UserSig",
        "InvalidParameter.OutOfRange",
        "InvalidParameter.PageNumber",
        "InvalidParameter.PageSize",
        "InvalidParameter.StartTs",
        "InvalidParameter.EndTs",
        "InvalidParameter.EncodeParams",
        "InvalidParameterValue.RoomId",
        "MissingParameter.AccessKey",
        "MissingParameter.AppId",
        "MissingParameter.Bucket",
        "MissingParameter.CloudStorage",
        "MissingParameter.EndTs",
        "MissingParameter.RecordMode",
        "MissingParameter.RecordParams",
        "MissingParameter.Region",
        "MissingParameter.RoomId",
        "MissingParameter.SdkAppId",
        "MissingParameter.SecretKey",
        "MissingParameter.StartTs",
        "MissingParameter.StorageParams",
        "MissingParameter.StreamType",
        "MissingParameter.TaskId",
        "MissingParameter.UserId",
        "MissingParameter.UserIds",
        "MissingParameter.UserSig",
        "MissingParameter.Vendor",
    }
)


def specific(base: str, field: str) -> str:
    """``base.Field`` if the docs list that code, else ``base``."""
    code = f"{base}.{field}"
    return code if code in KNOWN_CODES else base


_GENERIC: dict[ErrorKind, str] = {
    ErrorKind.NOT_FOUND: "ResourceNotFound",
    ErrorKind.ALREADY_EXISTS: "ResourceInUse",
    ErrorKind.INVALID_ARGUMENT: "InvalidParameterValue",
    ErrorKind.PERMISSION_DENIED: "UnauthorizedOperation",
    ErrorKind.UNAUTHENTICATED: "AuthFailure",
    ErrorKind.FAILED_PRECONDITION: "FailedOperation",
    ErrorKind.LIMIT_EXCEEDED: "LimitExceeded",
    ErrorKind.UNAVAILABLE: "ResourceUnavailable",
    ErrorKind.INTERNAL: "InternalError",
}


def from_domain(err: RoomcastError) -> TrtcError:
    """A generic mapping; handlers raise precise TrtcErrors where the docs name one."""
    return TrtcError(_GENERIC[err.kind], err.message)
