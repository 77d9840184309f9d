"""Bad input never crashes a dialect: correctly signed, mutated requests get a vendor error, never a
5xx or an internal-error code, and the server stays up.

The requests come from ``tests/support/fuzz.py``, which reads what the server serves (TRTC/TIW
registry, SparkRTC routes, JOYY methods, WHIP/WHEP), so actions added later are fuzzed too. A fixed
number of examples with a derandomized seed keeps this quick and repeatable; ``bench/fuzz.py``
runs thousands per dialect.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Tenant as ApiTenant
from tests.api.conftest import make_tenant
from tests.support.fuzz import DIALECTS, Fuzzer, HypothesisSource, Tenant, sdp_offer
from tests.support.live import LiveServer

EXAMPLES = 40
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def _always_allow(*args: Any, **kwargs: Any) -> bool:
    return True


@pytest.fixture(scope="module")
def fuzzer(server: LiveServer) -> Iterator[Fuzzer]:
    t = make_tenant(server, "fuzz")
    # Throttling off in this module's server: every request must reach the parameter checks.
    server.app.state.limiter.allow = _always_allow
    with httpx.Client(timeout=60) as client:
        yield Fuzzer(
            server.url, server.app.state, list(server.app.routes), Tenant(t.creds, t.app), client, sdp_offer()
        )


def test_every_served_action_and_route_is_fuzzed(fuzzer: Fuzzer) -> None:
    trtc = {a for _, a in fuzzer.trtc_targets()}
    assert {"CreateCloudRecording", "ModifyCloudRecording", "RemoveUser", "SetUserBlocked"} <= trtc
    spark = {path for _, path in fuzzer.spark_routes()}
    assert {"/v2/apps", "/v2/apps/{app_id}", "/v2/apps/{app_id}/rooms/{room_id}/batch-remove-users"} <= spark
    assert {"applyrecord", "startrecord", "updatemixrecord", "queryrecord", "stoprecord"} <= set(
        fuzzer.app_state.jocloud.methods
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_internal_errors(fuzzer: Fuzzer, dialect: str) -> None:
    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        out = fuzzer.send(dialect, HypothesisSource(data))
        assert not out.failed, out

    run()
    assert fuzzer.alive()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


JOYY_METHODS = ["startrecord", "updatemixrecord", "stoprecord"]
JOYY_FIELDS = [
    "resid",
    "appid",
    "roomid",
    "recordtype",
    "streamtype",
    "mixconfig",
    "uid",
    "storagecfg",
    "callbackurl",
    "recordid",
]
JOYY_MIX_FIELDS = ["input", "intput", "templateid", "output"]
JOYY_OUTPUT_FIELDS = [
    "streamtype",
    "videoheight",
    "videowidth",
    "videobitrate",
    "videofps",
    "videogop",
    "audiobitrate",
    "patch",
    "patchUrl",
    "watermark",
    "background",
]
JOYY_STORAGE_FIELDS = ["vender", "endpoint", "bucket", "accesskey", "secretkey", "fileprefix"]


@FUZZ
@given(
    method=st.sampled_from(JOYY_METHODS),
    fields=st.dictionaries(st.sampled_from(JOYY_FIELDS), json_values, max_size=6),
    mix=st.dictionaries(st.sampled_from(JOYY_MIX_FIELDS), json_values, max_size=3),
    output=st.dictionaries(st.sampled_from(JOYY_OUTPUT_FIELDS), json_values, max_size=5),
    store=st.dictionaries(st.sampled_from(JOYY_STORAGE_FIELDS), json_values, max_size=6),
)
def test_jocloud_fields_never_fail_internally(
    server: LiveServer,
    tenant: ApiTenant,
    method: str,
    fields: dict[str, Any],
    mix: dict[str, Any],
    output: dict[str, Any],
    store: dict[str, Any],
) -> None:
    """Vendor-shaped bodies (the documented field names, random values) reach the deeper checks."""
    token = (
        "Basic " + base64.b64encode(f"{tenant.creds.secret_id}:{tenant.creds.secret_key}".encode()).decode()
    )
    body = {"appid": tenant.app.sdk_app_id, "resid": "r", "roomid": "room", **fields}
    body["appid"] = tenant.app.sdk_app_id
    body["mixconfig"] = {**mix, "output": output}
    body["storagecfg"] = store
    r = httpx.post(
        f"{server.url}/app/{tenant.app.sdk_app_id}/v1/recordoss/{method}",
        content=json.dumps(body).encode(),
        headers={"Token": token, "Content-Type": "application/json"},
    )
    data = r.json()
    assert r.status_code == 404 and data["code"] in (2101, 4012, 4013, 4016), data
