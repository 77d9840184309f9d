"""Which tenant-supplied URLs roomcast fetches or posts to, and connecting only where allowed.

A tenant gives roomcast URLs to fetch (watermark and background images) and to post to (event
callbacks). Without a rule, that is server-side request forgery: ``file:///etc/passwd`` as a
watermark, or a callback to ``http://169.254.169.254/`` (cloud credentials) or to a database on
the private network. The rule:

* ``http`` and ``https`` only, with a host;
* every address the host resolves to must be public: loopback, private, link-local,
  unique-local, shared (CGNAT), multicast, reserved, unspecified, documentation and the cloud
  metadata addresses are refused, also when embedded in IPv6 (mapped, 6to4, NAT64), unless the
  operator sets ``allow_private_urls`` (tests do, to reach their local servers).

A URL is checked twice. When it is accepted (API time: the tenant gets the dialect's
invalid-parameter error naming the field; a host that does not resolve yet is accepted, the
connection check decides), and when connecting: the host is resolved again, checked, and the
request goes to the address that passed (the URL's host stays in the ``Host`` header and in the
TLS server name and certificate check), so a DNS answer that changes in between (rebinding)
cannot lead anywhere else. Redirects are never followed blindly: callers re-check every hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from roomcast.domain.errors import InvalidArgument

__all__ = [
    "HttpUrl",
    "IpAddress",
    "UnresolvedHost",
    "UrlPolicy",
    "UrlRefused",
    "address_refusal",
    "parse_http_url",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA: frozenset[IpAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS (IPv6)
        "fd00:ec2::23",  # AWS DNS (IPv6)
    )
)
_METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
)

_V4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), label)
    for net, label in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved (6to4 relay)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)
_V6_BLOCKED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), label)
    for net, label in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved (IPv4-compatible)"),
        ("64:ff9b:1::/48", "reserved (local-use NAT64)"),
        ("100::/64", "reserved (discard)"),
        ("2001::/32", "reserved (Teredo)"),
        ("2001:db8::/32", "documentation"),
        ("2001:10::/28", "reserved (ORCHID)"),
        ("2001:20::/28", "reserved (ORCHIDv2)"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "reserved (site-local)"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UrlRefused(ValueError):
    """A URL roomcast will not fetch or post to; the message says why (no secrets in it)."""


class UnresolvedHost(UrlRefused):
    """The URL's host has no address (now)."""


def address_refusal(ip: IpAddress) -> str | None:
    """Why ``ip`` is not a public address a tenant URL may reach (None: it may)."""
    if ip in _METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded)
        for net6, label in _V6_BLOCKED:
            if ip in net6:
                return label
    else:
        for net4, label in _V4_BLOCKED:
            if ip in net4:
                return label
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True, slots=True)
class HttpUrl:
    url: httpx.URL
    host: str
    """Lower case, without brackets."""
    port: int


HTTP_SCHEMES: tuple[str, ...] = ("http", "https")
MEDIA_SCHEMES: tuple[str, ...] = ("http", "https", "rtmp", "rtmps")
_DEFAULT_PORTS = {"http": 80, "https": 443, "rtmp": 1935, "rtmps": 443}


def parse_http_url(url: str, schemes: tuple[str, ...] = HTTP_SCHEMES) -> HttpUrl:
    """``url`` if it is an absolute URL with a host and one of ``schemes`` (default http and
    https; stream ingest also takes rtmp and rtmps), else :class:`UrlRefused`."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("the URL is empty")
    if any(c in url for c in "\r\n\t\x00"):
        raise UrlRefused("the URL contains control characters")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from None
    if parsed.scheme not in schemes:
        shown = parsed.scheme or "no scheme"
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise UrlRefused(f"only {allowed} URLs are allowed ({shown} given)")
    host = parsed.host.lower().rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    return HttpUrl(parsed, host, port)


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _host_refusal(host: str) -> str | None:
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    if host in _METADATA_HOSTS:
        return "a cloud metadata address"
    return None


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """The rule above; ``allow_private`` lifts the address check (never the scheme check)."""

    allow_private: bool = False
    resolve_timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Any) -> UrlPolicy:
        return cls(
            allow_private=bool(settings.allow_private_urls),
            resolve_timeout_s=float(settings.url_fetch_timeout_s),
        )

    async def resolve(
        self, url: str, schemes: tuple[str, ...] = HTTP_SCHEMES
    ) -> tuple[HttpUrl, list[IpAddress]]:
        """Parse and resolve ``url``: every address allowed, else :class:`UrlRefused`.

        With ``allow_private`` nothing is resolved (the address list is empty)."""
        target = parse_http_url(url, schemes)
        if self.allow_private:
            return target, []
        reason = _host_refusal(target.host)
        if reason is not None:
            raise UrlRefused(f"the host {target.host} is {reason}")
        literal = _literal(target.host)
        if literal is not None:
            reason = address_refusal(literal)
            if reason is not None:
                raise UrlRefused(f"the address {literal} is {reason}")
            return target, [literal]
        addresses = await self._lookup(target.host, target.port)
        for ip in addresses:
            reason = address_refusal(ip)
            if reason is not None:
                raise UrlRefused(f"the host {target.host} resolves to {ip}, {reason}")
        return target, addresses

    async def _lookup(self, host: str, port: int) -> list[IpAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.resolve_timeout_s):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise UnresolvedHost(f"the host {host} does not resolve ({type(exc).__name__})") from None
        out: list[IpAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            ip = _literal(str(sockaddr[0]))
            if ip is not None and ip not in out:
                out.append(ip)
        if not out:
            raise UnresolvedHost(f"the host {host} does not resolve")
        return out

    async def check(self, url: str, *, field: str, schemes: tuple[str, ...] = HTTP_SCHEMES) -> None:
        """API-time check of a URL a tenant gives in ``field`` (the vendor's field name).

        Raises :class:`InvalidArgument` with ``subject=field``. A host that does not resolve
        now is accepted: the check when connecting is the one that counts."""
        try:
            await self.resolve(url, schemes)
        except UnresolvedHost:
            return
        except UrlRefused as exc:
            raise InvalidArgument(f"{field}: {exc}", subject=field) from None

    async def check_all(self, fields: Iterable[tuple[str, str]]) -> None:
        """:meth:`check` each ``(field, url)``; the first refused one raises."""
        for field, url in fields:
            await self.check(url, field=field)

    async def send(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request to ``url`` through an address that passed the check.

        Never follows a redirect (the caller sees the 3xx). Raises :class:`UrlRefused` before any
        connection when the URL is not allowed, and ``httpx`` errors as usual otherwise."""
        target, addresses = await self.resolve(url)
        if not addresses:  # private addresses allowed: an ordinary request
            req = client.build_request(method, target.url, headers=headers, content=content)
            return await client.send(req, stream=stream, follow_redirects=False)
        last: httpx.HTTPError | None = None
        for ip in addresses:
            pinned = target.url.copy_with(host=str(ip))
            hdrs = dict(headers or {})
            hdrs["Host"] = target.url.netloc.decode("ascii")
            ext: dict[str, Any] = {}
            if target.url.scheme == "https" and _literal(target.host) is None:
                ext["sni_hostname"] = target.host
                # The pool knows connections by address only: never let another host name's
                # request reuse this TLS session (its certificate was checked for this name).
                hdrs["Connection"] = "close"
            req = client.build_request(method, pinned, headers=hdrs, content=content, extensions=ext)
            try:
                return await client.send(req, stream=stream, follow_redirects=False)
            except httpx.ConnectError as exc:  # next address, like a normal client would
                last = exc
        assert last is not None
        raise last
