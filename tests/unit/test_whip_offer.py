"""WHIP/WHEP offers are checked before a peer connection sees them."""

from __future__ import annotations

import pytest

from roomcast.rtc.errors import NegotiationError
from roomcast.rtc.whip import check_offer
from tests.support.fuzz import sdp_offer


def test_a_real_offer_passes() -> None:
    check_offer(sdp_offer())


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda o: "v=0", "no audio or video"),
        (lambda o: "", "not an SDP offer"),
        (lambda o: "v=0\r\nm=audio x\r\n", "cannot be parsed"),
        (lambda o: o.replace("a=sendrecv\r\n", ""), "direction"),
        (lambda o: o.replace("a=mid:0\r\n", ""), "mid"),
        (lambda o: "\r\n".join(x for x in o.split("\r\n") if not x.startswith("a=ice-pwd")), "ICE"),
        (lambda o: "\r\n".join(x for x in o.split("\r\n") if not x.startswith("a=fingerprint")), "DTLS"),
        (lambda o: o.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 7"), "BUNDLE"),
    ],
)
def test_broken_offers(edit: object, reason: str) -> None:
    offer = edit(sdp_offer())  # type: ignore[operator]
    with pytest.raises(NegotiationError) as ei:
        check_offer(offer)
    assert reason in str(ei.value)
