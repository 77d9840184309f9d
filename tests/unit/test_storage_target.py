"""Storage targets: vendor endpoints, the endpoint override, and credentials kept out of sight."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from roomcast.log import JsonFormatter
from roomcast.storage import LocalStore, S3Store, StorageError, StorageOptions, StorageTarget, open_store
from roomcast.storage.target import VENDORS, resolve_endpoint, vendor_endpoint

SECRET = "sk-very-secret-value-0123456789"


def test_vendor_endpoints() -> None:
    assert vendor_endpoint("tencent", "ap-guangzhou") == "https://cos.ap-guangzhou.myqcloud.com"
    assert vendor_endpoint("cos", "ap-beijing") == "https://cos.ap-beijing.myqcloud.com"
    assert vendor_endpoint("huawei", "cn-north-4") == "https://obs.cn-north-4.myhuaweicloud.com"
    assert vendor_endpoint("alibaba", "cn-hangzhou") == "https://oss-cn-hangzhou.aliyuncs.com"
    assert vendor_endpoint("oss", "oss-cn-shanghai") == "https://oss-cn-shanghai.aliyuncs.com"
    assert vendor_endpoint("qiniu", "cn-east-1") == "https://s3.cn-east-1.qiniucs.com"
    assert vendor_endpoint("aws", "eu-west-1") == "https://s3.eu-west-1.amazonaws.com"
    assert vendor_endpoint("aws", "cn-north-1") == "https://s3.cn-north-1.amazonaws.com.cn"
    assert vendor_endpoint("tencent") == "https://cos.ap-guangzhou.myqcloud.com"
    assert set(VENDORS) >= {"tencent", "huawei", "alibaba", "qiniu", "aws", "s3"}
    with pytest.raises(StorageError):
        vendor_endpoint("nope", "x")
    with pytest.raises(StorageError):
        vendor_endpoint("minio", "us-east-1")  # no public endpoint
    with pytest.raises(StorageError):
        vendor_endpoint("tencent", "ap-guangzhou.evil.com/")


def test_endpoint_resolution_order(tmp_path: Path) -> None:
    cos = StorageTarget(kind="s3", vendor="tencent", region="ap-shanghai", bucket="b-1250000000")
    plain = StorageOptions(local_root=tmp_path)
    assert resolve_endpoint(cos, plain) == ("https://cos.ap-shanghai.myqcloud.com", "ap-shanghai", "virtual")
    # A target's own endpoint (JOYY sends a bare host) beats the vendor default.
    joyy = StorageTarget(kind="s3", vendor="alibaba", bucket="b", endpoint="oss-cn-beijing.aliyuncs.com")
    assert resolve_endpoint(joyy, plain)[0] == "https://oss-cn-beijing.aliyuncs.com"
    assert resolve_endpoint(joyy, plain)[2] == "virtual"
    minio = StorageTarget(kind="s3", vendor="minio", bucket="b", endpoint="http://10.0.0.5:9000")
    assert resolve_endpoint(minio, plain) == ("http://10.0.0.5:9000", "us-east-1", "path")
    # The node-wide override sends every S3 target to one self-hosted endpoint, path style.
    override = StorageOptions(local_root=tmp_path, s3_endpoint_override="http://127.0.0.1:9000/")
    for t in (cos, joyy, minio):
        assert resolve_endpoint(t, override)[0] == "http://127.0.0.1:9000"
        assert resolve_endpoint(t, override)[2] == "path"


async def test_factory(tmp_path: Path) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage", s3_endpoint_override="http://127.0.0.1:1")
    local = open_store(StorageTarget(bucket="recordings", prefix="app1"), opts)
    assert isinstance(local, LocalStore)
    assert local.root == (tmp_path / "storage" / "recordings").resolve()
    assert local.prefix == "app1/"
    s3 = open_store(
        StorageTarget(kind="s3", bucket="bkt", vendor="aws", access_key="AK", secret_key=SECRET), opts
    )
    assert isinstance(s3, S3Store)
    assert s3.endpoint_url == "http://127.0.0.1:1"
    await s3.close()
    with pytest.raises(StorageError):
        StorageTarget(kind="s3")  # no bucket
    with pytest.raises(StorageError):
        StorageTarget(prefix="../up")
    with pytest.raises(StorageError):
        StorageTarget(bucket="../up")


def test_secrets_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    t = StorageTarget(kind="s3", bucket="b", vendor="aws", access_key="AKIDxyz12345", secret_key=SECRET)
    assert SECRET not in repr(t) and SECRET not in str(t) and "AKIDxyz12345" not in repr(t)
    assert SECRET not in t.public_json()
    assert t.secrets() == {"access_key": "AKIDxyz12345", "secret_key": SECRET}
    back = StorageTarget.from_parts(t.public(), t.secrets())
    assert back == t
    # Building a store registers the keys with the log redactor.
    S3Store(bucket="b", endpoint_url="http://127.0.0.1:1", region="us-east-1", secret_key=SECRET)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, f"oops {SECRET}", None, None)
    assert SECRET not in JsonFormatter().format(record)
