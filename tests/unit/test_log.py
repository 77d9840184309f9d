import json
import logging

import pytest

from roomcast.log import JsonFormatter, event, redact, register_secret, request_id_var


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
