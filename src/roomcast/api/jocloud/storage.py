"""JOYY ``storagecfg`` -> an S3-compatible :class:`StorageTarget` and the file-name prefix.

``vender`` 0 Alibaba Cloud OSS, 1 Tencent Cloud COS, 2 Qiniu Kodo; all three speak S3. The
request gives an ``endpoint`` and no region, but S3 signing needs the region: it is read from
the vendor's endpoint shapes below; an endpoint of another shape (a self-hosted store behind a
custom domain) is used as given, with the vendor's default region.

* Alibaba: ``oss-<region>[-internal].aliyuncs.com`` (``-internal``: the VPC endpoint).
* Tencent: ``cos.<region>.myqcloud.com`` and ``<bucket>.cos.<region>.myqcloud.com``.
* Qiniu: the S3 endpoints ``s3.<region>.qiniucs.com`` / ``s3-<region>.qiniucs.com``, and the
  native upload hosts ``up-<zone>.qiniup.com`` / ``upload-<zone>.qiniup.com`` (``z0`` East China
  ... ``as0`` Singapore), which do not speak S3: those go to the zone's S3 endpoint instead.
* A host that starts with the bucket name (virtual-host style, as copied from a console) has it
  removed: the store adds the bucket itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from roomcast.api.jocloud.errors import JoyError
from roomcast.api.jocloud.params import Fields
from roomcast.storage.base import StorageError
from roomcast.storage.target import StorageTarget, normalize_endpoint, vendor_endpoint

VENDERS = {0: "alibaba", 1: "tencent", 2: "qiniu"}
PREFIX_MAX = 128
_PREFIX_PART = re.compile(r"[A-Za-z0-9]+")
QINIU_ZONES = {
    "z0": "cn-east-1",
    "cn-east-2": "cn-east-2",
    "z1": "cn-north-1",
    "z2": "cn-south-1",
    "na0": "us-north-1",
    "as0": "ap-southeast-1",
}
_PATTERNS: dict[str, re.Pattern[str]] = {
    "alibaba": re.compile(r"^oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$"),
    "tencent": re.compile(r"^cos\.(?P<region>[a-z0-9-]+)\.myqcloud\.com$"),
    "qiniu": re.compile(r"^s3[.-](?P<region>[a-z0-9-]+)\.qiniucs\.com$"),
}
_QINIU_UPLOAD = re.compile(r"^(?:up|upload)(?:-(?P<zone>[a-z0-9-]+))?\.qiniup\.com$")


@dataclass(frozen=True)
class Storage:
    target: StorageTarget
    prefix: str  # "" or "a/b" (no trailing slash)
    vender: int
    endpoint: str  # as the request gave it, for the file URLs of the callbacks


def _locate(vendor: str, endpoint: str, bucket: str) -> tuple[str | None, str | None]:
    """(endpoint to use or None for the vendor's public one, region or None) for ``endpoint``."""
    url = normalize_endpoint(endpoint)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith(f"{bucket.lower()}."):
        host = host[len(bucket) + 1 :]
    if vendor == "qiniu":
        up = _QINIU_UPLOAD.match(host)
        if up is not None:
            return None, QINIU_ZONES.get(up.group("zone") or "z0", "cn-east-1")
    m = _PATTERNS[vendor].match(host)
    if m is None:
        return url, None
    region = m.group("region")
    if vendor == "alibaba":
        # The internal (VPC) endpoint only answers inside Alibaba's network: keep the one given.
        return url.replace(parts.netloc, host + (f":{parts.port}" if parts.port else "")), region
    return vendor_endpoint(vendor, region), region


def file_prefix(f: Fields) -> str:
    raw = f.data.get("fileprefix")
    if raw is None:
        return ""
    if not isinstance(raw, list) or not all(isinstance(p, str) and _PREFIX_PART.fullmatch(p) for p in raw):
        raise f.fail("fileprefix", "must be an array of strings of letters and digits")
    prefix = "/".join(raw)
    if len(prefix) + 1 > PREFIX_MAX:
        raise f.fail("fileprefix", f"makes a prefix longer than {PREFIX_MAX} characters")
    return prefix


def storage(raw: object) -> Storage:
    """Check ``storagecfg`` (2101 for anything wrong)."""
    f = Fields(raw, "storagecfg", 2101)
    vender = f.integer("vender", 0, max(VENDERS))
    vendor = VENDERS[vender]
    endpoint = f.text("endpoint", 256)
    bucket = f.text("bucket", 63)
    where, region = _locate(vendor, endpoint, bucket)
    try:
        target = StorageTarget(
            kind="s3",
            vendor=vendor,
            region=region,
            endpoint=where,
            bucket=bucket,
            access_key=f.text("accesskey", 256),
            secret_key=f.text("secretkey", 256),
        )
    except StorageError as exc:
        raise JoyError(2101, f"storagecfg: {exc.message}") from None
    return Storage(target, file_prefix(f), vender, endpoint)


def object_url(endpoint: str, bucket: str, key: str) -> str:
    """Where a stored file is, virtual-host style on the endpoint the request gave."""
    parts = urlsplit(normalize_endpoint(endpoint))
    host = parts.netloc
    if not host.lower().startswith(f"{bucket.lower()}."):
        host = f"{bucket}.{host}"
    return f"{parts.scheme}://{host}/{key}"
