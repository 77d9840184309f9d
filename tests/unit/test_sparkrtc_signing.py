"""SDK-HMAC-SHA256 (Huawei AK/SK) verification against huaweicloudsdkcore's own signer and client."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from roomcast.api.sparkrtc.signing import (
    HttpRequest,
    SignatureError,
    SignatureReason,
    canonical_query_string,
    canonical_request,
    canonical_uri,
    check_sdk_date,
    format_sdk_date,
    parse_authorization,
    parse_sdk_date,
    sign,
    verify,
)

AK = "HWAKROOMCASTTEST0001"
SK = "roomcastTESTsecretKEYforHuawei0123456789"
PROJECT_ID = "0123456789abcdef0123456789abcdef"


def _reason(exc: pytest.ExceptionInfo[SignatureError]) -> SignatureReason:
    return exc.value.reason


def _ts(sdk_date: str) -> float:
    return parse_sdk_date(sdk_date).timestamp()


# --------------------------------------------------------------------------------------------------
# The SDK's signer fed directly


def _sdk_sign(
    method: str,
    path: str,
    *,
    query: list[tuple[str, object]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> HttpRequest:
    """Sign with huaweicloudsdkcore's Signer and return what a server would receive."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    sdk_req = SdkRequest(
        method=method,
        schema="https",
        host="rtc-api.myhuaweicloud.com",
        resource_path=path,
        query_params=query or [],
        header_params=dict(headers or {}),
        body=body,
    )
    signed = Signer(BasicCredentials(AK, SK)).sign(sdk_req)
    target = urlsplit(signed.uri)
    # header values are now latin-1 strings of the UTF-8 bytes: exactly what a server decodes
    return HttpRequest(
        method=method,
        path=target.path,
        query=target.query,
        headers=dict(signed.header_params),
        body=body or b"",
    )


FIXED_DATE = "20260102T030405Z"
# Produced by huaweicloudsdkcore 3.1.219's Signer for this exact request (checked in the test).
FIXED_SIGNATURE = "fa7b9152b81ae8fda0fbd2f9d16d34a1257889f099e5a18ed63d9efde241c16a"
FIXED_BODY = b'{"room_id": "room1", "user_id": "u1"}'


def _fixed_request() -> HttpRequest:
    return _sdk_sign(
        "POST",
        "/v2/apps/app1/individual-stream-jobs",
        headers={
            "Content-Type": "application/json;charset=utf-8",
            "X-Project-Id": PROJECT_ID,
            "User-Agent": "huaweicloud-usdk-python/3.0",
            "X-Sdk-Date": FIXED_DATE,
        },
        body=FIXED_BODY,
    )


def test_fixed_vector_from_sdk_signer() -> None:
    req = _fixed_request()
    auth = parse_authorization(req.header("Authorization"))
    assert auth.access_key == AK
    assert auth.signed_headers == ("content-type", "host", "user-agent", "x-project-id", "x-sdk-date")
    assert auth.signature == FIXED_SIGNATURE
    canonical = canonical_request(req, auth.signed_headers)
    assert canonical.decode() == (
        "POST\n/v2/apps/app1/individual-stream-jobs/\n\n"
        "content-type:application/json;charset=utf-8\nhost:rtc-api.myhuaweicloud.com\n"
        f"user-agent:huaweicloud-usdk-python/3.0\nx-project-id:{PROJECT_ID}\nx-sdk-date:{FIXED_DATE}\n\n"
        "content-type;host;user-agent;x-project-id;x-sdk-date\n"
        "9c386274a26a1472e7a28bc8413314a4d3b00d25c409d2cb49c44942b2e4a6fe"
    )
    assert verify(req, SK, now=_ts(FIXED_DATE)) == auth
    # our signer gives the same header
    unsigned = {k: v for k, v in req.headers.items() if k != "Authorization"}
    assert sign(replace(req, headers=unsigned), access_key=AK, secret_key=SK) == req.headers["Authorization"]


