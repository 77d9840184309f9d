"""S3-compatible object stores (Tencent COS, Huawei OBS, Alibaba OSS, Qiniu, AWS, MinIO, Ceph).

boto3 is blocking, so every call runs in this store's own small thread pool: the event loop never
waits on the network, and a burst of uploads cannot starve the loop's default executor (which also
resolves host names). Large files go through boto3's managed transfer (multipart above a threshold,
parts uploaded in parallel, the multipart upload aborted on failure).

Compatibility: botocore >= 1.36 adds CRC checksums to every upload by default, which many
S3-compatible stores reject or mishandle; this store asks for checksums only where the API
requires them. Self-hosted endpoints use path-style addressing (no wildcard DNS needed).

Every failure is a :class:`StorageError` classified by :func:`roomcast.storage.s3_errors.classify`
(``kind``, ``retryable``, the store's ``code``), its message naming bucket and key.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from roomcast.log import register_secret
from roomcast.storage.base import (
    ObjectInfo,
    ObjectStore,
    StorageError,
    StorageErrorKind,
    check_key,
    check_prefix,
    guess_content_type,
)
from roomcast.storage.s3_errors import classify

T = TypeVar("T")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3Store(ObjectStore):
    """One bucket (optionally under a key prefix) of an S3-compatible service."""

    kind = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        prefix: str = "",
        addressing_style: str = "path",
        part_size: int = 8 * 1024 * 1024,
        multipart_threshold: int = 16 * 1024 * 1024,
        max_concurrency: int = 4,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        client_retries: int = 3,
        threads: int = 8,
    ) -> None:
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.prefix = check_prefix(prefix)
        self.addressing_style = addressing_style
        self._secrets = [s for s in (access_key, secret_key, session_token) if s]
        for s in self._secrets:
            register_secret(s)
        self._credentials = (access_key, secret_key, session_token)
        self._config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max(1, client_retries), "mode": "standard"},
            max_pool_connections=max(10, threads * max_concurrency),
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=part_size,
            max_concurrency=max_concurrency,
            use_threads=max_concurrency > 1,
        )
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3store")
        self._client: Any = None
        self._anonymous = False
        self._client_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"S3Store(endpoint={self.endpoint_url!r}, bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"region={self.region!r})"
        )

    # -- plumbing -----------------------------------------------------------------------------------

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                ak, sk, token = self._credentials
                session = boto3.session.Session(
                    aws_access_key_id=ak,
                    aws_secret_access_key=sk,
                    aws_session_token=token,
                    region_name=self.region,
                )
                self._anonymous = session.get_credentials() is None
                self._client = session.client("s3", endpoint_url=self.endpoint_url, config=self._config)
            return self._client

    def _clean(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text[:2000]

    def _error(self, op: str, key: str | None, exc: BaseException) -> StorageError:
        """A :class:`StorageError` naming the bucket and key, classified by :func:`classify`."""
        if isinstance(exc, StorageError):
            return exc
        where = f"s3://{self.bucket}/{self.prefix}{key}" if key is not None else f"s3://{self.bucket}"
        failure = classify(exc, op)
        return StorageError(
            self._clean(f"{op} {where} failed: {failure.kind.value}: {failure.detail}".rstrip()),
            retryable=failure.retryable,
            code=failure.code,
            kind=failure.kind,
        )

    async def _run(self, op: str, key: str | None, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StorageError(f"store for s3://{self.bucket} is closed", retryable=True, code="Closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except Exception as exc:
            raise self._error(op, key, exc) from None

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    # -- blocking parts -----------------------------------------------------------------------------

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            r = self._get_client().head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code") or "")
            if code in _NOT_FOUND:
                return None
            raise
        lm = r.get("LastModified")
        return ObjectInfo(
            key=key,
            size=int(r.get("ContentLength", 0)),
            content_type=r.get("ContentType"),
            etag=str(r.get("ETag", "")).strip('"') or None,
            last_modified=lm if isinstance(lm, datetime) else None,
        )

    def _put(self, path: Path, key: str, content_type: str) -> ObjectInfo:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise StorageError(
                f"local file to upload to s3://{self.bucket}/{self._full(key)} does not exist: {path}",
                code="ENOENT",
                kind=StorageErrorKind.SOURCE_MISSING,
            ) from None
        if size < self._transfer.multipart_threshold:
            # One PUT with Content-MD5: the store checks the bytes, so no HEAD is needed after it.
            data = path.read_bytes()
            digest = hashlib.md5(data, usedforsecurity=False)
            r = self._get_client().put_object(
                Bucket=self.bucket,
                Key=self._full(key),
                Body=data,
                ContentType=content_type,
                ContentMD5=base64.b64encode(digest.digest()).decode(),
            )
            etag = str(r.get("ETag", "")).strip('"') or None
            return ObjectInfo(key=key, size=len(data), content_type=content_type, etag=etag)
        self._get_client().upload_file(
            str(path),
            self.bucket,
            self._full(key),
            ExtraArgs={"ContentType": content_type},
            Config=self._transfer,
        )
        info = self._head(key)
        if info is None:
            raise StorageError(
                f"upload to s3://{self.bucket}/{self._full(key)} reported success but the object is missing",
                kind=StorageErrorKind.SERVER_ERROR,
            )
        return info

    def _get(self, key: str, path: Path) -> ObjectInfo:
        info = self._head(key)
        if info is None:
            raise StorageError(
                f"get s3://{self.bucket}/{self._full(key)} failed: no such object",
                code="NoSuchKey",
                kind=StorageErrorKind.NO_SUCH_KEY,
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self._get_client().download_file(self.bucket, self._full(key), str(path), Config=self._transfer)
        return info

    def _delete(self, key: str) -> None:
        self._get_client().delete_object(Bucket=self.bucket, Key=self._full(key))

    def _url(self, key: str, expires_s: int) -> str:
        client = self._get_client()
        full = self._full(key)
        if self._anonymous:  # no credentials anywhere: a plain URL (public-read buckets)
            base = (self.endpoint_url or "").rstrip("/")
            return f"{base}/{self.bucket}/{quote(full)}"
        return str(
            client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires_s
            )
        )

    def _list(self, prefix: str) -> list[ObjectInfo]:
        paginator = self._get_client().get_paginator("list_objects_v2")
        out: list[ObjectInfo] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", []):
                full = str(obj["Key"])
                lm = obj.get("LastModified")
                out.append(
                    ObjectInfo(
                        key=full[len(self.prefix) :],
                        size=int(obj.get("Size", 0)),
                        etag=str(obj.get("ETag", "")).strip('"') or None,
                        last_modified=lm if isinstance(lm, datetime) else None,
                    )
                )
        out.sort(key=lambda i: i.key)
        return out

    # -- the interface ------------------------------------------------------------------------------

    async def put_file(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        check_key(key)
        ctype = content_type or guess_content_type(key)
        return await self._run("put", key, functools.partial(self._put, path, key, ctype))

    async def head(self, key: str) -> ObjectInfo | None:
        check_key(key)
        return await self._run("head", key, functools.partial(self._head, key))

    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        check_key(key)
        return await self._run("get", key, functools.partial(self._get, key, path))

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._run("delete", key, functools.partial(self._delete, key))

    async def url(self, key: str, expires_s: int = 3600) -> str:
        check_key(key)
        return await self._run("url", key, functools.partial(self._url, key, expires_s))

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        return await self._run("list", prefix, functools.partial(self._list, prefix))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        client = self._client
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, client.close)
        self._executor.shutdown(wait=False, cancel_futures=True)
