"""Tenant-supplied streaming URLs (RTMP push destinations) under the node's URL policy.

The same rule as :mod:`roomcast.net.urls` for http(s): only the listed schemes, a host, and
(unless ``allow_private_urls``) only public addresses.  :func:`check_stream_url` runs when the
API accepts a URL (a host that does not resolve yet is accepted); :func:`connect_refusal` runs
in the pushing thread right before each connection, which is the check that counts.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import httpx

from roomcast.domain.errors import InvalidArgument
from roomcast.net.urls import UnresolvedHost, UrlPolicy, UrlRefused, _host_refusal, _literal, address_refusal

RTMP_SCHEMES = ("rtmp", "rtmps")
DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}


@dataclass(frozen=True, slots=True)
class StreamUrl:
    scheme: str
    host: str
    port: int


def parse_stream_url(url: str, schemes: tuple[str, ...] = RTMP_SCHEMES) -> StreamUrl:
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("the URL is empty")
    if any(c in url for c in "\r\n\t\x00 "):
        raise UrlRefused("the URL contains spaces or control characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in schemes:
        allowed = " and ".join(f"{s}://" for s in schemes)
        raise UrlRefused(f"only {allowed} URLs are allowed ({scheme or 'no scheme'} given)")
    host = parsed.host.lower().rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
    if not parsed.path.strip("/"):
        raise UrlRefused("the URL names no application and stream")
    return StreamUrl(scheme, host, parsed.port or DEFAULT_PORTS.get(scheme, 1935))


def _refusal(policy: UrlPolicy, target: StreamUrl, addresses: list[str]) -> str | None:
    if policy.allow_private:
        return None
    reason = _host_refusal(target.host)
    if reason is not None:
        return f"the host {target.host} is {reason}"
    for text in addresses:
        ip = _literal(text)
        if ip is None:
            continue
        reason = address_refusal(ip)
        if reason is not None:
            return f"the host {target.host} resolves to {ip}, {reason}"
    return None


async def check_stream_url(
    policy: UrlPolicy, url: str, *, field: str, schemes: tuple[str, ...] = RTMP_SCHEMES
) -> None:
    """API-time check; raises :class:`InvalidArgument` with ``subject=field``."""
    try:
        target = parse_stream_url(url, schemes)
        if policy.allow_private:
            return
        literal = _literal(target.host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = [str(ip) for ip in await policy._lookup(target.host, target.port)]
            except UnresolvedHost:
                addresses = []
        reason = _refusal(policy, target, addresses)
        if reason is not None:
            raise UrlRefused(reason)
    except UrlRefused as exc:
        raise InvalidArgument(f"{field}: {exc}", subject=field) from None


def connect_refusal(policy: UrlPolicy, url: str) -> str | None:
    """Why ``url`` may not be connected to now (None: it may); blocking (resolves the host)."""
    try:
        target = parse_stream_url(url)
    except UrlRefused as exc:
        return str(exc)
    if policy.allow_private:
        return None
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"the host {target.host} does not resolve ({type(exc).__name__})"
    return _refusal(policy, target, [str(i[4][0]) for i in infos])