def test_tampering_is_detected() -> None:
    req = _fixed_request()
    now = _ts(FIXED_DATE)
    cases: dict[str, HttpRequest] = {
        "body": replace(req, body=FIXED_BODY.replace(b"u1", b"u2")),
        "user-agent": replace(req, headers={**req.headers, "User-Agent": "curl/8"}),
        "host": replace(req, headers={**req.headers, "Host": "evil.example"}),
        "project": replace(req, headers={**req.headers, "X-Project-Id": "f" * 32}),
        "date": replace(req, headers={**req.headers, "X-Sdk-Date": "20260102T030406Z"}),
        "path": replace(req, path="/v2/apps/app2/individual-stream-jobs"),
        "query": replace(req, query="a=1"),
        "method": replace(req, method="PUT"),
        "unsigned": replace(req, headers={**req.headers, "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"}),
    }
    for name, bad in cases.items():
        with pytest.raises(SignatureError) as exc:
            verify(bad, SK, now=now)
        assert _reason(exc) is SignatureReason.MISMATCH, name
    with pytest.raises(SignatureError) as exc:
        verify(req, SK + "x", now=now)
    assert _reason(exc) is SignatureReason.MISMATCH
    assert SK not in str(exc.value) and FIXED_SIGNATURE not in str(exc.value)
    no_ua = {k: v for k, v in req.headers.items() if k != "User-Agent"}
    with pytest.raises(SignatureError) as exc:
        verify(replace(req, headers=no_ua), SK, now=now)
    assert _reason(exc) is SignatureReason.MISMATCH


def test_date_window() -> None:
    req = _fixed_request()
    now = _ts(FIXED_DATE)
    verify(req, SK, now=now + 900)
    verify(req, SK, now=now - 900)
    for t in (now + 901, now - 901):
        with pytest.raises(SignatureError) as exc:
            verify(req, SK, now=t)
        assert _reason(exc) is SignatureReason.EXPIRED
    verify(req, SK, now=now + 1800, window_s=3600)
    with pytest.raises(SignatureError) as exc:
        verify(req, SK, now=now + 61, window_s=60)
    assert _reason(exc) is SignatureReason.EXPIRED


def test_get_with_query_path_escapes_and_non_ascii() -> None:
    from urllib.parse import quote

    app_id = "app 1/é~*"
    req = _sdk_sign(
        "GET",
        f"/v2/apps/{quote(app_id, safe='')}/record-rules",
        query=[
            ("limit", 10),
            ("name", "房间 1+2=3&x"),
            ("flag", True),
            ("ids", ["b", "a", "中"]),
            ("offset", 0),
        ],
        headers={
            "Content-Type": "application/json",
            "X-Sdk-Date": format_sdk_date(),
            "X-Custom": "值 ü",  # non-ASCII header value, sent as UTF-8 bytes
        },
    )
    assert req.query.startswith("flag=true&ids=a&ids=b&ids=%E4%B8%AD&limit=10&name=")
    verify(req, SK)
    # the canonical query is order-independent, so a proxy reordering the query does not matter
    reordered = "&".join(reversed(req.query.split("&")))
    verify(replace(req, query=reordered), SK)
    for bad in (
        replace(req, query=req.query.replace("limit=10", "limit=11")),
        replace(req, path=req.path.replace("app%201", "app%202")),
        replace(req, headers={**req.headers, "X-Custom": "值 u"}),
    ):
        with pytest.raises(SignatureError) as exc:
            verify(bad, SK)
        assert _reason(exc) is SignatureReason.MISMATCH


def test_unsigned_payload_for_non_json() -> None:
    req = _sdk_sign(
        "POST",
        "/v2/upload",
        headers={"Content-Type": "application/octet-stream", "X-Sdk-Date": format_sdk_date()},
        body=b"\x00\x01binary",
    )
    assert req.headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    verify(req, SK)
    verify(replace(req, body=b"other"), SK)  # the SDK's choice: non-JSON bodies are not covered
    with pytest.raises(SignatureError) as exc:
        verify(req, SK, allow_unsigned_payload=False)
    assert _reason(exc) is SignatureReason.UNSUPPORTED_ALGORITHM


