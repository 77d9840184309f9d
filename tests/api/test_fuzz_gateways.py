"""Bad input never crashes a dialect: correctly signed, mutated requests get a vendor error, never a
5xx or an internal-error code, and the server stays up.

The requests come from ``tests/support/fuzz.py``, which reads what the server serves (TRTC/TIW
registry, SparkRTC routes, JOYY methods, WHIP/WHEP), so actions added later are fuzzed too. A fixed
number of examples with a derandomized seed keeps this quick and repeatable; ``bench/fuzz.py``
runs thousands per dialect.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@pytest.fixture(scope="module")
def fuzzer(server: LiveServer) -> Iterator[Fuzzer]:
    t = make_tenant(server, "fuzz")
    # Throttling off in this module's server: every request must reach the parameter checks.
    server.app.state.limiter.allow = lambda *args, **kwargs: True
    with httpx.Client(timeout=60) as client:
        yield Fuzzer(
            server.url, server.app.state, list(server.app.routes), Tenant(t.creds, t.app), client, sdp_offer()
        )


def test_every_served_action_and_route_is_fuzzed(fuzzer: Fuzzer) -> None:
    trtc = {a for _, a in fuzzer.trtc_targets()}
    assert {"CreateCloudRecording", "ModifyCloudRecording", "RemoveUser", "SetUserBlocked"} <= trtc
    spark = {path for _, path in fuzzer.spark_routes()}
    assert {"/v2/apps", "/v2/apps/{app_id}", "/v2/apps/{app_id}/rooms/{room_id}/batch-remove-users"} <= spark
    assert "applyrecord" in fuzzer.app_state.jocloud.methods


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_internal_errors(fuzzer: Fuzzer, dialect: str) -> None:
    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        out = fuzzer.send(dialect, HypothesisSource(data))
        assert not out.failed, out

    run()
    assert fuzzer.alive()
