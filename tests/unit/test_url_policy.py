"""The tenant URL policy: http(s) only, public addresses only (unless allowed), checked again
when connecting and pinned to the address that passed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx
import pytest

from roomcast.domain.errors import InvalidArgument
from roomcast.net.urls import UrlPolicy, UrlRefused, address_refusal, parse_http_url

STRICT = UrlPolicy(allow_private=False)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.2.3.4", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd12::1", "unique-local"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ],
)
def test_refused_addresses(address: str, reason: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_public_addresses(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "/etc/passwd", "../logo.png", "ftp://example.com/x", "gopher://x/", "http://", ""],
)
def test_only_http_urls(url: str) -> None:
    with pytest.raises(UrlRefused):
        parse_http_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost:8080/x.png",
        "http://app.localhost/x.png",
        "https://[::1]/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://2130706433/x.png",  # 127.0.0.1 spelled as one number: refused after resolution
        "http://[::ffff:10.0.0.1]/x.png",
    ],
)
async def test_private_urls_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await STRICT.check(url, field="WaterMarkUrl")
    assert err.value.subject == "WaterMarkUrl" and "WaterMarkUrl" in err.value.message
    await UrlPolicy(allow_private=True).check(url, field="WaterMarkUrl")


async def test_allowing_private_urls_never_allows_other_schemes() -> None:
    with pytest.raises(InvalidArgument):
        await UrlPolicy(allow_private=True).check("file:///etc/passwd", field="BackgroundImageUrl")


async def test_an_unresolvable_host_is_accepted_at_api_time_but_not_when_connecting() -> None:
    url = "http://no-such-host.invalid/logo.png"
    await STRICT.check(url, field="WaterMarkUrl")
    with pytest.raises(UrlRefused, match="does not resolve"):
        await STRICT.resolve(url)


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer getaddrinfo from ``answers`` (each lookup pops the first answer: DNS rebinding)."""
    loop = asyncio.get_running_loop()
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **kw: Any) -> list[Any]:
        asked.append(host)
        ip = answers[host].pop(0)
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


async def test_send_connects_to_the_checked_address_with_the_original_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first answer passes the API-time check; the second (rebinding) points at the
    # metadata service: the connection check refuses it before anything is sent.
    _fake_dns(monkeypatch, {"img.example": ["93.184.216.34", "93.184.216.34", "169.254.169.254"]})
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await STRICT.check("https://img.example:8443/a.png?x=1", field="WaterMarkUrl")
        resp = await STRICT.send(client, "GET", "https://img.example:8443/a.png?x=1")
        assert resp.status_code == 200
        with pytest.raises(UrlRefused, match=r"169\.254\.169\.254"):
            await STRICT.send(client, "GET", "https://img.example:8443/a.png?x=1")
    assert len(seen) == 1
    req = seen[0]
    assert req.url.host == "93.184.216.34" and req.url.port == 8443 and req.url.path == "/a.png"
    assert req.headers["host"] == "img.example:8443"
    assert req.extensions["sni_hostname"] == "img.example"
    assert req.headers["connection"] == "close"  # no TLS session shared between host names


async def test_send_never_follows_redirects(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {"hook.example": ["93.184.216.34"]})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        resp = await STRICT.send(client, "POST", "http://hook.example/cb", content=b"{}")
    assert resp.status_code == 302
