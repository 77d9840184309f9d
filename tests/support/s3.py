"""A real S3 protocol server on loopback (moto in server mode) that tests can stop and restart."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_KEY = "AKIDTESTaccesskey000"
SECRET_KEY = "test-secret-key-which-must-never-be-logged"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoS3:
    """moto's S3 on 127.0.0.1:<port>. Object data lives in the process, so it survives restarts."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        assert self._server is None
        deadline = time.monotonic() + 10
        while True:
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            try:
                server.start()
            except OSError:  # the port is still being released
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            break
        self._server = server
        with socket.create_connection(("127.0.0.1", self.port), timeout=5):
            pass

    def stop(self) -> None:
        """Stop serving and close the listening socket (clients then get 'connection refused')."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        inner: Any = getattr(server, "_server", None)
        if inner is not None:
            inner.server_close()

    def client(self) -> Any:
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        ).client(
            "s3",
            endpoint_url=self.endpoint,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def make_bucket(self, *, versioned: bool = False) -> str:
        name = "rc-" + uuid.uuid4().hex[:16]
        c = self.client()
        c.create_bucket(Bucket=name)
        if versioned:
            c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def versions(self, bucket: str) -> dict[str, int]:
        """How many versions of each key the bucket holds (a versioned bucket counts every PUT)."""
        out: dict[str, int] = {}
        for page in self.client().get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []):
                out[v["Key"]] = out.get(v["Key"], 0) + 1
        return out

    def iam_user(self, actions: list[str]) -> tuple[str, str]:
        """A new IAM user allowed ``actions`` (e.g. ``["s3:PutObject"]``) on every resource; returns
        its (access key id, secret key). The keys only matter while :meth:`enforce_auth` is on."""
        iam = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        ).client("iam", endpoint_url=self.endpoint)
        name = "u-" + uuid.uuid4().hex[:12]
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    def _reset_auth(self, value: str) -> str:
        req = urllib.request.Request(
            self.endpoint + "/moto-api/reset-auth",
            data=value.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(json.loads(r.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    @contextmanager
    def enforce_auth(self) -> Iterator[None]:
        """Make the server check signatures and IAM policies (moto skips both by default), so it
        answers InvalidAccessKeyId, SignatureDoesNotMatch and AccessDenied like S3. The switch is
        process-wide in moto: it is always turned back off."""
        previous = self._reset_auth("0")
        try:
            yield
        finally:
            self._reset_auth(previous)
