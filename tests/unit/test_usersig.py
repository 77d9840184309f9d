"""Tencent UserSig (TLSSigAPIv2): byte-exact against the official package, plus every failure reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from typing import Any

import pytest

from roomcast.rtc.usersig import (
    DEFAULT_EXPIRE_S,
    UserSigError,
    UserSigErrorReason,
    gen_usersig,
    verify_usersig,
)

APP = 1400000000
# the key used in TLSSigAPIv2's own example
KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
NOW = 1_700_000_000


def _decode(sig: str) -> dict[str, Any]:
    raw = base64.b64decode(sig.replace("*", "+").replace("-", "/").replace("_", "="))
    doc: dict[str, Any] = json.loads(zlib.decompress(raw))
    return doc


def _encode(doc: dict[str, Any]) -> str:
    data = base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()
    return data.replace("+", "*").replace("/", "-").replace("=", "_")


def _reason(exc: pytest.ExceptionInfo[UserSigError]) -> UserSigErrorReason:
    return exc.value.reason


# A vector derived by hand: the JSON below, zlib level 6, Tencent's base64 alphabet.
HAND_SIG_FIELDS = {
    "TLS.ver": "2.0",
    "TLS.identifier": "xiaojun",
    "TLS.sdkappid": APP,
    "TLS.expire": 86400,
    "TLS.time": NOW,
}


HAND_SIG = (
    "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpQJlLMxM4IIlmbkgIUNzNMXF"
    "mekg44P93EzccsOcA0qT8yOKnfwLksLcjNPcnNNMzb0Ccg1Sq6IMs1LDPH1ywpJtlWoBk68y0A__"
)


def test_hand_derived_vector() -> None:
    content = f"TLS.identifier:xiaojun\nTLS.sdkappid:{APP}\nTLS.time:{NOW}\nTLS.expire:86400\n".encode()
    mac = base64.b64encode(hmac.new(KEY.encode(), content, hashlib.sha256).digest()).decode()
    expected = _encode({**HAND_SIG_FIELDS, "TLS.sig": mac})
    sig = gen_usersig(APP, KEY, "xiaojun", 86400, now=NOW)
    assert sig == expected == HAND_SIG
    assert set(sig) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-_")
    info = verify_usersig(sig, APP, KEY, "xiaojun", now=NOW + 10)
    assert (info.sdk_app_id, info.user_id, info.issued_at, info.expire_s, info.userbuf) == (
        APP,
        "xiaojun",
        NOW,
        86400,
        None,
    )
    assert info.expires_at == NOW + 86400


@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The official PyPI package ``tls-sig-api-v2`` with its clock pinned to NOW."""
    mod = pytest.importorskip("TLSSigAPIv2")
    monkeypatch.setattr(mod.time, "time", lambda: NOW + 0.75)
    return mod.TLSSigAPIv2(APP, KEY)


@pytest.mark.parametrize("user", ["xiaojun", "用户 1", 'a"b\\c', "0"])
def test_matches_official_package(oracle: Any, user: str) -> None:
    theirs = oracle.gen_sig(user, 86400 * 180)
    assert gen_usersig(APP, KEY, user, 86400 * 180, now=NOW + 0.75) == theirs
    assert gen_usersig(APP, KEY, user, now=NOW) == oracle.gen_sig(user)  # default 180 days
    verify_usersig(theirs, APP, KEY, user, now=NOW)


def test_matches_official_package_with_userbuf(oracle: Any) -> None:
    buf = b"\x00privmap\xff"
    theirs = oracle.gen_sig_with_userbuf("xiaojun", 3600, buf)
    assert gen_usersig(APP, KEY, "xiaojun", 3600, userbuf=buf, now=NOW) == theirs
    info = verify_usersig(theirs, APP, KEY, "xiaojun", now=NOW)
    assert info.userbuf == buf
    assert _decode(theirs)["TLS.userbuf"] == base64.b64encode(buf).decode()


def test_round_trip_and_default_expiry() -> None:
    sig = gen_usersig(APP, KEY, "u1", DEFAULT_EXPIRE_S, now=NOW)
    assert verify_usersig(sig, APP, KEY, "u1", now=NOW + DEFAULT_EXPIRE_S).expire_s == 180 * 86400
    sig = gen_usersig(APP, KEY, "u1", 60)  # real clock
    verify_usersig(sig, APP, KEY, "u1")


