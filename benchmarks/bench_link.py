"""Per-packet cost of NetemPath.send (ns/packet, including the amortised batch refills of the
random streams and the loop) for 300-packet connections, in a few configurations.

Run: python benchmarks/bench_link.py
"""

from __future__ import annotations

import time

import numpy as np

from ttlbsim.link import NetemPath

CASES = {
    "1Gbit, no loss, no jitter": dict(rate_bps=1e9),
    "1Gbit, 1% loss": dict(rate_bps=1e9, loss=0.01),
    "1Mbit, 10% loss, paretonormal jitter": dict(rate_bps=1e6, loss=0.1, jitter_s=0.004,
                                                jitter_dist="paretonormal"),
    "no rate, 1% loss, normal jitter": dict(loss=0.01, jitter_s=0.004, jitter_dist="normal"),
}


def bench(n_conn: int = 2000, pkts: int = 300) -> None:
    for name, kw in CASES.items():
        total = 0.0
        for c in range(n_conn):
            p = NetemPath(delay_s=0.0175, rng=np.random.default_rng(c), **kw)
            t0 = time.perf_counter()
            now = 0.0
            send = p.send
            for _ in range(pkts):
                send(now, 1448)
                now += 2e-5
            total += time.perf_counter() - t0
        print(f"{name:40s} {total / (n_conn * pkts) * 1e9:7.0f} ns/packet "
              f"")
    t0 = time.perf_counter()
    for c in range(n_conn):
        NetemPath(delay_s=0.0175, rate_bps=1e9, rng=np.random.default_rng(c))
    print(f"{'NetemPath construction':40s} {(time.perf_counter() - t0) / n_conn * 1e6:7.1f} us")


if __name__ == "__main__":
    bench()
