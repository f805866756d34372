"""`simulate(scenario, runs, seed)` and `compare(a, b, ...)`: many independent connections.

Run *i* draws all its randomness from ``SeedSequence(seed, spawn_key=(i,))`` — the i-th child
that ``SeedSequence(seed).spawn()`` would give — so any split of the runs over processes gives
identical results. A scenario with no loss and no jitter is deterministic up to the kernel timer
phase; it is simulated once (with run 0's phase) and the result repeated.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Iterable, Sequence

import numpy as np

from . import __version__
from .compute import ComputeModel, resolve
from .errors import InvalidValue
from .handshake.profile import HandshakeProfile
from .result import Comparison, Result
from .scenario import Scenario
from .session import RunRecord, run_connection

_FIELDS = ("ttfb", "ttlb", "retransmits", "rtos", "tlps", "packets_up", "packets_down", "bytes_up", "bytes_down",
           "min_rtt", "server_min_rtt")
_COUNTS = ("retransmits", "rtos", "tlps", "packets_up", "packets_down", "bytes_up", "bytes_down")


def handshake_profile(scenario: Scenario) -> HandshakeProfile:
    from .handshake import build_profile

    return build_profile(scenario.tls)


def is_deterministic(scenario: Scenario) -> bool:
    """No random draw can change a run: no loss, no jitter, no host-latency variation."""
    n = scenario.network
    return n.loss == 0.0 and n.jitter_s == 0.0 and not ComputeModel(scenario.compute).varies


def _run_range(scenario: Scenario, profile: HandshakeProfile, seed: int, start: int, stop: int) -> dict[str, np.ndarray]:
    compute = ComputeModel(scenario.compute)
    cols: dict[str, list] = {f: [] for f in _FIELDS}
    for i in range(start, stop):
        rec: RunRecord = run_connection(scenario, profile, compute, np.random.SeedSequence(seed, spawn_key=(i,)))
        for f in _FIELDS:
            cols[f].append(getattr(rec, f))
    return {f: np.asarray(v) for f, v in cols.items()}


def _to_arrays(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {"ttfb_ms": cols["ttfb"] * 1e3, "ttlb_ms": cols["ttlb"] * 1e3}
    for f in _COUNTS:
        out[f] = cols[f].astype(np.int64)
    # each endpoint's smallest RTT sample, as TCP_INFO's tcpi_min_rtt reports it (nan: no sample)
    out["min_rtt_ms"] = cols["min_rtt"] * 1e3
    out["server_min_rtt_ms"] = cols["server_min_rtt"] * 1e3
    return out


def simulate(scenario: Scenario, runs: int = 1000, seed: int = 0, *, workers: int = 1,
             profile: HandshakeProfile | None = None) -> Result:
    """Simulate `runs` connections of `scenario`. `workers` > 1 splits them over processes."""
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 1:
        raise InvalidValue("runs", runs, "a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidValue("seed", seed, "a whole number >= 0")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValue("workers", workers, "a whole number >= 1")
    profile = profile or handshake_profile(scenario)
    requested = scenario
    if scenario.compute.mode in ("measured", "calibrated"):
        # measure once here, so every worker process uses the same numbers
        scenario = dataclasses.replace(scenario, compute=resolve(scenario.compute, profile.all_ops))
    deterministic = is_deterministic(scenario)
    if deterministic:
        one = _run_range(scenario, profile, seed, 0, 1)
        cols = {f: np.repeat(v, runs) for f, v in one.items()}
    elif workers == 1 or runs < 2 * workers:
        cols = _run_range(scenario, profile, seed, 0, runs)
    else:
        bounds = np.linspace(0, runs, workers + 1).astype(int)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_run_range, [scenario] * workers, [profile] * workers, [seed] * workers,
                                  bounds[:-1].tolist(), bounds[1:].tolist()))
        cols = {f: np.concatenate([p[f] for p in parts]) for f in _FIELDS}
    provenance = {"ttlbsim": __version__, "handshake": {f"{f.sender}{i}": f.bytes for i, f in enumerate(profile.flights)},
                  "deterministic": deterministic, "compute_s": dict(scenario.compute.times_s),
                  "compute_scale": scenario.compute.scale, "flight_overhead_s": scenario.compute.overhead_s,
                  "overhead_sigma": scenario.compute.sigma, "read_delay_s": scenario.compute.read_delay,
                  "recv_cost_s": scenario.compute.recv_cost, "packet_delay_s": scenario.compute.packet_delay,
                  "packet_jitter_s": scenario.compute.packet_jitter}
    if requested.compute.mode == "calibrated":
        from .calibration import load

        cal = load(requested.compute.profile)
        provenance["calibration"] = {"profile": cal.name, "sha256": cal.sha256}
    return Result(scenario=requested, seed=int(seed), arrays=_to_arrays(cols), provenance=provenance)


def compare(a: Scenario, b: Scenario, data: Iterable[int] | None = None, runs: int = 1000, seed: int = 0,
            *, workers: int = 1) -> Comparison:
    """Simulate scenarios `a` and `b` at each response size in `data` (bytes; default: each
    scenario's own) with the same seeds, and report b's slowdown over a per percentile."""
    sizes: Sequence[int] = tuple(data) if data is not None else (a.workload.data_bytes,)
    ra, rb = [], []
    for size in sizes:
        sa = a.replace(data=size)
        sb = b.replace(data=size)
        ra.append(simulate(sa, runs, seed, workers=workers))
        rb.append(simulate(sb, runs, seed, workers=workers))
    return Comparison(a=tuple(ra), b=tuple(rb), data_bytes=tuple(int(s) for s in sizes))
