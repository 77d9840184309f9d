"""Storage targets (where a task's files go), vendor endpoints, and the target -> store factory.

Vendor names are plain strings in :data:`VENDORS`; each dialect adapter maps its own enum onto
them (TRTC ``Vendor`` 0 -> ``"tencent"``, 1 -> ``"aws"``; JOYY ``vender`` 0 -> ``"alibaba"``,
1 -> ``"tencent"``, 2 -> ``"qiniu"``; SparkRTC's OBS address -> ``"huawei"``).

Endpoint resolution for an S3 target, first match wins:

1. the node-wide override (``ROOMCAST_S3_ENDPOINT``): every S3-compatible target goes to one
   self-hosted MinIO/Ceph (or a test server), with path-style addressing;
2. the target's own ``endpoint`` (JOYY passes one; self-hosted stores need one);
3. the vendor's public endpoint for the target's region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from roomcast.storage.base import InvalidKey, ObjectStore, StorageError, StorageErrorKind, check_prefix

StorageKind = Literal["local", "s3"]

_INVALID = StorageErrorKind.INVALID_REQUEST


@dataclass(frozen=True)
class Vendor:
    name: str
    endpoint_template: str | None
    """``{region}`` is replaced by the target's region; ``None``: the target must name an endpoint."""
    addressing_style: Literal["path", "virtual"]
    """How the vendor's public endpoint wants the bucket addressed (OSS rejects path style)."""
    default_region: str | None = None


VENDORS: dict[str, Vendor] = {
    "tencent": Vendor("tencent", "https://cos.{region}.myqcloud.com", "virtual", "ap-guangzhou"),
    "huawei": Vendor("huawei", "https://obs.{region}.myhuaweicloud.com", "virtual", "cn-north-4"),
    "alibaba": Vendor("alibaba", "https://oss-{region}.aliyuncs.com", "virtual", "cn-hangzhou"),
    "qiniu": Vendor("qiniu", "https://s3.{region}.qiniucs.com", "virtual", "cn-east-1"),
    "aws": Vendor("aws", "https://s3.{region}.amazonaws.com", "virtual", "us-east-1"),
    # Any other S3-compatible store (MinIO, Ceph RGW, ...): the target must give the endpoint.
    "s3": Vendor("s3", None, "path", "us-east-1"),
}

VENDOR_ALIASES: dict[str, str] = {
    "cos": "tencent",
    "tencent-cos": "tencent",
    "qcloud": "tencent",
    "obs": "huawei",
    "huawei-obs": "huawei",
    "oss": "alibaba",
    "aliyun": "alibaba",
    "alibaba-oss": "alibaba",
    "kodo": "qiniu",
    "qiniu-kodo": "qiniu",
    "aws-s3": "aws",
    "amazon": "aws",
    "minio": "s3",
    "ceph": "s3",
    "custom": "s3",
}


def vendor_info(vendor: str) -> Vendor:
    name = vendor.strip().lower()
    name = VENDOR_ALIASES.get(name, name)
    try:
        return VENDORS[name]
    except KeyError:
        raise StorageError(
            f"unknown storage vendor {vendor!r}", kind=_INVALID, code="UnknownVendor"
        ) from None


def _normalize_region(vendor: Vendor, region: str) -> str:
    region = region.strip().lower()
    # People paste endpoint-shaped regions ("oss-cn-hangzhou"); accept them.
    if vendor.name == "alibaba" and region.startswith("oss-"):
        region = region[len("oss-") :]
    return region


def vendor_endpoint(vendor: str, region: str | None = None) -> str:
    """The public S3-compatible endpoint of ``vendor`` in ``region`` (vendor default region if None).

    >>> vendor_endpoint("tencent", "ap-guangzhou")
    'https://cos.ap-guangzhou.myqcloud.com'
    """
    v = vendor_info(vendor)
    if v.endpoint_template is None:
        raise StorageError(
            f"storage vendor {v.name!r} has no public endpoint; give the target an endpoint",
            kind=_INVALID,
            code="MissingEndpoint",
        )
    reg = _normalize_region(v, region or v.default_region or "")
    if not reg or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in reg):
        raise StorageError(
            f"invalid region {region!r} for {v.name}",
            kind=_INVALID,
            code="InvalidRegion",
        )
    url = v.endpoint_template.format(region=reg)
    if v.name == "aws" and reg.startswith("cn-"):
        url += ".cn"
    return url


def normalize_endpoint(endpoint: str) -> str:
    """Add ``https://`` to a bare host (JOYY sends ``oss-cn-hangzhou.aliyuncs.com``), drop a trailing /."""
    ep = endpoint.strip().rstrip("/")
    if "://" not in ep:
        ep = "https://" + ep
    return ep


