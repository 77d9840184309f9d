"""Classification of S3 failures that the moto server cannot produce (redirects, throttling, 5xx,
region mismatches, transport errors): real botocore/boto3 exception objects, built the way botocore
builds them from a store's answer."""

from __future__ import annotations

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore import exceptions as bce

from roomcast.storage import PERMANENT_KINDS, StorageError, StorageErrorKind
from roomcast.storage.s3 import S3Store
from roomcast.storage.s3_errors import classify


def _client_error(code: str | None, status: int, message: str = "", op: str = "PutObject") -> bce.ClientError:
    error: dict[str, str] = {"Message": message} if message else {}
    # Without a body (HEAD answers), botocore puts the status in the code.
    error["Code"] = code if code is not None else str(status)
    return bce.ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, op)


@pytest.mark.parametrize(
    ("code", "status", "message", "op", "kind"),
    [
        ("NoSuchBucket", 404, "The specified bucket does not exist", "put", "no_such_bucket"),
        ("AccessDenied", 403, "Access Denied", "put", "access_denied"),
        ("AllAccessDisabled", 403, "", "put", "access_denied"),
        ("InvalidAccessKeyId", 403, "", "put", "bad_credentials"),
        ("SignatureDoesNotMatch", 403, "", "put", "bad_credentials"),
        ("ExpiredToken", 400, "The provided token has expired.", "put", "bad_credentials"),
        ("InvalidToken", 400, "", "put", "bad_credentials"),
        (
            "PermanentRedirect",
            301,
            "The bucket you are attempting to access must be addressed",
            "put",
            "wrong_endpoint",
        ),
        ("SecondLevelDomainForbidden", 403, "Please use virtual hosted style", "put", "wrong_endpoint"),
        (
            "AuthorizationHeaderMalformed",
            400,
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'",
            "put",
            "wrong_endpoint",
        ),
        ("AuthorizationHeaderMalformed", 400, "Invalid credential date.", "put", "bad_credentials"),
        ("InvalidBucketName", 400, "The specified bucket is not valid.", "put", "invalid_request"),
        ("KeyTooLongError", 400, "", "put", "invalid_request"),
        ("EntityTooLarge", 400, "", "put", "invalid_request"),
        ("NoSuchKey", 404, "", "get", "no_such_key"),
        (
            "RequestTimeout",
            400,
            "Your socket connection to the server was not read from",
            "put",
            "interrupted",
        ),
        ("BadDigest", 400, "", "put", "interrupted"),
        ("SlowDown", 503, "Please reduce your request rate.", "put", "throttled"),
        ("Throttling", 400, "", "put", "throttled"),
        ("InternalError", 500, "We encountered an internal error.", "put", "server_error"),
        ("ServiceUnavailable", 503, "", "put", "server_error"),
        # Unknown codes and body-less answers fall back to the status.
        ("SomethingNew", 400, "", "put", "invalid_request"),
        ("SomethingNew", 409, "", "put", "unknown"),
        ("SomethingNew", 429, "", "put", "throttled"),
        ("SomethingNew", 502, "", "put", "server_error"),
        (None, 301, "", "put", "wrong_endpoint"),
        (None, 403, "", "head", "access_denied"),
        (None, 404, "", "head", "no_such_key"),
        (None, 404, "", "list", "no_such_bucket"),
        (None, 503, "", "head", "server_error"),
    ],
)
def test_client_errors(code: str | None, status: int, message: str, op: str, kind: str) -> None:
    failure = classify(_client_error(code, status, message), op)
    assert failure.kind == kind
    assert failure.retryable is (StorageErrorKind(kind) not in PERMANENT_KINDS)
    assert failure.status == status
    assert failure.code == code


def test_permanent_and_transient_sets() -> None:
    permanent = {k.value for k in PERMANENT_KINDS}
    assert permanent == {
        "no_such_bucket",
        "access_denied",
        "bad_credentials",
        "wrong_endpoint",
        "invalid_request",
        "no_such_key",
        "source_missing",
    }
    for kind in StorageErrorKind:
        assert StorageError("x", kind=kind).retryable is (kind.value not in permanent)
    assert StorageError("x").kind == "unknown" and StorageError("x").retryable
    with pytest.raises(ValueError):
        StorageError("x", kind="not-a-kind")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (bce.EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b/k"), "unreachable"),
        (bce.ConnectTimeoutError(endpoint_url="http://10.255.255.1/b/k"), "unreachable"),
        (bce.SSLError(endpoint_url="https://h/b/k", error="certificate verify failed"), "unreachable"),
        (bce.ReadTimeoutError(endpoint_url="http://h/b/k"), "interrupted"),
        (bce.ConnectionClosedError(endpoint_url="http://h/b/k"), "interrupted"),
        (bce.NoCredentialsError(), "bad_credentials"),
        (bce.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), "bad_credentials"),
        (bce.ParamValidationError(report="Invalid bucket name"), "invalid_request"),
        (bce.InvalidRegionError(region_name="bad region"), "wrong_endpoint"),
        (ValueError("Invalid endpoint: htp:/nowhere"), "wrong_endpoint"),
        (ConnectionRefusedError(111, "Connection refused"), "unreachable"),
        (RuntimeError("boom"), "unknown"),
    ],
)
def test_transport_and_client_side_errors(exc: BaseException, kind: str) -> None:
    failure = classify(exc, "put")
    assert failure.kind == kind
    assert failure.retryable is (StorageErrorKind(kind) not in PERMANENT_KINDS)


def test_managed_transfer_wrapper_is_unwrapped() -> None:
    """boto3's multipart upload re-raises the store's answer as S3UploadFailedError (chained)."""
    try:
        try:
            raise _client_error(
                "NoSuchBucket", 404, "The specified bucket does not exist", "CreateMultipartUpload"
            )
        except bce.ClientError as e:
            raise S3UploadFailedError(f"Failed to upload f to b/k: {e}")  # noqa: B904 - as boto3 does
    except S3UploadFailedError as wrapped:
        failure = classify(wrapped, "put")
    assert failure.kind == "no_such_bucket" and not failure.retryable and failure.code == "NoSuchBucket"
    assert classify(S3UploadFailedError("no cause"), "put").kind == "unknown"


async def test_store_error_message_names_the_object_and_hides_secrets() -> None:
    secret = "s3cr3t-value-that-must-not-show"
    store = S3Store(
        bucket="bkt",
        endpoint_url="http://127.0.0.1:1",
        region="us-east-1",
        access_key="AKID",
        secret_key=secret,
    )
    err = store._error(
        "put", "rec/a.mp4", _client_error("SignatureDoesNotMatch", 403, f"we computed {secret}")
    )
    await store.close()
    assert err.kind == "bad_credentials" and not err.retryable and err.code == "SignatureDoesNotMatch"
    assert "s3://bkt/rec/a.mp4" in err.message and secret not in err.message
