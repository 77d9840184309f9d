"""Fixtures shared by the end-to-end tests: an S3 server and a callback receiver on loopback, one
of each per test module (a test module may stop and restart its S3 server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.receiver import Receiver, callback_receiver
from tests.support.s3 import MotoS3


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    m = MotoS3()
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with callback_receiver() as rx:
        yield rx