def test_explicit_content_hash_must_match_body() -> None:
    import hashlib

    body = b'{"a": 1}'
    headers = {
        "Content-Type": "application/json",
        "Host": "h",
        "X-Sdk-Date": FIXED_DATE,
        "X-Sdk-Content-Sha256": hashlib.sha256(body).hexdigest(),
    }
    req = HttpRequest(method="POST", path="/v2/x", headers=headers, body=body)
    auth = sign(req, access_key=AK, secret_key=SK)
    signed = replace(req, headers={**headers, "Authorization": auth})
    verify(signed, SK, now=_ts(FIXED_DATE))
    with pytest.raises(SignatureError) as exc:
        verify(replace(signed, body=b'{"a": 2}'), SK, now=_ts(FIXED_DATE))
    assert _reason(exc) is SignatureReason.MISMATCH


def test_empty_body_hash_and_delete() -> None:
    req = _sdk_sign(
        "DELETE",
        "/v2/apps/app1/mix-stream-jobs/job1",
        headers={"Content-Type": "application/json", "X-Sdk-Date": FIXED_DATE},
    )
    assert canonical_request(req, ("host",)).endswith(
        b"\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    verify(req, SK, now=_ts(FIXED_DATE))


# --------------------------------------------------------------------------------------------------
# The real CloudRTC client over 127.0.0.1


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def request(self) -> HttpRequest:
        return HttpRequest(
            method=self.method, path=self.path, query=self.query, headers=self.headers, body=self.body
        )


class _Handler(http.server.BaseHTTPRequestHandler):
    captured: list[Captured]

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.captured.append(
            Captured(self.command, parts.path, parts.query, dict(self.headers.items()), body)
        )
        payload = json.dumps({"job_id": "j1", "count": 0, "apps": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-request-Id", "req-1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def client_and_log() -> Iterator[tuple[Any, list[Captured]]]:
    from huaweicloudsdkcloudrtc.v2 import CloudRTCClient
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    captured: list[Captured] = []
    handler = type("H", (_Handler,), {"captured": captured})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client = (
        CloudRTCClient.new_builder()
        .with_credentials(BasicCredentials(AK, SK, PROJECT_ID))
        .with_endpoints([f"http://127.0.0.1:{httpd.server_address[1]}"])
        .build()
    )
    try:
        yield client, captured
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_sdk_client_get_with_query(client_and_log: tuple[Any, list[Captured]]) -> None:
    from huaweicloudsdkcloudrtc.v2 import ListAppsRequest

    client, log = client_and_log
    client.list_apps(ListAppsRequest(state="ENABLE", offset=0, limit=10))
    cap = log[-1]
    assert (cap.method, cap.path) == ("GET", "/v2/apps")
    req = cap.request()
    auth = parse_authorization(req.header("Authorization"))
    assert auth.access_key == AK
    assert "user-agent" in auth.signed_headers and "x-project-id" in auth.signed_headers
    host = req.header("Host")
    assert host is not None and host.startswith("127.0.0.1:")
    assert verify(req, SK, now=_ts(cap.headers["X-Sdk-Date"])) == auth
    verify(req, SK)
    with pytest.raises(SignatureError) as exc:
        verify(replace(req, query=req.query.replace("limit=10", "limit=100")), SK)
    assert _reason(exc) is SignatureReason.MISMATCH


def test_sdk_client_post_json_and_path_param(client_and_log: tuple[Any, list[Captured]]) -> None:
    from huaweicloudsdkcloudrtc.v2 import (
        CreateIndividualStreamJobRequest,
        IndividualStreamJobReq,
        RecordParam,
        ShowAppRequest,
    )

    client, log = client_and_log
    body = IndividualStreamJobReq(
        room_id="房间1", user_id="u1", is_record_audio=True, record_param=RecordParam(record_rule_id="r1")
    )
    client.create_individual_stream_job(CreateIndividualStreamJobRequest(app_id="app1", body=body))
    cap = log[-1]
    assert cap.method == "POST" and cap.body
    req = cap.request()
    verify(req, SK)
    with pytest.raises(SignatureError) as exc:
        verify(replace(req, body=req.body.replace(b"u1", b"u9")), SK)
    assert _reason(exc) is SignatureReason.MISMATCH

    client.show_app(ShowAppRequest(app_id="a b/c~é"))
    cap = log[-1]
    assert cap.path == "/v2/apps/a%20b%2Fc~%C3%A9"
    verify(cap.request(), SK)


# --------------------------------------------------------------------------------------------------
# Parsing details


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, SignatureReason.MISSING),
        ("  ", SignatureReason.MISSING),
        (
            "SDK-HMAC-SM3 Access=a, SignedHeaders=host;x-sdk-date, Signature=x",
            SignatureReason.UNSUPPORTED_ALGORITHM,
        ),
        (
            "V11-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=x",
            SignatureReason.UNSUPPORTED_ALGORITHM,
        ),
        ("Access=a, SignedHeaders=host;x-sdk-date", SignatureReason.MALFORMED),
        ("SDK-HMAC-SHA256 Access=a, SignedHeaders=host;x-sdk-date", SignatureReason.MALFORMED),
        (
            "SDK-HMAC-SHA256 Access=, SignedHeaders=host;x-sdk-date, Signature=" + "0" * 64,
            SignatureReason.MALFORMED,
        ),
        ("SDK-HMAC-SHA256 Access=a, SignedHeaders=host, Signature=" + "0" * 64, SignatureReason.MALFORMED),
        (
            "SDK-HMAC-SHA256 Access=a, SignedHeaders=x-sdk-date, Signature=" + "0" * 64,
            SignatureReason.MALFORMED,
        ),
        (
            "SDK-HMAC-SHA256 Access=a, SignedHeaders=Host;x-sdk-date, Signature=" + "0" * 64,
            SignatureReason.MALFORMED,
        ),
        ("SDK-HMAC-SHA256 Access=a, SignedHeaders=host;x-sdk-date, Signature=abc", SignatureReason.MALFORMED),
    ],
)
def test_parse_authorization_errors(header: str | None, reason: SignatureReason) -> None:
    with pytest.raises(SignatureError) as exc:
        parse_authorization(header)
    assert _reason(exc) is reason


