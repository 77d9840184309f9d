"""What an S3-compatible store's failure means: botocore/boto3 exceptions -> :class:`StorageErrorKind`.

The error codes are the S3 API's, which Tencent COS, Huawei OBS, Alibaba OSS, Qiniu, MinIO and
Ceph RGW answer too (plus a few vendor codes noted below). Order of evidence: the store's error
code, then the HTTP status, then the exception type (for failures that never got an answer).
A code is never trusted blindly to be permanent: unknown codes fall back to their HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass

from boto3.exceptions import S3UploadFailedError
from botocore import exceptions as bce

from roomcast.storage.base import StorageErrorKind, os_error_kind

K = StorageErrorKind

CODE_KINDS: dict[str, StorageErrorKind] = {
    "NoSuchBucket": K.NO_SUCH_BUCKET,
    "NoSuchKey": K.NO_SUCH_KEY,
    # Valid credentials, not allowed.
    "AccessDenied": K.ACCESS_DENIED,
    "AllAccessDisabled": K.ACCESS_DENIED,
    "AccountProblem": K.ACCESS_DENIED,
    "InvalidPayer": K.ACCESS_DENIED,
    # Credentials the store does not accept.
    "InvalidAccessKeyId": K.BAD_CREDENTIALS,
    "SignatureDoesNotMatch": K.BAD_CREDENTIALS,
    "InvalidToken": K.BAD_CREDENTIALS,
    "ExpiredToken": K.BAD_CREDENTIALS,
    "TokenRefreshRequired": K.BAD_CREDENTIALS,
    "InvalidSecurity": K.BAD_CREDENTIALS,
    "CredentialsNotSupported": K.BAD_CREDENTIALS,
    "NotSignedUp": K.BAD_CREDENTIALS,
    # The bucket lives at another endpoint / region.
    "PermanentRedirect": K.WRONG_ENDPOINT,
    "IllegalLocationConstraintException": K.WRONG_ENDPOINT,
    "SecondLevelDomainForbidden": K.WRONG_ENDPOINT,  # Alibaba OSS refuses path-style requests
    "InvalidRegionName": K.WRONG_ENDPOINT,
    # The request itself.
    "InvalidBucketName": K.INVALID_REQUEST,
    "InvalidArgument": K.INVALID_REQUEST,
    "InvalidRequest": K.INVALID_REQUEST,
    "InvalidURI": K.INVALID_REQUEST,
    "InvalidObjectName": K.INVALID_REQUEST,
    "KeyTooLongError": K.INVALID_REQUEST,
    "EntityTooLarge": K.INVALID_REQUEST,
    "EntityTooSmall": K.INVALID_REQUEST,
    "InvalidDigest": K.INVALID_REQUEST,
    "InvalidStorageClass": K.INVALID_REQUEST,
    "MalformedXML": K.INVALID_REQUEST,
    "MissingContentLength": K.INVALID_REQUEST,
    "MissingSecurityHeader": K.INVALID_REQUEST,
    "MethodNotAllowed": K.INVALID_REQUEST,
    "NotImplemented": K.INVALID_REQUEST,  # 501: the store lacks the feature; retrying won't add it
    # Transient.
    "RequestTimeout": K.INTERRUPTED,
    "BadDigest": K.INTERRUPTED,
    "IncompleteBody": K.INTERRUPTED,
    "SlowDown": K.THROTTLED,
    "Throttling": K.THROTTLED,
    "ThrottlingException": K.THROTTLED,
    "RequestThrottled": K.THROTTLED,
    "RequestLimitExceeded": K.THROTTLED,
    "TooManyRequests": K.THROTTLED,
    "TooManyRequestsException": K.THROTTLED,
    "BandwidthLimitExceeded": K.THROTTLED,
    "InternalError": K.SERVER_ERROR,
    "InternalFailure": K.SERVER_ERROR,
    "ServiceUnavailable": K.SERVER_ERROR,
    "ServiceUnavailableException": K.SERVER_ERROR,
    "ServerBusy": K.SERVER_ERROR,
}

_RETRYABLE_4XX: dict[int, StorageErrorKind] = {
    408: K.INTERRUPTED,
    409: K.UNKNOWN,  # OperationAborted and other conflicts: "try again"
    423: K.UNKNOWN,
    429: K.THROTTLED,
}


@dataclass(frozen=True)
class S3Failure:
    """One classified failure. ``detail`` is the store's code and message or the exception text
    (not yet cleaned of secrets: the store does that, it knows them)."""

    kind: StorageErrorKind
    retryable: bool
    code: str | None
    status: int | None
    detail: str


def _status_kind(status: int, op: str) -> StorageErrorKind:
    if status == 301:
        return K.WRONG_ENDPOINT
    if status == 401:
        return K.BAD_CREDENTIALS
    if status == 403:
        return K.ACCESS_DENIED
    if status == 404:
        # A HEAD has no body, so botocore only says "404": for an object read it is the object,
        # for a write or a listing only the bucket can be missing.
        return K.NO_SUCH_KEY if op in ("head", "get") else K.NO_SUCH_BUCKET
    if status in _RETRYABLE_4XX:
        return _RETRYABLE_4XX[status]
    if 400 <= status < 500:
        return K.INVALID_REQUEST
    if status >= 500:
        return K.SERVER_ERROR
    return K.UNKNOWN


def _client_error(exc: bce.ClientError, op: str) -> S3Failure:
    err = exc.response.get("Error", {}) or {}
    code = str(err.get("Code") or "")
    msg = str(err.get("Message") or "")
    raw_status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
    status = int(raw_status) if raw_status is not None else (int(code) if code.isdigit() else None)
    if code.isdigit():  # a HEAD answer without a body: botocore uses the status as the code
        code = ""
    kind = CODE_KINDS.get(code)
    if code == "AuthorizationHeaderMalformed":
        # S3 says this for a signature made for the wrong region, and for a malformed credential.
        kind = K.WRONG_ENDPOINT if "region" in msg.lower() else K.BAD_CREDENTIALS
    if kind is None:
        kind = _status_kind(status, op) if status is not None else K.UNKNOWN
    detail = f"{code or 'error'} (HTTP {status})" + (f" {msg}" if msg else "")
    return S3Failure(kind, not kind.permanent, code or None, status, detail)


def _exception_kind(exc: BaseException) -> StorageErrorKind:
    if isinstance(exc, bce.ConnectionError):  # refused, DNS, TLS, proxy, connect timeout
        return K.UNREACHABLE
    if isinstance(exc, bce.HTTPClientError | bce.IncompleteReadError | bce.ChecksumError):
        return K.INTERRUPTED  # read timeout, connection closed, body cut short or damaged
    if isinstance(
        exc,
        bce.NoCredentialsError
        | bce.PartialCredentialsError
        | bce.CredentialRetrievalError
        | bce.UnknownCredentialError,
    ):
        return K.BAD_CREDENTIALS
    if isinstance(
        exc,
        bce.BaseEndpointResolverError
        | bce.InvalidRegionError
        | bce.InvalidHostLabelError
        | bce.InvalidS3AddressingStyleError
        | bce.UnknownRegionError,
    ):
        return K.WRONG_ENDPOINT
    if isinstance(exc, bce.ParamValidationError | bce.ValidationError | bce.InvalidDNSNameError):
        return K.INVALID_REQUEST
    if isinstance(exc, ValueError) and str(exc).startswith("Invalid endpoint"):
        return K.WRONG_ENDPOINT  # botocore's check of endpoint_url when the client is made
    if isinstance(exc, TimeoutError):
        return K.INTERRUPTED
    if isinstance(exc, OSError):
        return os_error_kind(exc)
    return K.UNKNOWN


_BOTO_ERRORS: tuple[type[BaseException], ...] = (bce.ClientError, bce.BotoCoreError)


def _cause(exc: BaseException) -> BaseException | None:
    """The botocore error behind boto3's managed-transfer wrapper (it chains implicitly)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, _BOTO_ERRORS):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def classify(exc: BaseException, op: str = "") -> S3Failure:
    """Classify a failure of the S3 operation ``op`` ("put", "get", "head", "delete", "list"...)."""
    if isinstance(exc, S3UploadFailedError):
        inner = _cause(exc)
        if inner is not None:
            return classify(inner, op)
        return S3Failure(K.UNKNOWN, True, "S3UploadFailedError", None, str(exc))
    if isinstance(exc, bce.ClientError):
        return _client_error(exc, op)
    kind = _exception_kind(exc)
    return S3Failure(kind, not kind.permanent, type(exc).__name__, None, f"{type(exc).__name__}: {exc}")
