import json
import logging

import pytest

from roomcast.log import (
    JsonFormatter,
    TextFormatter,
    event,
    is_secret_field,
    redact,
    register_secret,
    request_id_var,
)


def test_redacts_secret_fields_and_known_values() -> None:
    register_secret("S3cr3tValue123456")
    out = redact(
        {
            "secret_key": "abc",
            "secret_id": "AKID1",
            "nested": {"Authorization": "x"},
            "msg": "k=S3cr3tValue123456",
        }
    )
    assert out == {
        "secret_key": "***",
        "secret_id": "AKID1",
        "nested": {"Authorization": "***"},
        "msg": "k=***",
    }


def test_json_line_has_request_id(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("t")
    token = request_id_var.set("rid-1")
    try:
        with caplog.at_level(logging.INFO):
            event(logger, "thing.happened", user_sig="eJx...", n=3)
        line = JsonFormatter().format(caplog.records[-1])
    finally:
        request_id_var.reset(token)
    data = json.loads(line)
    assert data["event"] == "thing.happened" and data["request_id"] == "rid-1"
    assert data["user_sig"] == "***" and data["n"] == 3
    assert "\n" not in line


def test_object_keys_in_clear_secrets_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("t")
    with caplog.at_level(logging.INFO):
        event(
            logger, "upload.failed", key="rec/a.mp4", secret_key="x", object_key="rec/b.mp4", access_key="AK"
        )
    record = caplog.records[-1]
    data = json.loads(JsonFormatter().format(record))
    assert data["key"] == "rec/a.mp4" and data["object_key"] == "rec/b.mp4"
    assert data["secret_key"] == "***" and data["access_key"] == "***"
    text = TextFormatter().format(record)
    assert "key=rec/a.mp4" in text and "secret_key=***" in text and "secret_key=x" not in text


@pytest.mark.parametrize(
    "name",
    [
        "secret_key",
        "SecretKey",
        "secretKey",
        "access_key",
        "AccessKey",
        "app_key",
        "api_key",
        "apikey",
        "X-Api-Key",
        "callback_key",
        "CallbackKey",
        "private_key",
        "session_token",
        "X-Amz-Security-Token",
        "password",
        "db_passwd",
        "Authorization",
        "signature",
        "X-Amz-Signature",
        "user_sig",
        "UserSig",
        "usersig",
        "sk",
        "client_secret",
        "credentials",
    ],
)
def test_secret_field_names(name: str) -> None:
    assert is_secret_field(name)
    assert redact({name: "v"}) == {name: "***"}


@pytest.mark.parametrize(
    "name",
    [
        *("key", "Key", "object_key", "ObjectKey", "s3_key", "S3Key", "file_key", "FileKey", "storage_key"),
        *(
            "secret_id",
            "SecretId",
            "access_key_id",
            "SdkAppId",
            "token_ttl_s",
            "task",
            "disk",
            "keys",
            "prefix",
        ),
    ],
)
def test_clear_field_names(name: str) -> None:
    assert not is_secret_field(name)
    assert redact({name: "v"}) == {name: "v"}


def test_known_secret_values_are_masked_in_object_keys_too() -> None:
    register_secret("AKIDknownSecretValue99")
    assert redact({"key": "rec/AKIDknownSecretValue99/a.mp4"}) == {"key": "rec/***/a.mp4"}