def test_sdk_date_parsing() -> None:
    assert parse_sdk_date("20261121T050929Z") == datetime(2026, 11, 21, 5, 9, 29, tzinfo=UTC)
    assert format_sdk_date(datetime(2026, 11, 21, 5, 9, 29, tzinfo=UTC)) == "20261121T050929Z"
    assert format_sdk_date(0) == "19700101T000000Z"
    for bad, reason in [
        (None, SignatureReason.MISSING),
        ("", SignatureReason.MISSING),
        ("2026-11-21T05:09:29Z", SignatureReason.MALFORMED),
        ("20261121T050929", SignatureReason.MALFORMED),
        ("20261321T050929Z", SignatureReason.MALFORMED),
    ]:
        with pytest.raises(SignatureError) as exc:
            parse_sdk_date(bad)
        assert _reason(exc) is reason
    check_sdk_date("19700101T000000Z", now=900)
    with pytest.raises(SignatureError) as exc:
        check_sdk_date("19700101T000000Z", now=901)
    assert _reason(exc) is SignatureReason.EXPIRED


def test_missing_date_header() -> None:
    req = _fixed_request()
    no_date = {k: v for k, v in req.headers.items() if k != "X-Sdk-Date"}
    with pytest.raises(SignatureError) as exc:
        verify(replace(req, headers=no_date), SK)
    assert _reason(exc) is SignatureReason.MISSING


def test_canonical_helpers() -> None:
    assert canonical_uri("/v2/apps") == "/v2/apps/"
    assert canonical_uri("/v2/apps/") == "/v2/apps/"
    assert canonical_uri("") == "/"
    assert canonical_uri("/v2/apps/a%20b~c%2A") == "/v2/apps/a%20b~c%2A/"
    assert canonical_query_string("b=2&a=1&a=0&c") == "a=0&a=1&b=2&c="
    assert canonical_query_string("q=a+b&r=%7E") == "q=a%2Bb&r=~"
    with pytest.raises(SignatureError) as exc:
        canonical_query_string("a=%ff")
    assert _reason(exc) is SignatureReason.MALFORMED
