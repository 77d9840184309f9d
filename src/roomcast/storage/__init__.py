"""Where recordings go: local and S3-compatible object stores, and the durable upload queue."""

from roomcast.storage.base import (
    CONTENT_TYPES,
    PERMANENT_KINDS,
    InvalidKey,
    ObjectInfo,
    ObjectStore,
    StorageError,
    StorageErrorKind,
    check_key,
    guess_content_type,
)
from roomcast.storage.check import check_target
from roomcast.storage.local import LocalStore
from roomcast.storage.queue import UploadQueue, UploadQueueConfig, UploadRecord, queue_from_runtime
from roomcast.storage.s3 import S3Store
from roomcast.storage.target import (
    VENDORS,
    StorageOptions,
    StorageTarget,
    open_store,
    resolve_endpoint,
    vendor_endpoint,
)

__all__ = [
    "CONTENT_TYPES",
    "PERMANENT_KINDS",
    "VENDORS",
    "InvalidKey",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "StorageError",
    "StorageErrorKind",
    "StorageOptions",
    "StorageTarget",
    "UploadQueue",
    "UploadQueueConfig",
    "UploadRecord",
    "check_key",
    "check_target",
    "guess_content_type",
    "open_store",
    "queue_from_runtime",
    "resolve_endpoint",
    "vendor_endpoint",
]