def test_expired() -> None:
    sig = gen_usersig(APP, KEY, "u1", 300, now=NOW)
    verify_usersig(sig, APP, KEY, "u1", now=NOW + 300)  # boundary still valid
    with pytest.raises(UserSigError) as exc:
        verify_usersig(sig, APP, KEY, "u1", now=NOW + 301)
    assert _reason(exc) is UserSigErrorReason.EXPIRED


def test_wrong_app_user_key() -> None:
    sig = gen_usersig(APP, KEY, "u1", 300, now=NOW)
    with pytest.raises(UserSigError) as exc:
        verify_usersig(sig, APP + 1, KEY, "u1", now=NOW)
    assert _reason(exc) is UserSigErrorReason.WRONG_APP
    with pytest.raises(UserSigError) as exc:
        verify_usersig(sig, APP, KEY, "u2", now=NOW)
    assert _reason(exc) is UserSigErrorReason.WRONG_USER
    with pytest.raises(UserSigError) as exc:
        verify_usersig(sig, APP, KEY[:-1] + "0", "u1", now=NOW)
    assert _reason(exc) is UserSigErrorReason.BAD_SIGNATURE
    assert KEY not in str(exc.value) and sig not in str(exc.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("TLS.expire", 10**9), ("TLS.time", NOW + 1), ("TLS.userbuf", "AAAA"), ("TLS.identifier", "u1 ")],
)
def test_tampered_fields_fail_signature(field: str, value: object) -> None:
    doc = _decode(gen_usersig(APP, KEY, "u1", 300, now=NOW))
    doc[field] = value
    reason = UserSigErrorReason.WRONG_USER if field == "TLS.identifier" else UserSigErrorReason.BAD_SIGNATURE
    with pytest.raises(UserSigError) as exc:
        verify_usersig(_encode(doc), APP, KEY, "u1", now=NOW)
    assert _reason(exc) is reason


def test_expired_forgery_reports_bad_signature_not_expired() -> None:
    doc = _decode(gen_usersig(APP, KEY, "u1", 300, now=NOW))
    doc["TLS.sig"] = base64.b64encode(b"x" * 32).decode()
    with pytest.raises(UserSigError) as exc:
        verify_usersig(_encode(doc), APP, KEY, "u1", now=NOW + 10**6)
    assert _reason(exc) is UserSigErrorReason.BAD_SIGNATURE


def test_numeric_strings_accepted() -> None:
    """Some ports write the numbers as strings; the HMAC content is the same."""
    good = _decode(gen_usersig(APP, KEY, "u1", 300, now=NOW))
    doc = {**good, "TLS.sdkappid": str(APP), "TLS.time": str(NOW), "TLS.expire": "300"}
    assert verify_usersig(_encode(doc), APP, KEY, "u1", now=NOW).issued_at == NOW


def _malformed_cases() -> list[str]:
    good = _decode(gen_usersig(APP, KEY, "u1", 300, now=NOW))
    without_sig = {k: v for k, v in good.items() if k != "TLS.sig"}
    b64 = base64.b64encode
    return [
        "",
        "!!!not base64!!!",
        b64(b"not zlib").decode(),
        b64(zlib.compress(b"not json")).decode(),
        b64(zlib.compress(b"[1, 2]")).decode(),
        b64(zlib.compress(b'{"TLS.sig": 1}')).decode(),
        _encode(without_sig),
        _encode({**good, "TLS.ver": "1.0"}),
        _encode({**good, "TLS.time": "soon"}),
        _encode({**good, "TLS.expire": True}),
        _encode({**good, "TLS.sdkappid": None}),
        _encode({**good, "TLS.userbuf": "***"}),
        _encode({**good, "TLS.userbuf": 5}),
        b64(zlib.compress(b" " * 200_000)).decode(),  # inflates past the size cap
        b64(zlib.compress(b"[" * 50_000)).decode(),  # deep nesting
        "A" * 20_000,
        "ünïcode",
    ]


@pytest.mark.parametrize("index", range(len(_malformed_cases())))
def test_malformed(index: int) -> None:
    sig = _malformed_cases()[index]
    with pytest.raises(UserSigError) as exc:
        verify_usersig(sig, APP, KEY, "u1", now=NOW)
    assert _reason(exc) is UserSigErrorReason.MALFORMED


def test_missing_padding_is_tolerated() -> None:
    sig = gen_usersig(APP, KEY, "u1", 300, now=NOW)
    verify_usersig(sig.rstrip("_"), APP, KEY, "u1", now=NOW)


def test_negative_expire_rejected() -> None:
    with pytest.raises(ValueError):
        gen_usersig(APP, KEY, "u1", -1)