@dataclass(frozen=True)
class StorageTarget:
    """Where files go: a local folder (``bucket`` names a folder in the node's storage dir) or an
    S3-compatible bucket. The repr never shows the keys; :meth:`public` and :meth:`secrets` split
    a target into what may be stored in clear and what must be sealed."""

    kind: StorageKind = "local"
    bucket: str = ""
    prefix: str = ""
    vendor: str = "s3"
    region: str | None = None
    endpoint: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    addressing_style: Literal["path", "virtual"] | None = None
    """``None``: path style for overridden/self-hosted endpoints, the vendor's style otherwise."""

    def __post_init__(self) -> None:
        if self.kind not in ("local", "s3"):
            raise StorageError(f"unknown storage kind {self.kind!r}", kind=_INVALID)
        try:
            check_prefix(self.prefix)
        except InvalidKey as exc:
            raise StorageError(f"invalid key prefix: {exc.message}", kind=_INVALID) from None
        if self.kind == "s3" and not self.bucket:
            raise StorageError(
                "an S3 storage target needs a bucket",
                kind=_INVALID,
                code="MissingBucket",
            )
        if self.kind == "local" and self.bucket:
            try:
                check_prefix(self.bucket)
            except InvalidKey as exc:
                raise StorageError(f"invalid local bucket folder: {exc.message}", kind=_INVALID) from None

    def __repr__(self) -> str:
        return (
            f"StorageTarget(kind={self.kind!r}, vendor={self.vendor!r}, region={self.region!r}, "
            f"endpoint={self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"access_key={'***' if self.access_key else None})"
        )

    __str__ = __repr__

    def with_prefix(self, prefix: str) -> StorageTarget:
        return replace(self, prefix=prefix)

    def public(self) -> dict[str, Any]:
        """Everything but the credentials (safe to store in clear and to log)."""
        return {
            "kind": self.kind,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "vendor": self.vendor,
            "region": self.region,
            "endpoint": self.endpoint,
            "addressing_style": self.addressing_style,
        }

    def secrets(self) -> dict[str, str]:
        """Only the credentials (to be sealed with :class:`roomcast.crypto.SecretBox`)."""
        out: dict[str, str] = {}
        if self.access_key:
            out["access_key"] = self.access_key
        if self.secret_key:
            out["secret_key"] = self.secret_key
        if self.session_token:
            out["session_token"] = self.session_token
        return out

    @classmethod
    def from_parts(cls, public: dict[str, Any], secrets: dict[str, str] | None = None) -> StorageTarget:
        s = secrets or {}
        return cls(
            kind=public.get("kind", "local"),
            bucket=public.get("bucket", ""),
            prefix=public.get("prefix", ""),
            vendor=public.get("vendor", "s3"),
            region=public.get("region"),
            endpoint=public.get("endpoint"),
            addressing_style=public.get("addressing_style"),
            access_key=s.get("access_key"),
            secret_key=s.get("secret_key"),
            session_token=s.get("session_token"),
        )

    def public_json(self) -> str:
        return json.dumps(self.public(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StorageOptions:
    """Node-wide storage settings the factory needs (built from :class:`roomcast.config.Settings`)."""

    local_root: Path
    s3_endpoint_override: str | None = None
    local_base_url: str | None = None
    s3_part_size: int = 8 * 1024 * 1024
    s3_multipart_threshold: int = 16 * 1024 * 1024
    s3_max_concurrency: int = 4
    s3_connect_timeout_s: float = 5.0
    s3_read_timeout_s: float = 60.0
    s3_client_retries: int = 3

    @classmethod
    def from_settings(cls, settings: Any) -> StorageOptions:
        """``settings`` is a :class:`roomcast.config.Settings` (typed loosely to avoid an import cycle)."""
        return cls(
            local_root=Path(settings.resolved_storage_dir),
            s3_endpoint_override=getattr(settings, "s3_endpoint", None),
        )


def resolve_endpoint(target: StorageTarget, options: StorageOptions) -> tuple[str, str, str]:
    """(endpoint URL, region, addressing style) for an S3 target."""
    v = vendor_info(target.vendor)
    region = target.region or v.default_region or "us-east-1"
    if options.s3_endpoint_override:
        return normalize_endpoint(options.s3_endpoint_override), region, target.addressing_style or "path"
    if target.endpoint:
        return (
            normalize_endpoint(target.endpoint),
            region,
            target.addressing_style or (v.addressing_style if v.endpoint_template else "path"),
        )
    return vendor_endpoint(v.name, region), region, target.addressing_style or v.addressing_style


def open_store(target: StorageTarget, options: StorageOptions) -> ObjectStore:
    """Build the store a target names. S3 stores hold a connection pool: close them when done."""
    if target.kind == "local":
        from roomcast.storage.local import LocalStore

        root = options.local_root
        base = options.local_base_url
        if target.bucket:
            bucket = target.bucket.strip("/")
            root = root.joinpath(*bucket.split("/"))
            base = f"{base.rstrip('/')}/{bucket}" if base else None
        label = f"local:{target.bucket.strip('/')}" if target.bucket else "local:"
        return LocalStore(root, prefix=target.prefix, base_url=base, label=label)

    from roomcast.storage.s3 import S3Store

    endpoint, region, style = resolve_endpoint(target, options)
    return S3Store(
        bucket=target.bucket,
        endpoint_url=endpoint,
        region=region,
        access_key=target.access_key,
        secret_key=target.secret_key,
        session_token=target.session_token,
        prefix=target.prefix,
        addressing_style=style,
        part_size=options.s3_part_size,
        multipart_threshold=options.s3_multipart_threshold,
        max_concurrency=options.s3_max_concurrency,
        connect_timeout_s=options.s3_connect_timeout_s,
        read_timeout_s=options.s3_read_timeout_s,
        client_retries=options.s3_client_retries,
    )
