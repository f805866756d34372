"""Simulator speed on one core: simulated connections per wall second and simulated seconds per
wall second, for the issue's reference scenarios. Memory: peak RSS growth between N and 4N runs
(should be flat: results are arrays, runs are independent).

    python benchmarks/bench_simulate.py [--runs 300]

Prints a table and, with --json, a JSON document. Targets (issue 3): >= 300 connections/s at
1 Gbit / 35 ms / 200 KiB / 1 % loss, >= 2000 simulated s per wall s at 1 Mbit / 200 ms /
200 KiB / 10 % loss.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from ttlbsim import Scenario
from ttlbsim.simulate import handshake_profile, simulate

CASES = [
    ("1Gbit 35ms 200KiB 0%", dict(rtt="35ms", bandwidth="1Gbit", loss="0%", data="200KiB"), None),
    ("1Gbit 35ms 200KiB 1%", dict(rtt="35ms", bandwidth="1Gbit", loss="1%", data="200KiB"), ("conn/s", 300)),
    ("1Mbit 200ms 200KiB 10%", dict(rtt="200ms", bandwidth="1Mbit", loss="10%", data="200KiB"), ("sim s/s", 2000)),
]


def bench(options: dict, runs: int) -> dict:
    s = Scenario.build(kex="X25519MLKEM768", sig="mldsa44", initcwnd=20, compute="zero", **options)
    profile = handshake_profile(s)
    simulate(s, runs=5, seed=99, profile=profile)  # warm caches
    if s.network.loss == 0 and s.network.jitter_s == 0:
        # deterministic scenarios are simulated once by simulate(); time the single connection
        from ttlbsim.compute import ComputeModel
        from ttlbsim.session import run_connection
        import numpy as np
        t0, c0 = time.perf_counter(), time.process_time()
        total = 0.0
        for i in range(runs):
            total += run_connection(s, profile, ComputeModel(s.compute), np.random.SeedSequence(0, spawn_key=(i,))).ttlb
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        r = simulate(s, runs=runs, seed=1, profile=profile)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        total = float(r.ttlb_ms.sum()) / 1e3
    return {"runs": runs, "wall_s": wall, "cpu_s": cpu, "conn_per_s": runs / wall, "sim_s_per_wall_s": total / wall,
            "conn_per_cpu_s": runs / cpu, "sim_s_per_cpu_s": total / cpu}


def memory_growth(runs: int) -> dict:
    s = Scenario.build(kex="X25519MLKEM768", sig="mldsa44", initcwnd=20, compute="zero",
                       rtt="35ms", bandwidth="1Gbit", loss="1%", data="200KiB")
    simulate(s, runs=runs, seed=3)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    simulate(s, runs=4 * runs, seed=3)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"runs": runs, "peak_rss_kib_before": before, "peak_rss_kib_after_4x": after, "growth_kib": after - before}


def _interpreter() -> str:
    """Which interpreter and which ttlbsim build ran the benchmark: the rates depend on both
    (CPython builds differ: distribution and python.org builds are compiled with profile-guided
    and link-time optimisation, a plain `./configure` build such as pyenv's default is not; a
    regular `pip install .` of ttlbsim compiles its per-packet modules with mypyc, an editable
    install does not)."""
    import platform
    from ttlbsim import compiled_modules
    compiled = compiled_modules()
    build = f"{len(compiled)} modules compiled with mypyc" if compiled else "all modules interpreted"
    return f"{platform.python_implementation()} {platform.python_version()} ({sys.executable}); ttlbsim: {build}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for name, opts, target in CASES:
        res = bench(opts, args.runs)
        res["case"] = name
        if target:
            metric = res["conn_per_s"] if target[0] == "conn/s" else res["sim_s_per_wall_s"]
            res["target"] = f">= {target[1]} {target[0]}"
            res["ratio_to_target"] = metric / target[1]
        rows.append(res)
    mem = memory_growth(max(args.runs // 3, 50))
    if args.json:
        print(json.dumps({"cases": rows, "memory": mem, "python": _interpreter()}, indent=1))
        return 0
    print(f"python: {_interpreter()}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other work on the machine slows the wall-clock rates)")
    print(f"{'case':28}{'conn/s':>10}{'sim s/s':>10}{'conn/cpu-s':>12}{'sim s/cpu-s':>12}  target (wall)")
    for r in rows:
        t = f"{r.get('target', '')} (x{r['ratio_to_target']:.2f})" if "target" in r else ""
        print(f"{r['case']:28}{r['conn_per_s']:10.0f}{r['sim_s_per_wall_s']:10.0f}"
              f"{r['conn_per_cpu_s']:12.0f}{r['sim_s_per_cpu_s']:12.0f}  {t}")
    print(f"peak RSS growth from {mem['runs']} to {4 * mem['runs']} runs: {mem['growth_kib']} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
