"""Fuzz every dialect of a roomcast server and count internal errors.

Starts a server in-process on 127.0.0.1 (its own temporary data directory), creates a tenant, then
sends ``--requests`` correctly signed, mutated requests per dialect (TRTC/TIW with TC3 and with
v1 signatures, SparkRTC AK/SK and IAM-token routes, the IAM token path, JOYY, WHIP/WHEP, and raw
malformed requests) and prints, per dialect, how many got a 5xx, the dialect's internal-error
code or an answer outside its envelope. What is fuzzed is read from the running server (see
``tests/support/fuzz.py``), so actions added later are included.

Throttling is switched off in the server under test so that every request reaches the parameter
checks (otherwise most would stop at the rate limit).

Run: ``PYTHONPATH=src .venv/bin/python bench/fuzz.py [--requests 5000] [--seed 10] [--only joyy]``.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tests.support.fuzz import DIALECTS, Fuzzer, Outcome, RandomSource, Tenant, sdp_offer
from tests.support.live import live_server

from roomcast.runtime import Runtime


class _Unlimited:
    def allow(self, *args: object, **kwargs: object) -> bool:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per dialect")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--only", choices=DIALECTS, action="append", help="fuzz only these dialects")
    parser.add_argument("--show", type=int, default=5, help="failures to print per dialect")
    parser.add_argument("--verbose", action="store_true", help="print the most common answers")
    args = parser.parse_args()
    dialects = args.only or list(DIALECTS)

    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(Path(tmp) / "var", ice_host_addresses=["127.0.0.1"], max_recordings=20) as srv,
    ):

        async def setup(rt: Runtime) -> Tenant:
            creds = await rt.tenancy.create_account("acme")
            return Tenant(creds, await rt.tenancy.create_app(creds.account_id, "fuzz"))

        tenant = srv.run(setup)
        unlimited = _Unlimited()
        srv.app.state.limiter.allow = unlimited.allow  # the one limiter every dialect shares
        with httpx.Client(timeout=60) as client:
            fuzzer = Fuzzer(srv.url, srv.app.state, list(srv.app.routes), tenant, client, sdp_offer())  # type: ignore[arg-type]
            print(f"{'dialect':<10} {'requests':>8} {'internal':>8} {'4xx/err':>8} {'seconds':>8}")
            total_failed = 0
            for dialect in dialects:
                src = RandomSource(random.Random(f"{args.seed}-{dialect}"))
                failures: list[Outcome] = []
                statuses: collections.Counter[int] = collections.Counter()
                answers: collections.Counter[str] = collections.Counter()
                started = time.perf_counter()
                for _ in range(args.requests):
                    try:
                        out = fuzzer.send(dialect, src)
                    except httpx.HTTPError as exc:
                        out = Outcome(dialect, "transport", 0, True, repr(exc))
                    statuses[out.status] += 1
                    answers[f"{out.status} {out.detail[:40]}" if not out.failed else "FAILED"] += 1
                    if out.failed:
                        failures.append(out)
                elapsed = time.perf_counter() - started
                errors = sum(n for s, n in statuses.items() if s >= 400)
                print(f"{dialect:<10} {args.requests:>8} {len(failures):>8} {errors:>8} {elapsed:>8.1f}")
                if args.verbose:
                    print("    answers:", ", ".join(f"{k.strip()} x{n}" for k, n in answers.most_common(12)))
                for f in failures[: args.show]:
                    print(f"    {f.status} {f.target}: {f.detail[:240]}")
                total_failed += len(failures)
                if not fuzzer.alive():
                    print("the server stopped answering /healthz")
                    sys.exit(2)
            print(f"internal errors in all: {total_failed}; server alive: {fuzzer.alive()}")


if __name__ == "__main__":
    main()
