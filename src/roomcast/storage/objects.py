"""Reading small objects (tenant images named ``s3://bucket/object``) from a task's storage target.

A task that writes to a bucket may read pictures from that same bucket with the same
credentials (the node's own when the target carries none). Other buckets are refused: with the
node's credentials they may belong to anyone.
"""

from __future__ import annotations

from dataclasses import replace

from roomcast.storage.base import StorageError, StorageErrorKind
from roomcast.storage.target import StorageOptions, StorageTarget, open_store


class TargetObjects:
    """Reads objects of one storage target's bucket (keys are from the bucket's root)."""

    def __init__(self, target: StorageTarget, options: StorageOptions) -> None:
        self._target = replace(target, prefix="")
        self._options = options
        endpoint = target.endpoint or options.s3_endpoint_override or ""
        self.scope = f"{target.kind}:{target.vendor}:{target.region or ''}:{endpoint}:{target.bucket}"
        """Identifies the store: objects of two targets never share a cache entry."""

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        if bucket != self._target.bucket:
            raise StorageError(
                f"s3://{bucket}/{key}: only objects of the recording's own bucket are read",
                code="OtherBucket",
                kind=StorageErrorKind.ACCESS_DENIED,
            )
        store = open_store(self._target, self._options)
        try:
            return await store.read_bytes(key, max_bytes)
        finally:
            await store.close()
