"""Small objects read back from a task's storage target (``s3://bucket/object`` images): only the
target's own bucket, within a size limit, against a real S3 protocol server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from roomcast.storage.base import StorageError, StorageErrorKind
from roomcast.storage.objects import TargetObjects
from roomcast.storage.target import StorageOptions, StorageTarget
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_reads_only_the_targets_bucket_within_the_limit(moto: MotoS3, tmp_path: Path) -> None:
    bucket, other = moto.make_bucket(), moto.make_bucket()
    s3 = moto.client()
    s3.put_object(Bucket=bucket, Key="img/bg.png", Body=b"x" * 100)
    s3.put_object(Bucket=other, Key="img/bg.png", Body=b"y" * 10)
    target = StorageTarget(
        kind="s3",
        vendor="huawei",
        region=REGION,
        bucket=bucket,
        prefix="rec/",  # the recording prefix does not apply: references name the whole key
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )
    options = StorageOptions(local_root=tmp_path, s3_endpoint_override=moto.endpoint)
    objects = TargetObjects(target, options)
    assert await objects.read(bucket, "img/bg.png", 100) == b"x" * 100
    with pytest.raises(StorageError) as err:
        await objects.read(bucket, "img/bg.png", 99)
    assert err.value.kind is StorageErrorKind.INVALID_REQUEST and "larger than 99" in err.value.message
    with pytest.raises(StorageError) as err:
        await objects.read(bucket, "img/missing.png", 100)
    assert err.value.kind is StorageErrorKind.NO_SUCH_KEY
    with pytest.raises(StorageError) as err:  # another bucket, even one the credentials can read
        await objects.read(other, "img/bg.png", 100)
    assert err.value.kind is StorageErrorKind.ACCESS_DENIED
    assert objects.scope != TargetObjects(replace(target, bucket=other), options).scope
